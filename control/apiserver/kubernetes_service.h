#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/apiserver/api_handler.h"
#include "control/store/store.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/discovery_v1.pb.h"

// The `default/kubernetes` Service and its EndpointSlice, as kube-apiserver's bootstrap
// controller keeps them (pkg/controlplane/controller/kubernetesservice): the Service has the first
// address of the service CIDR as ClusterIP, one port 443 named "https" targeting the apiserver's
// secure port and no selector (so the EndpointSlice controller leaves it alone); its EndpointSlice
// "kubernetes" (label kubernetes.io/service-name=kubernetes, no managed-by label) lists the
// apiservers' advertise addresses. A deleted object is recreated and a changed one repaired on the
// next reconcile. The addresses are kube-apiserver's lease reconciler's: every apiserver keeps a
// store key /registry/masterleases/<advertise address>:<port> on a store lease of
// `lease_ttl_seconds`, renewed on each pass, and writes the slice from the keys alive; one that
// stops deletes its key, one that crashed drops out when its lease expires. Apiservers on
// different ports (several on one machine) agree on the first key's port for the slice and the
// Service's targetPort, so they never take turns rewriting them.
//
// The writes go through the ApiHandler as loopback requests, so the Service gets its ClusterIP
// from the allocator and every watch sees them like any client's.

namespace skiff::apiserver {

inline constexpr std::string_view kKubernetesServiceName = "kubernetes";
inline constexpr std::string_view kMasterLeasePrefix = "/registry/masterleases/";

struct KubernetesServiceOptions {
  std::string cluster_ip;         // the first address of the service CIDR
  std::string advertise_address;  // where pods reach this apiserver (IPv4)
  int32_t secure_port = 6443;
  int32_t service_port = 443;
  std::chrono::milliseconds interval{10000};  // kube-apiserver's --endpoint-reconciler interval
  int64_t lease_ttl_seconds = 15;             // kube-apiserver's masterEndpointReconcileTTL
};

// The Service and the EndpointSlice as they should be (metadata names, labels and spec only).
api::core::v1::Service desiredKubernetesService(const KubernetesServiceOptions& options);
// `addresses` sorted, deduplicated.
api::discovery::v1::EndpointSlice desiredKubernetesEndpointSlice(std::vector<std::string> addresses,
                                                                 int32_t secure_port);

// What a repair changes in `existing` to make it serve as the kubernetes Service: the ports, the
// type, the labels and no selector (the ClusterIP is immutable: a wrong one is reported, not
// changed). True when something changed.
bool repairKubernetesService(api::core::v1::Service& existing,
                             const api::core::v1::Service& desired);

class KubernetesServiceController {
 public:
  // `store` is the apiserver's (the lease keys); `handler` serves the objects.
  KubernetesServiceController(ApiHandler& handler, store::Store& store,
                              KubernetesServiceOptions options);
  ~KubernetesServiceController();
  KubernetesServiceController(const KubernetesServiceController&) = delete;
  KubernetesServiceController& operator=(const KubernetesServiceController&) = delete;

  // Reconciles now (errors are logged) and then every `interval` on a thread of its own.
  void start();
  // Stops the thread and removes this apiserver's address (its lease key) from the EndpointSlice.
  void stop();
  // One pass: creates or repairs the Service, renews this apiserver's lease key and writes the
  // EndpointSlice from the live keys. Throws ApiError or store::StoreError.
  void reconcileOnce();
  // Deletes this apiserver's lease key and writes the EndpointSlice without it.
  void removeOwnAddress();

 private:
  HttpResponse call(const std::string& method, const std::string& path,
                    const std::string& body = {});
  void pass();  // reconcileOnce, errors logged
  // The live apiservers' addresses, and the one port they are reached at.
  struct Live {
    std::vector<std::string> addresses;
    int32_t port = 0;
  };
  void reconcileService(int32_t target_port);
  std::string ownLeaseKey() const;  // /registry/masterleases/<advertise address>:<port>
  Live liveApiservers();
  // Creates this apiserver's lease key or renews it; then liveApiservers().
  Live renewOwnLease();
  void writeEndpointSlice(const Live& live);

  ApiHandler& handler_;
  store::Store& store_;
  KubernetesServiceOptions options_;
  std::mutex reconcile_mu_;  // one pass at a time (the thread, stop())
  int64_t lease_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool reported_ip_ = false;
  std::thread thread_;
};

}  // namespace skiff::apiserver

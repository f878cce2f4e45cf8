#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "control/apiserver/errors.h"
#include "control/store/store.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver {

struct ServiceAdmissionOptions {
  std::string service_cidr = "10.96.0.0/16";  // IPv4; the first address is the kubernetes Service's
  int node_port_min = 30000;
  int node_port_max = 32767;
};

// Defaults, validation and address allocation for Services, as Kubernetes' service registry does
// them: type ClusterIP, TCP ports with targetPort = port, a ClusterIP from the service CIDR and
// NodePorts from their range for NodePort and LoadBalancer Services.
//
// Every allocation is a key in the store (/registry/ranges/serviceips/<ip>,
// /registry/ranges/servicenodeports/<port>) created with create-if-absent, so two Services never
// get the same address, also across restarts and concurrent requests.
class ServiceAdmission {
 public:
  ServiceAdmission(store::Store& store, ServiceAdmissionOptions options);

  // Defaults and validates a new Service and allocates what it needs. On failure nothing stays
  // allocated.
  void admitCreate(api::core::v1::Service& service, bool dry_run);
  // Keeps what is immutable (clusterIP), allocates NodePorts a changed Service newly needs and
  // releases the ones it no longer uses.
  void admitUpdate(const api::core::v1::Service& old, api::core::v1::Service& service,
                   bool dry_run);
  // Frees a deleted Service's ClusterIP and NodePorts.
  void release(const api::core::v1::Service& service);
  // Undoes admitUpdate's new NodePorts when the update itself then failed.
  void releaseNewNodePorts(const api::core::v1::Service& old,
                           const api::core::v1::Service& attempted);

 private:
  void defaults(api::core::v1::Service& service) const;
  void validate(const api::core::v1::Service& service) const;
  std::string allocateIp(const std::string& owner);
  int allocateNodePort(const std::string& owner);
  void reserveIp(const std::string& ip, const std::string& owner);
  void reserveNodePort(int port, const std::string& owner);
  void releaseKey(const std::string& key);

  store::Store& store_;
  ServiceAdmissionOptions options_;
  uint32_t base_ = 0;  // network address of the CIDR, host order
  uint32_t size_ = 0;  // addresses in it
};

}  // namespace skiff::apiserver

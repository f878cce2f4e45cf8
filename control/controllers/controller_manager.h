#pragma once

#include <chrono>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "control/client/client.h"

// The controller manager: the controllers of control/controllers/ on one SharedInformerFactory,
// optionally leader-elected on a Lease, as `skiff controller-manager` runs it and `skiff server`
// embeds it.

namespace skiff::controllers {

struct ControllerManagerOptions {
  // Which controllers run: "*" (all on by default), "name" or "-name" (kube-controller-manager's
  // --controllers). Known: deployment, replicaset, garbagecollector, job, daemonset, statefulset,
  // namespace, serviceaccount, nodelifecycle, root-ca-cert-publisher, clusterrole-aggregation,
  // persistentvolume-binder (with pvc-protection and pv-protection), local-path-provisioner.
  std::vector<std::string> controllers = {"*"};
  int workers = 4;  // per controller
  bool leader_elect = false;
  std::string lease_namespace = "kube-system";
  std::string lease_name = "skiff-controller-manager";
  std::string identity;  // default: hostname + "_" + random suffix
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
  std::chrono::milliseconds cache_sync_timeout{60000};
  bool record_events = true;
  // The node lifecycle controller (kube-controller-manager's flags of the same names): how long a
  // node may go without renewing its Lease or Ready heartbeat, the same for a node that never
  // posted Ready, how often nodes are looked at, and whether pods are evicted from NoExecute
  // taints (--enable-taint-manager).
  std::chrono::milliseconds node_monitor_grace_period{40000};
  std::chrono::milliseconds node_startup_grace_period{60000};
  std::chrono::milliseconds node_monitor_period{5000};
  bool enable_taint_eviction = true;
  double node_eviction_rate = 0;  // nodes a second newly tainted NoExecute; 0: no limit
  // csrsigning (kube-controller-manager's --cluster-signing-cert-file, --cluster-signing-key-file,
  // --cluster-signing-duration): the CA that signs approved CertificateSigningRequests; without
  // both files csrsigning does not run. csrapproving approves kubelets' client certificates.
  std::string cluster_signing_cert_file;
  std::string cluster_signing_key_file;
  std::chrono::seconds cluster_signing_duration{365 * 24 * 3600};
  // The CA bundle (PEM) root-ca-cert-publisher puts in every namespace's kube-root-ca.crt
  // (kube-controller-manager's --root-ca-file, else its kubeconfig's CA); empty: it does not run.
  std::string root_ca_pem;
  // local-path-provisioner creates the default StorageClass local-path on start.
  bool default_storage_class = true;
};

// The controller names `controllers` selects; throws std::invalid_argument for a name that is not
// a controller (naming it and the known ones).
std::vector<std::string> enabledControllers(const std::vector<std::string>& controllers);

class ControllerManager {
 public:
  ControllerManager(client::Client& client, ControllerManagerOptions options);
  ~ControllerManager();
  ControllerManager(const ControllerManager&) = delete;
  ControllerManager& operator=(const ControllerManager&) = delete;

  // Starts (campaigning first with leader_elect); returns at once.
  void start();
  // Stops the controllers, the informers and the campaign (the lease is released).
  void stop();
  // True while the controllers run (leading, or not electing) and their caches have synced.
  bool running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs the controller manager until `stop` is requested.
void runControllerManager(client::Client& client, const ControllerManagerOptions& options,
                          std::stop_token stop);

}  // namespace skiff::controllers

#pragma once

// The node proxier that `skiff agent` runs: informers on Services, EndpointSlices and Nodes feed a
// Proxier (proxier.h), whose syncs a BoundedFrequencyRunner paces, programming the node's
// Dataplane (the eBPF one, or the DPDK one over its control socket).

#include <chrono>
#include <memory>
#include <string>

#include "control/client/informer.h"
#include "dataplane/dataplane.h"
#include "endpoints/proxier.h"
#include "endpoints/sync_runner.h"

namespace skiff::endpoints {

struct NodeProxierOptions {
  ProxierOptions proxier;
  // Pacing: kube-proxy's --iptables-min-sync-period is 1 s; a map write costs microseconds, so
  // Skiff's default is 10 ms with a burst of 2. maxInterval is the periodic full resync.
  std::chrono::milliseconds minSyncInterval{10};
  int burst = 2;
  // After a failed apply or refused services.
  std::chrono::milliseconds retryInterval{1000};
};

class NodeProxier {
 public:
  // Registers the handlers on `informers`' Service, EndpointSlice and Node informers; the caller
  // starts the factory.
  NodeProxier(client::SharedInformerFactory& informers, dataplane::Dataplane& dataplane,
              NodeProxierOptions options);
  ~NodeProxier();
  NodeProxier(const NodeProxier&) = delete;
  NodeProxier& operator=(const NodeProxier&) = delete;

  // Starts syncing (the first sync waits for both informers' first lists).
  void start();
  void stop();

  Proxier& proxier() { return proxier_; }
  const Proxier& proxier() const { return proxier_; }
  uint64_t runs() const { return runner_.runs(); }
  // For the agent's /metrics.
  std::string metricsText() const { return proxier_.metricsText(); }

 private:
  void syncOnce();

  const NodeProxierOptions options_;
  client::SharedInformer& services_;
  client::SharedInformer& slices_;
  client::SharedInformer& nodes_;
  Proxier proxier_;
  BoundedFrequencyRunner runner_;
};

}  // namespace skiff::endpoints

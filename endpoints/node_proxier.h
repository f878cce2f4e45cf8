#pragma once

// The node proxier that `skiff agent` runs: informers on Services, EndpointSlices and Nodes feed a
// Proxier (proxier.h), whose syncs a BoundedFrequencyRunner paces, programming the node's
// Dataplane (the eBPF one, or the DPDK one over its control socket).

#include <chrono>
#include <memory>
#include <string>

#include "control/client/informer.h"
#include "dataplane/dataplane.h"
#include "endpoints/http_server.h"
#include "endpoints/proxier.h"
#include "endpoints/proxy_health.h"
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
  // Where /metrics is served ("HOST:PORT", as kube-proxy's --metrics-bind-address, whose default
  // is 127.0.0.1:10249); empty: not served. Port 0: any free port (see metricsPort()).
  std::string metricsBindAddress;
  // Where /healthz and /livez are served (kube-proxy's --healthz-bind-address, default
  // 0.0.0.0:10256); empty: not served.
  std::string healthzBindAddress;
  // /healthz turns 503 when a change waits longer than this for a successful sync (kube-proxy:
  // twice its sync period).
  std::chrono::milliseconds healthzTimeout{std::chrono::seconds(60)};
  // The address the health-check node ports of externalTrafficPolicy Local Services listen on;
  // empty: none are served.
  std::string healthCheckBindAddress = "0.0.0.0";
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

  // Serves /metrics and /healthz if asked (an address that does not parse throws
  // std::runtime_error; one that cannot be bound is logged and left out, as kube-proxy does) and
  // starts syncing (the first sync waits for both informers' first lists).
  void start();
  // Stops syncing and serving.
  void stop();

  Proxier& proxier() { return proxier_; }
  const Proxier& proxier() const { return proxier_; }
  uint64_t runs() const { return runner_.runs(); }
  // What /metrics serves: the proxier's series and the health server's.
  std::string metricsText() const;
  ProxierHealth& health() { return health_; }
  // The bound ports once started; 0 when not served (off, or the bind failed).
  uint16_t metricsPort() const { return metricsPort_; }
  uint16_t healthzPort() const { return healthzPort_; }
  // Health-check node ports being served: "ns/name" -> port.
  std::map<std::string, uint16_t> healthCheckPortsServed() const {
    return serviceHealth_.serving();
  }

 private:
  void syncOnce();
  void queued();

  const NodeProxierOptions options_;
  client::SharedInformer& services_;
  client::SharedInformer& slices_;
  client::SharedInformer& nodes_;
  Proxier proxier_;
  ProxierHealth health_;
  // Before the servers that use it: stopped first, destroyed last.
  HttpListeners listeners_;
  ServiceHealthServer serviceHealth_;
  uint16_t metricsPort_ = 0;
  uint16_t healthzPort_ = 0;
  BoundedFrequencyRunner runner_;
};

}  // namespace skiff::endpoints

#pragma once

// Whether the node proxier keeps its data path up to date, as kube-proxy's ProxyHealthServer
// (pkg/proxy/healthcheck/proxy_health.go) decides it, and the health-check node ports of
// Services with externalTrafficPolicy Local (service_health.go).
//
// ProxierHealth: every informer event queues an update; a successful sync clears it. The proxier
// is unhealthy when an update has been queued for longer than the timeout without a successful
// sync (kube-proxy: twice the sync period). /healthz also reports the node ineligible (503) when
// its Node is being deleted or tainted ToBeDeletedByClusterAutoscaler; /livez does not.
//
// ServiceHealthServer: one HTTP listener per Service port; the answer is 200 with
// {"service": {"namespace", "name"}, "localEndpoints": N, "serviceProxyHealthy": true} while the
// node has N > 0 ready local endpoints of the service and the proxier is healthy, else 503, so a
// cloud load balancer sends external traffic only to nodes that keep the client's address.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "control/api/time.h"
#include "endpoints/http_server.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::endpoints {

struct HealthState {
  bool healthy = true;
  bool nodeEligible = true;
  api::Timestamp lastUpdated;  // zero before the first successful sync
  api::Timestamp currentTime;
};

class ProxierHealth {
 public:
  explicit ProxierHealth(std::chrono::milliseconds timeout,
                         std::function<api::Timestamp()> now = api::now);

  // An informer event that a sync has yet to program.
  void queuedUpdate();
  // A successful sync: everything queued before it is programmed.
  void updated();
  void setNodeEligible(bool eligible);

  HealthState state() const;
  // kube-proxy's answers (JSON, 200 or 503); they count into the metrics.
  HttpReply healthz();
  HttpReply livez();
  // kubeproxy_proxy_healthz_total{code}, kubeproxy_proxy_livez_total{code},
  // kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds.
  std::string metricsText() const;

 private:
  const std::chrono::milliseconds timeout_;
  const std::function<api::Timestamp()> now_;
  mutable std::mutex mutex_;
  std::optional<api::Timestamp> oldestQueued_;
  api::Timestamp lastQueued_;
  api::Timestamp lastUpdated_;
  bool nodeEligible_ = true;
  uint64_t healthz_[2] = {0, 0};  // 200, 503
  uint64_t livez_[2] = {0, 0};
};

// Whether this Node may receive traffic (kube-proxy's nodeEligible): not being deleted, not
// tainted ToBeDeletedByClusterAutoscaler.
bool nodeEligible(const api::core::v1::Node& node);

// The body kube-proxy answers on a health-check node port (tab-indented as its Go template).
std::string serviceHealthBody(const std::string& ns, const std::string& name, size_t localEndpoints,
                              bool proxyHealthy);

class ServiceHealthServer {
 public:
  // `localEndpoints("ns/name")`: the node's ready local endpoints of a service (nullopt: not
  // programmed); `proxyHealthy()`: ProxierHealth's verdict. Both are called on every request.
  ServiceHealthServer(HttpListeners& listeners, std::string bindAddress,
                      std::function<std::optional<size_t>(const std::string&)> localEndpoints,
                      std::function<bool()> proxyHealthy);
  ~ServiceHealthServer();
  ServiceHealthServer(const ServiceHealthServer&) = delete;
  ServiceHealthServer& operator=(const ServiceHealthServer&) = delete;

  // Listens on every port of `ports` ("ns/name" -> port) not yet served, closes the ones no longer
  // wanted. A port that cannot be bound is logged once, counted and tried again on the next call.
  void sync(const std::map<std::string, uint16_t>& ports);
  // Closes every listener.
  void stop();

  std::map<std::string, uint16_t> serving() const;
  uint64_t bindFailures() const { return bindFailures_.load(); }

 private:
  HttpListeners& listeners_;
  const std::string bindAddress_;
  const std::function<std::optional<size_t>(const std::string&)> localEndpoints_;
  const std::function<bool()> proxyHealthy_;
  mutable std::mutex mutex_;
  std::map<std::string, uint16_t> serving_;
  std::set<std::pair<std::string, uint16_t>> reported_;  // bind failures already logged
  std::atomic<uint64_t> bindFailures_{0};
};

}  // namespace skiff::endpoints

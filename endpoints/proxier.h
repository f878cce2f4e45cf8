#pragma once

// The node proxier's sync logic, apart from the informers that feed it (node_proxier.h) so that
// tests drive it with plain objects: change trackers in, one ServiceDelta per sync out to a
// dataplane::Dataplane.
//
// - No sync before both the Service and the EndpointSlice informers delivered their first list.
// - A sync translates only the services that changed (service_translation.h) and programs only
//   the dataplane services whose state differs from what is programmed.
// - A full sync (the first one, every fullSyncPeriod, after a failed apply, after the node's
//   addresses changed) sends the whole desired state with replaceAll, which repairs any drift in
//   the data path.
// - Bad input costs only its service: a Service that does not translate, or whose frontend another
//   service holds, keeps its last good programming, is counted and retried on the next sync. A
//   data path that rejects an update is counted; the next sync (retried after retryInterval)
//   is a full one.
// - Network programming latency: each EndpointSlice change carries the time its change was
//   triggered (the last-change-trigger-time annotation); once programmed, now - trigger goes into
//   a histogram.
//
// Threading: the on*() handlers may be called from any thread; sync() from one thread at a time
// (the sync runner's); the accessors from any thread.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "control/api/time.h"
#include "dataplane/dataplane.h"
#include "endpoints/change_tracker.h"
#include "endpoints/metrics.h"
#include "endpoints/service_translation.h"

namespace skiff::endpoints {

struct ProxierOptions {
  // This node's name: endpoints with this nodeName are local.
  std::string nodeName;
  // NodePort addresses; empty: the Node's InternalIP and ExternalIP addresses (and until the
  // Node is known, or if it has none, the unspecified address).
  std::vector<dataplane::IpAddress> nodePortAddresses;
  // The Maglev table size of every service (`skiff agent --lb-maglev-table-size`, Cilium's
  // --bpf-lb-maglev-table-size): a prime up to dataplane::kMaglevMaxTableSize. A service with more
  // backends than that gets the size for its backend count instead (a table cannot hold fewer
  // entries than backends). 0: every service's size follows its backend count
  // (dataplane::maglevTableSizeFor).
  uint32_t maglevTableSize = 0;
  // A full replaceAll sync at least this often.
  std::chrono::milliseconds fullSyncPeriod{std::chrono::seconds(30)};
  // The wall clock (trigger times are wall-clock times); tests set it.
  std::function<api::Timestamp()> now = api::now;
};

struct SyncResult {
  // False when the informers have not synced yet (nothing was done).
  bool ran = false;
  bool full = false;
  // The data path accepted the delta (or there was nothing to send).
  bool ok = true;
  size_t upserted = 0;
  size_t removed = 0;
  // Services whose new state was refused (kept at their last good programming).
  std::vector<std::string> rejected;
  std::string error;
};

class Proxier {
 public:
  Proxier(dataplane::Dataplane& dataplane, ProxierOptions options);

  // Informer handlers. Each returns nothing; the caller asks its runner for a sync afterwards.
  void onServiceAdd(const ServicePtr& service) { onServiceUpdate(nullptr, service); }
  void onServiceUpdate(const ServicePtr& previous, const ServicePtr& current);
  void onServiceDelete(const ServicePtr& service) { onServiceUpdate(service, nullptr); }
  void onSliceUpdate(const SlicePtr& slice, bool removed);
  // This node's Node object (nullptr: deleted or unknown).
  void onNodeUpdate(const std::shared_ptr<const api::core::v1::Node>& node);
  void setServicesSynced();
  void setEndpointSlicesSynced();
  bool informersSynced() const;
  // Whether changes wait for a sync.
  bool hasPendingChanges() const;

  SyncResult sync();

  // What is programmed: every dataplane service by id.
  std::map<std::string, dataplane::Service> programmed() const;
  // Ready local endpoints of a Kubernetes service ("ns/name"), over its ports' dataplane services
  // (the highest of them), for the health-check node port; nullopt when it is not programmed.
  std::optional<size_t> localReadyEndpoints(const std::string& serviceKey) const;
  // Services with externalTrafficPolicy Local and a healthCheckNodePort: key -> port.
  std::map<std::string, uint16_t> healthCheckNodePorts() const;

  const Histogram& programmingLatency() const { return latency_; }
  const Histogram& syncDuration() const { return syncDuration_; }
  uint64_t syncs() const { return syncs_.load(); }
  uint64_t fullSyncs() const { return fullSyncs_.load(); }
  uint64_t failedApplies() const { return failedApplies_.load(); }
  uint64_t rejectedServices() const { return rejectedServices_.load(); }
  // Wall-clock seconds of the last sync the data path accepted; 0 before the first.
  double lastSuccessfulSync() const { return lastSuccessfulSync_.load(); }
  // The proxier's metrics in Prometheus' text format: each skiff_proxy_* series, and under
  // kube-proxy's names (kubeproxy_*) the ones dashboards for kube-proxy read.
  std::string metricsText() const;

 private:
  NodeInfo nodeInfoLocked() const;

  dataplane::Dataplane& dataplane_;
  const ProxierOptions options_;
  ServiceChangeTracker serviceChanges_;
  EndpointsChangeTracker endpointChanges_;

  mutable std::mutex mutex_;  // guards what the handlers and the accessors share with sync()
  std::atomic<bool> servicesSynced_{false};
  std::atomic<bool> slicesSynced_{false};
  std::shared_ptr<const api::core::v1::Node> node_;
  bool nodeChanged_ = true;
  std::atomic<bool> pendingNode_{false};
  // Programmed state: dataplane services per Kubernetes service key.
  std::map<std::string, std::vector<dataplane::Service>> programmed_;
  std::map<std::string, uint16_t> healthCheckPorts_;
  // Which service key holds each programmed frontend.
  std::unordered_map<dataplane::FrontendKey, std::string> frontendOwners_;

  // Only sync() touches these.
  std::map<std::string, ServicePtr> services_;  // the current Services (not skipped ones)
  std::set<std::string> retry_;                 // rejected last time
  std::map<std::string, std::vector<api::Timestamp>> unreportedTriggers_;
  bool needFullSync_ = true;
  std::chrono::steady_clock::time_point lastFullSync_;

  Histogram latency_;
  Histogram syncDuration_;
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> fullSyncs_{0};
  std::atomic<uint64_t> failedApplies_{0};
  std::atomic<uint64_t> rejectedServices_{0};
  std::atomic<double> lastSuccessfulSync_{0};
};

}  // namespace skiff::endpoints

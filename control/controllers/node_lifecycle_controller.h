#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "control/controllers/controller.h"
#include "control/controllers/node_lifecycle.h"

namespace skiff::controllers {

struct NodeLifecycleOptions {
  NodeLifecycleTiming timing;
  // nodeMonitorPeriod: a node is looked at least this often.
  std::chrono::milliseconds monitor_period{5000};
  // Taint-based eviction of pods on NoExecute-tainted nodes (kube's --enable-taint-manager).
  bool evict_pods = true;
  // --node-eviction-rate: nodes a second that may newly get a NoExecute taint (0: no limit).
  double eviction_rate = 0;
  // The controller's clock (tests inject one).
  std::function<api::Timestamp()> clock = [] { return api::now(); };
};

// The node lifecycle controller on Node, Lease (kube-node-lease) and Pod informers. Keys are
// "node/<name>" (health, status, taints, pods marked not ready) and "pod/<ns>/<name>" (taint
// eviction, requeued for the moment its tolerationSeconds run out). The pod informer must carry
// the kIndexNodeName index (every informer does).
class NodeLifecycleController : public QueueController {
 public:
  NodeLifecycleController(client::Client& client, client::SharedInformer& nodes,
                          client::SharedInformer& leases, client::SharedInformer& pods,
                          client::EventRecorder* events = nullptr,
                          NodeLifecycleOptions options = {});
  ~NodeLifecycleController() override;

  uint64_t evictions() const { return evictions_; }

 protected:
  std::optional<std::chrono::milliseconds> sync(const std::string& key) override;

 private:
  std::optional<std::chrono::milliseconds> syncNode(const std::string& name);
  std::optional<std::chrono::milliseconds> syncPod(const std::string& key);
  void enqueuePodsOf(const std::string& node_name);
  // When this controller first saw `node`'s NoExecute taint `key`; forgets the taints gone.
  api::Timestamp taintSeen(const std::string& node, const std::string& key,
                           const api::Timestamp& now);

  void forgetTaintsGone(const api::core::v1::Node& node);

  client::Client& client_;
  client::SharedInformer& nodes_;
  client::SharedInformer& leases_;
  client::SharedInformer& pods_;
  client::EventRecorder* events_;
  NodeLifecycleOptions options_;
  std::mutex mu_;
  std::map<std::string, NodeHealth> health_;           // node name ->
  std::map<std::string, api::Timestamp> taints_seen_;  // "node|key" ->
  NoExecuteTaintLimiter limiter_;                      // under mu_
  std::set<std::string> evicted_;  // uids of pods asked to go, until their delete is seen
  std::atomic<uint64_t> evictions_{0};
};

}  // namespace skiff::controllers

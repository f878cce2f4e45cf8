#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/controllers/controller_utils.h"
#include "skiff/api/coordination_v1.pb.h"

// The node lifecycle controller's pure parts (pkg/controller/nodelifecycle and the taint eviction
// controller), every one a function of the objects and an explicit `now`:
// - node health: the last time (on the controller's own clock, so node clock skew does not
//   matter) a node's Lease renewTime or Ready heartbeat moved;
// - node status: once that is older than the grace period, every condition goes Unknown
//   (NodeStatusUnknown, "Kubelet stopped posting node status.");
// - taints: node.kubernetes.io/unreachable (Ready Unknown) or node.kubernetes.io/not-ready
//   (Ready False), each as NoSchedule and NoExecute, gone when Ready is True again;
// - pods: Ready=False on a node that is not Ready; eviction of pods that do not tolerate a
//   NoExecute taint, after the smallest tolerationSeconds of the tolerations they use.

namespace skiff::controllers {

inline constexpr std::string_view kTaintUnreachable = "node.kubernetes.io/unreachable";
inline constexpr std::string_view kTaintNotReady = "node.kubernetes.io/not-ready";
inline constexpr std::string_view kNodeLeaseNamespace = "kube-node-lease";

struct NodeLifecycleTiming {
  // nodeMonitorGracePeriod: how long a node may go without a heartbeat.
  std::chrono::milliseconds grace_period{40000};
  // nodeStartupGracePeriod: the same for a node that never posted a Ready condition.
  std::chrono::milliseconds startup_grace_period{60000};
};

// What the controller saw of a node's heartbeats.
struct NodeHealth {
  api::Timestamp probe_time;                      // controller clock: when a heartbeat last moved
  std::optional<api::Timestamp> ready_heartbeat;  // Ready's lastHeartbeatTime then
  std::optional<api::Timestamp> lease_renew;      // the Lease's renewTime then
};

// The health after looking at `node` and its Lease (null: none) at `now`.
NodeHealth observeNodeHealth(const std::optional<NodeHealth>& previous,
                             const api::core::v1::Node& node,
                             const api::coordination::v1::Lease* lease, const api::Timestamp& now);

struct NodeStatusDecision {
  // The node with its conditions set to Unknown, to write to nodes/{name}/status (nullopt: none).
  std::optional<api::core::v1::Node> status_update;
  // Ready's status after the update: "True", "False" or "Unknown"; "" while a node that never
  // posted Ready is within its startup grace period.
  std::string ready;
  // When the node next goes stale if nothing moves (nullopt: it already is).
  std::optional<std::chrono::milliseconds> stale_in;
};

NodeStatusDecision evaluateNodeStatus(const api::core::v1::Node& node, const NodeHealth& health,
                                      const NodeLifecycleTiming& timing, const api::Timestamp& now);

// The node's taints with the lifecycle taints `ready` calls for (those already there keep their
// timeAdded; NoExecute ones get `now`), or nullopt when they are right already or `ready` is ""
// (no verdict yet).
std::optional<std::vector<api::core::v1::Taint>> desiredNodeTaints(const api::core::v1::Node& node,
                                                                   std::string_view ready,
                                                                   const api::Timestamp& now);

// The pod with its Ready condition False (utilnode.MarkPodsNotReady), or nullopt when it is not
// True (or the pod is terminal or being deleted).
std::optional<api::core::v1::Pod> podMarkedNotReady(const api::core::v1::Pod& pod,
                                                    const api::Timestamp& now);

struct EvictionDecision {
  enum class Kind { kNever, kNow, kLater };
  Kind kind = Kind::kNever;
  std::chrono::milliseconds after{0};  // kLater
  std::string taint;                   // "key:NoExecute" that evicts it (kNow, kLater)
};

// Whether a pod on a node with `taints` is evicted: at once when a NoExecute taint is not
// tolerated (a pod without tolerations has none: Skiff's apiserver does not add the 300 s defaults
// of DefaultTolerationSeconds), otherwise the earliest taint's timeAdded (or `fallback_added`)
// plus the tolerationSeconds of the toleration it uses; never when every one is tolerated forever.
EvictionDecision podEviction(const api::core::v1::Pod& pod,
                             const std::vector<api::core::v1::Taint>& taints,
                             const api::Timestamp& fallback_added, const api::Timestamp& now);

// kube-controller-manager's --node-eviction-rate: at most `rate` nodes a second newly get a
// NoExecute taint (a burst of one), so that a network partition does not empty every node at once.
// rate <= 0: no limit. Not thread-safe: the caller serializes.
class NoExecuteTaintLimiter {
 public:
  explicit NoExecuteTaintLimiter(double rate) : rate_(rate) {}
  // 0 when a node may be tainted now (the slot is taken), else how long to wait.
  std::chrono::milliseconds tryTake(const api::Timestamp& now);

 private:
  double rate_;
  std::optional<api::Timestamp> next_;
};

const api::core::v1::NodeCondition* nodeCondition(const api::core::v1::Node& node,
                                                  std::string_view type);

}  // namespace skiff::controllers

#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "control/api/selector.h"
#include "scheduler/framework.h"

// The in-tree plugins, with kube-scheduler's names, semantics and failure reasons.

namespace skiff::scheduler::plugins {

// node.kubernetes.io/unschedulable: the taint a cordoned node implies.
inline constexpr std::string_view kTaintNodeUnschedulable = "node.kubernetes.io/unschedulable";

// Rejects nodes with spec.unschedulable unless the pod tolerates the unschedulable taint.
class NodeUnschedulable : public FilterPlugin {
 public:
  static constexpr std::string_view kName = "NodeUnschedulable";
  static constexpr std::string_view kReason = "node(s) were unschedulable";
  std::string_view name() const override { return kName; }
  Status filter(const CycleState& state, const PodInfo& pod, const NodeInfo& node) const override;
};

// A pod with spec.nodeName fits only that node.
class NodeName : public FilterPlugin {
 public:
  static constexpr std::string_view kName = "NodeName";
  static constexpr std::string_view kReason = "node(s) didn't match the requested node name";
  std::string_view name() const override { return kName; }
  Status filter(const CycleState& state, const PodInfo& pod, const NodeInfo& node) const override;
};

// Host ports: a node fits when none of the pod's hostPorts is in use there.
class NodePorts : public PreFilterPlugin, public FilterPlugin {
 public:
  static constexpr std::string_view kName = "NodePorts";
  static constexpr std::string_view kReason =
      "node(s) didn't have free ports for the requested pod ports";
  std::string_view name() const override { return kName; }
  Status preFilter(CycleState& state, const PodInfo& pod, const Snapshot& snapshot) override;
  Status filter(const CycleState& state, const PodInfo& pod, const NodeInfo& node) const override;
};

// Requests against allocatable (cpu, memory, ephemeral-storage, pods, extended resources);
// scores with LeastAllocated over cpu and memory (weight 1 each).
class NodeResourcesFit : public PreFilterPlugin, public FilterPlugin, public ScorePlugin {
 public:
  static constexpr std::string_view kName = "NodeResourcesFit";
  std::string_view name() const override { return kName; }
  Status preFilter(CycleState& state, const PodInfo& pod, const Snapshot& snapshot) override;
  Status filter(const CycleState& state, const PodInfo& pod, const NodeInfo& node) const override;
  Status score(const CycleState& state, const PodInfo& pod, const NodeInfo& node,
               int64_t& score) const override;
};

// Favors nodes whose cpu and memory fractions would be balanced after placing the pod.
class NodeResourcesBalancedAllocation : public ScorePlugin {
 public:
  static constexpr std::string_view kName = "NodeResourcesBalancedAllocation";
  std::string_view name() const override { return kName; }
  Status score(const CycleState& state, const PodInfo& pod, const NodeInfo& node,
               int64_t& score) const override;
};

// spec.nodeSelector and nodeAffinity's required terms (filter) and preferred terms (score).
class NodeAffinity : public PreFilterPlugin,
                     public FilterPlugin,
                     public PreScorePlugin,
                     public ScorePlugin {
 public:
  static constexpr std::string_view kName = "NodeAffinity";
  static constexpr std::string_view kReason = "node(s) didn't match Pod's node affinity/selector";
  std::string_view name() const override { return kName; }
  Status preFilter(CycleState& state, const PodInfo& pod, const Snapshot& snapshot) override;
  Status filter(const CycleState& state, const PodInfo& pod, const NodeInfo& node) const override;
  // Skip when the pod has no preferred node affinity terms (kube-scheduler's PreScore): every
  // node would score 0.
  Status preScore(CycleState& state, const PodInfo& pod, std::span<const NodeInfoPtr> feasible,
                  const Snapshot& snapshot) override;
  Status score(const CycleState& state, const PodInfo& pod, const NodeInfo& node,
               int64_t& score) const override;
  Status normalizeScore(const CycleState& state, const PodInfo& pod,
                        std::vector<int64_t>& scores) const override;
};

// Whether a node matches the pod's nodeSelector and required node affinity (also used by
// PodTopologySpread's nodeAffinityPolicy: Honor).
bool matchesRequiredNodeAffinity(const Pod& pod, const NodeInfo& node);

// Taints with NoSchedule / NoExecute the pod does not tolerate reject the node; untolerated
// PreferNoSchedule taints lower its score.
class TaintToleration : public FilterPlugin, public ScorePlugin {
 public:
  static constexpr std::string_view kName = "TaintToleration";
  std::string_view name() const override { return kName; }
  Status filter(const CycleState& state, const PodInfo& pod, const NodeInfo& node) const override;
  Status score(const CycleState& state, const PodInfo& pod, const NodeInfo& node,
               int64_t& score) const override;
  Status normalizeScore(const CycleState& state, const PodInfo& pod,
                        std::vector<int64_t>& scores) const override;
};

bool tolerates(const api::core::v1::Toleration& toleration, const api::core::v1::Taint& taint);

// Where PodTopologySpread's default constraints get their selector (kube-scheduler's
// helper.DefaultSelector): the selectors of the Services that select the pod, and of its
// controlling ReplicaSet or StatefulSet, merged.
class DefaultSpreadSelector {
 public:
  virtual ~DefaultSpreadSelector() = default;
  // The pods `pod` should spread away from; empty(): no default constraint applies to it.
  virtual api::labels::Selector selectorFor(const Pod& pod) const = 0;
};

// The constraints applied to pods that have none of their own (kube-scheduler's
// PodTopologySpreadArgs defaultConstraints and defaultingType).
struct SpreadDefaults {
  // kube-scheduler's system defaults: kubernetes.io/hostname with maxSkew 3 and
  // topology.kubernetes.io/zone with maxSkew 5, both ScheduleAnyway.
  static std::vector<api::core::v1::TopologySpreadConstraint> systemConstraints();

  std::vector<api::core::v1::TopologySpreadConstraint> constraints = systemConstraints();
  // defaultingType System: nodes without every key still score on the keys they have (a node
  // without a zone label keeps hostname spreading); List: as the pod's own constraints.
  bool system = true;
  // null: no default constraints at all (nothing to build their selector from).
  std::shared_ptr<const DefaultSpreadSelector> selector;
};

// topologySpreadConstraints: DoNotSchedule constraints filter, ScheduleAnyway ones score. A pod
// without any gets the default constraints, selecting the pods of its Services and controller.
class PodTopologySpread : public PreFilterPlugin,
                          public FilterPlugin,
                          public PreScorePlugin,
                          public ScorePlugin {
 public:
  static constexpr std::string_view kName = "PodTopologySpread";
  static constexpr std::string_view kReason =
      "node(s) didn't match pod topology spread constraints";
  static constexpr std::string_view kReasonMissingLabel =
      "node(s) didn't match pod topology spread constraints (missing required label)";
  std::string_view name() const override { return kName; }
  Status preFilter(CycleState& state, const PodInfo& pod, const Snapshot& snapshot) override;
  Status addPod(CycleState& state, const PodInfo& pod, const PodInfo& other,
                const NodeInfo& node) const override;
  Status removePod(CycleState& state, const PodInfo& pod, const PodInfo& other,
                   const NodeInfo& node) const override;
  Status filter(const CycleState& state, const PodInfo& pod, const NodeInfo& node) const override;
  Status preScore(CycleState& state, const PodInfo& pod, std::span<const NodeInfoPtr> feasible,
                  const Snapshot& snapshot) override;
  Status score(const CycleState& state, const PodInfo& pod, const NodeInfo& node,
               int64_t& score) const override;
  Status normalizeScore(const CycleState& state, const PodInfo& pod,
                        std::vector<int64_t>& scores) const override;

  explicit PodTopologySpread(SpreadDefaults defaults = {});
  ~PodTopologySpread() override;

  // Kept across cycles (PreFilter and PreScore only, on the scheduling thread): each node's
  // domain per topology key and its count of matching pods per selector, valid while the
  // snapshot's NodeInfo is the same object at the same generation.
  struct Memo;

 private:
  const SpreadDefaults defaults_;
  std::unique_ptr<Memo> memo_;
};

// Required pod affinity and anti-affinity (both ways: the pod's terms and existing pods'
// anti-affinity terms), and preferred terms for scoring.
class InterPodAffinity : public PreFilterPlugin,
                         public FilterPlugin,
                         public PreScorePlugin,
                         public ScorePlugin {
 public:
  static constexpr std::string_view kName = "InterPodAffinity";
  static constexpr std::string_view kReasonAffinity = "node(s) didn't match pod affinity rules";
  static constexpr std::string_view kReasonAntiAffinity =
      "node(s) didn't match pod anti-affinity rules";
  static constexpr std::string_view kReasonExistingAntiAffinity =
      "node(s) didn't satisfy existing pods anti-affinity rules";
  std::string_view name() const override { return kName; }
  Status preFilter(CycleState& state, const PodInfo& pod, const Snapshot& snapshot) override;
  Status addPod(CycleState& state, const PodInfo& pod, const PodInfo& other,
                const NodeInfo& node) const override;
  Status removePod(CycleState& state, const PodInfo& pod, const PodInfo& other,
                   const NodeInfo& node) const override;
  Status filter(const CycleState& state, const PodInfo& pod, const NodeInfo& node) const override;
  Status preScore(CycleState& state, const PodInfo& pod, std::span<const NodeInfoPtr> feasible,
                  const Snapshot& snapshot) override;
  Status score(const CycleState& state, const PodInfo& pod, const NodeInfo& node,
               int64_t& score) const override;
  Status normalizeScore(const CycleState& state, const PodInfo& pod,
                        std::vector<int64_t>& scores) const override;
};

// PostFilter: simple priority preemption. For each node that failed with Unschedulable, removes
// every pod of lower priority, checks that the pod then fits, and gives back as many victims as
// still fit (highest priority first). Picks the node whose most important victim has the lowest
// priority, then the fewest victims; nominates it.
class DefaultPreemption : public PostFilterPlugin {
 public:
  static constexpr std::string_view kName = "DefaultPreemption";
  std::string_view name() const override { return kName; }
  Status postFilter(CycleState& state, const PodInfo& pod, const Snapshot& snapshot,
                    const NodeStatusMap& statuses, const Framework& framework,
                    PostFilterResult& result) override;
};

// Kubernetes' default score weights (apis/config/v1 default plugins).
inline constexpr int32_t kWeightTaintToleration = 3;
inline constexpr int32_t kWeightNodeAffinity = 2;
inline constexpr int32_t kWeightPodTopologySpread = 2;
inline constexpr int32_t kWeightInterPodAffinity = 2;
inline constexpr int32_t kWeightNodeResourcesFit = 1;
inline constexpr int32_t kWeightNodeResourcesBalancedAllocation = 1;

// Registers the default plugins (all of the above) in kube-scheduler's order, with its weights.
// The bind plugin comes from the caller (it needs the client). `spread_selector`: where the
// default topology spread constraints get their selector (null: no default constraints).
void registerDefaultPlugins(Framework& framework,
                            std::shared_ptr<const DefaultSpreadSelector> spread_selector = nullptr);

}  // namespace skiff::scheduler::plugins

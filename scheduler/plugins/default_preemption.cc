// DefaultPreemption: find a node where evicting lower-priority pods makes room; nominate it.
#include <algorithm>
#include <limits>
#include <optional>

#include "scheduler/plugins/plugins.h"

namespace skiff::scheduler::plugins {
namespace {

constexpr std::string_view kNoVictims = "No preemption victims found for incoming pod";
constexpr std::string_view kNotHelpful = "Preemption is not helpful for scheduling";

struct Candidate {
  std::string node;
  std::vector<PodInfoPtr> victims;
  int64_t highest = std::numeric_limits<int64_t>::min();
  int64_t sum = 0;
};

// The victims on `node` (nullopt when removing every lower-priority pod does not make the pod fit).
std::optional<std::vector<PodInfoPtr>> selectVictims(const CycleState& base, const PodInfo& pod,
                                                     const NodeInfo& node,
                                                     const Framework& framework) {
  CycleState state = base.clone();
  NodeInfo trial = node;
  const int32_t priority = podPriority(*pod.pod);
  std::vector<PodInfoPtr> lower;
  for (const PodInfoPtr& p : node.pods()) {
    if (podPriority(*p->pod) < priority) lower.push_back(p);
  }
  if (lower.empty()) return std::nullopt;
  for (const PodInfoPtr& p : lower) {
    trial.removePod(p->key);
    if (!framework.runPreFilterRemovePod(state, pod, *p, trial).ok()) return std::nullopt;
  }
  if (!framework.runFilter(state, pod, trial).ok()) return std::nullopt;
  // Reprieve as many as possible, most important first.
  std::stable_sort(lower.begin(), lower.end(), [](const PodInfoPtr& a, const PodInfoPtr& b) {
    return podPriority(*a->pod) > podPriority(*b->pod);
  });
  std::vector<PodInfoPtr> victims;
  for (const PodInfoPtr& p : lower) {
    trial.addPod(p);
    framework.runPreFilterAddPod(state, pod, *p, trial);
    if (framework.runFilter(state, pod, trial).ok()) continue;
    trial.removePod(p->key);
    framework.runPreFilterRemovePod(state, pod, *p, trial);
    victims.push_back(p);
  }
  return victims;
}

}  // namespace

Status DefaultPreemption::postFilter(CycleState& state, const PodInfo& pod,
                                     const Snapshot& snapshot, const NodeStatusMap& statuses,
                                     const Framework& framework, PostFilterResult& result) {
  if (pod.pod->spec().preemption_policy() == "Never") {
    return Status::unschedulable("not eligible due to preemptionPolicy=Never.");
  }
  Diagnosis diagnosis;
  std::optional<Candidate> best;
  for (const NodeInfoPtr& node : snapshot.nodes()) {
    auto it = statuses.find(node->name());
    if (it == statuses.end() || it->second.code() == Code::kUnschedulableAndUnresolvable) {
      diagnosis.node_statuses[node->name()] = Status::unresolvable(std::string(kNotHelpful));
      continue;
    }
    auto victims = selectVictims(state, pod, *node, framework);
    if (!victims || victims->empty()) {
      // An empty set would mean the pod fits already: the node changed under us; not a candidate.
      diagnosis.node_statuses[node->name()] = Status::unschedulable(std::string(kNoVictims));
      continue;
    }
    Candidate c{node->name(), std::move(*victims)};
    for (const PodInfoPtr& v : c.victims) {
      c.highest = std::max<int64_t>(c.highest, podPriority(*v->pod));
      c.sum += podPriority(*v->pod);
    }
    auto better = [](const Candidate& a, const Candidate& b) {
      if (a.highest != b.highest) return a.highest < b.highest;
      if (a.sum != b.sum) return a.sum < b.sum;
      return a.victims.size() < b.victims.size();
    };
    if (!best || better(c, *best)) best = std::move(c);
  }
  if (!best) {
    return Status::unschedulable("preemption: " + fitErrorMessage(snapshot.size(), diagnosis));
  }
  result.nominated_node = best->node;
  result.victims.clear();
  for (const PodInfoPtr& v : best->victims)
    result.victims.push_back(v->pod);
  return {};
}

void registerDefaultPlugins(Framework& framework,
                            std::shared_ptr<const DefaultSpreadSelector> spread_selector) {
  framework.addPlugin(std::make_shared<NodeUnschedulable>());
  framework.addPlugin(std::make_shared<NodeName>());
  framework.addPlugin(std::make_shared<TaintToleration>(), kWeightTaintToleration);
  framework.addPlugin(std::make_shared<NodeAffinity>(), kWeightNodeAffinity);
  framework.addPlugin(std::make_shared<NodePorts>());
  framework.addPlugin(std::make_shared<NodeResourcesFit>(), kWeightNodeResourcesFit);
  framework.addPlugin(
      std::make_shared<PodTopologySpread>(SpreadDefaults{.selector = std::move(spread_selector)}),
      kWeightPodTopologySpread);
  framework.addPlugin(std::make_shared<InterPodAffinity>(), kWeightInterPodAffinity);
  framework.addPlugin(std::make_shared<DefaultPreemption>());
  framework.addPlugin(std::make_shared<NodeResourcesBalancedAllocation>(),
                      kWeightNodeResourcesBalancedAllocation);
}

}  // namespace skiff::scheduler::plugins

// PodTopologySpread: maxSkew over topology domains, DoNotSchedule (filter) and ScheduleAnyway
// (score), with labelSelector, matchLabelKeys, minDomains and the node inclusion policies.
#include <cmath>
#include <limits>
#include <unordered_map>

#include "scheduler/plugins/plugins.h"

namespace skiff::scheduler::plugins {
namespace {

struct Constraint {
  int32_t max_skew = 1;
  std::string key;
  api::labels::Selector selector;
  int32_t min_domains = 1;
  bool honor_affinity = true;
  bool honor_taints = false;
  bool self_match = false;
};

std::vector<Constraint> constraintsOf(const Pod& pod, std::string_view when) {
  std::vector<Constraint> out;
  for (const auto& c : pod.spec().topology_spread_constraints()) {
    const std::string& w =
        c.when_unsatisfiable().empty() ? "DoNotSchedule" : c.when_unsatisfiable();
    if (w != when) continue;
    Constraint x;
    x.max_skew = c.max_skew();
    x.key = c.topology_key();
    x.selector =
        api::labels::Selector::fromProto(c.has_label_selector() ? &c.label_selector() : nullptr);
    for (const std::string& k : c.match_label_keys()) {
      auto it = pod.metadata().labels().find(k);
      if (it == pod.metadata().labels().end()) continue;
      x.selector = x.selector.add(
          api::labels::Requirement::make(k, api::labels::Operator::kIn, {it->second}));
    }
    x.min_domains = c.has_min_domains() ? c.min_domains() : 1;
    x.honor_affinity = c.node_affinity_policy() != "Ignore";
    x.honor_taints = c.node_taints_policy() == "Honor";
    x.self_match = x.selector.matches(pod.metadata().labels());
    out.push_back(std::move(x));
  }
  return out;
}

// Whether the node's pods count toward the constraints (it carries every topology key and
// passes the inclusion policies).
bool eligible(const Pod& pod, const NodeInfo& node, const std::vector<Constraint>& constraints) {
  for (const Constraint& c : constraints) {
    if (!node.label(c.key)) return false;
  }
  if (constraints.empty()) return true;
  // The policies are per constraint in Kubernetes; the common case has them equal.
  const Constraint& c = constraints.front();
  if (c.honor_affinity && !matchesRequiredNodeAffinity(pod, node)) return false;
  if (c.honor_taints) {
    for (const auto& taint : node.node()->spec().taints()) {
      if (taint.effect() != "NoSchedule" && taint.effect() != "NoExecute") continue;
      bool ok = false;
      for (const auto& t : pod.spec().tolerations())
        ok = ok || tolerates(t, taint);
      if (!ok) return false;
    }
  }
  return true;
}

int countMatching(const Pod& pod, const NodeInfo& node, const Constraint& c) {
  int n = 0;
  for (const PodInfoPtr& p : node.pods()) {
    if (p->pod->metadata().namespace_() != pod.metadata().namespace_()) continue;
    if (p->pod->metadata().has_deletion_timestamp()) continue;
    if (c.selector.matches(p->pod->metadata().labels())) ++n;
  }
  return n;
}

struct FilterState : StateData {
  std::vector<Constraint> constraints;
  std::vector<std::unordered_map<std::string, int>> counts;  // per constraint: domain -> pods
  std::vector<int> min_match;

  void recomputeMin() {
    min_match.assign(constraints.size(), 0);
    for (size_t i = 0; i < constraints.size(); ++i) {
      int m = std::numeric_limits<int>::max();
      for (const auto& [d, n] : counts[i])
        m = std::min(m, n);
      if (counts[i].empty()) m = 0;
      if (static_cast<int32_t>(counts[i].size()) < constraints[i].min_domains) m = 0;
      min_match[i] = m;
    }
  }
  std::unique_ptr<StateData> clone() const override { return std::make_unique<FilterState>(*this); }
};

struct ScoreState : StateData {
  std::vector<Constraint> constraints;
  std::vector<std::unordered_map<std::string, int>> counts;
  std::vector<double> weights;
  std::unique_ptr<StateData> clone() const override { return std::make_unique<ScoreState>(*this); }
};

const std::string kFilterKey = "PreFilterPodTopologySpread";
const std::string kScoreKey = "PreScorePodTopologySpread";

Status updateWithPod(CycleState& state, const PodInfo& pod, const PodInfo& other,
                     const NodeInfo& node, int delta) {
  auto* s = state.read<FilterState>(kFilterKey);
  if (!s) return {};
  if (other.pod->metadata().namespace_() != pod.pod->metadata().namespace_()) return {};
  if (!eligible(*pod.pod, node, s->constraints)) return {};
  for (size_t i = 0; i < s->constraints.size(); ++i) {
    if (!s->constraints[i].selector.matches(other.pod->metadata().labels())) continue;
    s->counts[i][*node.label(s->constraints[i].key)] += delta;
  }
  s->recomputeMin();
  return {};
}

}  // namespace

Status PodTopologySpread::preFilter(CycleState& state, const PodInfo& pod,
                                    const Snapshot& snapshot) {
  std::vector<Constraint> constraints;
  try {
    constraints = constraintsOf(*pod.pod, "DoNotSchedule");
  } catch (const api::SelectorError& e) {
    return Status::unresolvable(std::string("invalid topologySpreadConstraints: ") + e.what());
  }
  if (constraints.empty()) return Status::skip();
  auto s = std::make_unique<FilterState>();
  s->counts.resize(constraints.size());
  for (const NodeInfoPtr& node : snapshot.nodes()) {
    if (!eligible(*pod.pod, *node, constraints)) continue;
    for (size_t i = 0; i < constraints.size(); ++i) {
      s->counts[i][*node->label(constraints[i].key)] +=
          countMatching(*pod.pod, *node, constraints[i]);
    }
  }
  s->constraints = std::move(constraints);
  s->recomputeMin();
  state.write(kFilterKey, std::move(s));
  return {};
}

Status PodTopologySpread::addPod(CycleState& state, const PodInfo& pod, const PodInfo& other,
                                 const NodeInfo& node) const {
  return updateWithPod(state, pod, other, node, 1);
}

Status PodTopologySpread::removePod(CycleState& state, const PodInfo& pod, const PodInfo& other,
                                    const NodeInfo& node) const {
  return updateWithPod(state, pod, other, node, -1);
}

Status PodTopologySpread::filter(const CycleState& state, const PodInfo&,
                                 const NodeInfo& node) const {
  const auto* s = state.read<FilterState>(kFilterKey);
  if (!s) return {};
  for (size_t i = 0; i < s->constraints.size(); ++i) {
    const Constraint& c = s->constraints[i];
    const std::string* value = node.label(c.key);
    if (!value) return Status::unresolvable(std::string(kReasonMissingLabel));
    auto it = s->counts[i].find(*value);
    const int match = it == s->counts[i].end() ? 0 : it->second;
    const int skew = match + (c.self_match ? 1 : 0) - s->min_match[i];
    if (skew > c.max_skew) return Status::unschedulable(std::string(kReason));
  }
  return {};
}

Status PodTopologySpread::preScore(CycleState& state, const PodInfo& pod,
                                   std::span<const NodeInfoPtr> feasible,
                                   const Snapshot& snapshot) {
  std::vector<Constraint> constraints;
  try {
    constraints = constraintsOf(*pod.pod, "ScheduleAnyway");
  } catch (const api::SelectorError& e) {
    return Status::error(std::string("invalid topologySpreadConstraints: ") + e.what());
  }
  if (constraints.empty()) return Status::skip();
  auto s = std::make_unique<ScoreState>();
  s->counts.resize(constraints.size());
  s->weights.resize(constraints.size());
  // Domains are those of the feasible nodes; pods are counted on every eligible node.
  std::vector<std::unordered_map<std::string, int>> domains(constraints.size());
  for (const NodeInfoPtr& node : feasible) {
    for (size_t i = 0; i < constraints.size(); ++i) {
      if (const std::string* v = node->label(constraints[i].key)) domains[i][*v] = 0;
    }
  }
  for (const NodeInfoPtr& node : snapshot.nodes()) {
    if (!eligible(*pod.pod, *node, constraints)) continue;
    for (size_t i = 0; i < constraints.size(); ++i) {
      const std::string& v = *node->label(constraints[i].key);
      if (!domains[i].contains(v)) continue;
      s->counts[i][v] += countMatching(*pod.pod, *node, constraints[i]);
    }
  }
  for (size_t i = 0; i < constraints.size(); ++i) {
    s->weights[i] = std::log(static_cast<double>(domains[i].size()) + 2);
  }
  s->constraints = std::move(constraints);
  state.write(kScoreKey, std::move(s));
  return {};
}

Status PodTopologySpread::score(const CycleState& state, const PodInfo&, const NodeInfo& node,
                                int64_t& score) const {
  const auto* s = state.read<ScoreState>(kScoreKey);
  score = 0;
  if (!s) return {};
  double total = 0;
  for (size_t i = 0; i < s->constraints.size(); ++i) {
    const std::string* v = node.label(s->constraints[i].key);
    if (!v) {
      score = -1;  // ignored: scored 0 after normalizing
      return {};
    }
    auto it = s->counts[i].find(*v);
    const int count = it == s->counts[i].end() ? 0 : it->second;
    total += count * s->weights[i] + (s->constraints[i].max_skew - 1);
  }
  score = static_cast<int64_t>(std::llround(total));
  return {};
}

Status PodTopologySpread::normalizeScore(const CycleState& state, const PodInfo&,
                                         std::vector<int64_t>& scores) const {
  if (!state.read<ScoreState>(kScoreKey)) return {};
  int64_t lo = std::numeric_limits<int64_t>::max();
  int64_t hi = 0;
  for (int64_t s : scores) {
    if (s < 0) continue;
    lo = std::min(lo, s);
    hi = std::max(hi, s);
  }
  for (int64_t& s : scores) {
    if (s < 0) {
      s = 0;
    } else if (hi == 0) {
      s = kMaxNodeScore;
    } else {
      s = kMaxNodeScore * (hi + lo - s) / hi;
    }
  }
  return {};
}

}  // namespace skiff::scheduler::plugins

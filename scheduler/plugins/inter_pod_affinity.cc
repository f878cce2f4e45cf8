// InterPodAffinity: required pod affinity and anti-affinity (the incoming pod's terms and the
// existing pods' anti-affinity terms) and preferred terms for scoring.
#include <limits>
#include <unordered_map>

#include "scheduler/plugins/plugins.h"

namespace skiff::scheduler::plugins {
namespace {

// (topology key, value) as one string key.
std::string pairKey(std::string_view key, std::string_view value) {
  std::string out;
  out.reserve(key.size() + value.size() + 1);
  out.append(key).push_back('\0');
  out.append(value);
  return out;
}

using PairCounts = std::unordered_map<std::string, int64_t>;

struct FilterState : StateData {
  PairCounts existing_anti;  // pairs where an existing pod's anti-affinity forbids the pod
  PairCounts affinity;       // pairs holding pods that match all the pod's affinity terms
  PairCounts anti;           // pairs holding pods that match one of the pod's anti terms
  std::unique_ptr<StateData> clone() const override { return std::make_unique<FilterState>(*this); }
};

struct ScoreState : StateData {
  PairCounts scores;
  std::unique_ptr<StateData> clone() const override { return std::make_unique<ScoreState>(*this); }
};

const std::string kFilterKey = "PreFilterInterPodAffinity";
const std::string kScoreKey = "PreScoreInterPodAffinity";

bool matchesAll(const std::vector<AffinityTerm>& terms, const Pod& pod) {
  if (terms.empty()) return false;
  for (const AffinityTerm& t : terms) {
    if (!t.matches(pod)) return false;
  }
  return true;
}

void add(PairCounts& counts, const NodeInfo& node, const std::string& key, int64_t delta) {
  const std::string* v = node.label(key);
  if (!v) return;
  auto& c = counts[pairKey(key, *v)];
  c += delta;
}

// What `existing` on `node` contributes to the filter state of `pod`.
void account(FilterState& s, const PodInfo& pod, const PodInfo& existing, const NodeInfo& node,
             int64_t delta) {
  for (const AffinityTerm& t : existing.required_anti_affinity) {
    if (t.matches(*pod.pod)) add(s.existing_anti, node, t.topology_key, delta);
  }
  if (matchesAll(pod.required_affinity, *existing.pod)) {
    for (const AffinityTerm& t : pod.required_affinity)
      add(s.affinity, node, t.topology_key, delta);
  }
  for (const AffinityTerm& t : pod.required_anti_affinity) {
    if (t.matches(*existing.pod)) add(s.anti, node, t.topology_key, delta);
  }
}

bool positive(const PairCounts& counts, const std::string& key) {
  auto it = counts.find(key);
  return it != counts.end() && it->second > 0;
}

}  // namespace

Status InterPodAffinity::preFilter(CycleState& state, const PodInfo& pod,
                                   const Snapshot& snapshot) {
  if (!pod.parse_error.empty()) return Status::unresolvable(pod.parse_error);
  auto s = std::make_unique<FilterState>();
  const bool own_terms = !pod.required_affinity.empty() || !pod.required_anti_affinity.empty();
  if (!own_terms && snapshot.nodesWithRequiredAntiAffinity().empty()) return Status::skip();
  const auto& nodes = own_terms ? snapshot.nodes() : snapshot.nodesWithRequiredAntiAffinity();
  for (const NodeInfoPtr& node : nodes) {
    if (own_terms) {
      for (const PodInfoPtr& existing : node->pods())
        account(*s, pod, *existing, *node, 1);
    } else {
      for (const PodInfoPtr& existing : node->podsWithRequiredAntiAffinity()) {
        account(*s, pod, *existing, *node, 1);
      }
    }
  }
  state.write(kFilterKey, std::move(s));
  return {};
}

Status InterPodAffinity::addPod(CycleState& state, const PodInfo& pod, const PodInfo& other,
                                const NodeInfo& node) const {
  if (auto* s = state.read<FilterState>(kFilterKey)) account(*s, pod, other, node, 1);
  return {};
}

Status InterPodAffinity::removePod(CycleState& state, const PodInfo& pod, const PodInfo& other,
                                   const NodeInfo& node) const {
  if (auto* s = state.read<FilterState>(kFilterKey)) account(*s, pod, other, node, -1);
  return {};
}

Status InterPodAffinity::filter(const CycleState& state, const PodInfo& pod,
                                const NodeInfo& node) const {
  const auto* s = state.read<FilterState>(kFilterKey);
  if (!s) return {};
  if (!s->existing_anti.empty()) {
    for (const auto& [k, v] : node.node()->metadata().labels()) {
      if (positive(s->existing_anti, pairKey(k, v))) {
        return Status::unschedulable(std::string(kReasonExistingAntiAffinity));
      }
    }
  }
  for (const AffinityTerm& t : pod.required_anti_affinity) {
    const std::string* v = node.label(t.topology_key);
    if (v && positive(s->anti, pairKey(t.topology_key, *v))) {
      return Status::unschedulable(std::string(kReasonAntiAffinity));
    }
  }
  if (!pod.required_affinity.empty()) {
    bool all = true;
    bool has_keys = true;
    for (const AffinityTerm& t : pod.required_affinity) {
      const std::string* v = node.label(t.topology_key);
      if (!v) {
        has_keys = false;
        all = false;
        break;
      }
      if (!positive(s->affinity, pairKey(t.topology_key, *v))) all = false;
    }
    if (!all) {
      // The first pod of a group that selects itself may go anywhere its topology keys exist.
      bool any = false;
      for (const auto& [k, c] : s->affinity)
        any = any || c > 0;
      if (any || !has_keys || !matchesAll(pod.required_affinity, *pod.pod)) {
        return Status::unresolvable(std::string(kReasonAffinity));
      }
    }
  }
  return {};
}

Status InterPodAffinity::preScore(CycleState& state, const PodInfo& pod,
                                  std::span<const NodeInfoPtr>, const Snapshot& snapshot) {
  const bool own_terms = !pod.preferred_affinity.empty() || !pod.preferred_anti_affinity.empty();
  if (!own_terms && snapshot.nodesWithAffinity().empty()) return Status::skip();
  auto s = std::make_unique<ScoreState>();
  const auto& nodes = own_terms ? snapshot.nodes() : snapshot.nodesWithAffinity();
  for (const NodeInfoPtr& node : nodes) {
    const auto& pods = own_terms ? node->pods() : node->podsWithAffinity();
    for (const PodInfoPtr& existing : pods) {
      for (const AffinityTerm& t : pod.preferred_affinity) {
        if (t.matches(*existing->pod)) add(s->scores, *node, t.topology_key, t.weight);
      }
      for (const AffinityTerm& t : pod.preferred_anti_affinity) {
        if (t.matches(*existing->pod)) add(s->scores, *node, t.topology_key, -t.weight);
      }
      // Symmetry: the existing pod's preferences about the incoming one.
      for (const AffinityTerm& t : existing->preferred_affinity) {
        if (t.matches(*pod.pod)) add(s->scores, *node, t.topology_key, t.weight);
      }
      for (const AffinityTerm& t : existing->preferred_anti_affinity) {
        if (t.matches(*pod.pod)) add(s->scores, *node, t.topology_key, -t.weight);
      }
    }
  }
  if (s->scores.empty()) return Status::skip();
  state.write(kScoreKey, std::move(s));
  return {};
}

Status InterPodAffinity::score(const CycleState& state, const PodInfo&, const NodeInfo& node,
                               int64_t& score) const {
  score = 0;
  const auto* s = state.read<ScoreState>(kScoreKey);
  if (!s) return {};
  for (const auto& [k, v] : node.node()->metadata().labels()) {
    auto it = s->scores.find(pairKey(k, v));
    if (it != s->scores.end()) score += it->second;
  }
  return {};
}

Status InterPodAffinity::normalizeScore(const CycleState& state, const PodInfo&,
                                        std::vector<int64_t>& scores) const {
  if (!state.read<ScoreState>(kScoreKey) || scores.empty()) return {};
  int64_t lo = std::numeric_limits<int64_t>::max();
  int64_t hi = std::numeric_limits<int64_t>::min();
  for (int64_t s : scores) {
    lo = std::min(lo, s);
    hi = std::max(hi, s);
  }
  const int64_t diff = hi - lo;
  for (int64_t& s : scores)
    s = diff > 0 ? kMaxNodeScore * (s - lo) / diff : 0;
  return {};
}

}  // namespace skiff::scheduler::plugins

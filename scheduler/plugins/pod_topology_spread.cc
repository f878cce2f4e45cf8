// PodTopologySpread: maxSkew over topology domains, DoNotSchedule (filter) and ScheduleAnyway
// (score), with labelSelector, matchLabelKeys, minDomains and the node inclusion policies, as
// kube-scheduler's plugins/podtopologyspread.
//
// PreFilter counts the matching pods per domain once per cycle (TpValueToMatchNum) with the
// minimum per constraint (the critical paths), so that Filter is two lookups per constraint and
// node. Each domain value is a small integer id (a DomainTable per topology key, kept across
// cycles), and what PreFilter needs of a node (its domain per key, its count of matching pods
// per selector) is kept across cycles too, per snapshot position, while the snapshot holds the
// same NodeInfo at the same generation: a cycle recounts only the nodes that changed since the
// last one (the node the previous pod was assumed on), not every pod in the cluster.
#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "scheduler/plugins/plugins.h"

namespace skiff::scheduler::plugins {
namespace {

constexpr std::string_view kLabelHostname = "kubernetes.io/hostname";

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// The values one topology key takes, as ids 0, 1, ... Shared by the cycle states that use it
// (immutable once shared: PreFilter copies it before adding a value to a shared one).
struct DomainTable {
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> ids;

  int32_t idOf(std::string_view value) const {
    auto it = ids.find(value);
    return it == ids.end() ? -1 : it->second;
  }
};

struct Constraint {
  int32_t max_skew = 1;
  std::string key;
  std::optional<NodeInfo::TopologyLabel> well_known;  // key is one NodeInfo keeps at hand
  bool hostname = false;
  api::labels::Selector selector;
  // The pod's namespace and the selector's text: which cached counts apply.
  std::string selector_id;
  // Kubernetes' countPodsMatchSelector counts nothing for an empty (or nothing) selector.
  bool counts_nothing = false;
  int32_t min_domains = 1;
  bool honor_affinity = true;
  bool honor_taints = false;
  bool self_match = false;
};

Constraint makeConstraint(const Pod& pod, const api::core::v1::TopologySpreadConstraint& c,
                          const api::labels::Selector* selector) {
  Constraint x;
  x.max_skew = c.max_skew();
  x.key = c.topology_key();
  x.hostname = x.key == kLabelHostname;
  x.well_known = NodeInfo::topologyLabelOf(x.key);
  x.selector = selector ? *selector
                        : api::labels::Selector::fromProto(
                              c.has_label_selector() ? &c.label_selector() : nullptr);
  for (const std::string& k : c.match_label_keys()) {
    auto it = pod.metadata().labels().find(k);
    if (it == pod.metadata().labels().end()) continue;
    x.selector =
        x.selector.add(api::labels::Requirement::make(k, api::labels::Operator::kIn, {it->second}));
  }
  x.counts_nothing = x.selector.empty() || x.selector.matchesNothing();
  x.selector_id = pod.metadata().namespace_() + '\x1f' + x.selector.toString();
  x.min_domains = c.has_min_domains() ? c.min_domains() : 1;
  x.honor_affinity = c.node_affinity_policy() != "Ignore";
  x.honor_taints = c.node_taints_policy() == "Honor";
  x.self_match = x.selector.matches(pod.metadata().labels());
  return x;
}

bool isWhen(const api::core::v1::TopologySpreadConstraint& c, std::string_view when) {
  return (c.when_unsatisfiable().empty() ? "DoNotSchedule" : c.when_unsatisfiable()) == when;
}

// The pod's constraints of kind `when` (DoNotSchedule or ScheduleAnyway); a pod without any of
// its own gets the default ones (kube-scheduler's buildDefaultConstraints), all selecting what
// the DefaultSpreadSelector says, or none when it selects nothing in particular. `defaulted`:
// whether the defaults apply.
std::vector<Constraint> constraintsOf(const Pod& pod, std::string_view when,
                                      const SpreadDefaults& defaults, bool* defaulted = nullptr) {
  std::vector<Constraint> out;
  if (defaulted) *defaulted = false;
  if (pod.spec().topology_spread_constraints_size() > 0) {
    for (const auto& c : pod.spec().topology_spread_constraints()) {
      if (isWhen(c, when)) out.push_back(makeConstraint(pod, c, nullptr));
    }
    return out;
  }
  if (!defaults.selector) return out;
  bool any = false;
  for (const auto& c : defaults.constraints)
    any = any || isWhen(c, when);
  if (!any) return out;
  const api::labels::Selector selector = defaults.selector->selectorFor(pod);
  if (selector.empty()) return out;
  for (const auto& c : defaults.constraints) {
    if (isWhen(c, when)) out.push_back(makeConstraint(pod, c, &selector));
  }
  if (defaulted) *defaulted = true;
  return out;
}

// The node's value of the constraint's topology key, or nullptr.
const std::string* valueOf(const Constraint& c, const NodeInfo& node) {
  return c.well_known ? node.topologyLabel(*c.well_known) : node.label(c.key);
}

bool hasRequiredNodeAffinity(const Pod& pod) {
  const auto& spec = pod.spec();
  return !spec.node_selector().empty() ||
         (spec.has_affinity() && spec.affinity().has_node_affinity() &&
          spec.affinity()
              .node_affinity()
              .has_required_during_scheduling_ignored_during_execution());
}

// Kubernetes' matchNodeInclusionPolicies: whether the node's pods count toward `c`.
bool includes(const Constraint& c, const Pod& pod, bool pod_has_affinity, const NodeInfo& node) {
  if (c.honor_affinity && pod_has_affinity && !matchesRequiredNodeAffinity(pod, node)) {
    return false;
  }
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

// Kubernetes' countPodsMatchSelector: pods of the namespace, not terminating, matching.
int countMatching(const std::string& ns, const NodeInfo& node, const Constraint& c) {
  if (c.counts_nothing) return 0;
  int n = 0;
  for (const PodInfoPtr& p : node.pods()) {
    if (p->pod->metadata().namespace_() != ns) continue;
    if (p->pod->metadata().has_deletion_timestamp()) continue;
    if (c.selector.matches(p->pod->metadata().labels())) ++n;
  }
  return n;
}

// One int per snapshot position, valid while that position holds the same NodeInfo object (the
// weak_ptr keeps its control block, so no other object can look the same) at the same
// generation (the cache changes a NodeInfo in place when no snapshot shares it).
class PerNode {
 public:
  // `generation`: node->generation(), from Snapshot::generationAt (a dense array: checking a
  // slot then touches no NodeInfo, which would be a cache miss on every node of every cycle).
  template <typename Compute>
  int32_t get(size_t i, const NodeInfoPtr& node, uint64_t generation, const Compute& compute) {
    if (slots_.size() <= i) slots_.resize(i + 1);
    Slot& s = slots_[i];
    if (s.set && s.generation == generation && !s.node.owner_before(node) &&
        !node.owner_before(s.node)) {
      return s.value;
    }
    s.value = compute();
    s.node = node;
    s.generation = generation;
    s.set = true;
    return s.value;
  }
  void clear() { slots_.clear(); }

 private:
  struct Slot {
    std::weak_ptr<const NodeInfo> node;
    uint64_t generation = 0;
    int32_t value = 0;
    bool set = false;
  };
  std::vector<Slot> slots_;
};

struct KeyMemo {
  std::shared_ptr<DomainTable> table = std::make_shared<DomainTable>();
  PerNode ids;  // the node's id for this key's value, -1 without the label
};

}  // namespace

struct PodTopologySpread::Memo {
  std::mutex mu;
  std::unordered_map<std::string, KeyMemo> keys;
  std::unordered_map<std::string, PerNode> counts;  // by Constraint::selector_id

  // Bounds the memo (a selector per workload, a value per node ever seen): starts over when it
  // holds much more than the cluster needs now.
  void trim(size_t nodes) {
    if (counts.size() > 64) counts.clear();
    if (keys.size() > 32) keys.clear();
    for (auto& [key, m] : keys) {
      if (m.table->ids.size() > 2 * nodes + 64) {
        m.table = std::make_shared<DomainTable>();
        m.ids.clear();
      }
    }
  }

  // The node's id for `key` (interning its value), -1 when it has no such label.
  int32_t domainOf(KeyMemo& m, const Constraint& c, size_t i, const NodeInfoPtr& node,
                   uint64_t generation) {
    return m.ids.get(i, node, generation, [&]() -> int32_t {
      const std::string* v = valueOf(c, *node);
      if (!v) return -1;
      return intern(m, *v);
    });
  }

  static int32_t intern(KeyMemo& m, std::string_view value) {
    int32_t id = m.table->idOf(value);
    if (id >= 0) return id;
    if (m.table.use_count() > 1) m.table = std::make_shared<DomainTable>(*m.table);
    id = static_cast<int32_t>(m.table->ids.size());
    m.table->ids.emplace(std::string(value), id);
    return id;
  }
};

std::vector<api::core::v1::TopologySpreadConstraint> SpreadDefaults::systemConstraints() {
  std::vector<api::core::v1::TopologySpreadConstraint> out(2);
  out[0].set_topology_key(std::string(kLabelHostname));
  out[0].set_max_skew(3);
  out[0].set_when_unsatisfiable("ScheduleAnyway");
  out[1].set_topology_key("topology.kubernetes.io/zone");
  out[1].set_max_skew(5);
  out[1].set_when_unsatisfiable("ScheduleAnyway");
  return out;
}

PodTopologySpread::PodTopologySpread(SpreadDefaults defaults)
    : defaults_(std::move(defaults)), memo_(std::make_unique<Memo>()) {}
PodTopologySpread::~PodTopologySpread() = default;

namespace {

// The smallest count over the constraint's domains. Kubernetes keeps the two smallest (critical
// paths) and updates them in place on AddPod/RemovePod, which can miss a third domain when a
// critical one grows; here a change recomputes the minimum from the counts instead.
int smallest(const std::vector<int>& counts, const std::vector<char>& present) {
  int m = std::numeric_limits<int>::max();
  for (size_t d = 0; d < counts.size(); ++d) {
    if (present[d]) m = std::min(m, counts[d]);
  }
  return m;
}

struct FilterState : StateData {
  std::vector<Constraint> constraints;
  std::vector<std::shared_ptr<const DomainTable>> tables;  // per constraint
  std::vector<std::vector<int>> counts;    // per constraint: domain id -> matching pods
  std::vector<std::vector<char>> present;  // per constraint: domain id -> counted
  std::vector<int> domains;                // per constraint: how many domains (TpKeyToDomainsNum)
  std::vector<int> min_match;              // per constraint: the critical path's count
  bool pod_has_affinity = false;

  int minMatch(size_t i) const {
    return domains[i] < constraints[i].min_domains ? 0 : min_match[i];
  }
  int count(size_t i, int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < counts[i].size() ? counts[i][id] : 0;
  }
  std::unique_ptr<StateData> clone() const override { return std::make_unique<FilterState>(*this); }
};

struct ScoreState : StateData {
  std::vector<Constraint> constraints;
  std::vector<std::shared_ptr<const DomainTable>> tables;
  std::vector<std::vector<int>> counts;  // per constraint (not hostname): domain id -> pods
  std::vector<double> weights;
  std::string ns;
  bool require_all = true;
  std::unique_ptr<StateData> clone() const override { return std::make_unique<ScoreState>(*this); }
};

const std::string kFilterKey = "PreFilterPodTopologySpread";
const std::string kScoreKey = "PreScorePodTopologySpread";

// Kubernetes' preFilterState.updateWithPod.
Status updateWithPod(CycleState& state, const PodInfo& pod, const PodInfo& other,
                     const NodeInfo& node, int delta) {
  auto* s = state.read<FilterState>(kFilterKey);
  if (!s) return {};
  if (other.pod->metadata().namespace_() != pod.pod->metadata().namespace_()) return {};
  if (!node.node()) return {};
  for (const Constraint& c : s->constraints) {
    if (!valueOf(c, node)) return {};
  }
  for (size_t i = 0; i < s->constraints.size(); ++i) {
    const Constraint& c = s->constraints[i];
    if (!c.selector.matches(other.pod->metadata().labels())) continue;
    if (!includes(c, *pod.pod, s->pod_has_affinity, node)) continue;
    const std::string& value = *valueOf(c, node);
    int32_t id = s->tables[i]->idOf(value);
    if (id < 0) {  // a value no node of the snapshot has: this state's own copy of the table
      auto table = std::make_shared<DomainTable>(*s->tables[i]);
      id = static_cast<int32_t>(table->ids.size());
      table->ids.emplace(value, id);
      s->tables[i] = std::move(table);
    }
    if (static_cast<size_t>(id) >= s->counts[i].size()) {
      s->counts[i].resize(id + 1, 0);
      s->present[i].resize(id + 1, 0);
    }
    s->counts[i][id] += delta;
    s->present[i][id] = 1;
    s->min_match[i] = smallest(s->counts[i], s->present[i]);
  }
  return {};
}

}  // namespace

Status PodTopologySpread::preFilter(CycleState& state, const PodInfo& pod,
                                    const Snapshot& snapshot) {
  std::vector<Constraint> constraints;
  try {
    constraints = constraintsOf(*pod.pod, "DoNotSchedule", defaults_);
  } catch (const api::SelectorError& e) {
    return Status::unresolvable(std::string("invalid topologySpreadConstraints: ") + e.what());
  }
  if (constraints.empty()) return Status::skip();
  const size_t nc = constraints.size();
  const std::string& ns = pod.pod->metadata().namespace_();
  auto s = std::make_unique<FilterState>();
  s->pod_has_affinity = hasRequiredNodeAffinity(*pod.pod);
  s->counts.resize(nc);
  s->present.resize(nc);

  std::lock_guard lock(memo_->mu);
  const auto& nodes = snapshot.nodes();
  memo_->trim(nodes.size());
  std::vector<KeyMemo*> keys(nc);
  std::vector<PerNode*> counts(nc, nullptr);
  for (size_t i = 0; i < nc; ++i) {
    keys[i] = &memo_->keys[constraints[i].key];
    if (!constraints[i].counts_nothing) counts[i] = &memo_->counts[constraints[i].selector_id];
  }
  std::vector<int32_t> ids(nc);
  for (size_t n = 0; n < nodes.size(); ++n) {
    const NodeInfoPtr& node = nodes[n];
    const uint64_t generation = snapshot.generationAt(n);
    // Only nodes with every constraint's key count (nodeLabelsMatchSpreadConstraints).
    bool all = true;
    for (size_t i = 0; i < nc && all; ++i) {
      ids[i] = memo_->domainOf(*keys[i], constraints[i], n, node, generation);
      all = ids[i] >= 0;
    }
    if (!all) continue;
    for (size_t i = 0; i < nc; ++i) {
      const Constraint& c = constraints[i];
      if (!includes(c, *pod.pod, s->pod_has_affinity, *node)) continue;
      const int count = counts[i] ? counts[i]->get(n, node, generation,
                                                   [&] { return countMatching(ns, *node, c); })
                                  : 0;
      const auto id = static_cast<size_t>(ids[i]);
      if (id >= s->counts[i].size()) {
        s->counts[i].resize(id + 1, 0);
        s->present[i].resize(id + 1, 0);
      }
      s->counts[i][id] += count;
      s->present[i][id] = 1;
    }
  }
  s->tables.resize(nc);
  s->domains.resize(nc);
  s->min_match.resize(nc);
  for (size_t i = 0; i < nc; ++i) {
    s->tables[i] = keys[i]->table;
    s->domains[i] =
        static_cast<int>(std::count(s->present[i].begin(), s->present[i].end(), char{1}));
    s->min_match[i] = smallest(s->counts[i], s->present[i]);
  }
  s->constraints = std::move(constraints);
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
    const std::string* value = valueOf(c, node);
    if (!value) {
      static const Status kMissing = Status::unresolvable(std::string(kReasonMissingLabel));
      return kMissing;
    }
    const int match = s->count(i, s->tables[i]->idOf(*value));
    const int skew = match + (c.self_match ? 1 : 0) - s->minMatch(i);
    if (skew > c.max_skew) {
      static const Status kSkew = Status::unschedulable(std::string(kReason));
      return kSkew;
    }
  }
  return {};
}

Status PodTopologySpread::preScore(CycleState& state, const PodInfo& pod,
                                   std::span<const NodeInfoPtr> feasible,
                                   const Snapshot& snapshot) {
  std::vector<Constraint> constraints;
  bool defaulted = false;
  try {
    constraints = constraintsOf(*pod.pod, "ScheduleAnyway", defaults_, &defaulted);
  } catch (const api::SelectorError& e) {
    return Status::error(std::string("invalid topologySpreadConstraints: ") + e.what());
  }
  if (constraints.empty() || feasible.empty()) return Status::skip();
  const size_t nc = constraints.size();
  auto s = std::make_unique<ScoreState>();
  s->ns = pod.pod->metadata().namespace_();
  s->counts.resize(nc);
  s->weights.resize(nc);
  // Only the pod's own constraints (or listed defaults) need every key on a node; with the
  // system defaults a node without a zone label still spreads by hostname (kube-scheduler's
  // requireAllTopologies). A node then missing a key is in that key's "" domain, as there.
  s->require_all = !(defaulted && defaults_.system);
  const bool pod_has_affinity = hasRequiredNodeAffinity(*pod.pod);

  std::lock_guard lock(memo_->mu);
  const auto& nodes = snapshot.nodes();
  memo_->trim(nodes.size());
  std::vector<KeyMemo*> keys(nc);
  std::vector<PerNode*> counts(nc, nullptr);
  for (size_t i = 0; i < nc; ++i) {
    keys[i] = &memo_->keys[constraints[i].key];
    if (!constraints[i].counts_nothing) counts[i] = &memo_->counts[constraints[i].selector_id];
  }
  // The id of the node's value of constraint i's key; -1 without one when every key is needed,
  // else the "" domain's.
  auto valueId = [&](size_t i, const std::string* value) -> int32_t {
    if (value) return Memo::intern(*keys[i], *value);
    return s->require_all ? -1 : Memo::intern(*keys[i], "");
  };
  // Domains are those of the feasible nodes (that have every key, when that is needed: the
  // others are ignored when scoring); hostname domains are the node itself, counted in Score.
  std::vector<std::vector<char>> domain(nc);
  std::vector<int> sizes(nc, 0);
  size_t ignored = 0;
  for (const NodeInfoPtr& node : feasible) {
    if (s->require_all) {
      bool all = true;
      for (const Constraint& c : constraints)
        all = all && valueOf(c, *node) != nullptr;
      if (!all) {
        ++ignored;
        continue;
      }
    }
    for (size_t i = 0; i < nc; ++i) {
      if (constraints[i].hostname) continue;
      const auto id = static_cast<size_t>(valueId(i, valueOf(constraints[i], *node)));
      if (id >= domain[i].size()) domain[i].resize(id + 1, 0);
      if (!domain[i][id]) {
        domain[i][id] = 1;
        ++sizes[i];
      }
    }
  }
  for (size_t i = 0; i < nc; ++i) {
    s->counts[i].assign(domain[i].size(), 0);
    const size_t size = constraints[i].hostname ? feasible.size() - ignored : sizes[i];
    s->weights[i] = std::log(static_cast<double>(size) + 2);
  }
  // Pods are counted on every node (with every key, when needed) that passes the inclusion
  // policies.
  std::vector<int32_t> ids(nc);
  for (size_t n = 0; n < nodes.size(); ++n) {
    const NodeInfoPtr& node = nodes[n];
    const uint64_t generation = snapshot.generationAt(n);
    bool all = true;
    for (size_t i = 0; i < nc && all; ++i) {
      ids[i] = memo_->domainOf(*keys[i], constraints[i], n, node, generation);
      if (ids[i] < 0 && !s->require_all) ids[i] = Memo::intern(*keys[i], "");
      all = ids[i] >= 0;
    }
    if (!all) continue;
    for (size_t i = 0; i < nc; ++i) {
      const Constraint& c = constraints[i];
      const auto id = static_cast<size_t>(ids[i]);
      if (c.hostname || id >= domain[i].size() || !domain[i][id]) continue;
      if (!includes(c, *pod.pod, pod_has_affinity, *node)) continue;
      if (counts[i]) {
        s->counts[i][id] +=
            counts[i]->get(n, node, generation, [&] { return countMatching(s->ns, *node, c); });
      }
    }
  }
  s->tables.resize(nc);
  for (size_t i = 0; i < nc; ++i)
    s->tables[i] = keys[i]->table;
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
    const Constraint& c = s->constraints[i];
    const std::string* v = valueOf(c, node);
    if (!v) {
      if (!s->require_all) continue;  // this key does not score the node
      score = -1;                     // ignored: scored 0 after normalizing
      return {};
    }
    int count = 0;
    if (c.hostname) {
      count = countMatching(s->ns, node, c);
    } else {
      const int32_t id = s->tables[i]->idOf(*v);
      if (id >= 0 && static_cast<size_t>(id) < s->counts[i].size()) count = s->counts[i][id];
    }
    total += count * s->weights[i] + (c.max_skew - 1);
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

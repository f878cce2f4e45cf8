// NodeUnschedulable, NodeName, NodePorts, TaintToleration and NodeAffinity.
#include <charconv>

#include "scheduler/plugins/plugins.h"
#include "scheduler/plugins/volume_binding.h"

namespace skiff::scheduler::plugins {
namespace {

using api::core::v1::NodeSelectorRequirement;
using api::core::v1::NodeSelectorTerm;
using api::core::v1::Taint;

std::optional<int64_t> parseInt(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

bool contains(const google::protobuf::RepeatedPtrField<std::string>& values, std::string_view v) {
  for (const std::string& x : values) {
    if (x == v) return true;
  }
  return false;
}

// One NodeSelectorRequirement against a value (nullptr: the label is absent), as
// nodeaffinity.NodeSelectorRequirementsAsSelector evaluates it. Unknown operators match nothing.
bool matchRequirement(const NodeSelectorRequirement& r, const std::string* value) {
  const std::string& op = r.operator_();
  if (op == "In") return value && contains(r.values(), *value);
  if (op == "NotIn") return !value || !contains(r.values(), *value);
  if (op == "Exists") return value != nullptr;
  if (op == "DoesNotExist") return value == nullptr;
  if (op == "Gt" || op == "Lt") {
    if (!value || r.values_size() != 1) return false;
    auto have = parseInt(*value);
    auto want = parseInt(r.values(0));
    if (!have || !want) return false;
    return op == "Gt" ? *have > *want : *have < *want;
  }
  return false;
}

// A term matches when all its expressions and fields match; an empty term matches nothing.
bool matchTerm(const NodeSelectorTerm& term, const NodeInfo& node) {
  if (term.match_expressions().empty() && term.match_fields().empty()) return false;
  for (const auto& r : term.match_expressions()) {
    if (!matchRequirement(r, node.label(r.key()))) return false;
  }
  for (const auto& r : term.match_fields()) {
    if (r.key() != "metadata.name") return false;
    if (!matchRequirement(r, &node.name())) return false;
  }
  return true;
}

bool toleratedBy(const google::protobuf::RepeatedPtrField<api::core::v1::Toleration>& tolerations,
                 const Taint& taint) {
  for (const auto& t : tolerations) {
    if (tolerates(t, taint)) return true;
  }
  return false;
}

struct PortsState : StateData {
  std::vector<HostPort> ports;
  std::unique_ptr<StateData> clone() const override { return std::make_unique<PortsState>(*this); }
};

const std::string kPortsKey = "PreFilterNodePorts";

}  // namespace

bool tolerates(const api::core::v1::Toleration& t, const Taint& taint) {
  if (!t.effect().empty() && t.effect() != taint.effect()) return false;
  if (!t.key().empty() && t.key() != taint.key()) return false;
  const std::string& op = t.operator_();
  if (op.empty() || op == "Equal") return t.value() == taint.value();
  return op == "Exists";
}

Status NodeUnschedulable::filter(const CycleState&, const PodInfo& pod,
                                 const NodeInfo& node) const {
  if (!node.node()) return Status::unresolvable("node not found");
  if (!node.unschedulable()) return {};
  Taint taint;
  taint.set_key(std::string(kTaintNodeUnschedulable));
  taint.set_effect("NoSchedule");
  if (toleratedBy(pod.pod->spec().tolerations(), taint)) return {};
  static const Status kRejected = Status::unresolvable(std::string(kReason));
  return kRejected;
}

Status NodeName::filter(const CycleState&, const PodInfo& pod, const NodeInfo& node) const {
  const std::string& want = pod.pod->spec().node_name();
  if (want.empty() || want == node.name()) return {};
  static const Status kRejected = Status::unresolvable(std::string(kReason));
  return kRejected;
}

Status NodePorts::preFilter(CycleState& state, const PodInfo& pod, const Snapshot&) {
  if (pod.host_ports.empty()) return Status::skip();
  auto s = std::make_unique<PortsState>();
  s->ports = pod.host_ports;
  state.write(kPortsKey, std::move(s));
  return {};
}

Status NodePorts::filter(const CycleState& state, const PodInfo& pod, const NodeInfo& node) const {
  const auto* s = state.read<PortsState>(kPortsKey);
  const std::vector<HostPort>& ports = s ? s->ports : pod.host_ports;
  for (const HostPort& p : ports) {
    if (node.portConflicts(p)) {
      static const Status kConflict = Status::unschedulable(std::string(kReason));
      return kConflict;
    }
  }
  return {};
}

Status TaintToleration::filter(const CycleState&, const PodInfo& pod, const NodeInfo& node) const {
  if (!node.node()) return Status::unresolvable("invalid nodeInfo");
  if (!node.hasTaints()) return {};
  for (const Taint& taint : node.node()->spec().taints()) {
    if (taint.effect() != "NoSchedule" && taint.effect() != "NoExecute") continue;
    if (toleratedBy(pod.pod->spec().tolerations(), taint)) continue;
    return Status::unresolvable("node(s) had untolerated taint {" + taint.key() + ": " +
                                taint.value() + "}");
  }
  return {};
}

Status TaintToleration::score(const CycleState&, const PodInfo& pod, const NodeInfo& node,
                              int64_t& score) const {
  score = 0;
  if (!node.hasTaints()) return {};
  for (const Taint& taint : node.node()->spec().taints()) {
    if (taint.effect() != "PreferNoSchedule") continue;
    bool tolerated = false;
    for (const auto& t : pod.pod->spec().tolerations()) {
      if ((t.effect().empty() || t.effect() == "PreferNoSchedule") && tolerates(t, taint)) {
        tolerated = true;
        break;
      }
    }
    if (!tolerated) ++score;
  }
  return {};
}

Status TaintToleration::normalizeScore(const CycleState&, const PodInfo&,
                                       std::vector<int64_t>& scores) const {
  defaultNormalizeScore(kMaxNodeScore, true, scores);
  return {};
}

bool matchesRequiredNodeAffinity(const Pod& pod, const NodeInfo& node) {
  for (const auto& [k, v] : pod.spec().node_selector()) {
    const std::string* have = node.label(k);
    if (!have || *have != v) return false;
  }
  if (!pod.spec().has_affinity() || !pod.spec().affinity().has_node_affinity()) return true;
  const auto& na = pod.spec().affinity().node_affinity();
  if (!na.has_required_during_scheduling_ignored_during_execution()) return true;
  for (const auto& term :
       na.required_during_scheduling_ignored_during_execution().node_selector_terms()) {
    if (matchTerm(term, node)) return true;
  }
  return false;
}

Status NodeAffinity::preFilter(CycleState&, const PodInfo& pod, const Snapshot&) {
  const auto& spec = pod.pod->spec();
  const bool has_required =
      spec.has_affinity() && spec.affinity().has_node_affinity() &&
      spec.affinity().node_affinity().has_required_during_scheduling_ignored_during_execution();
  if (spec.node_selector().empty() && !has_required) return Status::skip();
  return {};
}

Status NodeAffinity::filter(const CycleState&, const PodInfo& pod, const NodeInfo& node) const {
  if (matchesRequiredNodeAffinity(*pod.pod, node)) return {};
  static const Status kRejected = Status::unresolvable(std::string(kReason));
  return kRejected;
}

Status NodeAffinity::preScore(CycleState&, const PodInfo& pod, std::span<const NodeInfoPtr>,
                              const Snapshot&) {
  const auto& spec = pod.pod->spec();
  if (!spec.has_affinity() || !spec.affinity().has_node_affinity() ||
      spec.affinity()
          .node_affinity()
          .preferred_during_scheduling_ignored_during_execution()
          .empty()) {
    return Status::skip();
  }
  return {};
}

Status NodeAffinity::score(const CycleState&, const PodInfo& pod, const NodeInfo& node,
                           int64_t& score) const {
  score = 0;
  const auto& spec = pod.pod->spec();
  if (!spec.has_affinity() || !spec.affinity().has_node_affinity()) return {};
  for (const auto& pref :
       spec.affinity().node_affinity().preferred_during_scheduling_ignored_during_execution()) {
    if (pref.weight() == 0) continue;
    if (matchTerm(pref.preference(), node)) score += pref.weight();
  }
  return {};
}

Status NodeAffinity::normalizeScore(const CycleState&, const PodInfo&,
                                    std::vector<int64_t>& scores) const {
  defaultNormalizeScore(kMaxNodeScore, false, scores);
  return {};
}

bool matchesNodeSelector(const api::core::v1::NodeSelector& selector, const NodeInfo& node) {
  for (const auto& term : selector.node_selector_terms()) {
    if (matchTerm(term, node)) return true;
  }
  return false;
}

}  // namespace skiff::scheduler::plugins

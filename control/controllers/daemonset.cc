#include "control/controllers/daemonset.h"

#include <algorithm>
#include <map>
#include <set>

#include <google/protobuf/util/message_differencer.h>

#include "control/api/selector.h"

namespace skiff::controllers {

using api::Timestamp;
using api::apps::v1::DaemonSet;
using api::core::v1::Node;
using api::core::v1::Pod;
using api::core::v1::Taint;
using api::core::v1::Toleration;

namespace {

Toleration toleration(std::string key, std::string effect) {
  Toleration t;
  t.set_key(std::move(key));
  t.set_operator_("Exists");
  t.set_effect(std::move(effect));
  return t;
}

// util.AddOrUpdateDaemonPodTolerations.
void addDaemonTolerations(api::core::v1::PodSpec& spec) {
  std::vector<Toleration> wanted = {
      toleration("node.kubernetes.io/not-ready", "NoExecute"),
      toleration("node.kubernetes.io/unreachable", "NoExecute"),
      toleration("node.kubernetes.io/disk-pressure", "NoSchedule"),
      toleration("node.kubernetes.io/memory-pressure", "NoSchedule"),
      toleration("node.kubernetes.io/pid-pressure", "NoSchedule"),
      toleration("node.kubernetes.io/unschedulable", "NoSchedule"),
  };
  if (spec.host_network()) {
    wanted.push_back(toleration("node.kubernetes.io/network-unavailable", "NoSchedule"));
  }
  for (auto& t : wanted) {
    bool present = false;
    for (auto& have : *spec.mutable_tolerations()) {
      if (have.key() == t.key() && have.effect() == t.effect()) {
        have = t;  // the daemon controller's form wins (no tolerationSeconds)
        present = true;
      }
    }
    if (!present) *spec.add_tolerations() = t;
  }
}

struct NodePlacement {
  bool should_run = false;
  bool should_continue = false;
};

NodePlacement placement(const api::core::v1::PodSpec& spec, const Node& node) {
  NodePlacement p;
  if (!podMatchesNode(spec, node)) return p;
  p.should_run = true;
  p.should_continue = true;
  for (const Taint& taint : node.spec().taints()) {
    if (taint.effect() != "NoSchedule" && taint.effect() != "NoExecute") continue;
    bool tolerated = std::any_of(spec.tolerations().begin(), spec.tolerations().end(),
                                 [&](const Toleration& t) { return toleratesTaint(t, taint); });
    if (tolerated) continue;
    p.should_run = false;
    if (taint.effect() == "NoExecute") p.should_continue = false;
  }
  return p;
}

const std::string& hashOf(const Pod& pod) {
  static const std::string kNone;
  auto it = pod.metadata().labels().find(std::string(kControllerRevisionHashLabel));
  return it == pod.metadata().labels().end() ? kNone : it->second;
}

}  // namespace

bool podMatchesNode(const api::core::v1::PodSpec& spec, const Node& node) {
  const auto& labels = node.metadata().labels();
  for (const auto& [k, v] : spec.node_selector()) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  if (spec.has_affinity() && spec.affinity().has_node_affinity() &&
      spec.affinity().node_affinity().has_required_during_scheduling_ignored_during_execution()) {
    const auto& terms = spec.affinity()
                            .node_affinity()
                            .required_during_scheduling_ignored_during_execution()
                            .node_selector_terms();
    if (std::none_of(terms.begin(), terms.end(),
                     [&](const auto& term) { return nodeSelectorTermMatches(term, node); })) {
      return false;
    }
  }
  return true;
}

std::string targetNodeOf(const Pod& pod) {
  if (!pod.spec().node_name().empty()) return pod.spec().node_name();
  const auto& spec = pod.spec();
  if (!spec.has_affinity() || !spec.affinity().has_node_affinity()) return {};
  for (const auto& term : spec.affinity()
                              .node_affinity()
                              .required_during_scheduling_ignored_during_execution()
                              .node_selector_terms()) {
    for (const auto& f : term.match_fields()) {
      if (f.key() == "metadata.name" && f.operator_() == "In" && f.values_size() == 1) {
        return f.values(0);
      }
    }
  }
  return {};
}

Pod daemonPodFor(const DaemonSet& ds, const std::string& hash, const std::string& node_name) {
  Pod pod;
  const auto& dm = ds.metadata();
  const auto& tmeta = ds.spec().template_().metadata();
  auto* m = pod.mutable_metadata();
  *m->mutable_labels() = tmeta.labels();
  *m->mutable_annotations() = tmeta.annotations();
  *m->mutable_finalizers() = tmeta.finalizers();
  (*m->mutable_labels())[std::string(kControllerRevisionHashLabel)] = hash;
  m->set_namespace_(dm.namespace_());
  m->set_generate_name(dm.name() + "-");
  *m->add_owner_references() = makeControllerRef(dm, typeOf<DaemonSet>());
  *pod.mutable_spec() = ds.spec().template_().spec();
  addDaemonTolerations(*pod.mutable_spec());
  // util.ReplaceDaemonSetPodNodeNameNodeAffinity: the scheduler binds it to this node only.
  auto* required = pod.mutable_spec()
                       ->mutable_affinity()
                       ->mutable_node_affinity()
                       ->mutable_required_during_scheduling_ignored_during_execution();
  required->clear_node_selector_terms();
  auto* field = required->add_node_selector_terms()->add_match_fields();
  field->set_key("metadata.name");
  field->set_operator_("In");
  field->add_values(node_name);
  return pod;
}

PodOwnerResult reconcileDaemonSet(const DaemonSetInput& input) {
  PodOwnerResult result;
  const DaemonSet& ds = *input.ds;
  const auto& meta = ds.metadata();
  const auto& spec = ds.spec();
  const std::string key = meta.namespace_() + "/" + meta.name();
  std::string selector_error;
  auto selector = api::labels::Selector::tryFromProto(
      spec.has_selector() ? &spec.selector() : nullptr, &selector_error, "spec.selector");
  if (!selector || selector->empty()) {
    result.warning_reason = "InvalidSelector";
    result.warning = "DaemonSet " + key + ": " +
                     (selector ? "spec.selector: Invalid value: empty selector is invalid for a "
                                 "DaemonSet"
                               : selector_error);
    return result;
  }
  if (!selector->matches(spec.template_().metadata().labels())) {
    result.warning_reason = "InvalidSelector";
    result.warning = "DaemonSet " + key +
                     ": spec.template.metadata.labels: Invalid value: `selector` does not match "
                     "template `labels`";
    return result;
  }
  if (meta.has_deletion_timestamp()) return result;

  const std::string hash = computeTemplateHash(
      spec.template_(), ds.status().has_collision_count()
                            ? std::optional<int32_t>(ds.status().collision_count())
                            : std::nullopt);
  // History: a ControllerRevision per template (kubectl rollout history/undo read them).
  std::set<std::string> live;
  for (const Pod* pod : input.pods) {
    const auto* ref = controllerOf(pod->metadata());
    if (ref != nullptr && ref->uid() == meta.uid()) live.insert(meta.name() + "-" + hashOf(*pod));
  }
  RevisionSync history =
      syncRevisions(meta, typeOf<DaemonSet>(), spec.template_(), hash, "", input.revisions, live,
                    spec.has_revision_history_limit() ? spec.revision_history_limit() : 10, result);
  if (!history.collision.empty()) {
    result.warning_reason = "RevisionNameCollision";
    result.warning = "DaemonSet " + key + ": " + history.collision;
    result.actions.clear();
    return result;
  }

  // Eligibility is judged on the pod as it would be created (with the daemon tolerations).
  api::core::v1::PodSpec judged = spec.template_().spec();
  addDaemonTolerations(judged);

  // Owned pods by target node, oldest first.
  std::map<std::string, std::vector<const Pod*>> by_node;
  for (const Pod* pod : input.pods) {
    const auto* ref = controllerOf(pod->metadata());
    if (ref == nullptr || ref->uid() != meta.uid()) continue;
    by_node[targetNodeOf(*pod)].push_back(pod);
  }
  for (auto& [node, pods] : by_node) {
    std::stable_sort(pods.begin(), pods.end(), [](const Pod* a, const Pod* b) {
      return olderThan(a->metadata(), b->metadata());
    });
  }
  std::vector<const Node*> nodes = input.nodes;
  std::sort(nodes.begin(), nodes.end(), [](const Node* a, const Node* b) {
    return a->metadata().name() < b->metadata().name();
  });

  // The rolling update's budgets (maxSurge 0: old pods go first, within maxUnavailable; else new
  // pods come up next to old ones, within maxSurge, and the old go once the new are available;
  // maxUnavailable plays no part then, as in Kubernetes).
  const auto& strategy = spec.update_strategy();
  const bool rolling = strategy.type().empty() || strategy.type() == "RollingUpdate";
  int32_t desired_nodes = 0;
  for (const Node* node : nodes)
    desired_nodes += placement(judged, *node).should_run ? 1 : 0;
  int32_t max_surge = 0;
  int32_t max_unavailable = 1;
  if (rolling && strategy.has_rolling_update()) {
    const auto& ru = strategy.rolling_update();
    try {
      if (ru.has_max_surge()) {
        max_surge = scaledValueFromIntOrPercent(ru.max_surge(), desired_nodes, /*round_up=*/true);
      }
    } catch (const std::invalid_argument& e) {
      result.event("Warning", "InvalidUpdateStrategy",
                   std::string("spec.updateStrategy.rollingUpdate.maxSurge: ") + e.what());
    }
    try {
      if (ru.has_max_unavailable()) {
        max_unavailable =
            scaledValueFromIntOrPercent(ru.max_unavailable(), desired_nodes, /*round_up=*/true);
      }
    } catch (const std::invalid_argument& e) {
      result.event("Warning", "InvalidUpdateStrategy",
                   std::string("spec.updateStrategy.rollingUpdate.maxUnavailable: ") + e.what());
    }
  }
  const bool surging = rolling && max_surge > 0;

  const bool act = input.expectations_satisfied;
  std::set<const Pod*> deleting;
  auto remove = [&](const Pod* pod) {
    if (!act || pod->metadata().has_deletion_timestamp() || !deleting.insert(pod).second) return;
    addPodDelete(result, *pod);
  };
  std::vector<std::string> create_on;
  int32_t desired = 0, current = 0, misscheduled = 0, ready = 0, available = 0, updated = 0;
  // For the rolling update: each eligible node's running pod (null when none) and, while a
  // surge replaces it, the old pod next to the new one.
  struct NodePods {
    const Node* node = nullptr;
    const Pod* pod = nullptr;
    const Pod* old = nullptr;  // surging only
  };
  std::vector<NodePods> eligible;
  std::set<std::string> known_nodes;
  const int32_t min_ready = spec.min_ready_seconds();

  for (const Node* node : nodes) {
    const std::string& name = node->metadata().name();
    known_nodes.insert(name);
    NodePlacement where = placement(judged, *node);
    auto it = by_node.find(name);
    std::vector<const Pod*> running;
    bool has_pods = false;
    if (it != by_node.end()) {
      for (const Pod* pod : it->second) {
        has_pods = true;
        if (pod->metadata().has_deletion_timestamp()) continue;
        if (pod->status().phase() == "Failed") {
          if (where.should_run) {
            remove(pod);  // replaced below
            continue;
          }
        }
        if (pod->status().phase() == "Succeeded" && where.should_run) {
          remove(pod);
          continue;
        }
        running.push_back(pod);
      }
    }
    if (where.should_run) {
      ++desired;
      if (has_pods) ++current;
      if (running.empty()) {
        create_on.push_back(name);
        eligible.push_back({node, nullptr, nullptr});
        continue;
      }
      const Pod* pod = running[0];
      const Pod* old = nullptr;
      if (surging) {
        // The oldest pod of the current template and the oldest other one stay; the old one goes
        // once the new one is available (or at once when it is not available itself).
        const Pod* newest_template = nullptr;
        for (const Pod* p : running) {
          const Pod*& slot = hashOf(*p) == hash ? newest_template : old;
          if (slot == nullptr) {
            slot = p;
          } else {
            remove(p);
          }
        }
        if (newest_template != nullptr && old != nullptr &&
            (!isPodAvailable(*old, min_ready, input.now) ||
             isPodAvailable(*newest_template, min_ready, input.now))) {
          remove(old);
          old = nullptr;
        }
        // Readiness and availability are the old pod's until it goes (Kubernetes counts the
        // oldest pod of the node).
        pod = old != nullptr ? old : newest_template;
        if (newest_template != nullptr) ++updated;
        eligible.push_back({node, newest_template != nullptr ? newest_template : old,
                            newest_template != nullptr ? old : nullptr});
      } else {
        for (size_t i = 1; i < running.size(); ++i)
          remove(running[i]);  // one per node: the oldest stays
        eligible.push_back({node, pod, nullptr});
        if (hashOf(*pod) == hash) ++updated;
      }
      if (isPodReady(*pod)) {
        ++ready;
        if (isPodAvailable(*pod, min_ready, input.now)) {
          ++available;
        } else if (min_ready > 0) {
          const auto* c = podCondition(*pod, "Ready");
          Timestamp at = addSeconds(toTimestamp(c->last_transition_time()), min_ready);
          result.requeueAfter(std::chrono::milliseconds(millisBetween(input.now, at) + 1));
        }
      }
    } else {
      if (has_pods) ++misscheduled;
      if (!where.should_continue) {
        for (const Pod* pod : running)
          remove(pod);
      }
    }
  }
  // Pods for nodes that do not exist (any more).
  for (const auto& [node, pods] : by_node) {
    if (known_nodes.count(node) != 0) continue;
    for (const Pod* pod : pods)
      remove(pod);
  }

  if (act && surging) {
    // Surge (daemon/update.go): a node with only an old pod gets a new pod next to it, within
    // maxSurge nodes at once (an unavailable old pod's node always: nothing is lost there).
    int32_t surges = 0;
    std::vector<std::string> candidates;
    for (const auto& e : eligible) {
      if (e.pod == nullptr) continue;  // created above
      if (e.old != nullptr) {
        ++surges;  // the new pod is not available yet
        continue;
      }
      if (hashOf(*e.pod) == hash) continue;
      if (!isPodAvailable(*e.pod, min_ready, input.now)) {
        create_on.push_back(e.node->metadata().name());
      } else {
        candidates.push_back(e.node->metadata().name());
      }
    }
    const int32_t room = std::max(0, max_surge - surges);
    for (int32_t i = 0; i < room && i < static_cast<int32_t>(candidates.size()); ++i)
      create_on.push_back(candidates[static_cast<size_t>(i)]);
  }
  if (act) {
    int n = std::min(static_cast<int>(create_on.size()), input.burst_pods);
    for (int i = 0; i < n; ++i)
      addPodCreate(result, daemonPodFor(ds, hash, create_on[i]), slowStartBatch(i));

    if (rolling && !surging) {
      if (max_unavailable < 1) max_unavailable = 1;
      int32_t unavailable = 0;
      std::vector<const Pod*> free_to_replace, candidates;
      for (const auto& e : eligible) {
        const Pod* pod = e.pod;
        if (pod == nullptr || deleting.count(pod) != 0) {
          ++unavailable;
          continue;
        }
        bool is_available = isPodAvailable(*pod, min_ready, input.now);
        if (hashOf(*pod) == hash) {
          if (!is_available) ++unavailable;
        } else if (!is_available) {
          free_to_replace.push_back(pod);  // unavailable already: replacing costs nothing
        } else {
          candidates.push_back(pod);
        }
      }
      // free_to_replace pods are unavailable too.
      unavailable += static_cast<int32_t>(free_to_replace.size());
      for (const Pod* pod : free_to_replace)
        remove(pod);
      int32_t budget = max_unavailable - unavailable;
      for (int32_t i = 0; i < budget && i < static_cast<int32_t>(candidates.size()); ++i)
        remove(candidates[i]);
    }
  }

  api::apps::v1::DaemonSetStatus status = ds.status();
  status.set_desired_number_scheduled(desired);
  status.set_current_number_scheduled(current);
  status.set_number_misscheduled(misscheduled);
  status.set_number_ready(ready);
  status.set_number_available(available);
  status.set_number_unavailable(desired - available);
  status.set_updated_number_scheduled(updated);
  status.set_observed_generation(meta.generation());
  if (!google::protobuf::util::MessageDifferencer::Equals(status, ds.status())) {
    auto copy = std::make_shared<DaemonSet>(ds);
    *copy->mutable_status() = std::move(status);
    addStatusUpdate(result, std::move(copy));
  }
  return result;
}

}  // namespace skiff::controllers

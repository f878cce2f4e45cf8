#include "control/controllers/replicaset.h"

#include <algorithm>
#include <map>

#include <google/protobuf/util/message_differencer.h>

#include "control/api/selector.h"

namespace skiff::controllers {

using api::Timestamp;
using api::apps::v1::ReplicaSet;
using api::core::v1::Pod;

namespace {

int phaseRank(const Pod& pod) {
  const std::string& phase = pod.status().phase();
  if (phase == "Pending" || phase.empty()) return 0;
  if (phase == "Unknown") return 1;
  return 2;  // Running
}

int restarts(const Pod& pod) {
  int n = 0;
  for (const auto& c : pod.status().container_statuses())
    n = std::max(n, c.restart_count());
  return n;
}

bool sameRef(const api::meta::v1::OwnerReference& ref, const ReplicaSet& rs) {
  return ref.uid() == rs.metadata().uid();
}

}  // namespace

bool deletePodBefore(const Pod& a, const Pod& b) {
  // 1. Unassigned < assigned.
  bool a_assigned = !a.spec().node_name().empty();
  bool b_assigned = !b.spec().node_name().empty();
  if (a_assigned != b_assigned) return !a_assigned;
  // 2. Pending < Unknown < Running.
  if (phaseRank(a) != phaseRank(b)) return phaseRank(a) < phaseRank(b);
  // 3. Not ready < ready.
  bool a_ready = isPodReady(a);
  bool b_ready = isPodReady(b);
  if (a_ready != b_ready) return !a_ready;
  // 4. Ready for less time < more time.
  if (a_ready && b_ready) {
    const auto* ca = podCondition(a, "Ready");
    const auto* cb = podCondition(b, "Ready");
    Timestamp ta = toTimestamp(ca->last_transition_time());
    Timestamp tb = toTimestamp(cb->last_transition_time());
    if (!(ta == tb))
      return ta.seconds != tb.seconds ? ta.seconds > tb.seconds : ta.nanos > tb.nanos;
  }
  // 5. More restarts first.
  if (restarts(a) != restarts(b)) return restarts(a) > restarts(b);
  // 6. Newer first (an empty creation time first).
  const auto& ma = a.metadata();
  const auto& mb = b.metadata();
  if (ma.has_creation_timestamp() != mb.has_creation_timestamp()) {
    return !ma.has_creation_timestamp();
  }
  Timestamp ta = toTimestamp(ma.creation_timestamp());
  Timestamp tb = toTimestamp(mb.creation_timestamp());
  if (!(ta == tb)) return ta.seconds != tb.seconds ? ta.seconds > tb.seconds : ta.nanos > tb.nanos;
  return ma.name() < mb.name();
}

Pod podFromTemplate(const ReplicaSet& rs) {
  Pod pod;
  const auto& tmeta = rs.spec().template_().metadata();
  auto* m = pod.mutable_metadata();
  *m->mutable_labels() = tmeta.labels();
  *m->mutable_annotations() = tmeta.annotations();
  *m->mutable_finalizers() = tmeta.finalizers();
  m->set_namespace_(rs.metadata().namespace_());
  m->set_generate_name(rs.metadata().name() + "-");
  *m->add_owner_references() = makeControllerRef(rs.metadata(), typeOf<ReplicaSet>());
  *pod.mutable_spec() = rs.spec().template_().spec();
  return pod;
}

ReplicaSetResult reconcileReplicaSet(const ReplicaSetInput& input) {
  ReplicaSetResult result;
  const ReplicaSet& rs = *input.rs;
  const auto& meta = rs.metadata();
  const std::string key = meta.namespace_() + "/" + meta.name();
  bool deleting = meta.has_deletion_timestamp();

  std::string selector_error;
  auto selector = api::labels::Selector::tryFromProto(
      rs.spec().has_selector() ? &rs.spec().selector() : nullptr, &selector_error, "spec.selector");
  if (!selector) {
    result.warning_reason = "InvalidSelector";
    result.warning = "ReplicaSet " + key + ": " + selector_error;
    return result;
  }
  if (selector->empty()) {
    // An empty selector would adopt every pod of the namespace; Kubernetes' validation refuses it.
    result.warning_reason = "InvalidSelector";
    result.warning = "ReplicaSet " + key +
                     ": spec.selector: Invalid value: empty selector is "
                     "invalid for a ReplicaSet";
    return result;
  }

  // Claim (ControllerRefManager.ClaimPods).
  std::vector<const Pod*> claimed;
  for (const Pod* pod : input.pods) {
    const auto& pm = pod->metadata();
    const auto* ref = controllerOf(pm);
    bool matches = selector->matches(pm.labels());
    if (ref != nullptr) {
      if (!sameRef(*ref, rs)) continue;  // another controller's
      if (matches) {
        claimed.push_back(pod);
        continue;
      }
      if (deleting) continue;
      // Release: drop our ownerReference.
      auto copy = std::make_shared<Pod>(*pod);
      auto* refs = copy->mutable_metadata()->mutable_owner_references();
      for (int i = 0; i < refs->size(); ++i) {
        if (refs->Get(i).uid() == meta.uid()) {
          refs->DeleteSubrange(i, 1);
          break;
        }
      }
      Action a;
      a.verb = Action::Verb::kUpdate;
      a.type = &typeOf<Pod>();
      a.ns = pm.namespace_();
      a.name = pm.name();
      a.object = std::move(copy);
      result.actions.push_back(std::move(a));
      continue;
    }
    if (deleting || !matches || pm.has_deletion_timestamp()) continue;
    // Adopt.
    auto copy = std::make_shared<Pod>(*pod);
    *copy->mutable_metadata()->add_owner_references() =
        makeControllerRef(meta, typeOf<ReplicaSet>());
    Action a;
    a.verb = Action::Verb::kUpdate;
    a.type = &typeOf<Pod>();
    a.ns = pm.namespace_();
    a.name = pm.name();
    a.object = std::move(copy);
    result.actions.push_back(std::move(a));
    claimed.push_back(pod);
  }

  std::vector<const Pod*> active;
  for (const Pod* pod : claimed) {
    if (isPodActive(*pod)) active.push_back(pod);
  }

  const int32_t want = rs.spec().has_replicas() ? rs.spec().replicas() : 1;
  if (input.expectations_satisfied && !deleting) {
    int diff = static_cast<int>(active.size()) - want;
    if (diff < 0) {
      int n = std::min(-diff, input.burst_replicas);
      const Pod pod = podFromTemplate(rs);
      for (int i = 0; i < n; ++i)
        addPodCreate(result, pod, slowStartBatch(i));
    } else if (diff > 0) {
      int n = std::min(diff, input.burst_replicas);
      std::vector<const Pod*> order = active;
      std::stable_sort(order.begin(), order.end(),
                       [](const Pod* a, const Pod* b) { return deletePodBefore(*a, *b); });
      for (int i = 0; i < n; ++i)
        addPodDelete(result, *order[i]);
    }
  }

  // Status (calculateStatus).
  const int32_t min_ready = rs.spec().min_ready_seconds();
  auto template_labels = api::labels::Selector::fromSet(rs.spec().template_().metadata().labels());
  int32_t fully_labeled = 0, ready = 0, available = 0;
  for (const Pod* pod : active) {
    if (template_labels.matches(pod->metadata().labels())) ++fully_labeled;
    if (isPodReady(*pod)) {
      ++ready;
      if (isPodAvailable(*pod, min_ready, input.now)) {
        ++available;
      } else if (min_ready > 0) {
        // Check again once it has been ready for minReadySeconds.
        const auto* c = podCondition(*pod, "Ready");
        Timestamp at = addSeconds(toTimestamp(c->last_transition_time()), min_ready);
        result.requeueAfter(std::chrono::milliseconds(millisBetween(input.now, at) + 1));
      }
    }
  }
  api::apps::v1::ReplicaSetStatus status = rs.status();
  status.set_replicas(static_cast<int32_t>(active.size()));
  status.set_fully_labeled_replicas(fully_labeled);
  status.set_ready_replicas(ready);
  status.set_available_replicas(available);
  status.set_observed_generation(meta.generation());
  auto* conds = status.mutable_conditions();
  int failure = -1;
  for (int i = 0; i < conds->size(); ++i) {
    if (conds->Get(i).type() == "ReplicaFailure") failure = i;
  }
  if (!input.manage_error.empty() && failure < 0) {
    auto* c = conds->Add();
    c->set_type("ReplicaFailure");
    c->set_status("True");
    c->set_reason(input.manage_error_reason);
    c->set_message(input.manage_error);
    setTime(*c->mutable_last_transition_time(), input.now);
  } else if (input.manage_error.empty() && failure >= 0) {
    conds->DeleteSubrange(failure, 1);
  }
  if (!google::protobuf::util::MessageDifferencer::Equals(status, rs.status())) {
    auto copy = std::make_shared<ReplicaSet>(rs);
    *copy->mutable_status() = std::move(status);
    Action a;
    a.verb = Action::Verb::kUpdateStatus;
    a.type = &typeOf<ReplicaSet>();
    a.ns = meta.namespace_();
    a.name = meta.name();
    a.object = std::move(copy);
    result.actions.push_back(std::move(a));
  }
  return result;
}

}  // namespace skiff::controllers

#include "control/controllers/statefulset.h"

#include <algorithm>
#include <map>
#include <set>

#include <google/protobuf/util/message_differencer.h>

#include "control/api/selector.h"

namespace skiff::controllers {

using api::Timestamp;
using api::apps::v1::ControllerRevision;
using api::apps::v1::StatefulSet;
using api::core::v1::PersistentVolumeClaim;
using api::core::v1::Pod;

namespace {

const std::string& revisionOf(const Pod& pod) {
  static const std::string kNone;
  auto it = pod.metadata().labels().find(std::string("controller-revision-hash"));
  return it == pod.metadata().labels().end() ? kNone : it->second;
}

bool isTerminating(const Pod& pod) {
  return pod.metadata().has_deletion_timestamp();
}

// isRunningAndReady.
bool isHealthy(const Pod& pod) {
  return pod.status().phase() == "Running" && isPodReady(pod) && !isTerminating(pod);
}

}  // namespace

int ordinalOf(const std::string& set_name, const std::string& pod_name) {
  if (pod_name.size() <= set_name.size() + 1 ||
      pod_name.compare(0, set_name.size(), set_name) != 0 || pod_name[set_name.size()] != '-') {
    return -1;
  }
  std::string digits = pod_name.substr(set_name.size() + 1);
  if (digits.size() > 9 || (digits.size() > 1 && digits[0] == '0') ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  return std::stoi(digits);
}

std::string statefulSetRevision(const StatefulSet& set) {
  std::optional<int32_t> collisions;
  if (set.status().has_collision_count()) collisions = set.status().collision_count();
  return set.metadata().name() + "-" + computeTemplateHash(set.spec().template_(), collisions);
}

Pod statefulPodFor(const StatefulSet& set, int ordinal, const std::string& revision,
                   const api::core::v1::PodTemplateSpec& tmpl) {
  Pod pod;
  const auto& sm = set.metadata();
  const auto& tmeta = tmpl.metadata();
  const std::string name = sm.name() + "-" + std::to_string(ordinal);
  auto* m = pod.mutable_metadata();
  *m->mutable_labels() = tmeta.labels();
  *m->mutable_annotations() = tmeta.annotations();
  *m->mutable_finalizers() = tmeta.finalizers();
  auto& labels = *m->mutable_labels();
  labels[std::string(kStatefulSetPodNameLabel)] = name;
  labels[std::string(kPodIndexLabel)] = std::to_string(ordinal);
  labels["controller-revision-hash"] = revision;
  m->set_name(name);
  m->set_namespace_(sm.namespace_());
  *m->add_owner_references() = makeControllerRef(sm, typeOf<StatefulSet>());
  *pod.mutable_spec() = tmpl.spec();
  // updateStorage: each claim template's volume points at the pod's claim.
  for (const auto& claim_tmpl : set.spec().volume_claim_templates()) {
    auto* volumes = pod.mutable_spec()->mutable_volumes();
    api::core::v1::Volume* volume = nullptr;
    for (auto& v : *volumes) {
      if (v.name() == claim_tmpl.metadata().name()) volume = &v;
    }
    if (volume == nullptr) volume = volumes->Add();
    volume->Clear();
    volume->set_name(claim_tmpl.metadata().name());
    volume->mutable_persistent_volume_claim()->set_claim_name(
        statefulClaimName(set, claim_tmpl, ordinal));
  }
  pod.mutable_spec()->set_hostname(name);
  if (!set.spec().service_name().empty())
    pod.mutable_spec()->set_subdomain(set.spec().service_name());
  return pod;
}

std::string statefulClaimName(const StatefulSet& set, const PersistentVolumeClaim& tmpl,
                              int ordinal) {
  return tmpl.metadata().name() + "-" + set.metadata().name() + "-" + std::to_string(ordinal);
}

PersistentVolumeClaim statefulClaimFor(const StatefulSet& set, const PersistentVolumeClaim& tmpl,
                                       int ordinal) {
  PersistentVolumeClaim claim;
  auto* m = claim.mutable_metadata();
  *m->mutable_labels() = tmpl.metadata().labels();
  *m->mutable_annotations() = tmpl.metadata().annotations();
  for (const auto& [k, v] : set.spec().selector().match_labels())
    (*m->mutable_labels())[k] = v;
  m->set_name(statefulClaimName(set, tmpl, ordinal));
  m->set_namespace_(set.metadata().namespace_());
  *claim.mutable_spec() = tmpl.spec();
  if (set.spec().persistent_volume_claim_retention_policy().when_deleted() == "Delete") {
    auto ref = makeControllerRef(set.metadata(), typeOf<StatefulSet>());
    ref.clear_controller();
    *m->add_owner_references() = ref;
  }
  return claim;
}

ControllerRevision revisionFor(const StatefulSet& set, int64_t number) {
  const std::string name = statefulSetRevision(set);
  return makeRevision(set.metadata(), typeOf<StatefulSet>(), set.spec().template_(),
                      name.substr(set.metadata().name().size() + 1), number);
}

PodOwnerResult reconcileStatefulSet(const StatefulSetInput& input) {
  PodOwnerResult result;
  const StatefulSet& set = *input.set;
  const auto& meta = set.metadata();
  const auto& spec = set.spec();
  const std::string key = meta.namespace_() + "/" + meta.name();
  std::string selector_error;
  auto selector = api::labels::Selector::tryFromProto(
      spec.has_selector() ? &spec.selector() : nullptr, &selector_error, "spec.selector");
  if (!selector || selector->empty()) {
    result.warning_reason = "InvalidSelector";
    result.warning = "StatefulSet " + key + ": " +
                     (selector ? "spec.selector: Invalid value: empty selector is invalid for a "
                                 "StatefulSet"
                               : selector_error);
    return result;
  }
  if (!selector->matches(spec.template_().metadata().labels())) {
    result.warning_reason = "InvalidSelector";
    result.warning = "StatefulSet " + key +
                     ": spec.template.metadata.labels: Invalid value: `selector` does not match "
                     "template `labels`";
    return result;
  }
  if (meta.has_deletion_timestamp()) return result;

  const int32_t replicas = spec.has_replicas() ? std::max(0, spec.replicas()) : 1;
  const int32_t start = spec.has_ordinals() ? std::max(0, spec.ordinals().start()) : 0;
  const bool monotonic = spec.pod_management_policy() != "Parallel";
  const std::string update_revision = statefulSetRevision(set);
  const std::string current_revision =
      set.status().current_revision().empty() ? update_revision : set.status().current_revision();

  std::vector<const Pod*> slots(replicas, nullptr);
  std::map<int, const Pod*, std::greater<>> condemned;  // highest ordinal first
  std::vector<const Pod*> owned;
  for (const Pod* pod : input.pods) {
    const auto* ref = controllerOf(pod->metadata());
    if (ref == nullptr || ref->uid() != meta.uid()) continue;
    int ordinal = ordinalOf(meta.name(), pod->metadata().name());
    if (ordinal < 0) continue;
    owned.push_back(pod);
    if (ordinal >= start && ordinal < start + replicas) {
      slots[ordinal - start] = pod;
    } else {
      condemned[ordinal] = pod;
    }
  }

  // Status from the pods as they are (the writes below show up in the next sync).
  api::apps::v1::StatefulSetStatus status = set.status();
  int32_t count = 0, ready = 0, available = 0, current = 0, updated = 0;
  for (const Pod* pod : owned) {
    ++count;
    if (isHealthy(*pod)) {
      ++ready;
      if (isPodAvailable(*pod, spec.min_ready_seconds(), input.now)) {
        ++available;
      } else if (spec.min_ready_seconds() > 0) {
        const auto* c = podCondition(*pod, "Ready");
        Timestamp at = addSeconds(toTimestamp(c->last_transition_time()), spec.min_ready_seconds());
        result.requeueAfter(std::chrono::milliseconds(millisBetween(input.now, at) + 1));
      }
    }
    if (!isTerminating(*pod)) {
      if (revisionOf(*pod) == current_revision) ++current;
      if (revisionOf(*pod) == update_revision) ++updated;
    }
  }
  status.set_observed_generation(meta.generation());
  status.set_replicas(count);
  status.set_ready_replicas(ready);
  status.set_available_replicas(available);
  status.set_current_replicas(current);
  status.set_updated_replicas(updated);
  status.set_current_revision(current_revision);
  status.set_update_revision(update_revision);
  const bool rolling =
      spec.update_strategy().type().empty() || spec.update_strategy().type() == "RollingUpdate";
  if (rolling && updated == count && ready == count && count == replicas) {
    // The rollout finished (completeRollingUpdate).
    status.set_current_revision(update_revision);
    status.set_current_replicas(updated);
  }
  auto writeStatus = [&] {
    if (!google::protobuf::util::MessageDifferencer::Equals(status, set.status())) {
      auto copy = std::make_shared<StatefulSet>(set);
      *copy->mutable_status() = status;
      addStatusUpdate(result, std::move(copy));
    }
  };
  // History (realizeRevisions / truncateHistory).
  std::set<std::string> live;
  for (const Pod* pod : owned)
    live.insert(revisionOf(*pod));
  RevisionSync history = syncRevisions(
      meta, typeOf<StatefulSet>(), spec.template_(), update_revision.substr(meta.name().size() + 1),
      current_revision, input.revisions, live,
      spec.has_revision_history_limit() ? spec.revision_history_limit() : 10, result);
  if (!history.collision.empty()) {
    result.warning_reason = "RevisionNameCollision";
    result.warning = "StatefulSet " + key + ": " + history.collision;
    result.actions.clear();
    return result;
  }
  const ControllerRevision* current_cr = history.current;
  const size_t revision_actions = result.actions.size();
  // Pods below the partition are recreated at the current revision, from its template.
  api::core::v1::PodTemplateSpec current_template = spec.template_();
  if (current_revision != update_revision && current_cr != nullptr &&
      !templateOfRevision(*current_cr, current_template)) {
    current_template = spec.template_();
  }
  int32_t partition = 0;
  if (spec.update_strategy().has_rolling_update()) {
    partition = std::max(0, spec.update_strategy().rolling_update().partition());
  }
  auto podFor = [&](int ordinal) {
    if (rolling && current_revision != update_revision && current_cr != nullptr &&
        ordinal < start + partition) {
      return statefulPodFor(set, ordinal, current_revision, current_template);
    }
    return statefulPodFor(set, ordinal, update_revision, spec.template_());
  };

  // Claims (createPersistentVolumeClaims and the retention policy's owner references).
  std::map<std::string, const PersistentVolumeClaim*> claims;
  for (const PersistentVolumeClaim* c : input.claims)
    claims[c->metadata().name()] = c;
  const auto& retention = spec.persistent_volume_claim_retention_policy();
  auto claimAction = [&](Action::Verb verb, const PersistentVolumeClaim& claim) {
    Action a;
    a.verb = verb;
    a.type = &typeOf<PersistentVolumeClaim>();
    a.ns = claim.metadata().namespace_();
    a.name = claim.metadata().name();
    a.object = std::make_shared<PersistentVolumeClaim>(claim);
    result.actions.push_back(std::move(a));
  };
  // The claims of `ordinal` the cache lacks are created (before its pod).
  auto createClaims = [&](int ordinal) {
    for (const auto& tmpl : spec.volume_claim_templates()) {
      const std::string name = statefulClaimName(set, tmpl, ordinal);
      if (claims.contains(name)) continue;
      claimAction(Action::Verb::kCreate, statefulClaimFor(set, tmpl, ordinal));
      result.actions.back().event_reason = "SuccessfulCreate";
      result.actions.back().event_message = "create Claim " + name + " Pod " + meta.name() + "-" +
                                            std::to_string(ordinal) + " in StatefulSet " +
                                            meta.name() + " success";
    }
  };
  // Sets (or clears) one owner reference on an existing claim; true when it wrote. A claim
  // written twice in one sync carries both changes in the second write.
  std::map<std::string, PersistentVolumeClaim> written;
  auto ownClaim = [&](const PersistentVolumeClaim& cached, const std::string& uid,
                      const api::meta::v1::OwnerReference* wanted) {
    PersistentVolumeClaim& copy =
        written.try_emplace(cached.metadata().name(), cached).first->second;
    const auto& refs = copy.metadata().owner_references();
    bool has = std::any_of(refs.begin(), refs.end(), [&](const auto& r) { return r.uid() == uid; });
    if (has == (wanted != nullptr)) return false;
    auto* out = copy.mutable_metadata()->mutable_owner_references();
    if (wanted != nullptr) {
      *out->Add() = *wanted;
    } else {
      for (int i = out->size() - 1; i >= 0; --i) {
        if (out->Get(i).uid() == uid) out->DeleteSubrange(i, 1);
      }
    }
    claimAction(Action::Verb::kUpdate, copy);
    return true;
  };
  // whenDeleted: the set owns every claim of its templates (or none of them).
  {
    api::meta::v1::OwnerReference set_ref = makeControllerRef(meta, typeOf<StatefulSet>());
    set_ref.clear_controller();
    const bool delete_with_set = retention.when_deleted() == "Delete";
    for (const PersistentVolumeClaim* c : input.claims) {
      for (const auto& tmpl : spec.volume_claim_templates()) {
        if (ordinalOf(tmpl.metadata().name() + "-" + meta.name(), c->metadata().name()) < 0)
          continue;
        ownClaim(*c, meta.uid(), delete_with_set ? &set_ref : nullptr);
        // A claim of an ordinal the set keeps loses the reference to its pod that whenScaled
        // Delete gave it when the ordinal was condemned (the set scaled back up): it stays.
        const int ordinal =
            ordinalOf(tmpl.metadata().name() + "-" + meta.name(), c->metadata().name());
        if (ordinal >= start && ordinal < start + replicas) {
          const std::string pod_name = meta.name() + "-" + std::to_string(ordinal);
          auto latest = written.find(c->metadata().name());
          const auto& refs = (latest != written.end() ? latest->second : *c).metadata();
          std::vector<std::string> pod_uids;
          for (const auto& r : refs.owner_references()) {
            if (r.kind() == "Pod" && r.name() == pod_name) pod_uids.push_back(r.uid());
          }
          for (const auto& uid : pod_uids)
            ownClaim(*c, uid, nullptr);
        }
        break;
      }
    }
  }

  if (!input.expectations_satisfied) {
    writeStatus();
    return result;
  }

  // 1. Replace finished pods and create missing ones, in ordinal order.
  bool blocked = false;
  for (int i = 0; i < replicas && !blocked; ++i) {
    const Pod* pod = slots[i];
    const int ordinal = start + i;
    if (pod != nullptr && isPodTerminal(*pod) && !isTerminating(*pod)) {
      result.event(
          "Normal", "RecreatingTerminatedPod",
          "StatefulSet " + key + " is recreating terminated Pod " + pod->metadata().name());
      addPodDelete(result, *pod);
      blocked = monotonic;
      continue;
    }
    if (pod == nullptr) {
      createClaims(ordinal);
      addPodCreate(result, podFor(ordinal));
      result.actions.back().event_message = "create Pod " + meta.name() + "-" +
                                            std::to_string(ordinal) + " in StatefulSet " +
                                            meta.name() + " successful";
      blocked = monotonic;
      continue;
    }
    createClaims(ordinal);  // a pod whose claims went missing gets them again
    if (monotonic && !isHealthy(*pod)) blocked = true;  // wait for it to be Running and Ready
  }
  // 2. Scale down from the highest ordinal.
  for (const auto& [ordinal, pod] : condemned) {
    if (blocked) break;
    if (isTerminating(*pod)) {
      blocked = monotonic;
      continue;
    }
    // whenScaled Delete: the condemned pod owns its claims, which go with it.
    if (retention.when_scaled() == "Delete") {
      api::meta::v1::OwnerReference pod_ref;
      pod_ref.set_api_version("v1");
      pod_ref.set_kind("Pod");
      pod_ref.set_name(pod->metadata().name());
      pod_ref.set_uid(pod->metadata().uid());
      for (const auto& tmpl : spec.volume_claim_templates()) {
        auto it = claims.find(statefulClaimName(set, tmpl, ordinal));
        if (it != claims.end()) ownClaim(*it->second, pod->metadata().uid(), &pod_ref);
      }
    }
    addPodDelete(result, *pod);
    result.actions.back().event_message =
        "delete Pod " + pod->metadata().name() + " in StatefulSet " + meta.name() + " successful";
    blocked = monotonic;
  }
  // 3. Rolling update from the highest ordinal down to the partition, one pod at a time, once
  // every pod is there and healthy.
  if (rolling && !blocked && result.actions.size() == revision_actions) {
    bool all_healthy = std::all_of(slots.begin(), slots.end(),
                                   [](const Pod* p) { return p != nullptr && isHealthy(*p); });
    for (int i = replicas - 1; all_healthy && i >= partition; --i) {
      const Pod* pod = slots[i];
      if (revisionOf(*pod) != update_revision) {
        addPodDelete(result, *pod);
        result.actions.back().event_message = "delete Pod " + pod->metadata().name() +
                                              " in StatefulSet " + meta.name() + " successful";
        break;
      }
    }
  }
  writeStatus();
  return result;
}

}  // namespace skiff::controllers

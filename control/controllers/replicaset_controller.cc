#include "control/controllers/replicaset_controller.h"

#include "control/api/selector.h"

namespace skiff::controllers {

using api::apps::v1::ReplicaSet;
using api::core::v1::Pod;

ReplicaSetController::ReplicaSetController(client::Client& client,
                                           client::SharedInformer& replica_sets,
                                           client::SharedInformer& pods, EventRecorder* events,
                                           int burst_replicas)
    : QueueController("replicaset"),
      client_(client),
      replica_sets_(replica_sets),
      pods_(pods),
      events_(events),
      burst_(burst_replicas) {
  replica_sets_.addEventHandler({
      .on_add = [this](const client::ObjectPtr& o) { enqueue(client::objectKey(*o)); },
      .on_update = [this](const client::ObjectPtr&,
                          const client::ObjectPtr& o) { enqueue(client::objectKey(*o)); },
      .on_delete =
          [this](const client::ObjectPtr& o) {
            std::string key = client::objectKey(*o);
            expectations_.remove(key);
            enqueue(key);
          },
  });
  pods_.addEventHandler({
      .on_add = [this](const client::ObjectPtr& o) { onPodAdd(o); },
      .on_update = [this](const client::ObjectPtr& a,
                          const client::ObjectPtr& b) { onPodUpdate(a, b); },
      .on_delete = [this](const client::ObjectPtr& o) { onPodDelete(o); },
  });
}

ReplicaSetController::~ReplicaSetController() {
  stop();
}

std::string ReplicaSetController::ownerKey(const api::meta::v1::ObjectMeta& meta) const {
  const auto* ref = controllerOf(meta);
  if (ref == nullptr || ref->kind() != "ReplicaSet") return {};
  auto rs = replica_sets_.cache().get(meta.namespace_(), ref->name());
  if (!rs || client::as<ReplicaSet>(rs).metadata().uid() != ref->uid()) return {};
  return meta.namespace_() + "/" + ref->name();
}

void ReplicaSetController::enqueueMatching(const Pod& pod) {
  for (const auto& obj :
       replica_sets_.cache().byIndex(client::kIndexNamespace, pod.metadata().namespace_())) {
    const auto& rs = client::as<ReplicaSet>(obj);
    auto selector = api::labels::Selector::tryFromProto(
        rs.spec().has_selector() ? &rs.spec().selector() : nullptr);
    if (selector && !selector->empty() && selector->matches(pod.metadata().labels())) {
      enqueue(client::objectKey(rs));
    }
  }
}

void ReplicaSetController::onPodAdd(const client::ObjectPtr& obj) {
  const auto& pod = client::as<Pod>(obj);
  if (pod.metadata().has_deletion_timestamp()) {
    onPodDelete(obj);
    return;
  }
  if (controllerOf(pod.metadata()) != nullptr) {
    std::string key = ownerKey(pod.metadata());
    if (key.empty()) return;
    expectations_.creationObserved(key);
    enqueue(key);
    return;
  }
  enqueueMatching(pod);
}

void ReplicaSetController::onPodUpdate(const client::ObjectPtr& old_obj,
                                       const client::ObjectPtr& new_obj) {
  const auto& old_pod = client::as<Pod>(old_obj);
  const auto& pod = client::as<Pod>(new_obj);
  if (old_pod.metadata().resource_version() == pod.metadata().resource_version()) return;
  if (pod.metadata().has_deletion_timestamp() && !old_pod.metadata().has_deletion_timestamp()) {
    // Being deleted is as good as deleted for the count (Kubernetes does the same).
    onPodDelete(new_obj);
    return;
  }
  std::string old_key = ownerKey(old_pod.metadata());
  std::string key = ownerKey(pod.metadata());
  if (!old_key.empty() && old_key != key) enqueue(old_key);
  if (!key.empty()) {
    enqueue(key);
    return;
  }
  if (controllerOf(pod.metadata()) == nullptr) enqueueMatching(pod);
}

void ReplicaSetController::onPodDelete(const client::ObjectPtr& obj) {
  const auto& pod = client::as<Pod>(obj);
  std::string key = ownerKey(pod.metadata());
  if (key.empty()) return;
  expectations_.deletionObserved(key, client::objectKey(pod));
  enqueue(key);
}

std::optional<std::chrono::milliseconds> ReplicaSetController::sync(const std::string& key) {
  auto obj = replica_sets_.cache().get(key);
  if (!obj) {
    expectations_.remove(key);
    std::lock_guard lock(mu_);
    errors_.erase(key);
    return std::nullopt;
  }
  const auto& rs = client::as<ReplicaSet>(obj);
  auto pod_objs = pods_.cache().byIndex(client::kIndexNamespace, rs.metadata().namespace_());
  ReplicaSetInput in;
  in.rs = &rs;
  in.pods.reserve(pod_objs.size());
  for (const auto& p : pod_objs)
    in.pods.push_back(&client::as<Pod>(p));
  in.now = api::now();
  in.expectations_satisfied = expectations_.satisfied(key);
  in.burst_replicas = burst_;
  {
    std::lock_guard lock(mu_);
    auto it = errors_.find(key);
    if (it != errors_.end()) {
      in.manage_error_reason = it->second.first;
      in.manage_error = it->second.second;
    }
  }
  ReplicaSetResult result = reconcileReplicaSet(in);
  if (!result.warning.empty()) {
    if (events_ != nullptr) {
      events_->record(typeOf<ReplicaSet>(), rs, "Warning", result.warning_reason, result.warning);
    }
    return std::nullopt;
  }
  if (result.creates > 0) expectations_.expectCreations(key, result.creates);
  if (!result.deleted_pod_keys.empty()) {
    expectations_.expectDeletions(key, result.deleted_pod_keys);
  }

  ActionRunner runner(client_, events_);
  std::string failure_reason, failure;
  int created_or_skipped = 0;
  int current_batch = -1;
  bool batch_failed = false;
  std::exception_ptr first_error;
  for (const Action& a : result.actions) {
    if (a.verb == Action::Verb::kCreate) {
      if (a.batch != current_batch) {
        if (batch_failed) break;  // slow start: stop after a batch with a failure
        current_batch = a.batch;
      }
      ++created_or_skipped;
      try {
        runner.run(a, &rs, &typeOf<ReplicaSet>());
      } catch (const std::exception& e) {
        expectations_.creationObserved(key);  // it will never be seen
        batch_failed = true;
        failure_reason = "FailedCreate";
        failure = e.what();
        if (events_ != nullptr) {
          events_->record(typeOf<ReplicaSet>(), rs, "Warning", "FailedCreate",
                          "Error creating: " + failure);
        }
        if (!first_error) first_error = std::current_exception();
      }
      continue;
    }
    try {
      runner.run(a, &rs, &typeOf<ReplicaSet>());
    } catch (const client::ApiError& e) {
      if (a.verb == Action::Verb::kDelete) {
        expectations_.deletionObserved(key, a.ns + "/" + a.name);
        if (e.isNotFound()) continue;  // already gone: what we wanted
        failure_reason = "FailedDelete";
        failure = e.what();
      }
      if (!first_error) first_error = std::current_exception();
    } catch (const std::exception&) {
      if (a.verb == Action::Verb::kDelete) expectations_.deletionObserved(key, a.ns + "/" + a.name);
      if (!first_error) first_error = std::current_exception();
    }
  }
  // Creates never attempted will never be observed either.
  for (int i = created_or_skipped; i < result.creates; ++i)
    expectations_.creationObserved(key);
  {
    std::lock_guard lock(mu_);
    if (!failure.empty()) {
      errors_[key] = {failure_reason, failure};
    } else if (!first_error) {
      errors_.erase(key);
    }
  }
  if (first_error) std::rethrow_exception(first_error);
  return result.requeue_after;
}

}  // namespace skiff::controllers

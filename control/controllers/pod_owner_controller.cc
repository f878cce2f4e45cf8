#include "control/controllers/pod_owner_controller.h"

#include "control/controllers/garbage_collector.h"

namespace skiff::controllers {

using api::core::v1::Pod;

void addPodCreate(PodOwnerResult& result, const Pod& pod, int batch) {
  Action a;
  a.verb = Action::Verb::kCreate;
  a.type = &typeOf<Pod>();
  a.ns = pod.metadata().namespace_();
  a.name = pod.metadata().name();
  a.object = std::make_shared<Pod>(pod);
  a.batch = batch;
  a.event_reason = "SuccessfulCreate";
  // The shell appends the generated name when the pod has none.
  a.event_message = "Created pod: " + pod.metadata().name();
  result.actions.push_back(std::move(a));
  ++result.creates;
}

void addPodDelete(PodOwnerResult& result, const Pod& pod) {
  const auto& pm = pod.metadata();
  Action a;
  a.verb = Action::Verb::kDelete;
  a.type = &typeOf<Pod>();
  a.ns = pm.namespace_();
  a.name = pm.name();
  a.precondition_uid = pm.uid();
  a.event_reason = "SuccessfulDelete";
  a.event_message = "Deleted pod: " + pm.name();
  result.actions.push_back(std::move(a));
  result.deleted_pod_keys.push_back(pm.namespace_() + "/" + pm.name());
}

void addStatusUpdate(PodOwnerResult& result, std::shared_ptr<google::protobuf::Message> object) {
  const auto& meta = metaOf(*object);
  Action a;
  a.verb = Action::Verb::kUpdateStatus;
  a.type = api::Registry::builtin().byDescriptor(object->GetDescriptor());
  a.ns = meta.namespace_();
  a.name = meta.name();
  a.object = std::move(object);
  result.actions.push_back(std::move(a));
}

PodOwnerController::PodOwnerController(std::string name, const api::ResourceType& owner_type,
                                       client::Client& client, client::SharedInformer& owners,
                                       client::SharedInformer& pods, client::EventRecorder* events)
    : QueueController(std::move(name)),
      client_(client),
      owners_(owners),
      pods_(pods),
      events_(events),
      owner_type_(owner_type) {
  owners_.addEventHandler({
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

PodOwnerController::~PodOwnerController() {
  stop();
}

void PodOwnerController::enqueueAll() {
  for (const auto& key : owners_.cache().keys())
    enqueue(key);
}

void PodOwnerController::watchOwned(client::SharedInformer& informer) {
  auto onChange = [this](const client::ObjectPtr& o) {
    std::string key = ownerKey(metaOf(*o));
    if (!key.empty()) enqueue(key);
  };
  informer.addEventHandler({
      .on_add = onChange,
      .on_update = [onChange](const client::ObjectPtr&,
                              const client::ObjectPtr& o) { onChange(o); },
      .on_delete = onChange,
  });
}

bool PodOwnerController::adopts(const google::protobuf::Message&, const Pod&) const {
  return false;
}

ManageError PodOwnerController::manageError(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = manage_errors_.find(key);
  return it == manage_errors_.end() ? ManageError{} : it->second;
}

void PodOwnerController::enqueueAdopters(const Pod& pod) {
  for (const auto& owner :
       owners_.cache().byIndex(client::kIndexNamespace, pod.metadata().namespace_())) {
    if (adopts(*owner, pod)) enqueue(client::objectKey(*owner));
  }
}

std::string PodOwnerController::ownerKey(const api::meta::v1::ObjectMeta& meta) const {
  const auto* ref = controllerOf(meta);
  if (ref == nullptr || ref->kind() != owner_type_.kind) return {};
  auto owner = owners_.cache().get(meta.namespace_(), ref->name());
  if (!owner || metaOf(*owner).uid() != ref->uid()) return {};
  return meta.namespace_() + "/" + ref->name();
}

void PodOwnerController::onPodAdd(const client::ObjectPtr& obj) {
  const auto& pod = client::as<Pod>(obj);
  if (pod.metadata().has_deletion_timestamp()) {
    onPodDelete(obj);
    return;
  }
  if (controllerOf(pod.metadata()) == nullptr) {
    enqueueAdopters(pod);
    return;
  }
  std::string key = ownerKey(pod.metadata());
  if (key.empty()) return;
  expectations_.creationObserved(key);
  enqueue(key);
}

void PodOwnerController::onPodUpdate(const client::ObjectPtr& old_obj,
                                     const client::ObjectPtr& new_obj) {
  const auto& old_pod = client::as<Pod>(old_obj);
  const auto& pod = client::as<Pod>(new_obj);
  if (old_pod.metadata().resource_version() == pod.metadata().resource_version()) return;
  if (pod.metadata().has_deletion_timestamp() && !old_pod.metadata().has_deletion_timestamp()) {
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
  if (controllerOf(pod.metadata()) == nullptr) enqueueAdopters(pod);
}

void PodOwnerController::onPodDelete(const client::ObjectPtr& obj) {
  const auto& pod = client::as<Pod>(obj);
  std::string key = ownerKey(pod.metadata());
  if (key.empty()) return;
  expectations_.deletionObserved(key, client::objectKey(pod));
  enqueue(key);
}

std::optional<std::chrono::milliseconds> PodOwnerController::sync(const std::string& key) {
  auto owner = owners_.cache().get(key);
  if (!owner) {
    expectations_.remove(key);
    std::lock_guard lock(mu_);
    manage_errors_.erase(key);
    return std::nullopt;
  }
  const auto& meta = metaOf(*owner);
  // Expectations before the list (as Kubernetes' syncReplicaSet): a pod seen between the two
  // would otherwise satisfy them without being in the list, and be created twice.
  const bool satisfied = expectations_.satisfied(key);
  auto pod_objs = pods_.cache().byIndex(client::kIndexNamespace, meta.namespace_());
  std::vector<const Pod*> pods;
  pods.reserve(pod_objs.size());
  for (const auto& p : pod_objs)
    pods.push_back(&client::as<Pod>(p));
  PodOwnerResult result = reconcile(*owner, pods, satisfied);
  if (!result.warning.empty()) {
    if (events_ != nullptr) {
      events_->record(owner_type_, *owner, "Warning", result.warning_reason, result.warning);
    }
    return std::nullopt;
  }
  if (result.creates > 0) expectations_.expectCreations(key, result.creates);
  if (!result.deleted_pod_keys.empty()) {
    expectations_.expectDeletions(key, result.deleted_pod_keys);
  }

  ActionRunner runner(client_, events_);
  int attempted_creates = 0;
  bool batch_failed = false;
  bool conflict = false;
  ManageError failure;
  std::exception_ptr first_error;
  auto isPodCreate = [](const Action& a) {
    return a.verb == Action::Verb::kCreate && a.type->kind == "Pod";
  };
  const auto& actions = result.actions;
  for (size_t i = 0; i < actions.size();) {
    const Action& a = actions[i];
    if (isPodCreate(a)) {
      // One slow-start batch: the pod creates that follow with the same batch number.
      size_t end = i + 1;
      while (end < actions.size() && isPodCreate(actions[end]) && actions[end].batch == a.batch)
        ++end;
      const size_t begin = i;
      i = end;
      if (batch_failed) continue;  // slow start: nothing after a batch with a failure
      const int count = static_cast<int>(end - begin);
      attempted_creates += count;
      ParallelResult batch = runParallel(count, max_parallel_creates_, [&](int k) {
        try {
          runner.run(actions[begin + static_cast<size_t>(k)], owner.get(), &owner_type_);
        } catch (const std::exception& e) {
          expectations_.creationObserved(key);  // it will never be seen
          if (events_ != nullptr) {
            events_->record(owner_type_, *owner, "Warning", "FailedCreate",
                            std::string("Error creating: ") + e.what());
          }
          throw;
        }
      });
      if (batch.failures > 0) {
        batch_failed = true;
        if (!first_error) first_error = batch.first_error;
        try {
          std::rethrow_exception(batch.first_error);
        } catch (const std::exception& e) {
          failure = {"FailedCreate", e.what()};
        } catch (...) {
          failure = {"FailedCreate", "unknown error"};
        }
      }
      continue;
    }
    ++i;
    if (batch_failed && !writes_after_failed_creates_) {
      // What follows the creates (status) would describe them as made: retry instead.
      if (a.verb == Action::Verb::kDelete) expectations_.deletionObserved(key, a.ns + "/" + a.name);
      continue;
    }
    try {
      runner.run(a, owner.get(), &owner_type_);
    } catch (const client::ApiError& e) {
      if (a.verb == Action::Verb::kCreate && e.isAlreadyExists()) continue;  // made earlier
      if ((a.verb == Action::Verb::kUpdate || a.verb == Action::Verb::kUpdateStatus) &&
          e.isConflict()) {
        // Written from a stale cache: the informer brings the newer version (and enqueues us).
        ++conflicts_;
        conflict = true;
        continue;
      }
      if (a.verb == Action::Verb::kDelete) {
        expectations_.deletionObserved(key, a.ns + "/" + a.name);
        if (e.isNotFound()) continue;  // already gone: what we wanted
        failure = {"FailedDelete", e.what()};
        if (events_ != nullptr) {
          events_->record(owner_type_, *owner, "Warning", "FailedDelete",
                          std::string("Error deleting: ") + e.what());
        }
      }
      if (!first_error) first_error = std::current_exception();
    } catch (const std::exception&) {
      if (a.verb == Action::Verb::kDelete) expectations_.deletionObserved(key, a.ns + "/" + a.name);
      if (!first_error) first_error = std::current_exception();
    }
  }
  for (int i = attempted_creates; i < result.creates; ++i)
    expectations_.creationObserved(key);
  {
    std::lock_guard lock(mu_);
    if (!failure.reason.empty()) {
      manage_errors_[key] = failure;
    } else if (!first_error) {
      manage_errors_.erase(key);
    }
  }
  if (first_error) std::rethrow_exception(first_error);
  if (events_ != nullptr) {
    for (const auto& [type, reason, message] : result.events)
      events_->record(owner_type_, *owner, type, reason, message);
  }
  if (conflict) result.requeueAfter(kConflictRequeue);
  return result.requeue_after;
}

}  // namespace skiff::controllers

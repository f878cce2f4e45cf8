#include "control/controllers/deployment_controller.h"

#include "control/api/selector.h"

namespace skiff::controllers {

using api::apps::v1::Deployment;
using api::apps::v1::ReplicaSet;
using api::core::v1::Pod;

DeploymentController::DeploymentController(client::Client& client,
                                           client::SharedInformer& deployments,
                                           client::SharedInformer& replica_sets,
                                           client::SharedInformer& pods,
                                           client::EventRecorder* events)
    : QueueController("deployment"),
      client_(client),
      deployments_(deployments),
      replica_sets_(replica_sets),
      pods_(pods),
      events_(events) {
  deployments_.addEventHandler({
      .on_add = [this](const client::ObjectPtr& o) { enqueue(client::objectKey(*o)); },
      .on_update = [this](const client::ObjectPtr&,
                          const client::ObjectPtr& o) { enqueue(client::objectKey(*o)); },
      .on_delete = [this](const client::ObjectPtr& o) { enqueue(client::objectKey(*o)); },
  });
  replica_sets_.addEventHandler({
      .on_add = [this](const client::ObjectPtr& o) { onReplicaSet(o); },
      .on_update =
          [this](const client::ObjectPtr& a, const client::ObjectPtr& b) {
            const auto& old_meta = client::as<ReplicaSet>(a).metadata();
            const auto* old_ref = controllerOf(old_meta);
            const auto* new_ref = controllerOf(client::as<ReplicaSet>(b).metadata());
            if (old_ref != nullptr && (new_ref == nullptr || new_ref->uid() != old_ref->uid())) {
              enqueueOwner(old_meta);
            }
            onReplicaSet(b);
          },
      .on_delete = [this](const client::ObjectPtr& o) { onReplicaSet(o); },
  });
  // Recreate waits for the old pods to be gone.
  pods_.addEventHandler({
      .on_delete =
          [this](const client::ObjectPtr& o) {
            const auto& meta = client::as<Pod>(o).metadata();
            const auto* ref = controllerOf(meta);
            if (ref == nullptr || ref->kind() != "ReplicaSet") return;
            auto rs = replica_sets_.cache().get(meta.namespace_(), ref->name());
            if (rs) enqueueOwner(client::as<ReplicaSet>(rs).metadata());
          },
  });
}

DeploymentController::~DeploymentController() {
  stop();
}

void DeploymentController::enqueueOwner(const api::meta::v1::ObjectMeta& meta) {
  const auto* ref = controllerOf(meta);
  if (ref == nullptr || ref->kind() != "Deployment") return;
  auto d = deployments_.cache().get(meta.namespace_(), ref->name());
  if (!d || client::as<Deployment>(d).metadata().uid() != ref->uid()) return;
  enqueue(meta.namespace_() + "/" + ref->name());
}

void DeploymentController::onReplicaSet(const client::ObjectPtr& obj) {
  const auto& rs = client::as<ReplicaSet>(obj);
  if (controllerOf(rs.metadata()) != nullptr) {
    enqueueOwner(rs.metadata());
    return;
  }
  // An orphan: every Deployment that could adopt it.
  for (const auto& d_obj :
       deployments_.cache().byIndex(client::kIndexNamespace, rs.metadata().namespace_())) {
    const auto& d = client::as<Deployment>(d_obj);
    auto selector = api::labels::Selector::tryFromProto(
        d.spec().has_selector() ? &d.spec().selector() : nullptr);
    if (selector && !selector->empty() && selector->matches(rs.metadata().labels())) {
      enqueue(client::objectKey(d));
    }
  }
}

std::optional<std::chrono::milliseconds> DeploymentController::sync(const std::string& key) {
  auto obj = deployments_.cache().get(key);
  if (!obj) return std::nullopt;
  const auto& d = client::as<Deployment>(obj);
  const std::string& ns = d.metadata().namespace_();
  auto rs_objs = replica_sets_.cache().byIndex(client::kIndexNamespace, ns);
  DeploymentInput in;
  in.deployment = &d;
  for (const auto& r : rs_objs)
    in.replica_sets.push_back(&client::as<ReplicaSet>(r));
  std::vector<client::ObjectPtr> pod_objs;
  if (d.spec().strategy().type() == "Recreate") {
    pod_objs = pods_.cache().byIndex(client::kIndexNamespace, ns);
    for (const auto& p : pod_objs)
      in.pods.push_back(&client::as<Pod>(p));
  }
  in.now = api::now();
  ReconcileResult result = reconcileDeployment(in);
  if (!result.warning.empty() && events_ != nullptr) {
    events_->record(typeOf<Deployment>(), d, "Warning", result.warning_reason, result.warning);
  }
  ActionRunner runner(client_, events_);
  for (const Action& a : result.actions) {
    try {
      runner.run(a, &d, &typeOf<Deployment>());
    } catch (const client::ApiError& e) {
      // A ReplicaSet that exists already: the cache has not caught up; look again shortly.
      if (a.verb == Action::Verb::kCreate && e.isAlreadyExists()) {
        return std::chrono::milliseconds(100);
      }
      if (a.verb == Action::Verb::kDelete && e.isNotFound()) continue;
      if ((a.verb == Action::Verb::kUpdate || a.verb == Action::Verb::kUpdateStatus) &&
          e.isConflict()) {
        // Written from a stale cache (the ReplicaSet controller wrote the status meanwhile): the
        // rest was planned from the same view, so stop here; the informer brings the newer
        // version and enqueues the Deployment, the delay is only a safety net.
        ++conflicts_;
        return kConflictRequeue;
      }
      throw;
    }
  }
  return result.requeue_after;
}

}  // namespace skiff::controllers

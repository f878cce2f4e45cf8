#include "control/controllers/replicaset_controller.h"

#include "control/api/selector.h"

namespace skiff::controllers {

using api::apps::v1::ReplicaSet;
using api::core::v1::Pod;

ReplicaSetController::ReplicaSetController(client::Client& client,
                                           client::SharedInformer& replica_sets,
                                           client::SharedInformer& pods,
                                           client::EventRecorder* events, int burst_replicas)
    : PodOwnerController("replicaset", typeOf<ReplicaSet>(), client, replica_sets, pods, events),
      burst_(burst_replicas) {
  writes_after_failed_creates_ = true;  // the status carries ReplicaFailure
}

ReplicaSetController::~ReplicaSetController() {
  stop();
}

bool ReplicaSetController::adopts(const google::protobuf::Message& owner, const Pod& pod) const {
  const auto& rs = static_cast<const ReplicaSet&>(owner);
  auto selector = api::labels::Selector::tryFromProto(
      rs.spec().has_selector() ? &rs.spec().selector() : nullptr);
  return selector && !selector->empty() && selector->matches(pod.metadata().labels());
}

PodOwnerResult ReplicaSetController::reconcile(const google::protobuf::Message& owner,
                                               const std::vector<const Pod*>& pods,
                                               bool expectations_satisfied) {
  ReplicaSetInput in;
  in.rs = &static_cast<const ReplicaSet&>(owner);
  in.pods = pods;
  in.now = api::now();
  in.expectations_satisfied = expectations_satisfied;
  in.burst_replicas = burst_;
  const auto& meta = in.rs->metadata();
  ManageError error = manageError(meta.namespace_() + "/" + meta.name());
  in.manage_error_reason = std::move(error.reason);
  in.manage_error = std::move(error.message);
  return reconcileReplicaSet(in);
}

}  // namespace skiff::controllers

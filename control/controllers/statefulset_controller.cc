#include "control/controllers/statefulset_controller.h"

namespace skiff::controllers {

StatefulSetController::StatefulSetController(client::Client& client,
                                             client::SharedInformer& stateful_sets,
                                             client::SharedInformer& pods,
                                             client::SharedInformer& revisions,
                                             client::EventRecorder* events,
                                             client::SharedInformer* claims)
    : PodOwnerController("statefulset", typeOf<api::apps::v1::StatefulSet>(), client, stateful_sets,
                         pods, events),
      revisions_(revisions),
      claims_(claims) {
  watchOwned(revisions_);
}

StatefulSetController::~StatefulSetController() {
  stop();
}

PodOwnerResult StatefulSetController::reconcile(const google::protobuf::Message& owner,
                                                const std::vector<const api::core::v1::Pod*>& pods,
                                                bool expectations_satisfied) {
  StatefulSetInput in;
  in.set = &static_cast<const api::apps::v1::StatefulSet&>(owner);
  in.pods = pods;
  auto revision_objs =
      revisions_.cache().byIndex(client::kIndexNamespace, in.set->metadata().namespace_());
  for (const auto& r : revision_objs)
    in.revisions.push_back(&client::as<api::apps::v1::ControllerRevision>(r));
  std::vector<client::ObjectPtr> claim_objs;
  if (claims_ != nullptr) {
    claim_objs = claims_->cache().byIndex(client::kIndexNamespace, in.set->metadata().namespace_());
    for (const auto& c : claim_objs)
      in.claims.push_back(&client::as<api::core::v1::PersistentVolumeClaim>(c));
  }
  in.now = api::now();
  in.expectations_satisfied = expectations_satisfied;
  return reconcileStatefulSet(in);
}

}  // namespace skiff::controllers

#include "control/controllers/statefulset_controller.h"

namespace skiff::controllers {

StatefulSetController::StatefulSetController(client::Client& client,
                                             client::SharedInformer& stateful_sets,
                                             client::SharedInformer& pods, EventRecorder* events)
    : PodOwnerController("statefulset", typeOf<api::apps::v1::StatefulSet>(), client, stateful_sets,
                         pods, events) {}

StatefulSetController::~StatefulSetController() {
  stop();
}

PodOwnerResult StatefulSetController::reconcile(const google::protobuf::Message& owner,
                                                const std::vector<const api::core::v1::Pod*>& pods,
                                                bool expectations_satisfied) {
  StatefulSetInput in;
  in.set = &static_cast<const api::apps::v1::StatefulSet&>(owner);
  in.pods = pods;
  in.now = api::now();
  in.expectations_satisfied = expectations_satisfied;
  return reconcileStatefulSet(in);
}

}  // namespace skiff::controllers

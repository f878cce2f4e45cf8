#pragma once

#include "control/controllers/pod_owner_controller.h"
#include "control/controllers/statefulset.h"

namespace skiff::controllers {

// The StatefulSet controller: reconcileStatefulSet on StatefulSet, Pod, ControllerRevision and
// (for volumeClaimTemplates) PersistentVolumeClaim informers. Without a claims informer every
// claim looks missing and its create is answered AlreadyExists.
class StatefulSetController : public PodOwnerController {
 public:
  StatefulSetController(client::Client& client, client::SharedInformer& stateful_sets,
                        client::SharedInformer& pods, client::SharedInformer& revisions,
                        client::EventRecorder* events = nullptr,
                        client::SharedInformer* claims = nullptr);
  ~StatefulSetController() override;

 protected:
  PodOwnerResult reconcile(const google::protobuf::Message& owner,
                           const std::vector<const api::core::v1::Pod*>& pods,
                           bool expectations_satisfied) override;

 private:
  client::SharedInformer& revisions_;
  client::SharedInformer* claims_;
};

}  // namespace skiff::controllers

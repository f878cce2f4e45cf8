#pragma once

#include "control/controllers/pod_owner_controller.h"
#include "control/controllers/replicaset.h"

namespace skiff::controllers {

// The ReplicaSet controller: reconcileReplicaSet on ReplicaSet and Pod informers, in the shell
// the workload controllers share (expectations, slow-start batches of parallel creates, conflicts
// left to the informer). Orphans whose labels a ReplicaSet's selector matches go to it (adoption).
class ReplicaSetController : public PodOwnerController {
 public:
  ReplicaSetController(client::Client& client, client::SharedInformer& replica_sets,
                       client::SharedInformer& pods, client::EventRecorder* events = nullptr,
                       int burst_replicas = 500);
  ~ReplicaSetController() override;

 protected:
  PodOwnerResult reconcile(const google::protobuf::Message& owner,
                           const std::vector<const api::core::v1::Pod*>& pods,
                           bool expectations_satisfied) override;
  bool adopts(const google::protobuf::Message& owner, const api::core::v1::Pod& pod) const override;

 private:
  int burst_;
};

}  // namespace skiff::controllers

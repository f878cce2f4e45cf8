#pragma once

#include "control/controllers/controller.h"
#include "control/controllers/deployment.h"

namespace skiff::controllers {

// The Deployment controller: reconcileDeployment on Deployment, ReplicaSet and Pod informers.
class DeploymentController : public QueueController {
 public:
  DeploymentController(client::Client& client, client::SharedInformer& deployments,
                       client::SharedInformer& replica_sets, client::SharedInformer& pods,
                       EventRecorder* events = nullptr);
  ~DeploymentController() override;

 protected:
  std::optional<std::chrono::milliseconds> sync(const std::string& key) override;

 private:
  void onReplicaSet(const client::ObjectPtr& obj);
  void enqueueOwner(const api::meta::v1::ObjectMeta& meta);

  client::Client& client_;
  client::SharedInformer& deployments_;
  client::SharedInformer& replica_sets_;
  client::SharedInformer& pods_;
  EventRecorder* events_;
};

}  // namespace skiff::controllers

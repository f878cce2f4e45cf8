#pragma once

#include <atomic>

#include "control/controllers/controller.h"
#include "control/controllers/deployment.h"

namespace skiff::controllers {

// The Deployment controller: reconcileDeployment on Deployment, ReplicaSet and Pod informers.
// A write that loses to a newer version (409 Conflict) ends the sync without an error (no
// backoff): the newer object reaches the informer, which enqueues the Deployment again.
class DeploymentController : public QueueController {
 public:
  // How long after a conflict the Deployment is looked at again if nothing newer arrived.
  static constexpr std::chrono::milliseconds kConflictRequeue{1000};

  DeploymentController(client::Client& client, client::SharedInformer& deployments,
                       client::SharedInformer& replica_sets, client::SharedInformer& pods,
                       client::EventRecorder* events = nullptr);
  ~DeploymentController() override;

  // Writes that lost to a newer version and were left to the next sync.
  uint64_t conflicts() const { return conflicts_; }

 protected:
  std::optional<std::chrono::milliseconds> sync(const std::string& key) override;

 private:
  void onReplicaSet(const client::ObjectPtr& obj);
  void enqueueOwner(const api::meta::v1::ObjectMeta& meta);

  client::Client& client_;
  client::SharedInformer& deployments_;
  client::SharedInformer& replica_sets_;
  client::SharedInformer& pods_;
  client::EventRecorder* events_;
  std::atomic<uint64_t> conflicts_{0};
};

}  // namespace skiff::controllers

#pragma once

#include <map>
#include <mutex>
#include <string>

#include "control/controllers/controller.h"
#include "control/controllers/expectations.h"
#include "control/controllers/replicaset.h"

namespace skiff::controllers {

// The ReplicaSet controller: reconcileReplicaSet on ReplicaSet and Pod informers, with
// expectations and slow-start batches.
class ReplicaSetController : public QueueController {
 public:
  ReplicaSetController(client::Client& client, client::SharedInformer& replica_sets,
                       client::SharedInformer& pods, EventRecorder* events = nullptr,
                       int burst_replicas = 500);
  ~ReplicaSetController() override;

  Expectations& expectations() { return expectations_; }

 protected:
  std::optional<std::chrono::milliseconds> sync(const std::string& key) override;

 private:
  void onPodAdd(const client::ObjectPtr& obj);
  void onPodUpdate(const client::ObjectPtr& old_obj, const client::ObjectPtr& new_obj);
  void onPodDelete(const client::ObjectPtr& obj);
  // The key of the ReplicaSet a controllerRef points at, if it is in the cache with that uid.
  std::string ownerKey(const api::meta::v1::ObjectMeta& meta) const;
  void enqueueMatching(const api::core::v1::Pod& pod);

  client::Client& client_;
  client::SharedInformer& replica_sets_;
  client::SharedInformer& pods_;
  EventRecorder* events_;
  int burst_;
  Expectations expectations_;
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, std::string>> errors_;  // key -> reason, message
};

}  // namespace skiff::controllers

#pragma once

#include <string>
#include <tuple>
#include <vector>

#include "control/controllers/controller.h"
#include "control/controllers/expectations.h"

// The shell the Job, DaemonSet and StatefulSet controllers share: an informer of the owning kind
// and the Pod informer, pod events routed to the owner their controllerRef names (with
// expectations observed), and the run of a pure reconciler's actions (pod creates in slow-start
// batches, deletes, status) with expectations set before and settled for writes that failed.
// Creates of other kinds (ControllerRevisions) are not counted as pods; AlreadyExists for them
// means an earlier sync made them.

namespace skiff::controllers {

// What the workload reconcilers return.
struct PodOwnerResult : ReconcileResult {
  int creates = 0;                            // pod creates asked for
  std::vector<std::string> deleted_pod_keys;  // "ns/name" of pods asked to be deleted
  // Events about the owner to record once the writes went through: {type, reason, message}.
  std::vector<std::tuple<std::string, std::string, std::string>> events;

  void event(std::string type, std::string reason, std::string message) {
    events.emplace_back(std::move(type), std::move(reason), std::move(message));
  }
};

// The actions that create `pod` (batch `batch`) and delete `pod`, recorded in `result`.
void addPodCreate(PodOwnerResult& result, const api::core::v1::Pod& pod, int batch = 0);
void addPodDelete(PodOwnerResult& result, const api::core::v1::Pod& pod);
// A status write of `object` (a copy with its new status).
void addStatusUpdate(PodOwnerResult& result, std::shared_ptr<google::protobuf::Message> object);
// Slow-start batch numbers for `n` creates: 0, 1, 1, 2, 2, 2, 2, ...
int slowStartBatch(int index);

class PodOwnerController : public QueueController {
 public:
  // `owner_type` is the kind pods name in their controllerRef.
  PodOwnerController(std::string name, const api::ResourceType& owner_type, client::Client& client,
                     client::SharedInformer& owners, client::SharedInformer& pods,
                     EventRecorder* events);
  ~PodOwnerController() override;

  Expectations& expectations() { return expectations_; }

 protected:
  // The pure reconcile of one owner against the cached pods of its namespace.
  virtual PodOwnerResult reconcile(const google::protobuf::Message& owner,
                                   const std::vector<const api::core::v1::Pod*>& pods,
                                   bool expectations_satisfied) = 0;
  std::optional<std::chrono::milliseconds> sync(const std::string& key) override;
  // Enqueues every owner in the cache (a Node changed, for DaemonSets).
  void enqueueAll();
  // Enqueues the owner (by controllerRef) of every object of `informer` that changes
  // (ControllerRevisions, for StatefulSets).
  void watchOwned(client::SharedInformer& informer);

  client::Client& client_;
  client::SharedInformer& owners_;
  client::SharedInformer& pods_;
  EventRecorder* events_;

 private:
  void onPodAdd(const client::ObjectPtr& obj);
  void onPodUpdate(const client::ObjectPtr& old_obj, const client::ObjectPtr& new_obj);
  void onPodDelete(const client::ObjectPtr& obj);
  // The key of the owner a controllerRef points at, if it is in the cache with that uid.
  std::string ownerKey(const api::meta::v1::ObjectMeta& meta) const;

  const api::ResourceType& owner_type_;
  Expectations expectations_;
};

}  // namespace skiff::controllers

#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "control/controllers/controller.h"
#include "control/controllers/expectations.h"
#include "control/controllers/slow_start.h"

// The shell the ReplicaSet, Job, DaemonSet and StatefulSet controllers share: an informer of the
// owning kind and the Pod informer, pod events routed to the owner their controllerRef names
// (with expectations observed) or, for orphans, to every owner that would adopt them, and the run
// of a pure reconciler's actions with expectations set before and settled for writes that failed:
// - pod creates in slow-start batches (Action::batch), each batch in parallel (runParallel, at
//   most max_parallel_creates at once); after a batch with a failure nothing more is sent;
// - a write that loses to a newer version (409 Conflict, e.g. the Deployment controller scaled the
//   ReplicaSet while its status was being written) is not retried with backoff: the informer
//   brings the newer object, which enqueues the owner again, and the next sync starts from it;
// - the last sync's failed create or delete is handed to the next reconcile (manageError) so it
//   can report it in a condition (ReplicaFailure).
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
// The last sync's failed pod create or delete of an owner.
struct ManageError {
  std::string reason;  // "FailedCreate" or "FailedDelete"; "" = none
  std::string message;
};

class PodOwnerController : public QueueController {
 public:
  // Pod creates of one slow-start batch in flight at once (Kubernetes starts a goroutine per pod
  // of a batch; the REST client keeps 16 connections alive).
  static constexpr int kDefaultMaxParallelCreates = 16;
  // How long after a conflict the owner is looked at again if no newer version arrived meanwhile.
  static constexpr std::chrono::milliseconds kConflictRequeue{1000};

  // `owner_type` is the kind pods name in their controllerRef.
  PodOwnerController(std::string name, const api::ResourceType& owner_type, client::Client& client,
                     client::SharedInformer& owners, client::SharedInformer& pods,
                     client::EventRecorder* events);
  ~PodOwnerController() override;

  Expectations& expectations() { return expectations_; }
  void setMaxParallelCreates(int n) { max_parallel_creates_ = n < 1 ? 1 : n; }
  // Writes that lost to a newer version and were left to the next sync.
  uint64_t conflicts() const { return conflicts_; }

 protected:
  // The pure reconcile of one owner against the cached pods of its namespace.
  virtual PodOwnerResult reconcile(const google::protobuf::Message& owner,
                                   const std::vector<const api::core::v1::Pod*>& pods,
                                   bool expectations_satisfied) = 0;
  std::optional<std::chrono::milliseconds> sync(const std::string& key) override;
  // Whether `owner` would adopt the orphan `pod` (its selector matches): orphans' events go to such
  // owners. The default adopts nothing.
  virtual bool adopts(const google::protobuf::Message& owner, const api::core::v1::Pod& pod) const;
  // The failed create or delete of the last sync of `key` (empty reason = none).
  ManageError manageError(const std::string& key) const;
  // Enqueues every owner in the cache (a Node changed, for DaemonSets).
  void enqueueAll();
  // Enqueues the owner (by controllerRef) of every object of `informer` that changes
  // (ControllerRevisions, for StatefulSets).
  void watchOwned(client::SharedInformer& informer);

  // Whether the writes after a failed batch of creates (status) still go out. The ReplicaSet's
  // status counts cached pods only, so it stays true and carries the ReplicaFailure condition;
  // Job and StatefulSet statuses would describe the creates as made.
  bool writes_after_failed_creates_ = false;
  client::Client& client_;
  client::SharedInformer& owners_;
  client::SharedInformer& pods_;
  client::EventRecorder* events_;

 private:
  void onPodAdd(const client::ObjectPtr& obj);
  void onPodUpdate(const client::ObjectPtr& old_obj, const client::ObjectPtr& new_obj);
  void onPodDelete(const client::ObjectPtr& obj);
  // The key of the owner a controllerRef points at, if it is in the cache with that uid.
  std::string ownerKey(const api::meta::v1::ObjectMeta& meta) const;
  void enqueueAdopters(const api::core::v1::Pod& pod);

  const api::ResourceType& owner_type_;
  Expectations expectations_;
  int max_parallel_creates_ = kDefaultMaxParallelCreates;
  std::atomic<uint64_t> conflicts_{0};
  mutable std::mutex mu_;
  std::map<std::string, ManageError> manage_errors_;  // owner key -> last failure
};

}  // namespace skiff::controllers

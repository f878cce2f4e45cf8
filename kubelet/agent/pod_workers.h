#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "control/client/client.h"
#include "control/client/workqueue.h"
#include "kubelet/agent/pod_events.h"
#include "kubelet/agent/status_manager.h"
#include "kubelet/pods/pod_syncer.h"
#include "skiff/api/core_v1.pb.h"

// The kubelet's pod workers (pkg/kubelet/pod_workers.go) on a client-go WorkQueue keyed by pod UID:
// one sync at a time per pod (a pod changed while its worker runs is synced once more after,
// however often it changed), pods in parallel on `workers` threads.
//
// Per pod, from the latest object the informer delivered:
// - bound and live: PodSyncer::sync(), its status posted through the status manager, its events
//   recorded; synced again after PodSyncResult::resync_after, else after sync_frequency;
// - phase Succeeded or Failed (in the apiserver, or as sync() just reported): never run again;
//   terminate() once to release what it held;
// - deletionTimestamp set: terminate() with the pod's grace period, the final status posted, then
//   the pod deleted with gracePeriodSeconds=0 and a UID precondition, as the kubelet confirms a
//   graceful deletion;
// - gone from the apiserver (force-deleted, or no longer bound here): terminate(), forgotten.
// A failed step is retried with the queue's per-pod exponential back-off.
//
// Nothing here terminates a pod on start or stop: an agent restart adopts running pods (sync()
// finds their containers), and cleanupOrphans() releases only pods the apiserver no longer binds
// to this node.

namespace skiff::kubelet {

struct PodWorkersOptions {
  std::string node_name;
  int workers = 4;
  // A pod whose last sync asked for no resync is synced again this often anyway (the kubelet's
  // syncFrequency, shortened: the syncer has no other way to report a container that exited
  // than the next sync, or requestSync()).
  std::chrono::milliseconds sync_frequency{10000};
  // When neither deletionGracePeriodSeconds nor terminationGracePeriodSeconds says.
  std::chrono::milliseconds default_grace{30000};
  client::WorkQueueOptions queue{.base_delay = std::chrono::milliseconds(100),
                                 .max_delay = std::chrono::milliseconds(30000)};
  // Admission of a pod the workers have not run yet: {reason, message} to fail it with (status
  // phase Failed, nothing started), or empty reason to run it. Unset: every pod runs. (The
  // graceful shutdown rejects new pods, shutdown_manager.h.)
  std::function<std::pair<std::string, std::string>(const api::core::v1::Pod&)> admit;
};

class PodWorkers {
 public:
  PodWorkers(client::Client& client, PodSyncer& syncer, PodStatusManager& statuses,
             PodEventRecorder& events, PodWorkersOptions options);
  ~PodWorkers();
  PodWorkers(const PodWorkers&) = delete;
  PodWorkers& operator=(const PodWorkers&) = delete;

  // Informer handlers (quick: they record the object and enqueue its UID).
  void onPodAdd(const api::core::v1::Pod& pod);
  void onPodUpdate(const api::core::v1::Pod& old_pod, const api::core::v1::Pod& pod);
  void onPodDelete(const api::core::v1::Pod& pod);
  // Syncs the pod soon (a container exited, a probe changed).
  void requestSync(const std::string& pod_uid);

  // After the informer's first list was delivered: PodSyncer::cleanupOrphan() for every UID the
  // syncer knows that no pod bound here has, several at once (max(8, workers)). Returns those
  // UIDs, sorted.
  std::vector<std::string> cleanupOrphans();

  void start();
  // Stops the workers (a sync in progress finishes); pods are left as they run.
  void stop();

  // Node shutdown (shutdown_manager.h): the pods that still run (not removed, not in a terminal
  // phase, not terminated by a worker).
  std::vector<api::core::v1::Pod> activePods() const;
  // Node shutdown: terminates the pod now, on the caller's thread, once the sync its worker may
  // be running finished: its status with `set_status` applied is posted, then terminate(grace),
  // then the final status with `set_status` applied. The pod is not synced again. False when the
  // workers do not track it or it was terminated already. Throws when terminate() failed.
  bool killPod(const std::string& pod_uid, std::chrono::milliseconds grace,
               const std::function<void(api::core::v1::PodStatus&)>& set_status);

  // Pods the workers track (bound here and not yet confirmed gone).
  size_t trackedPods() const;
  uint64_t syncs() const { return syncs_; }

 private:
  struct PodState {
    api::core::v1::Pod pod;
    bool removed = false;     // gone from the apiserver
    bool terminated = false;  // terminate() returned
    bool admitted = false;    // synced at least once
    bool busy = false;        // a worker or killPod() is working on it
    bool killing = false;     // killPod() waits for it or runs
  };

  void work();
  void process(const std::string& uid);
  std::chrono::milliseconds gracePeriod(const api::core::v1::Pod& pod) const;
  void recordEvents(const api::core::v1::Pod& pod, const std::vector<PodEvent>& events);
  void markTerminated(const std::string& uid);
  void confirmDeletion(const api::core::v1::Pod& pod);

  client::Client& client_;
  PodSyncer& syncer_;
  PodStatusManager& statuses_;
  PodEventRecorder& events_;
  const PodWorkersOptions options_;
  client::WorkQueue queue_;
  mutable std::mutex mu_;
  std::map<std::string, PodState> pods_;  // by UID
  std::condition_variable idle_cv_;       // a pod's busy went false
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> syncs_{0};
  std::vector<std::thread> threads_;
};

}  // namespace skiff::kubelet

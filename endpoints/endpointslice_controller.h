#pragma once

// The EndpointSlice controller that `skiff server` runs (Kubernetes'
// pkg/controller/endpointslice): informers on Services, Pods, EndpointSlices and Nodes; handlers
// that only enqueue service keys; workers that reconcile one service at a time from the caches
// (endpointslice_reconciler.h) and write the difference through the Client.
//
// - A pod change enqueues the services whose selector matches the pod (before or after) after
//   podBatchPeriod, so that a burst of pod updates costs one sync per service.
// - Slices this controller wrote are remembered by resourceVersion: a sync waits until the cache
//   has caught up with its own writes (so it never undoes them from a stale view), and a slice
//   changed or deleted by someone else gets its service reconciled again.
// - Services without a selector, and ExternalName services, are left to their users.
// - Failed writes and pods whose Node is not known yet are retried with the queue's backoff.
//
// Threading: the informer threads call the handlers; `workers` threads reconcile.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "control/client/client.h"
#include "control/client/informer.h"
#include "control/client/workqueue.h"
#include "endpoints/endpointslice_reconciler.h"
#include "endpoints/trigger_time.h"

namespace skiff::endpoints {

struct EndpointSliceControllerOptions {
  ReconcilerOptions reconciler;
  int workers = 2;
  // Kubernetes' --endpointslice-updates-batch-period: pod changes wait this long, so that several
  // become one sync.
  std::chrono::milliseconds podBatchPeriod{20};
  client::WorkQueueOptions queue;
};

class EndpointSliceController {
 public:
  // Asks `informers` for the four informers and registers the handlers; the caller starts the
  // factory (before or after start()).
  EndpointSliceController(client::Client& client, client::SharedInformerFactory& informers,
                          EndpointSliceControllerOptions options = {});
  ~EndpointSliceController();
  EndpointSliceController(const EndpointSliceController&) = delete;
  EndpointSliceController& operator=(const EndpointSliceController&) = delete;

  // Starts the workers once the four caches have synced (waits on its own thread; returns at once).
  void start();
  void stop();

  // Reconciles one service now, on the calling thread ("namespace/name"). Throws client::ApiError
  // from a failed write. Returns false when it must be retried (the cache is behind this
  // controller's writes, or pods were skipped).
  bool syncService(const std::string& key);

  uint64_t syncs() const { return syncs_.load(); }
  uint64_t errors() const { return errors_.load(); }
  uint64_t writes() const { return writes_.load(); }

 private:
  void enqueueServicesOfPod(const api::core::v1::Pod& pod, std::chrono::milliseconds delay);
  void onSliceEvent(const api::discovery::v1::EndpointSlice& slice, bool deleted);
  void worker();
  bool cacheCaughtUp(const std::string& key,
                     const std::vector<const api::discovery::v1::EndpointSlice*>& slices);

  client::Client& client_;
  const EndpointSliceControllerOptions options_;
  client::SharedInformer& services_;
  client::SharedInformer& pods_;
  client::SharedInformer& slices_;
  client::SharedInformer& nodes_;
  client::WorkQueue queue_;
  TriggerTimeTracker triggerTimes_;

  struct Written {
    int64_t resourceVersion = 0;  // 0: deleted by us
  };
  std::mutex mutex_;
  // "ns/slice" -> what this controller last wrote, per service key.
  std::map<std::string, std::map<std::string, Written>> written_;

  std::atomic<bool> stopping_{false};
  std::thread starter_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> writes_{0};
};

}  // namespace skiff::endpoints

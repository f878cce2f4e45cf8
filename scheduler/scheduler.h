#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "control/client/client.h"
#include "control/client/event_recorder.h"
#include "scheduler/cache.h"
#include "scheduler/default_spread_selector.h"
#include "scheduler/framework.h"
#include "scheduler/nominator.h"
#include "scheduler/queue.h"

// The scheduler (kube-scheduler's Scheduler): takes pending pods from the queue, runs the
// framework over a snapshot of the cache (the scheduling cycle, one pod at a time), assumes the
// pod on the chosen node and binds it asynchronously (the binding cycle) through
// pods/{name}/binding. A pod that fits nowhere gets a FailedScheduling Event and the condition
// PodScheduled=False (reason Unschedulable) and waits in the queue for an event that may help; a
// failed binding unreserves, forgets the assumption and requeues the pod.
//
// It reaches the cluster only through a client::Client. The informer handlers (onPodAdd, ...) are
// public so that `skiff server` wires its shared informers to them and tests can feed events by
// hand; attach() does the wiring for a SharedInformerFactory.

namespace skiff::client {
class SharedInformerFactory;
}  // namespace skiff::client

namespace skiff::scheduler {

struct SchedulerOptions {
  std::string scheduler_name = "default-scheduler";
  FrameworkOptions framework;
  QueueOptions queue;
  std::chrono::milliseconds assumed_ttl{30000};
  int bind_workers = 8;  // concurrent binding cycles (and event writes)
  bool emit_scheduled_events = true;
  // The reporting instance of Events (hostname_id).
  std::string instance = "skiff-scheduler";
  // kube-scheduler's system default topology spread (hostname maxSkew 3, zone maxSkew 5,
  // ScheduleAnyway) for pods without constraints of their own, selecting the pods of their
  // Services and controller; attach() then also watches Services, ReplicaSets and StatefulSets.
  bool default_spread_constraints = true;
};

// A small pool of threads for binding cycles and event writes.
class TaskPool {
 public:
  explicit TaskPool(int threads);
  ~TaskPool();
  void post(std::function<void()> task);
  // Blocks until every posted task has run.
  void drain();

 private:
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<std::function<void()>> tasks_;
  int running_ = 0;
  bool stop_ = false;
};

class Scheduler {
 public:
  Scheduler(client::Client& client, SchedulerOptions options = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Informer handlers.
  void onNodeAdd(const NodePtr& node);
  void onNodeUpdate(const NodePtr& old_node, const NodePtr& node);
  void onNodeDelete(const NodePtr& node);
  void onPodAdd(const PodPtr& pod);
  void onPodUpdate(const PodPtr& old_pod, const PodPtr& pod);
  void onPodDelete(const PodPtr& pod);

  // Registers the handlers on the factory's Pod and Node informers, and reads Services,
  // ReplicaSets and StatefulSets from it for the default spread constraints (call before its
  // start()).
  void attach(client::SharedInformerFactory& factory);

  // One scheduling cycle. `block`: wait for a pod; false when none was there (or closed).
  bool scheduleOne(bool block = true);
  // Schedules until `stop` is requested, with the queue's periodic flushes and the cache's
  // expiry of assumptions running alongside.
  void run(std::stop_token stop);
  // Waits until every binding cycle and event write posted so far has finished (tests).
  // Waits for the binding pool and the Events it recorded.
  void drainBindings() {
    pool_.drain();
    events_.flush();
  }

  Framework& framework() { return framework_; }
  Cache& cache() { return cache_; }
  SchedulingQueue& queue() { return queue_; }
  const Nominator& nominator() const { return nominator_; }
  const SchedulerOptions& options() const { return options_; }

  // Counters.
  uint64_t scheduled() const { return scheduled_.load(); }
  uint64_t failedAttempts() const { return failed_.load(); }
  uint64_t bindErrors() const { return bind_errors_.load(); }

 private:
  bool responsibleFor(const Pod& pod) const;
  void handleFailure(QueuedPodInfo info, const Status& status, const std::string& message,
                     bool unschedulable);
  void bindingCycle(std::shared_ptr<CycleState> state, QueuedPodInfo info, std::string node);
  void setUnschedulableCondition(const Pod& pod, const std::string& reason,
                                 const std::string& message, const std::string& nominated);
  void preempt(const PodInfo& pod, const PostFilterResult& result);

  client::Client& client_;
  const SchedulerOptions options_;
  Cache cache_;
  SchedulingQueue queue_;
  Nominator nominator_;  // before framework_, which reads it
  // PodTopologySpread's default constraints read it; its caches come with attach().
  std::shared_ptr<ClusterSpreadSelector> spread_selector_ =
      std::make_shared<ClusterSpreadSelector>();
  Framework framework_;
  Snapshot snapshot_;
  // Declared before pool_, so that it outlives the binding cycles that record into it.
  client::EventRecorder events_;
  TaskPool pool_;
  std::atomic<uint64_t> scheduled_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> bind_errors_{0};
};

}  // namespace skiff::scheduler

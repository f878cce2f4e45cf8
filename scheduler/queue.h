#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "scheduler/node_info.h"

// The scheduling queue (kube-scheduler's PriorityQueue) with three parts:
//   activeQ        pods to schedule now: highest priority first, then the oldest;
//   backoffQ       pods that failed, waiting out a per-pod exponential backoff (1s, 2s, ... 10s);
//   unschedulable  pods that fit nowhere, parked until a cluster event that can make them
//                  schedulable (a node added or changed, a pod deleted, ...) or for at most 5
//                  minutes.
// Thread-safe. pop() blocks until a pod is active or close() is called.

namespace skiff::scheduler {

// Cluster events that may make a parked pod schedulable.
enum class ClusterEvent {
  kNodeAdd,
  kNodeUpdate,      // allocatable, labels, taints or unschedulable changed
  kAssignedPodAdd,  // a bound pod appeared (affinity, topology spread)
  kAssignedPodUpdate,
  kAssignedPodDelete,  // resources and ports freed
  kForceActivate,      // everything (tests, or after a resync)
};
std::string_view eventName(ClusterEvent event);

struct QueuedPodInfo {
  PodInfoPtr pod;
  std::chrono::steady_clock::time_point timestamp{};        // when it (re)entered the queue
  std::chrono::steady_clock::time_point initial_attempt{};  // first time it was popped
  int attempts = 0;
  // The plugins that rejected it last time: only events they care about requeue it. Empty: any
  // event does.
  std::set<std::string> unschedulable_plugins;
};

struct QueueOptions {
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{10000};
  std::chrono::milliseconds max_unschedulable{5 * 60 * 1000};
};

class SchedulingQueue {
 public:
  using Clock = std::chrono::steady_clock;
  using ClockFn = std::function<Clock::time_point()>;

  explicit SchedulingQueue(QueueOptions options = {}, ClockFn clock = nullptr);

  // A new pending pod (or one seen again): into activeQ unless it is already queued.
  void add(PodPtr pod);
  // A queued pod changed: its info is replaced; a parked one goes back to backoff or active.
  void update(PodPtr pod);
  void remove(std::string_view key);

  // Blocks until a pod is active (true) or the queue is closed (false). The pod counts as in
  // flight until done() or addUnschedulable().
  bool pop(QueuedPodInfo& out);
  // Non-blocking pop.
  bool tryPop(QueuedPodInfo& out);
  void close();

  // The pod could not be scheduled in the cycle that popped it. `unschedulable` (it fits
  // nowhere) parks it unless an event arrived while it was being scheduled; otherwise (an error)
  // it backs off.
  void addUnschedulable(QueuedPodInfo info, bool unschedulable);
  // The pod was scheduled (or dropped): it is no longer in flight.
  void done(std::string_view key);

  // A cluster event: parked pods whose rejecting plugins care about it move to backoff or active.
  void onEvent(ClusterEvent event);

  // Periodic work (the scheduler calls these every second or so): backoff that expired -> active;
  // pods parked longer than max_unschedulable -> backoff / active.
  void flushBackoff();
  void flushUnschedulableLeftovers();

  // How long the pod waits after `attempts` failures: initial * 2^(attempts-1), capped.
  std::chrono::milliseconds backoffDuration(int attempts) const;

  size_t activeSize() const;
  size_t backoffSize() const;
  size_t unschedulableSize() const;
  bool contains(std::string_view key) const;

 private:
  enum class Where { kActive, kBackoff, kUnschedulable };
  struct Entry {
    QueuedPodInfo info;
    Where where = Where::kActive;
    uint64_t seq = 0;
  };
  struct ActiveOrder {
    int32_t priority;
    Clock::time_point timestamp;
    uint64_t seq;
    bool operator<(const ActiveOrder& o) const {
      if (priority != o.priority) return priority > o.priority;
      if (timestamp != o.timestamp) return timestamp < o.timestamp;
      return seq < o.seq;
    }
  };

  void placeLocked(const std::string& key, Entry entry, Where where);
  void unlinkLocked(const std::string& key);
  Clock::time_point backoffExpiry(const QueuedPodInfo& info) const;
  void moveToActiveOrBackoffLocked(const std::string& key);
  void releaseSeqLocked(uint64_t seq);
  bool popLocked(QueuedPodInfo& out);

  const QueueOptions options_;
  const ClockFn clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, Entry> entries_;
  std::map<ActiveOrder, std::string> active_;
  std::multimap<Clock::time_point, std::string> backoff_;
  std::unordered_map<std::string, ActiveOrder> active_pos_;
  std::unordered_map<std::string, std::multimap<Clock::time_point, std::string>::iterator>
      backoff_pos_;
  // The parked pods, apart, so that a cluster event (one per bound pod) looks at them only and
  // not at every queued pod while it holds the lock pop() waits for.
  std::unordered_set<std::string> unschedulable_;
  // Pods popped and not yet returned, with the event count when they were popped.
  std::unordered_map<std::string, uint64_t> in_flight_;
  // The same pops' event counts -> how many: the oldest in-flight pop without a scan of every
  // pod in flight (hundreds while their bindings are written) on each done().
  std::map<uint64_t, size_t> in_flight_seqs_;
  // Event sequence -> the plugins interested in it (static sets of interestedPlugins()).
  std::map<uint64_t, const std::set<std::string>*> events_;
  uint64_t event_seq_ = 0;
  uint64_t seq_ = 0;
  bool closed_ = false;
};

}  // namespace skiff::scheduler

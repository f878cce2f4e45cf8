#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "control/store/store.h"

// Watch fan-out of the embedded store. The writer publishes the events of each committed batch
// once, as an immutable shared batch, into a bounded in-memory log; every watcher reads that log
// with its own cursor and filters by prefix, so publishing costs the writer O(1) whatever the
// number of watchers, and the writer never waits for a watcher. A watcher that starts behind the
// log reads history from the database first (EventHistory), then joins the log; one that falls
// out of the log once joined is ended with kCompacted.
namespace skiff::store::sqlite {

// The events of one committed transaction, revisions first_revision..last_revision, all present
// (every key, every prefix).
struct EventBatch {
  int64_t first_revision = 0;
  int64_t last_revision = 0;
  std::vector<Event> events;
  size_t bytes = 0;  // keys and values, for the log's memory bound
};
using EventBatchPtr = std::shared_ptr<const EventBatch>;

// Approximate memory an event holds (keys and values).
size_t eventBytes(const Event& event);

// Committed events read back from the database.
class EventHistory {
 public:
  virtual ~EventHistory() = default;

  struct Page {
    std::vector<Event> events;
    // Every event under the prefix with a revision in (after, through_revision] is in `events`.
    int64_t through_revision = 0;
  };
  // At most `limit` events under `prefix` after `after_revision`, in revision order. Throws
  // kCompacted when history after `after_revision` is no longer complete.
  virtual Page readEvents(std::string_view prefix, int64_t after_revision, size_t limit) = 0;
};

class WatchHub {
 public:
  struct Limits {
    // What the log may hold for a joined watcher that is behind; one that falls further behind
    // is ended with kCompacted.
    size_t max_events = 20000;
    size_t max_bytes = 128u << 20;
    // Of the batches every joined watcher has read, at most this much stays, for watches that
    // start at a recent revision; older ones read the database instead (as etcd's unsynced
    // watchers do). Nothing else is kept that no watcher still has to read.
    size_t read_events = 1024;
    size_t read_bytes = 4u << 20;
  };

  // `revision`: the store's revision when the hub starts (nothing before it is in the log).
  WatchHub(int64_t revision, Limits limits);

  // Appends a batch; called by the writer only, in revision order, right after its commit.
  void publish(EventBatchPtr batch);
  // Events and bytes in the log now.
  size_t loggedEvents() const;
  size_t loggedBytes() const;
  // Ends every watch with kUnavailable.
  void close();
  // The last revision published.
  int64_t lastRevision() const;
  size_t watchCount() const { return watches_.load(std::memory_order_relaxed); }

  // A watch on `prefix` after `start_revision` (already validated by the store).
  static WatchPtr watch(const std::shared_ptr<WatchHub>& hub, std::shared_ptr<EventHistory> history,
                        std::string prefix, int64_t start_revision);

 private:
  friend class HubWatch;

  // The watches of one prefix; the entry lives while any of them does.
  struct Waiters {
    std::condition_variable cv;
    // Bumped when a batch has an event under the prefix: the waiting watches have to read it.
    uint64_t generation = 0;
    // The cursors of the watches waiting now; each has read everything up to last_.
    std::vector<std::atomic<int64_t>*> cursors;
    size_t watches = 0;
  };
  std::shared_ptr<Waiters> joinWaiters(const std::string& prefix);
  void leaveWaiters(const std::string& prefix);
  // Drops the oldest batches while over the hard limits, or while every joined watcher has read
  // them and more than the read_* allowance is left. Called with mu_ held.
  void trimLocked(std::vector<EventBatchPtr>& dropped);

  const Limits limits_;
  mutable std::mutex mu_;
  std::deque<EventBatchPtr> log_;
  int64_t base_;  // revisions up to base_ are not (or no longer) in log_
  int64_t last_;
  size_t events_ = 0;
  size_t bytes_ = 0;
  std::unordered_map<std::string, std::shared_ptr<Waiters>> waiters_;
  // The cursors of the watches reading the live log (registered when they join).
  std::unordered_set<const std::atomic<int64_t>*> joined_;
  bool closed_ = false;
  std::atomic<size_t> watches_{0};
};

}  // namespace skiff::store::sqlite

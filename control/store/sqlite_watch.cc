#include "control/store/sqlite_watch.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

namespace skiff::store::sqlite {

size_t eventBytes(const Event& event) {
  size_t bytes = sizeof(Event) + event.kv.key.size() + event.kv.value.size();
  if (event.prev) bytes += event.prev->key.size() + event.prev->value.size();
  return bytes;
}

WatchHub::WatchHub(int64_t revision, Limits limits)
    : limits_(limits), base_(revision), last_(revision) {}

namespace {

bool hasEventUnder(const EventBatch& batch, const std::string& prefix) {
  return std::any_of(batch.events.begin(), batch.events.end(),
                     [&](const Event& e) { return e.kv.key.starts_with(prefix); });
}

}  // namespace

void WatchHub::publish(EventBatchPtr batch) {
  std::vector<EventBatchPtr> dropped;  // freed outside the lock
  std::vector<std::shared_ptr<Waiters>> wake;
  {
    std::lock_guard lock(mu_);
    events_ += batch->events.size();
    bytes_ += batch->bytes;
    last_ = batch->last_revision;
    for (auto& [prefix, waiters] : waiters_) {
      if (waiters->cursors.empty()) continue;
      if (hasEventUnder(*batch, prefix)) {
        ++waiters->generation;
        waiters->cursors.clear();
        wake.push_back(waiters);
      } else {
        // Nothing here for them: they have still read everything, so this batch is not kept
        // for them either.
        for (std::atomic<int64_t>* cursor : waiters->cursors)
          cursor->store(batch->last_revision, std::memory_order_release);
      }
    }
    log_.push_back(std::move(batch));
    trimLocked(dropped);
  }
  for (const auto& waiters : wake)
    waiters->cv.notify_all();
}

std::shared_ptr<WatchHub::Waiters> WatchHub::joinWaiters(const std::string& prefix) {
  std::lock_guard lock(mu_);
  auto& waiters = waiters_[prefix];
  if (!waiters) waiters = std::make_shared<Waiters>();
  ++waiters->watches;
  return waiters;
}

void WatchHub::leaveWaiters(const std::string& prefix) {
  std::lock_guard lock(mu_);
  auto it = waiters_.find(prefix);
  if (it != waiters_.end() && --it->second->watches == 0) waiters_.erase(it);
}

void WatchHub::trimLocked(std::vector<EventBatchPtr>& dropped) {
  auto drop = [&] {
    events_ -= log_.front()->events.size();
    bytes_ -= log_.front()->bytes;
    base_ = log_.front()->last_revision;
    dropped.push_back(std::move(log_.front()));
    log_.pop_front();
  };
  // The newest batch always stays, so a watcher that keeps up can read it whatever its size.
  while (log_.size() > 1 && (events_ > limits_.max_events || bytes_ > limits_.max_bytes))
    drop();
  if (events_ <= limits_.read_events && bytes_ <= limits_.read_bytes) return;
  // Everything up to the slowest joined watcher's cursor has been read by all of them.
  int64_t read = last_;
  for (const std::atomic<int64_t>* cursor : joined_)
    read = std::min(read, cursor->load(std::memory_order_acquire));
  while (log_.size() > 1 && log_.front()->last_revision <= read &&
         (events_ > limits_.read_events || bytes_ > limits_.read_bytes)) {
    drop();
  }
}

size_t WatchHub::loggedEvents() const {
  std::lock_guard lock(mu_);
  return events_;
}

size_t WatchHub::loggedBytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

void WatchHub::close() {
  std::deque<EventBatchPtr> dropped;
  std::vector<std::shared_ptr<Waiters>> wake;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    dropped.swap(log_);
    for (auto& [prefix, waiters] : waiters_)
      wake.push_back(waiters);
  }
  for (const auto& waiters : wake)
    waiters->cv.notify_all();
}

int64_t WatchHub::lastRevision() const {
  std::lock_guard lock(mu_);
  return last_;
}

class HubWatch final : public Watch {
 public:
  HubWatch(std::shared_ptr<WatchHub> hub, std::shared_ptr<EventHistory> history, std::string prefix,
           int64_t start_revision)
      : hub_(std::move(hub)),
        history_(std::move(history)),
        prefix_(std::move(prefix)),
        cursor_(start_revision),
        waiters_(hub_->joinWaiters(prefix_)) {
    hub_->watches_.fetch_add(1, std::memory_order_relaxed);
  }

  ~HubWatch() override {
    leave();
    hub_->leaveWaiters(prefix_);
    hub_->watches_.fetch_sub(1, std::memory_order_relaxed);
  }

  bool next(std::vector<Event>& out, std::chrono::milliseconds timeout) override {
    if (ended_) return false;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const size_t before = out.size();
    for (;;) {
      if (cancelled_.load(std::memory_order_acquire)) return end(std::nullopt);
      const int64_t cursor = cursor_.load(std::memory_order_relaxed);
      bool closed = false;
      bool behind = false;
      {
        std::lock_guard lock(hub_->mu_);
        closed = hub_->closed_;
        behind = cursor < hub_->base_;
        if (!closed && !behind) {
          // Registered under the lock that saw the log cover the cursor, so no batch after it is
          // dropped as read before this watch has read it.
          if (!joined_) hub_->joined_.insert(&cursor_);
          // Batches are in revision order: take every one that ends after the cursor.
          auto first = std::upper_bound(
              hub_->log_.begin(), hub_->log_.end(), cursor,
              [](int64_t revision, const EventBatchPtr& b) { return revision < b->last_revision; });
          pending_.assign(first, hub_->log_.end());
        }
      }
      if (closed) return end(StoreError(ErrorCode::kUnavailable, "the store was closed"));

      if (behind) {
        if (joined_) {
          return end(StoreError(ErrorCode::kCompacted,
                                "watch on '" + prefix_ + "' fell too far behind at revision " +
                                    std::to_string(cursor) + " (more than " +
                                    std::to_string(hub_->limits_.max_events) + " events or " +
                                    std::to_string(hub_->limits_.max_bytes) +
                                    " bytes): relist and watch again"));
        }
        if (!replay(cursor, out)) return false;
        if (out.size() > before) return true;
        continue;  // nothing under the prefix in that page: on to the next one, or the live log
      }

      joined_ = true;
      for (const EventBatchPtr& batch : pending_) {
        for (const Event& event : batch->events) {
          if (event.kv.mod_revision > cursor && event.kv.key.starts_with(prefix_)) {
            out.push_back(event);
          }
        }
      }
      if (!pending_.empty()) {
        // Progress moves on even when nothing matched the prefix.
        cursor_.store(pending_.back()->last_revision, std::memory_order_release);
        pending_.clear();
      }
      if (out.size() > before) return true;

      std::unique_lock lock(hub_->mu_);
      if (hub_->last_ > cursor_.load(std::memory_order_relaxed) || hub_->closed_ ||
          cancelled_.load(std::memory_order_acquire)) {
        continue;  // published meanwhile: read it first
      }
      // Caught up: wait among the prefix's watchers until a batch has an event under it (the
      // hub moves this cursor past the batches that have none).
      WatchHub::Waiters& waiters = *waiters_;
      const uint64_t generation = waiters.generation;
      waiters.cursors.push_back(&cursor_);
      const bool woken = waiters.cv.wait_until(lock, deadline, [&] {
        return waiters.generation != generation || hub_->closed_ ||
               cancelled_.load(std::memory_order_acquire);
      });
      if (waiters.generation == generation) std::erase(waiters.cursors, &cursor_);
      if (!woken) return true;  // timed out: the watch goes on
    }
  }

  int64_t progressRevision() const override { return cursor_.load(std::memory_order_acquire); }

  void cancel() override {
    cancelled_.store(true, std::memory_order_release);
    // Taking the lock orders this with a waiter's predicate check, so the wake-up is not lost;
    // a cancelled watch reads nothing more, so it no longer holds batches in the log.
    std::lock_guard lock(hub_->mu_);
    hub_->joined_.erase(&cursor_);
    waiters_->cv.notify_all();
  }

  std::optional<StoreError> error() const override {
    std::lock_guard lock(error_mu_);
    if (!error_) return std::nullopt;
    // A deep copy: the message buffer of a std::runtime_error copy is shared and reference
    // counted, which ThreadSanitizer cannot follow across threads.
    return StoreError(error_->code(), std::string(error_->what()));
  }

 private:
  // One page of history from the database; false when the watch ended.
  bool replay(int64_t cursor, std::vector<Event>& out) {
    EventHistory::Page page;
    try {
      page = history_->readEvents(prefix_, cursor, kReplayPage);
    } catch (const StoreError& e) {
      return end(e);
    }
    if (page.through_revision <= cursor) {
      // The hub is ahead of the database: cannot happen while the writer publishes after commit.
      return end(StoreError(ErrorCode::kInternal, "watch history did not advance past revision " +
                                                      std::to_string(cursor)));
    }
    for (Event& event : page.events) {
      if (event.kv.mod_revision > cursor) out.push_back(std::move(event));
    }
    cursor_.store(page.through_revision, std::memory_order_release);
    return true;
  }

  // No longer counted among the log's readers.
  void leave() {
    std::lock_guard lock(hub_->mu_);
    hub_->joined_.erase(&cursor_);
  }

  bool end(std::optional<StoreError> error) {
    ended_ = true;
    pending_.clear();
    leave();
    std::lock_guard lock(error_mu_);
    if (error) error_.emplace(error->code(), std::string(error->what()));
    return false;
  }

  static constexpr size_t kReplayPage = 1000;

  std::shared_ptr<WatchHub> hub_;
  std::shared_ptr<EventHistory> history_;
  const std::string prefix_;
  std::atomic<int64_t> cursor_;
  std::atomic<bool> cancelled_{false};
  const std::shared_ptr<WatchHub::Waiters> waiters_;
  bool ended_ = false;
  bool joined_ = false;  // read from the live log at least once
  std::vector<EventBatchPtr> pending_;
  mutable std::mutex error_mu_;
  std::optional<StoreError> error_;
};

WatchPtr WatchHub::watch(const std::shared_ptr<WatchHub>& hub,
                         std::shared_ptr<EventHistory> history, std::string prefix,
                         int64_t start_revision) {
  return std::make_unique<HubWatch>(hub, std::move(history), std::move(prefix), start_revision);
}

}  // namespace skiff::store::sqlite

#include "control/client/workqueue.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace skiff::client {

using Clock = std::chrono::steady_clock;

struct WorkQueue::Impl {
  explicit Impl(WorkQueueOptions o) : options(o), tokens(std::max(o.burst, 1)) {}

  // Requires `mutex`.
  void addLocked(const std::string& key) {
    if (shutting_down) return;
    if (!dirty.insert(key).second) return;
    if (processing.count(key) != 0) return;  // handed out again after done()
    queue.push_back(key);
    ready.notify_one();
  }

  // Requires `mutex`.
  void addAfterLocked(const std::string& key, Clock::time_point when) {
    if (shutting_down) return;
    auto it = waiting_by_key.find(key);
    if (it != waiting_by_key.end()) {
      if (it->second <= when) return;  // the earlier pending delay wins
      eraseWaiting(key, it->second);
      it->second = when;
    } else {
      waiting_by_key.emplace(key, when);
    }
    waiting.emplace(when, key);
    timer_wake.notify_one();
  }

  void eraseWaiting(const std::string& key, Clock::time_point when) {
    auto [first, last] = waiting.equal_range(when);
    for (auto it = first; it != last; ++it) {
      if (it->second == key) {
        waiting.erase(it);
        return;
      }
    }
  }

  // The delayed adds: one thread that sleeps until the earliest is due.
  void runTimer() {
    std::unique_lock lock(mutex);
    while (!shutting_down) {
      if (waiting.empty()) {
        timer_wake.wait(lock);
        continue;
      }
      auto due = waiting.begin()->first;
      if (Clock::now() < due) {
        timer_wake.wait_until(lock, due);
        continue;
      }
      while (!waiting.empty() && waiting.begin()->first <= Clock::now()) {
        std::string key = std::move(waiting.begin()->second);
        waiting.erase(waiting.begin());
        waiting_by_key.erase(key);
        addLocked(key);
      }
    }
  }

  // client-go's ItemExponentialFailureRateLimiter and BucketRateLimiter, the larger delay wins.
  // Requires `mutex`.
  Clock::duration backoffLocked(const std::string& key) {
    int failures = requeues[key]++;
    double item =
        static_cast<double>(options.base_delay.count()) * std::pow(2.0, std::min(failures, 62));
    item = std::min(item, static_cast<double>(options.max_delay.count()));
    Clock::duration item_delay = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double, std::milli>(item));

    Clock::duration bucket_delay{0};
    if (options.qps > 0) {
      auto now = Clock::now();
      double elapsed = std::chrono::duration<double>(now - last_refill).count();
      last_refill = now;
      tokens = std::min<double>(std::max(options.burst, 1), tokens + elapsed * options.qps);
      tokens -= 1;
      if (tokens < 0) {
        bucket_delay = std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(-tokens / options.qps));
      }
    }
    return std::max(item_delay, bucket_delay);
  }

  WorkQueueOptions options;
  mutable std::mutex mutex;
  std::condition_variable ready;
  std::condition_variable timer_wake;
  std::deque<std::string> queue;
  std::unordered_set<std::string> dirty;
  std::unordered_set<std::string> processing;
  std::multimap<Clock::time_point, std::string> waiting;
  std::unordered_map<std::string, Clock::time_point> waiting_by_key;
  std::unordered_map<std::string, int> requeues;
  double tokens;
  Clock::time_point last_refill = Clock::now();
  bool shutting_down = false;
  std::thread timer;
};

WorkQueue::WorkQueue(WorkQueueOptions options) : impl_(std::make_unique<Impl>(options)) {
  impl_->timer = std::thread([impl = impl_.get()] { impl->runTimer(); });
}

WorkQueue::~WorkQueue() {
  shutDown();
  if (impl_->timer.joinable()) impl_->timer.join();
}

void WorkQueue::add(const std::string& key) {
  std::lock_guard lock(impl_->mutex);
  impl_->addLocked(key);
}

void WorkQueue::addAfter(const std::string& key, std::chrono::milliseconds delay) {
  std::lock_guard lock(impl_->mutex);
  if (delay <= std::chrono::milliseconds::zero()) {
    impl_->addLocked(key);
  } else {
    impl_->addAfterLocked(key, Clock::now() + delay);
  }
}

void WorkQueue::addRateLimited(const std::string& key) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->shutting_down) return;
  Clock::duration delay = impl_->backoffLocked(key);
  if (delay <= Clock::duration::zero()) {
    impl_->addLocked(key);
  } else {
    impl_->addAfterLocked(key, Clock::now() + delay);
  }
}

void WorkQueue::forget(const std::string& key) {
  std::lock_guard lock(impl_->mutex);
  impl_->requeues.erase(key);
}

int WorkQueue::numRequeues(const std::string& key) const {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->requeues.find(key);
  return it == impl_->requeues.end() ? 0 : it->second;
}

std::optional<std::string> WorkQueue::get() {
  std::unique_lock lock(impl_->mutex);
  impl_->ready.wait(lock, [&] { return !impl_->queue.empty() || impl_->shutting_down; });
  if (impl_->queue.empty()) return std::nullopt;
  std::string key = std::move(impl_->queue.front());
  impl_->queue.pop_front();
  impl_->processing.insert(key);
  impl_->dirty.erase(key);
  return key;
}

std::optional<std::string> WorkQueue::get(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mutex);
  impl_->ready.wait_for(lock, timeout,
                        [&] { return !impl_->queue.empty() || impl_->shutting_down; });
  if (impl_->queue.empty()) return std::nullopt;
  std::string key = std::move(impl_->queue.front());
  impl_->queue.pop_front();
  impl_->processing.insert(key);
  impl_->dirty.erase(key);
  return key;
}

void WorkQueue::done(const std::string& key) {
  std::lock_guard lock(impl_->mutex);
  impl_->processing.erase(key);
  if (impl_->dirty.count(key) != 0) {
    impl_->queue.push_back(key);
    impl_->ready.notify_one();
  }
}

void WorkQueue::shutDown() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->shutting_down = true;
    impl_->waiting.clear();
    impl_->waiting_by_key.clear();
  }
  impl_->ready.notify_all();
  impl_->timer_wake.notify_all();
}

bool WorkQueue::shuttingDown() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->shutting_down;
}

size_t WorkQueue::len() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->queue.size();
}

}  // namespace skiff::client

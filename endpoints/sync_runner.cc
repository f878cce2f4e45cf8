#include "endpoints/sync_runner.h"

#include <algorithm>

namespace skiff::endpoints {

BoundedFrequencyRunner::BoundedFrequencyRunner(std::function<void()> fn, SyncRunnerOptions options)
    : fn_(std::move(fn)),
      options_(options),
      lastRun_(Clock::now()),
      tokens_(std::max(1, options.burst)),
      lastRefill_(Clock::now()) {}

BoundedFrequencyRunner::~BoundedFrequencyRunner() {
  stop();
}

void BoundedFrequencyRunner::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  lastRun_ = Clock::now();
  thread_ = std::thread([this] { loop(); });
}

void BoundedFrequencyRunner::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void BoundedFrequencyRunner::run() {
  {
    std::lock_guard lock(mutex_);
    pending_ = true;
    ++signals_;
  }
  wake_.notify_all();
}

void BoundedFrequencyRunner::retryAfter(std::chrono::milliseconds delay) {
  {
    std::lock_guard lock(mutex_);
    auto at = Clock::now() + delay;
    if (!retryAt_ || at < *retryAt_) retryAt_ = at;
    ++signals_;
  }
  wake_.notify_all();
}

uint64_t BoundedFrequencyRunner::runs() const {
  std::lock_guard lock(mutex_);
  return runs_;
}

bool BoundedFrequencyRunner::takeToken(Clock::time_point now, Clock::time_point& nextToken) {
  if (options_.minInterval.count() <= 0) return true;
  const double interval = std::chrono::duration<double>(options_.minInterval).count();
  const double elapsed = std::chrono::duration<double>(now - lastRefill_).count();
  tokens_ = std::min<double>(std::max(1, options_.burst), tokens_ + elapsed / interval);
  lastRefill_ = now;
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return true;
  }
  nextToken = now + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>((1.0 - tokens_) * interval));
  return false;
}

void BoundedFrequencyRunner::loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    auto now = Clock::now();
    if (retryAt_ && *retryAt_ <= now) {
      retryAt_.reset();
      pending_ = true;
    }
    const bool periodic = now - lastRun_ >= options_.maxInterval;
    Clock::time_point wakeAt = lastRun_ + options_.maxInterval;
    if (retryAt_) wakeAt = std::min(wakeAt, *retryAt_);
    bool waitingForToken = false;
    if (pending_ || periodic) {
      Clock::time_point nextToken;
      if (periodic || takeToken(now, nextToken)) {
        pending_ = false;
        lastRun_ = now;
        lock.unlock();
        fn_();
        lock.lock();
        ++runs_;
        continue;
      }
      wakeAt = std::min(wakeAt, nextToken);
      waitingForToken = true;
    }
    // Woken by stop(), and unless only a token is awaited, by run() and retryAfter().
    const uint64_t seen = signals_;
    wake_.wait_until(lock, wakeAt,
                     [&] { return stopping_ || (!waitingForToken && signals_ != seen); });
  }
}

}  // namespace skiff::endpoints

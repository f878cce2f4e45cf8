#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

// client-go's rate-limited work queue: keys ("namespace/name") of objects to reconcile.
//
// - A key added while it waits is stored once (de-duplication: `dirty`).
// - A key being handled (`processing`) is never handed to a second worker: if it is added again
//   meanwhile, it is handed out once more after done().
// - addRateLimited() requeues with per-key exponential backoff (5 ms doubling to 1000 s, as
//   client-go's default item limiter) combined with an overall token bucket (10 qps, burst 100);
//   forget() resets a key's backoff once it reconciled.
//
// Thread-safe: handlers add from informer threads, workers get and done from theirs.

namespace skiff::client {

struct WorkQueueOptions {
  std::chrono::milliseconds base_delay{5};
  std::chrono::milliseconds max_delay{1000 * 1000};
  double qps = 10;
  int burst = 100;
};

class WorkQueue {
 public:
  explicit WorkQueue(WorkQueueOptions options = {});
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void add(const std::string& key);
  // Adds `key` once `delay` has passed (an earlier pending delay for the same key wins).
  void addAfter(const std::string& key, std::chrono::milliseconds delay);
  // Adds `key` after its backoff; each call without forget() doubles it.
  void addRateLimited(const std::string& key);
  void forget(const std::string& key);
  int numRequeues(const std::string& key) const;

  // Blocks until a key is ready; nullopt once the queue is shut down (and drained).
  std::optional<std::string> get();
  // Like get(), but gives up after `timeout`.
  std::optional<std::string> get(std::chrono::milliseconds timeout);
  // Marks `key` handled; if it was added meanwhile it becomes ready again.
  void done(const std::string& key);

  // Wakes every get(); later adds are ignored.
  void shutDown();
  bool shuttingDown() const;
  // Keys waiting (not counting those in processing or delayed).
  size_t len() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::client

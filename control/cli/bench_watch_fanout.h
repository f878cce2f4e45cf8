#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "control/client/kubeconfig.h"

// The watchers of `skiff bench apiserver`'s fan-out phase: many watches of one collection, each
// on a TLS connection of its own, all read by one Boost.Asio thread. They decode only what the
// measurement needs (the chunked framing, each ADDED event's metadata.name), so that a thousand
// watchers cost the client little beside the apiserver they share the machine with: the full
// client (control/client) parses every event into a JSON tree, which at 1,000 watchers x 1,000
// events/s would be a million parses a second on the same cores.
namespace skiff::cli {

class FanoutWatchers {
 public:
  using Clock = std::chrono::steady_clock;

  // `path`: the watch request's path and query ("/api/v1/namespaces/x/pods?watch=true&...").
  // Objects are named `name_prefix` + a number below `objects`; others are ignored.
  FanoutWatchers(const client::ClientConfig& config, std::string path, int watchers,
                 std::string name_prefix, size_t objects);
  ~FanoutWatchers();
  FanoutWatchers(const FanoutWatchers&) = delete;
  FanoutWatchers& operator=(const FanoutWatchers&) = delete;

  // Opens every watch; returns once each has its 200 answer. Throws std::runtime_error naming
  // the watcher and the reason when one cannot (connection, TLS, HTTP status).
  void start(std::chrono::seconds timeout);
  // ADDED events of numbered objects that reached a watcher (each counted once per watcher).
  size_t arrivals() const { return arrivals_.load(std::memory_order_relaxed); }
  // A watch that ended or failed after start(), or "".
  std::string failure() const;
  // Stops reading and closes every connection.
  void stop();
  // When object `index` reached watcher `watcher` (Clock::time_point{} if it did not); valid
  // after stop().
  Clock::time_point arrival(int watcher, size_t index) const;
  int watchers() const { return watchers_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  const int watchers_;
  std::atomic<size_t> arrivals_{0};
};

}  // namespace skiff::cli

#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "control/apiserver/resource_storage.h"
#include "control/store/store.h"

// An informer inside the apiserver: one store list + watch of a resource keeps an in-memory copy
// of its objects, so authentication and authorization read memory, never the store, per request.
// After a failed or compacted watch it relists. `trim` may strip what the reader never needs
// (pods keep their metadata only).

namespace skiff::apiserver::auth {

class ObjectIndex {
 public:
  using Trim = std::function<void(google::protobuf::Message&)>;

  ObjectIndex(store::Store& store, const api::ResourceType& type, Trim trim = {});
  ~ObjectIndex();
  ObjectIndex(const ObjectIndex&) = delete;
  ObjectIndex& operator=(const ObjectIndex&) = delete;

  // Called (on the index's thread) after every change that was applied; set before start().
  void setOnChange(std::function<void()> on_change) { on_change_ = std::move(on_change); }
  void start();
  void stop();
  // Waits until the first list is loaded; false on timeout.
  bool waitSynced(std::chrono::milliseconds timeout) const;
  bool synced() const { return synced_.load(std::memory_order_acquire); }

  ObjectPtr get(std::string_view ns, std::string_view name) const;
  // Every object in `ns` ("" = all namespaces).
  std::vector<ObjectPtr> list(std::string_view ns = {}) const;
  // The store revision everything up to which is applied.
  int64_t revision() const { return revision_.load(std::memory_order_acquire); }

 private:
  void run();
  bool relist();
  void apply(const std::vector<store::Event>& events);

  store::Store& store_;
  ResourceStorage storage_;
  Trim trim_;
  std::string prefix_;
  std::function<void()> on_change_;

  mutable std::shared_mutex mu_;
  std::map<std::string, ObjectPtr, std::less<>> objects_;  // by store key
  std::atomic<int64_t> revision_{0};
  std::atomic<bool> synced_{false};
  mutable std::mutex sync_mu_;
  mutable std::condition_variable sync_cv_;

  std::atomic<bool> stopping_{false};
  std::mutex watch_mu_;
  store::WatchPtr watch_;
  std::thread thread_;
};

}  // namespace skiff::apiserver::auth

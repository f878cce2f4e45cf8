#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "control/apiserver/resource_storage.h"
#include "control/apiserver/watch_cache.h"
#include "control/store/store.h"

// An informer inside the apiserver: the objects of one resource in memory, so authentication and
// authorization read memory, never the store, per request. It is a view of the resource's
// WatchCache, the apiserver's one store watch per resource (every change decoded once, for lists,
// watches and these indexes alike); an apiserver without watch caches (and a test) gives it a
// cache of its own. Objects are the cache's, shared, never copied. The cache relists after a
// failed or compacted watch; meanwhile the index answers from the state last loaded.

namespace skiff::apiserver::auth {

class ObjectIndex {
 public:
  // A view of `cache`, which must outlive the index (or its stop()).
  explicit ObjectIndex(WatchCache& cache);
  // A cache of its own on `store`, made by start().
  ObjectIndex(store::Store& store, const api::ResourceType& type);
  ~ObjectIndex();
  ObjectIndex(const ObjectIndex&) = delete;
  ObjectIndex& operator=(const ObjectIndex&) = delete;

  // Called (on the cache's thread) after every batch of changes applied and every relist; set
  // before start().
  void setOnChange(std::function<void()> on_change) { on_change_ = std::move(on_change); }
  void start();
  void stop();
  // Waits until the cache is loaded and has applied every change up to `min_revision` (a
  // revision this process wrote to the resource: read your own writes); false on timeout.
  bool waitSynced(std::chrono::milliseconds timeout, int64_t min_revision = 0) const;
  // Loaded at least once.
  bool synced() const;

  ObjectPtr get(std::string_view ns, std::string_view name) const;
  // Every object in `ns` ("" = all namespaces).
  std::vector<ObjectPtr> list(std::string_view ns = {}) const;
  // The objects whose indexed field (pods: spec.nodeName) is `value` (WatchCache::indexed).
  std::vector<ObjectPtr> indexed(std::string_view value) const;
  // The store revision everything up to which is applied.
  int64_t revision() const;

 private:
  store::Store* store_ = nullptr;
  const api::ResourceType* type_ = nullptr;
  std::unique_ptr<ResourceStorage> own_storage_;  // before own_cache_, which reads through it
  std::unique_ptr<WatchCache> own_cache_;
  WatchCache* cache_ = nullptr;
  std::function<void()> on_change_;
  std::optional<WatchCache::ListenerId> listener_;
  mutable std::atomic<bool> loaded_{false};
};

}  // namespace skiff::apiserver::auth

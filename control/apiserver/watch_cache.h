#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "control/apiserver/metrics.h"
#include "control/apiserver/resource_storage.h"
#include "control/store/store.h"

namespace skiff::apiserver {

// The bytes the rings of several watch caches may hold together: the apiserver's caches of every
// resource share one, so the total stays bounded however many kinds are busy (each cache's
// max_bytes alone would allow that much per kind). Thread-safe.
class WatchCacheBudget {
 public:
  explicit WatchCacheBudget(size_t max_bytes) : max_bytes_(max_bytes) {}
  size_t maxBytes() const { return max_bytes_; }
  // What the rings sharing it account now.
  size_t usedBytes() const { return used_.load(std::memory_order_relaxed); }

 private:
  friend class WatchCache;
  bool over() const { return usedBytes() > max_bytes_; }
  void add(size_t bytes) { used_.fetch_add(bytes, std::memory_order_relaxed); }
  void remove(size_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }

  const size_t max_bytes_;
  std::atomic<size_t> used_{0};
};

struct WatchCacheOptions {
  // The ring of recent events grows from min to max while it holds less than
  // `event_fresh_duration` of history, and shrinks back when it holds more (Kubernetes' watch
  // cache sizing: 100 to 100*1024 events, 75 s).
  size_t min_capacity = 100;
  size_t max_capacity = 100 * 1024;
  std::chrono::seconds event_fresh_duration{75};
  // And the ring holds at most about this many bytes (the objects its events alone keep: decoded,
  // plus their encodings), oldest events out first: a busy kind with large objects would otherwise
  // keep max_capacity of them, far more than the fresh duration's worth watchers resume from.
  size_t max_bytes = 16u << 20;
  // The budget this cache's ring shares with the other caches made from copies of the same
  // options (the apiserver's caches of every resource): while the rings together hold more, a
  // cache recording an event drops its own oldest ones, keeping at least min_capacity (the kinds
  // that write most pay for the overflow; a quiet kind keeps its last events). Null = none. At
  // 120 ConfigMap writes/s of 600 bytes (bench soak) an event accounts ~3.7 KB: 16 MiB are ~35 s
  // of them, ample for a watcher resuming after a dropped connection or a watch timeout.
  std::shared_ptr<WatchCacheBudget> budget = std::make_shared<WatchCacheBudget>(32u << 20);
  // Events a watcher may have waiting beyond its replay; one that falls further behind is
  // dropped (its stream ends, the client watches again) so it never holds back the others.
  size_t watcher_queue = 1024;
  // Where the cache counts the events it receives (apiserver_watch_cache_events_received_total);
  // may be null.
  Metrics* metrics = nullptr;
};

// An object as the cache holds it: decoded once, its JSON made once, shared by every list and
// watcher that sends it.
struct CachedObject {
  std::shared_ptr<const google::protobuf::Message> object;
  std::string ns;
  std::string index_value;  // the indexed field's value ("" without an index)
  // The object's JSON (apiVersion and kind included), made on first use.
  const std::string& json() const;
  // The object in Kubernetes' protobuf envelope ("k8s\0" + runtime.Unknown), made on first use.
  const std::string& protobuf() const;

 private:
  mutable std::once_flag json_once_;
  mutable std::string json_;
  mutable std::once_flag protobuf_once_;
  mutable std::string protobuf_;
};
using CachedObjectPtr = std::shared_ptr<const CachedObject>;

struct CachedEvent {
  WatchEvent::Type type = WatchEvent::Type::kAdded;
  int64_t revision = 0;
  CachedObjectPtr object;  // deletes: the last state, at the delete's revision
  CachedObjectPtr prev;    // updates and deletes: the state before
  std::chrono::steady_clock::time_point recorded;
  size_t bytes = 0;  // what the ring accounts for it (see WatchCacheOptions::max_bytes)
};
using CachedEventPtr = std::shared_ptr<const CachedEvent>;

// One watch served from the cache: the initial state (if asked for), then every change after its
// start revision that passes its selectors, with selector transitions turned into ADDED/DELETED.
class CacheWatcher {
 public:
  struct Item {
    WatchEvent::Type type = WatchEvent::Type::kAdded;
    CachedObjectPtr object;
  };
  enum class Next { kItem, kTimeout, kEnded };

  // Waits up to `timeout` for the next item.
  Next next(Item& out, std::chrono::milliseconds timeout);
  // The revision a bookmark may carry now (everything up to it was delivered), or nullopt while
  // items are still waiting.
  std::optional<int64_t> bookmarkRevision() const;
  // True once the cache dropped this watcher for falling behind (or re-initialised).
  bool dropped() const;
  size_t queued() const;

 private:
  friend class WatchCache;
  CacheWatcher(std::string ns, ListRequest request, const ResourceStorage& storage,
               const std::atomic<int64_t>& cache_revision)
      : ns_(std::move(ns)),
        request_(std::move(request)),
        storage_(storage),
        cache_revision_(cache_revision) {}

  bool matches(const CachedObject& object) const;
  // Queues the event if it concerns this watcher; false when it is over its limit (`bounded`
  // false for the replay at registration). With `wake`, the reader is not notified but *wake set
  // when it must be (the caller calls wake() later).
  bool offer(const CachedEvent& event, bool bounded, bool* wake = nullptr);
  void wake();
  void end(bool dropped);

  const std::string ns_;
  const ListRequest request_;
  const ResourceStorage& storage_;
  const std::atomic<int64_t>& cache_revision_;
  int64_t start_revision_ = 0;          // events at or before it are not sent
  std::optional<std::string> trigger_;  // the indexed field's value its selector requires
  size_t limit_ = 0;                    // live items it may have waiting

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  size_t backlog_ = 0;  // initial and replayed items at the queue's front (not bounded)
  bool ended_ = false;
  bool dropped_ = false;
};
using CacheWatcherPtr = std::shared_ptr<CacheWatcher>;

// The apiserver's watch cache for one resource: a single store watch on the resource's prefix
// feeds an in-memory copy of every object (decoded once, ordered by key, indexed by spec.nodeName
// for pods) and a ring of recent events. Lists at resourceVersion "0" or NotOlderThan and every
// watch are served from it; a watch from a revision still in the ring replays from there, an
// older one gets 410 Gone. Events fan out to any number of watchers without a store watch each.
//
// Thread-safe. A pump thread applies the store's events; lists take a shared lock.
class WatchCache {
 public:
  WatchCache(store::Store& store, const ResourceStorage& storage, WatchCacheOptions options = {});
  ~WatchCache();
  WatchCache(const WatchCache&) = delete;
  WatchCache& operator=(const WatchCache&) = delete;

  // Whether the initial list is loaded (until then callers go to the store).
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  // Everything up to this revision is applied.
  int64_t revision() const { return revision_.load(std::memory_order_acquire); }
  // Changes after this revision are all in the ring.
  int64_t oldestRevision() const;
  size_t capacity() const;
  // Events in the ring and the bytes accounted for them.
  size_t ringSize() const;
  size_t ringBytes() const;
  size_t watcherCount() const;
  size_t objectCount() const;
  const ResourceStorage& storage() const { return storage_; }

  // The objects in `ns` ("" = all) passing the request's selectors, at the cache's revision,
  // which must not be older than `min_revision`; nullopt when the cache is not there yet (the
  // caller reads the store). A limit is ignored, as Kubernetes does for lists from its cache.
  std::optional<ListResponse> list(std::string_view ns, const ListRequest& request,
                                   int64_t min_revision = 0) const;

  // A watch in `ns` ("" = all) with the request's selectors. `from`: nullopt = the current
  // state as ADDED items first, then changes; a revision = the changes after it (410 Gone when
  // older than the ring). Throws ApiError.
  CacheWatcherPtr watch(std::string_view ns, const ListRequest& request,
                        std::optional<int64_t> from);
  void stopWatching(const CacheWatcherPtr& watcher);

  // Whether the cache serves this list (Kubernetes' shouldDelegateList turned round): RV "0"
  // whatever the limit, or a NotOlderThan revision without limit or continue.
  static bool servesList(const ListRequest& request);

  // In-process readers of the cache (the apiserver's auth indexes), so the resource has one
  // store watch and every change is decoded once. get() and objects() answer from the state last
  // loaded, also while the cache relists (ready() false); the objects are the cache's, shared.
  ObjectPtr get(std::string_view ns, std::string_view name) const;
  std::vector<ObjectPtr> objects(std::string_view ns = {}) const;
  // The objects whose indexed field (pods: spec.nodeName) is `value`, from the index (no scan);
  // empty for a kind without an index.
  std::vector<ObjectPtr> indexed(std::string_view value) const;
  // `listener` is called on the cache's thread, without its lock, after every batch of events
  // applied and every (re)load. removeListener() waits for a call in progress to return.
  using ListenerId = uint64_t;
  ListenerId addListener(std::function<void()> listener);
  void removeListener(ListenerId id);

 private:
  void notifyListeners();
  void run();
  // Lists the store and starts its watch; false when the store failed.
  bool initialize();
  void apply(const std::vector<store::Event>& events);
  // Applies one event to the objects and the ring; nullptr when it tells nothing.
  CachedEventPtr applyOne(const store::Event& event,
                          std::shared_ptr<const google::protobuf::Message> decoded,
                          std::chrono::steady_clock::time_point now);
  void record(const CachedEventPtr& event);
  void resize(std::chrono::steady_clock::time_point now);
  void popOldest();
  void clearRing();
  CachedObjectPtr makeObject(std::shared_ptr<const google::protobuf::Message> object) const;
  void indexInsert(const std::string& key, const CachedObject& object);
  void indexErase(const std::string& key, const CachedObject& object);
  void unregisterLocked(CacheWatcher* watcher);

  store::Store& store_;
  const ResourceStorage& storage_;
  const WatchCacheOptions options_;
  const std::string prefix_;
  std::string index_field_;  // "" = no index

  mutable std::shared_mutex mu_;
  std::map<std::string, CachedObjectPtr, std::less<>> objects_;   // by store key
  std::unordered_map<std::string, std::set<std::string>> index_;  // index value -> keys
  std::deque<CachedEventPtr> ring_;
  size_t capacity_;
  size_t ring_bytes_ = 0;
  int64_t oldest_ = 0;  // changes after it are in ring_
  std::unordered_map<CacheWatcher*, CacheWatcherPtr> watchers_;
  std::unordered_map<std::string, std::unordered_set<CacheWatcher*>> triggered_;
  std::unordered_set<CacheWatcher*> untriggered_;

  std::atomic<int64_t> revision_{0};
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};
  std::mutex watch_mu_;  // guards watch_ against cancel from the destructor
  store::WatchPtr watch_;
  std::thread pump_;

  std::mutex listeners_mu_;  // held while listeners run
  std::map<ListenerId, std::function<void()>> listeners_;
  ListenerId next_listener_ = 1;
};

}  // namespace skiff::apiserver

#include "control/apiserver/watch_cache.h"

#include <algorithm>

#include "control/api/codec.h"
#include "control/api/kube_protobuf.h"
#include "control/apiserver/object_meta.h"

namespace skiff::apiserver {
namespace {

using google::protobuf::Message;
using Clock = std::chrono::steady_clock;

// The field a kind's watchers and lists are indexed by: kubelets watch their node's pods.
std::string indexFieldFor(const api::ResourceType& type) {
  if (type.kind == "Pod") return "spec.nodeName";
  return "";
}

}  // namespace

const std::string& CachedObject::json() const {
  std::call_once(json_once_, [this] { json_ = api::encodeJson(*object); });
  return json_;
}

const std::string& CachedObject::protobuf() const {
  std::call_once(protobuf_once_, [this] { protobuf_ = api::kubepb::encodeObject(*object); });
  return protobuf_;
}

bool CacheWatcher::matches(const CachedObject& object) const {
  if (!ns_.empty() && object.ns != ns_) return false;
  return storage_.matches(*object.object, request_);
}

bool CacheWatcher::offer(const CachedEvent& event, bool bounded, bool* wake) {
  if (event.revision <= start_revision_) return true;
  std::optional<WatchEvent::Type> type;
  switch (event.type) {
    case WatchEvent::Type::kAdded:
      if (matches(*event.object)) type = WatchEvent::Type::kAdded;
      break;
    case WatchEvent::Type::kModified: {
      // Objects that move in or out of a selector's view are added or deleted for it.
      bool now = matches(*event.object);
      bool was = event.prev && matches(*event.prev);
      if (now && was) {
        type = WatchEvent::Type::kModified;
      } else if (now) {
        type = WatchEvent::Type::kAdded;
      } else if (was) {
        type = WatchEvent::Type::kDeleted;
      }
      break;
    }
    case WatchEvent::Type::kDeleted:
      if (matches(*event.object)) type = WatchEvent::Type::kDeleted;
      break;
  }
  if (!type) return true;
  bool dropped = false;
  bool was_empty = false;
  {
    std::lock_guard lock(mu_);
    if (ended_) return true;
    was_empty = queue_.empty();
    if (bounded && queue_.size() - backlog_ >= limit_) {
      ended_ = true;
      dropped_ = dropped = true;
    } else {
      queue_.push_back({*type, event.object});
      if (!bounded) ++backlog_;
    }
  }
  // The reader waits only on an empty queue: one wake-up per burst is enough.
  if (was_empty || dropped) {
    if (wake != nullptr) {
      *wake = true;
    } else {
      cv_.notify_one();
    }
  }
  return !dropped;
}

void CacheWatcher::wake() {
  cv_.notify_one();
}

void CacheWatcher::end(bool dropped) {
  {
    std::lock_guard lock(mu_);
    ended_ = true;
    dropped_ = dropped_ || dropped;
  }
  cv_.notify_one();
}

CacheWatcher::Next CacheWatcher::next(Item& out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || ended_; })) {
    return Next::kTimeout;
  }
  // What was queued before the end is still delivered: the client resumes after it.
  if (queue_.empty()) return Next::kEnded;
  out = std::move(queue_.front());
  queue_.pop_front();
  if (backlog_ > 0) --backlog_;
  return Next::kItem;
}

std::optional<int64_t> CacheWatcher::bookmarkRevision() const {
  // The cache publishes its revision after queueing the events up to it: an empty queue read
  // after the revision means every event up to that revision has been taken.
  int64_t revision = cache_revision_.load(std::memory_order_acquire);
  std::lock_guard lock(mu_);
  if (!queue_.empty()) return std::nullopt;
  return std::max(revision, start_revision_);
}

bool CacheWatcher::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

size_t CacheWatcher::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

WatchCache::WatchCache(store::Store& store, const ResourceStorage& storage,
                       WatchCacheOptions options)
    : store_(store),
      storage_(storage),
      options_(options),
      prefix_(store::resourcePrefix(storage.type().plural)),
      index_field_(indexFieldFor(storage.type())),
      capacity_(std::max<size_t>(options.min_capacity, 1)) {
  // Loaded at once when the store answers, so the first requests are served from memory.
  initialize();
  pump_ = std::thread([this] { run(); });
}

WatchCache::~WatchCache() {
  stopping_.store(true, std::memory_order_release);
  {
    std::lock_guard lock(watch_mu_);
    if (watch_) watch_->cancel();
  }
  if (pump_.joinable()) pump_.join();
  std::unique_lock lock(mu_);
  for (auto& [ptr, watcher] : watchers_)
    watcher->end(true);
  clearRing();  // its bytes go back to the shared budget
}

bool WatchCache::initialize() {
  store::ListResult listed;
  store::WatchPtr watch;
  try {
    listed = store_.list(prefix_);
    watch = store_.watch(prefix_, listed.revision);
  } catch (const store::StoreError&) {
    return false;
  }
  std::map<std::string, CachedObjectPtr, std::less<>> objects;
  std::vector<std::pair<std::string, CachedObjectPtr>> indexed;
  for (const auto& kv : listed.kvs) {
    try {
      objects.emplace(kv.key, makeObject(storage_.decode(kv)));
    } catch (const ApiError&) {
      // An undecodable object is left out, as the store path reports it on its own reads.
    }
  }
  std::vector<CacheWatcherPtr> ended;
  {
    std::unique_lock lock(mu_);
    objects_ = std::move(objects);
    index_.clear();
    for (const auto& [key, object] : objects_)
      indexInsert(key, *object);
    // Watchers of a previous generation cannot be continued without a gap: they relist.
    for (auto& [ptr, watcher] : watchers_)
      ended.push_back(watcher);
    watchers_.clear();
    triggered_.clear();
    untriggered_.clear();
    clearRing();
    oldest_ = listed.revision;
    revision_.store(listed.revision, std::memory_order_release);
    {
      std::lock_guard wlock(watch_mu_);
      watch_ = std::move(watch);
      if (stopping_.load(std::memory_order_acquire)) watch_->cancel();
    }
    ready_.store(true, std::memory_order_release);
  }
  for (auto& w : ended)
    w->end(true);
  notifyListeners();
  return true;
}

void WatchCache::run() {
  std::vector<store::Event> events;
  auto backoff = std::chrono::milliseconds(100);
  while (!stopping_.load(std::memory_order_acquire)) {
    store::Watch* watch = nullptr;
    {
      std::lock_guard lock(watch_mu_);
      watch = watch_.get();
    }
    if (watch == nullptr) {
      // The store failed: try again, with the requests going to the store meanwhile.
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      if (!stopping_.load(std::memory_order_acquire)) initialize();
      continue;
    }
    backoff = std::chrono::milliseconds(100);
    events.clear();
    bool alive = watch->next(events, std::chrono::milliseconds(1000));
    if (!events.empty()) apply(events);
    int64_t progress = watch->progressRevision();
    if (progress > revision_.load(std::memory_order_relaxed)) {
      std::unique_lock lock(mu_);
      if (progress > revision_.load(std::memory_order_relaxed)) {
        revision_.store(progress, std::memory_order_release);
      }
    }
    if (!alive) {
      if (stopping_.load(std::memory_order_acquire)) break;
      // Ended (compacted behind us, store unavailable): relist and start over.
      ready_.store(false, std::memory_order_release);
      {
        std::lock_guard lock(watch_mu_);
        watch_.reset();
      }
      initialize();
    }
  }
}

CachedObjectPtr WatchCache::makeObject(std::shared_ptr<const Message> object) const {
  auto cached = std::make_shared<CachedObject>();
  cached->ns = meta(*object).namespace_();
  if (!index_field_.empty()) cached->index_value = fieldText(*object, index_field_).value_or("");
  cached->object = std::move(object);
  return cached;
}

void WatchCache::indexInsert(const std::string& key, const CachedObject& object) {
  if (!index_field_.empty()) index_[object.index_value].insert(key);
}

void WatchCache::indexErase(const std::string& key, const CachedObject& object) {
  if (index_field_.empty()) return;
  auto it = index_.find(object.index_value);
  if (it == index_.end()) return;
  it->second.erase(key);
  if (it->second.empty()) index_.erase(it);
}

void WatchCache::apply(const std::vector<store::Event>& events) {
  if (options_.metrics != nullptr) {
    options_.metrics->countCacheEvents(storage_.type().plural, events.size());
  }
  // Decoded outside the lock: lists and watches go on meanwhile.
  std::vector<std::shared_ptr<const Message>> decoded;
  decoded.reserve(events.size());
  for (const auto& e : events) {
    try {
      if (e.type == store::Event::Type::kDelete) {
        decoded.push_back(nullptr);
      } else {
        decoded.push_back(storage_.decode(e.kv));
      }
    } catch (const ApiError&) {
      decoded.push_back(nullptr);
    }
  }
  std::vector<CacheWatcherPtr> dropped;
  std::vector<CacheWatcherPtr> woken;  // notified after the lock, once per batch
  std::unique_lock lock(mu_);
  auto now = Clock::now();
  for (size_t i = 0; i < events.size(); ++i) {
    const store::Event& e = events[i];
    CachedEventPtr event = applyOne(e, std::move(decoded[i]), now);
    if (event) {
      // Only the watchers that can care: those on this object's index value (before or after)
      // and those without a trigger.
      std::vector<CacheWatcher*> behind;
      auto deliver = [&](CacheWatcher* w) {
        bool wake = false;
        if (!w->offer(*event, true, &wake)) behind.push_back(w);
        if (wake) woken.push_back(watchers_.at(w));
      };
      if (!index_field_.empty()) {
        auto t = triggered_.find(event->object->index_value);
        if (t != triggered_.end()) {
          for (CacheWatcher* w : t->second)
            deliver(w);
        }
        if (event->prev && event->prev->index_value != event->object->index_value) {
          t = triggered_.find(event->prev->index_value);
          if (t != triggered_.end()) {
            for (CacheWatcher* w : t->second)
              deliver(w);
          }
        }
      }
      for (CacheWatcher* w : untriggered_)
        deliver(w);
      for (CacheWatcher* w : behind) {
        dropped.push_back(watchers_.at(w));
        unregisterLocked(w);
      }
    }
    revision_.store(e.kv.mod_revision, std::memory_order_release);
  }
  lock.unlock();
  for (const auto& w : woken)
    w->wake();
  notifyListeners();
  // `dropped` are released here: their streams end once drained, and the clients watch again.
}

CachedEventPtr WatchCache::applyOne(const store::Event& e, std::shared_ptr<const Message> decoded,
                                    Clock::time_point now) {
  auto event = std::make_shared<CachedEvent>();
  event->revision = e.kv.mod_revision;
  event->recorded = now;
  auto it = objects_.find(e.kv.key);
  if (it != objects_.end()) event->prev = it->second;
  if (e.type == store::Event::Type::kDelete) {
    if (it == objects_.end()) return nullptr;  // never seen: nothing to tell
    // A deleted object is reported as it last was, at the delete's revision.
    MessagePtr last(it->second->object->New());
    last->CopyFrom(*it->second->object);
    mutableMeta(*last).set_resource_version(std::to_string(e.kv.mod_revision));
    event->type = WatchEvent::Type::kDeleted;
    event->object = makeObject(std::move(last));
    indexErase(it->first, *it->second);
    objects_.erase(it);
  } else {
    if (decoded == nullptr) return nullptr;
    event->type = it == objects_.end() ? WatchEvent::Type::kAdded : WatchEvent::Type::kModified;
    event->object = makeObject(std::move(decoded));
    if (it != objects_.end()) {
      indexErase(it->first, *it->second);
      it->second = event->object;
    } else {
      it = objects_.emplace(e.kv.key, event->object).first;
    }
    indexInsert(it->first, *event->object);
  }
  // What the ring keeps alive through this event: its object once newer ones replaced it in
  // objects_ (a prev is the previous event's object), decoded, plus the encodings watchers have
  // it sent in, made on first use: measured under bench soak, the JSON and protobuf together come
  // to about 2.5 times the stored size.
  const store::KeyValue& stored = e.type == store::Event::Type::kDelete && e.prev ? *e.prev : e.kv;
  event->bytes = sizeof(CachedEvent) + sizeof(CachedObject) + event->object->ns.size() +
                 event->object->index_value.size() + event->object->object->SpaceUsedLong() +
                 stored.value.size() * 5 / 2;
  record(event);
  return event;
}

void WatchCache::record(const CachedEventPtr& event) {
  resize(event->recorded);
  if (ring_.size() >= capacity_) popOldest();
  ring_.push_back(event);
  ring_bytes_ += event->bytes;
  if (options_.budget) options_.budget->add(event->bytes);
  while (ring_.size() > 1 && ring_bytes_ > options_.max_bytes)
    popOldest();
  const size_t keep = std::max<size_t>(options_.min_capacity, 1);
  while (options_.budget && ring_.size() > keep && options_.budget->over())
    popOldest();
}

void WatchCache::popOldest() {
  oldest_ = ring_.front()->revision;
  ring_bytes_ -= ring_.front()->bytes;
  if (options_.budget) options_.budget->remove(ring_.front()->bytes);
  ring_.pop_front();
}

void WatchCache::clearRing() {
  if (options_.budget) options_.budget->remove(ring_bytes_);
  ring_.clear();
  ring_bytes_ = 0;
}

void WatchCache::resize(Clock::time_point now) {
  if (ring_.size() < capacity_) return;
  // Full and the oldest event is still fresh: grow, so watchers can resume across a burst (not
  // past the byte budget, which record() keeps anyway).
  if (now - ring_.front()->recorded < options_.event_fresh_duration) {
    if (ring_bytes_ >= options_.max_bytes) return;
    capacity_ = std::min(capacity_ * 2, std::max(options_.max_capacity, capacity_));
    return;
  }
  // Full and even the newest quarter is stale: shrink.
  const auto& quarter = ring_[ring_.size() - std::max<size_t>(capacity_ / 4, 1)];
  if (now - quarter->recorded > options_.event_fresh_duration) {
    size_t smaller = std::max(capacity_ / 2, std::max<size_t>(options_.min_capacity, 1));
    while (ring_.size() > smaller)
      popOldest();
    capacity_ = smaller;
  }
}

int64_t WatchCache::oldestRevision() const {
  std::shared_lock lock(mu_);
  return oldest_;
}

size_t WatchCache::capacity() const {
  std::shared_lock lock(mu_);
  return capacity_;
}

size_t WatchCache::ringSize() const {
  std::shared_lock lock(mu_);
  return ring_.size();
}

size_t WatchCache::ringBytes() const {
  std::shared_lock lock(mu_);
  return ring_bytes_;
}

size_t WatchCache::watcherCount() const {
  std::shared_lock lock(mu_);
  return watchers_.size();
}

size_t WatchCache::objectCount() const {
  std::shared_lock lock(mu_);
  return objects_.size();
}

bool WatchCache::servesList(const ListRequest& request) {
  if (!request.continue_token.empty()) return false;
  if (request.resource_version == "0") return true;
  if (request.resource_version.empty()) return false;  // a consistent read: the store
  if (request.limit > 0) return false;
  return request.resource_version_match.empty() || request.resource_version_match == "NotOlderThan";
}

std::optional<ListResponse> WatchCache::list(std::string_view ns, const ListRequest& request,
                                             int64_t min_revision) const {
  if (!ready()) return std::nullopt;
  std::shared_lock lock(mu_);
  int64_t revision = revision_.load(std::memory_order_acquire);
  if (revision < min_revision) return std::nullopt;
  ListResponse response;
  response.resource_version = std::to_string(revision);
  auto take = [&](const CachedObject& object) {
    if (!ns.empty() && object.ns != ns) return;
    if (!storage_.matches(*object.object, request)) return;
    response.items.push_back(object.object);
  };
  std::optional<std::string> exact;
  if (!index_field_.empty()) exact = request.fields.requiresExactMatch(index_field_);
  if (exact) {
    auto it = index_.find(*exact);
    if (it == index_.end()) return response;
    for (const auto& key : it->second)
      take(*objects_.at(key));
    return response;
  }
  std::string prefix =
      store::resourcePrefix(storage_.type().plural, storage_.type().namespaced ? ns : "");
  for (auto it = objects_.lower_bound(prefix);
       it != objects_.end() && it->first.starts_with(prefix); ++it) {
    take(*it->second);
  }
  return response;
}

CacheWatcherPtr WatchCache::watch(std::string_view ns, const ListRequest& request,
                                  std::optional<int64_t> from) {
  std::shared_ptr<CacheWatcher> watcher(
      new CacheWatcher(std::string(ns), request, storage_, revision_));
  watcher->limit_ = std::max<size_t>(options_.watcher_queue, 1);
  if (!index_field_.empty()) watcher->trigger_ = request.fields.requiresExactMatch(index_field_);
  std::unique_lock lock(mu_);
  if (!from) {
    // The current state, then what changes after it.
    int64_t revision = revision_.load(std::memory_order_acquire);
    watcher->start_revision_ = revision;
    std::string prefix =
        store::resourcePrefix(storage_.type().plural, storage_.type().namespaced ? ns : "");
    for (auto it = objects_.lower_bound(prefix);
         it != objects_.end() && it->first.starts_with(prefix); ++it) {
      if (watcher->matches(*it->second)) {
        watcher->queue_.push_back({WatchEvent::Type::kAdded, it->second});
      }
    }
    watcher->backlog_ = watcher->queue_.size();
  } else {
    if (*from < oldest_) {
      throw gone("too old resource version: " + std::to_string(*from) + " (" +
                 std::to_string(oldest_) + ")");
    }
    // A revision newer than the cache (written elsewhere, not applied yet) is fine: events up
    // to it are skipped as they arrive.
    watcher->start_revision_ = *from;
    auto first = std::upper_bound(
        ring_.begin(), ring_.end(), *from,
        [](int64_t revision, const CachedEventPtr& e) { return revision < e->revision; });
    for (auto it = first; it != ring_.end(); ++it)
      watcher->offer(**it, false);
  }
  CacheWatcher* raw = watcher.get();
  watchers_.emplace(raw, watcher);
  if (watcher->trigger_) {
    triggered_[*watcher->trigger_].insert(raw);
  } else {
    untriggered_.insert(raw);
  }
  return watcher;
}

void WatchCache::unregisterLocked(CacheWatcher* watcher) {
  auto it = watchers_.find(watcher);
  if (it == watchers_.end()) return;
  if (watcher->trigger_) {
    auto t = triggered_.find(*watcher->trigger_);
    if (t != triggered_.end()) {
      t->second.erase(watcher);
      if (t->second.empty()) triggered_.erase(t);
    }
  } else {
    untriggered_.erase(watcher);
  }
  watchers_.erase(it);
}

ObjectPtr WatchCache::get(std::string_view ns, std::string_view name) const {
  std::string key = storage_.key(ns, name);
  std::shared_lock lock(mu_);
  auto it = objects_.find(key);
  return it == objects_.end() ? nullptr : it->second->object;
}

std::vector<ObjectPtr> WatchCache::objects(std::string_view ns) const {
  std::string prefix =
      store::resourcePrefix(storage_.type().plural, storage_.type().namespaced ? ns : "");
  std::vector<ObjectPtr> out;
  std::shared_lock lock(mu_);
  for (auto it = objects_.lower_bound(prefix);
       it != objects_.end() && it->first.starts_with(prefix); ++it) {
    out.push_back(it->second->object);
  }
  return out;
}

std::vector<ObjectPtr> WatchCache::indexed(std::string_view value) const {
  std::vector<ObjectPtr> out;
  std::shared_lock lock(mu_);
  auto it = index_.find(std::string(value));
  if (it == index_.end()) return out;
  out.reserve(it->second.size());
  for (const auto& key : it->second) {
    auto o = objects_.find(key);
    if (o != objects_.end()) out.push_back(o->second->object);
  }
  return out;
}

WatchCache::ListenerId WatchCache::addListener(std::function<void()> listener) {
  std::lock_guard lock(listeners_mu_);
  ListenerId id = next_listener_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void WatchCache::removeListener(ListenerId id) {
  std::lock_guard lock(listeners_mu_);
  listeners_.erase(id);
}

void WatchCache::notifyListeners() {
  std::lock_guard lock(listeners_mu_);
  for (const auto& [id, listener] : listeners_)
    listener();
}

void WatchCache::stopWatching(const CacheWatcherPtr& watcher) {
  if (!watcher) return;
  {
    std::unique_lock lock(mu_);
    unregisterLocked(watcher.get());
  }
  watcher->end(false);
}

}  // namespace skiff::apiserver

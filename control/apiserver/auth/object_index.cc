#include "control/apiserver/auth/object_index.h"

namespace skiff::apiserver::auth {

ObjectIndex::ObjectIndex(store::Store& store, const api::ResourceType& type, Trim trim)
    : store_(store),
      storage_(store, type),
      trim_(std::move(trim)),
      prefix_(store::resourcePrefix(type.plural)) {}

ObjectIndex::~ObjectIndex() {
  stop();
}

void ObjectIndex::start() {
  thread_ = std::thread([this] { run(); });
}

void ObjectIndex::stop() {
  stopping_.store(true, std::memory_order_release);
  {
    std::lock_guard lock(watch_mu_);
    if (watch_) watch_->cancel();
  }
  if (thread_.joinable()) thread_.join();
}

bool ObjectIndex::waitSynced(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(sync_mu_);
  return sync_cv_.wait_for(lock, timeout, [this] { return synced(); });
}

ObjectPtr ObjectIndex::get(std::string_view ns, std::string_view name) const {
  std::string key = storage_.key(ns, name);
  std::shared_lock lock(mu_);
  auto it = objects_.find(key);
  return it == objects_.end() ? nullptr : it->second;
}

std::vector<ObjectPtr> ObjectIndex::list(std::string_view ns) const {
  std::string prefix = prefix_;
  if (!ns.empty()) prefix += std::string(ns) + "/";
  std::vector<ObjectPtr> out;
  std::shared_lock lock(mu_);
  for (auto it = objects_.lower_bound(prefix); it != objects_.end(); ++it) {
    if (!it->first.starts_with(prefix)) break;
    out.push_back(it->second);
  }
  return out;
}

bool ObjectIndex::relist() {
  store::ListResult listed;
  store::WatchPtr watch;
  try {
    listed = store_.list(prefix_);
    watch = store_.watch(prefix_, listed.revision);
  } catch (const store::StoreError&) {
    return false;
  }
  std::map<std::string, ObjectPtr, std::less<>> objects;
  for (const auto& kv : listed.kvs) {
    try {
      MessagePtr object = storage_.decode(kv);
      if (trim_) trim_(*object);
      objects.emplace(kv.key, ObjectPtr(std::move(object)));
    } catch (const ApiError&) {
      // Undecodable: left out, as the watch cache does.
    }
  }
  {
    std::unique_lock lock(mu_);
    objects_ = std::move(objects);
    revision_.store(listed.revision, std::memory_order_release);
  }
  {
    std::lock_guard lock(watch_mu_);
    watch_ = std::move(watch);
    if (stopping_.load(std::memory_order_acquire)) watch_->cancel();
  }
  {
    std::lock_guard lock(sync_mu_);
    synced_.store(true, std::memory_order_release);
  }
  sync_cv_.notify_all();
  if (on_change_) on_change_();
  return true;
}

void ObjectIndex::apply(const std::vector<store::Event>& events) {
  int64_t last = 0;
  {
    std::unique_lock lock(mu_);
    for (const auto& event : events) {
      last = std::max(last, event.kv.mod_revision);
      if (event.type == store::Event::Type::kDelete) {
        objects_.erase(event.kv.key);
        continue;
      }
      try {
        MessagePtr object = storage_.decode(event.kv);
        if (trim_) trim_(*object);
        objects_[event.kv.key] = ObjectPtr(std::move(object));
      } catch (const ApiError&) {
        objects_.erase(event.kv.key);
      }
    }
    if (last > revision_.load(std::memory_order_relaxed)) {
      revision_.store(last, std::memory_order_release);
    }
  }
  if (on_change_) on_change_();
}

void ObjectIndex::run() {
  std::vector<store::Event> events;
  auto backoff = std::chrono::milliseconds(100);
  while (!stopping_.load(std::memory_order_acquire)) {
    store::Watch* watch = nullptr;
    {
      std::lock_guard lock(watch_mu_);
      watch = watch_.get();
    }
    if (watch == nullptr) {
      if (relist()) {
        backoff = std::chrono::milliseconds(100);
      } else {
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      }
      continue;
    }
    events.clear();
    bool alive = watch->next(events, std::chrono::milliseconds(1000));
    if (!events.empty()) apply(events);
    if (!alive) {
      if (stopping_.load(std::memory_order_acquire)) break;
      std::lock_guard lock(watch_mu_);
      watch_.reset();  // compacted behind us or the store failed: relist
    }
  }
}

}  // namespace skiff::apiserver::auth

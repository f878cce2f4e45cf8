#include "control/apiserver/auth/object_index.h"

#include <thread>

namespace skiff::apiserver::auth {

ObjectIndex::ObjectIndex(WatchCache& cache) : cache_(&cache) {}

ObjectIndex::ObjectIndex(store::Store& store, const api::ResourceType& type)
    : store_(&store), type_(&type) {}

ObjectIndex::~ObjectIndex() {
  stop();
}

void ObjectIndex::start() {
  if (cache_ == nullptr) {
    own_storage_ = std::make_unique<ResourceStorage>(*store_, *type_);
    // Lists are not served from it: a short ring is enough.
    own_cache_ = std::make_unique<WatchCache>(
        *store_, *own_storage_, WatchCacheOptions{.min_capacity = 16, .max_capacity = 1024});
    cache_ = own_cache_.get();
  }
  if (on_change_ && !listener_) listener_ = cache_->addListener(on_change_);
}

void ObjectIndex::stop() {
  if (listener_ && cache_ != nullptr) cache_->removeListener(*listener_);
  listener_.reset();
}

bool ObjectIndex::synced() const {
  if (loaded_.load(std::memory_order_acquire)) return true;
  if (cache_ == nullptr || !cache_->ready()) return false;
  loaded_.store(true, std::memory_order_release);
  return true;
}

bool ObjectIndex::waitSynced(std::chrono::milliseconds timeout, int64_t min_revision) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (cache_ != nullptr && cache_->ready() && cache_->revision() >= min_revision) {
      loaded_.store(true, std::memory_order_release);
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

ObjectPtr ObjectIndex::get(std::string_view ns, std::string_view name) const {
  return cache_ == nullptr ? nullptr : cache_->get(ns, name);
}

std::vector<ObjectPtr> ObjectIndex::list(std::string_view ns) const {
  return cache_ == nullptr ? std::vector<ObjectPtr>{} : cache_->objects(ns);
}

std::vector<ObjectPtr> ObjectIndex::indexed(std::string_view value) const {
  return cache_ == nullptr ? std::vector<ObjectPtr>{} : cache_->indexed(value);
}

int64_t ObjectIndex::revision() const {
  return cache_ == nullptr ? 0 : cache_->revision();
}

}  // namespace skiff::apiserver::auth

#include "control/client/informer.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "control/api/codec.h"
#include "control/api/selector.h"
#include "control/client/informer_internal.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/meta_v1.pb.h"

namespace skiff::client {

using google::protobuf::Message;
using Clock = std::chrono::steady_clock;

const api::meta::v1::ObjectMeta& objectMeta(const Message& object) {
  const google::protobuf::Descriptor* d = object.GetDescriptor();
  const google::protobuf::FieldDescriptor* field = d->FindFieldByName("metadata");
  if (field == nullptr || field->message_type() != api::meta::v1::ObjectMeta::descriptor()) {
    return api::meta::v1::ObjectMeta::default_instance();
  }
  return static_cast<const api::meta::v1::ObjectMeta&>(
      object.GetReflection()->GetMessage(object, field));
}

std::string objectKey(const Message& object) {
  const auto& meta = objectMeta(object);
  if (meta.namespace_().empty()) return meta.name();
  std::string key;
  key.reserve(meta.namespace_().size() + 1 + meta.name().size());
  key += meta.namespace_();
  key += '/';
  key += meta.name();
  return key;
}

std::pair<std::string, std::string> splitObjectKey(std::string_view key) {
  size_t slash = key.find('/');
  if (slash == std::string_view::npos) return {"", std::string(key)};
  return {std::string(key.substr(0, slash)), std::string(key.substr(slash + 1))};
}

// ---------------------------------------------------------------------------------------------
// The indexed cache.

namespace internal {

IndexedCache::IndexedCache() {
  indexers_.emplace(std::string(kIndexNamespace), [](const Message& m) {
    const std::string& ns = objectMeta(m).namespace_();
    return ns.empty() ? std::vector<std::string>{} : std::vector<std::string>{ns};
  });
  indexers_.emplace(std::string(kIndexOwner), [](const Message& m) {
    std::vector<std::string> uids;
    for (const auto& ref : objectMeta(m).owner_references())
      uids.push_back(ref.uid());
    return uids;
  });
  indexers_.emplace(std::string(kIndexNodeName), [](const Message& m) {
    const auto* pod = dynamic_cast<const api::core::v1::Pod*>(&m);
    if (pod == nullptr || pod->spec().node_name().empty()) return std::vector<std::string>{};
    return std::vector<std::string>{pod->spec().node_name()};
  });
  for (const auto& [name, func] : indexers_)
    indices_[name];
}

void IndexedCache::addIndex(std::string name, IndexFunc func) {
  std::unique_lock lock(mutex_);
  Index& index = indices_[name];
  index.clear();
  for (const auto& [key, object] : items_) {
    for (auto& value : func(*object))
      index[value].insert(key);
  }
  indexers_[std::move(name)] = std::move(func);
}

void IndexedCache::indexLocked(const std::string& key, const Message& object) {
  for (const auto& [name, func] : indexers_) {
    Index& index = indices_[name];
    for (auto& value : func(object))
      index[value].insert(key);
  }
}

void IndexedCache::unindexLocked(const std::string& key, const Message& object) {
  for (const auto& [name, func] : indexers_) {
    Index& index = indices_[name];
    for (const auto& value : func(object)) {
      auto it = index.find(value);
      if (it == index.end()) continue;
      it->second.erase(key);
      if (it->second.empty()) index.erase(it);
    }
  }
}

ObjectPtr IndexedCache::upsert(const std::string& key, ObjectPtr object) {
  std::unique_lock lock(mutex_);
  auto it = items_.find(key);
  ObjectPtr old;
  if (it != items_.end()) {
    old = std::move(it->second);
    unindexLocked(key, *old);
    it->second = object;
  } else {
    items_.emplace(key, object);
  }
  indexLocked(key, *object);
  return old;
}

ObjectPtr IndexedCache::erase(const std::string& key) {
  std::unique_lock lock(mutex_);
  auto it = items_.find(key);
  if (it == items_.end()) return nullptr;
  ObjectPtr old = std::move(it->second);
  items_.erase(it);
  unindexLocked(key, *old);
  return old;
}

ObjectPtr IndexedCache::get(std::string_view key) const {
  std::shared_lock lock(mutex_);
  auto it = items_.find(std::string(key));
  return it == items_.end() ? nullptr : it->second;
}

ObjectPtr IndexedCache::get(std::string_view ns, std::string_view name) const {
  if (ns.empty()) return get(name);
  std::string key;
  key.reserve(ns.size() + 1 + name.size());
  key.append(ns).append("/").append(name);
  return get(key);
}

std::vector<ObjectPtr> IndexedCache::list() const {
  std::shared_lock lock(mutex_);
  std::vector<ObjectPtr> out;
  out.reserve(items_.size());
  for (const auto& [key, object] : items_)
    out.push_back(object);
  return out;
}

std::vector<ObjectPtr> IndexedCache::list(std::string_view ns,
                                          std::string_view label_selector) const {
  api::labels::Selector selector = label_selector.empty()
                                       ? api::labels::Selector::everything()
                                       : api::labels::Selector::parse(label_selector);
  std::vector<ObjectPtr> candidates = ns.empty() ? list() : byIndex(kIndexNamespace, ns);
  if (selector.empty()) return candidates;
  std::vector<ObjectPtr> out;
  for (auto& object : candidates) {
    if (selector.matches(objectMeta(*object).labels())) out.push_back(std::move(object));
  }
  return out;
}

std::vector<ObjectPtr> IndexedCache::byIndex(std::string_view index, std::string_view value) const {
  std::shared_lock lock(mutex_);
  auto idx = indices_.find(std::string(index));
  if (idx == indices_.end()) {
    throw std::invalid_argument("informer cache: no index named \"" + std::string(index) + "\"");
  }
  std::vector<ObjectPtr> out;
  auto it = idx->second.find(std::string(value));
  if (it == idx->second.end()) return out;
  out.reserve(it->second.size());
  for (const auto& key : it->second) {
    auto item = items_.find(key);
    if (item != items_.end()) out.push_back(item->second);
  }
  return out;
}

std::vector<std::string> IndexedCache::keys() const {
  std::shared_lock lock(mutex_);
  std::vector<std::string> out;
  out.reserve(items_.size());
  for (const auto& [key, object] : items_)
    out.push_back(key);
  return out;
}

size_t IndexedCache::size() const {
  std::shared_lock lock(mutex_);
  return items_.size();
}

// ---------------------------------------------------------------------------------------------
// The informer: reflector, cache and handlers.

Informer::Informer(Client& client, const api::ResourceType& type, InformerOptions options)
    : client_(client), type_(type), options_(std::move(options)) {}

Informer::~Informer() {
  stop();
}

void Informer::addEventHandler(EventHandlers handlers) {
  std::lock_guard lock(handlers_mutex_);
  // A late handler first hears of everything already cached.
  if (handlers.on_add) {
    for (const auto& object : cache_.list())
      handlers.on_add(object);
  }
  handlers_.push_back(std::move(handlers));
}

void Informer::addIndex(std::string name, IndexFunc func) {
  if (started_.load()) {
    throw std::logic_error("informer for " + type_.plural + ": addIndex(\"" + name +
                           "\") after start()");
  }
  cache_.addIndex(std::move(name), std::move(func));
}

std::string Informer::lastSyncResourceVersion() const {
  std::lock_guard lock(rv_mutex_);
  return last_rv_;
}

void Informer::start() {
  if (started_.exchange(true)) return;
  thread_ = std::thread([this] { run(); });
}

void Informer::stop() {
  {
    std::lock_guard lock(stop_mutex_);
    stopping_ = true;
    if (watch_) watch_->cancel();
  }
  stop_cv_.notify_all();
  {
    std::lock_guard lock(synced_mutex_);
    synced_cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

bool Informer::sleepFor(std::chrono::milliseconds delay) {
  std::unique_lock lock(stop_mutex_);
  return !stop_cv_.wait_for(lock, delay, [&] { return stopping_; });
}

bool Informer::stopping() const {
  std::lock_guard lock(stop_mutex_);
  return stopping_;
}

void Informer::setResourceVersion(std::string rv) {
  std::lock_guard lock(rv_mutex_);
  last_rv_ = std::move(rv);
}

ObjectPtr Informer::decode(const api::Value& value) const {
  std::unique_ptr<Message> message = type_.newMessage();
  api::decode(value, *message, {.unknown_fields = api::UnknownFields::kIgnore});
  return ObjectPtr(std::move(message));
}

void Informer::deliverAdd(const ObjectPtr& object) {
  std::lock_guard lock(handlers_mutex_);
  for (const auto& h : handlers_)
    if (h.on_add) h.on_add(object);
}

void Informer::deliverUpdate(const ObjectPtr& old_object, const ObjectPtr& new_object) {
  std::lock_guard lock(handlers_mutex_);
  for (const auto& h : handlers_)
    if (h.on_update) h.on_update(old_object, new_object);
}

void Informer::deliverDelete(const ObjectPtr& object) {
  std::lock_guard lock(handlers_mutex_);
  for (const auto& h : handlers_)
    if (h.on_delete) h.on_delete(object);
}

void Informer::applyUpsert(const ObjectPtr& object) {
  ObjectPtr old = cache_.upsert(objectKey(*object), object);
  if (old) {
    deliverUpdate(old, object);
  } else {
    deliverAdd(object);
  }
}

void Informer::applyDelete(const ObjectPtr& object) {
  // Only what the cache held is deleted (a delete of an object never seen is dropped).
  if (cache_.erase(objectKey(*object))) deliverDelete(object);
}

void Informer::replace(std::vector<ObjectPtr> objects, std::string resource_version) {
  std::unordered_set<std::string> seen;
  seen.reserve(objects.size());
  for (auto& object : objects) {
    std::string key = objectKey(*object);
    seen.insert(key);
    ObjectPtr current = cache_.get(key);
    if (current &&
        objectMeta(*current).resource_version() == objectMeta(*object).resource_version()) {
      continue;  // unchanged since we saw it
    }
    cache_.upsert(key, object);
    if (current) {
      deliverUpdate(current, object);
    } else {
      deliverAdd(object);
    }
  }
  // Objects that vanished while we were not watching: deletes of their last known state.
  for (const auto& key : cache_.keys()) {
    if (seen.count(key) != 0) continue;
    if (ObjectPtr old = cache_.erase(key)) deliverDelete(old);
  }
  setResourceVersion(std::move(resource_version));
}

void Informer::listAll() {
  std::vector<ObjectPtr> objects;
  ListOptions options{.label_selector = options_.label_selector,
                      .field_selector = options_.field_selector,
                      .limit = kListPageSize};
  std::string resource_version;
  while (true) {
    api::Value page = client_.list(type_, options_.ns, options);
    const api::Value* meta = page.find("metadata");
    if (meta != nullptr) {
      if (const api::Value* rv = meta->find("resourceVersion"); rv != nullptr && rv->isString()) {
        if (resource_version.empty()) resource_version = rv->text();
      }
    }
    if (api::Value* items = page.find("items"); items != nullptr && items->isArray()) {
      objects.reserve(objects.size() + items->items().size());
      for (const auto& item : items->items())
        objects.push_back(decode(item));
    }
    const api::Value* next = meta != nullptr ? meta->find("continue") : nullptr;
    if (next == nullptr || !next->isString() || next->text().empty()) break;
    options.continue_token = next->text();
    if (stopping()) return;
  }
  replace(std::move(objects), std::move(resource_version));
  last_resync_ = Clock::now();
  if (!synced_.exchange(true)) {
    std::lock_guard lock(synced_mutex_);
    synced_cv_.notify_all();
  }
}

void Informer::resync() {
  for (const auto& object : cache_.list())
    deliverUpdate(object, object);
  last_resync_ = Clock::now();
}

std::chrono::milliseconds Informer::nextWait() const {
  std::chrono::milliseconds wait{1000};
  if (options_.resync_period.count() > 0) {
    auto due = last_resync_ + options_.resync_period - Clock::now();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(due);
    wait = std::clamp(left, std::chrono::milliseconds(1), wait);
  }
  return wait;
}

// Watches from the last revision until the stream ends. True when the cache must be relisted.
bool Informer::watchOnce() {
  // Between the minimum and twice it, as client-go's reflector: informers started together do
  // not all end their watches and reconnect in the same second.
  thread_local std::minstd_rand jitter{std::random_device{}()};
  const int timeout = std::uniform_int_distribution<int>(
      watch_timeout_seconds_,
      std::max(watch_timeout_seconds_, 2 * watch_timeout_seconds_ - 1))(jitter);
  WatchOptions options{.label_selector = options_.label_selector,
                       .field_selector = options_.field_selector,
                       .resource_version = lastSyncResourceVersion(),
                       .allow_bookmarks = true,
                       .timeout_seconds = timeout};
  WatchStreamPtr stream = client_.watch(type_, options_.ns, options);
  {
    std::lock_guard lock(stop_mutex_);
    if (stopping_) return false;
    watch_ = stream.get();
  }
  struct Clear {
    Informer* self;
    ~Clear() {
      std::lock_guard lock(self->stop_mutex_);
      self->watch_ = nullptr;
    }
  } clear{this};

  WatchEvent event;
  while (!stopping()) {
    if (options_.resync_period.count() > 0 &&
        Clock::now() - last_resync_ >= options_.resync_period) {
      resync();
    }
    if (!stream->next(event, nextWait())) {
      if (!stream->ended()) continue;
      break;
    }
    backoff_ = kInitialBackoff;  // the server is answering
    switch (event.type) {
      case WatchEvent::Type::kAdded:
      case WatchEvent::Type::kModified: {
        ObjectPtr object = decode(event.object);
        std::string rv = objectMeta(*object).resource_version();
        applyUpsert(object);
        setResourceVersion(std::move(rv));
        break;
      }
      case WatchEvent::Type::kDeleted: {
        ObjectPtr object = decode(event.object);
        std::string rv = objectMeta(*object).resource_version();
        applyDelete(object);
        setResourceVersion(std::move(rv));
        break;
      }
      case WatchEvent::Type::kBookmark: {
        const api::Value* meta = event.object.find("metadata");
        const api::Value* rv = meta != nullptr ? meta->find("resourceVersion") : nullptr;
        if (rv != nullptr && rv->isString() && !rv->text().empty()) setResourceVersion(rv->text());
        break;
      }
      case WatchEvent::Type::kError:
        break;  // error() below says what
    }
  }
  if (auto error = stream->error()) {
    if (error->isGone()) return true;
    if (!stopping()) throw *error;
  }
  return false;
}

void Informer::run() {
  bool need_list = true;
  while (!stopping()) {
    try {
      if (need_list) {
        listAll();
        need_list = false;
        backoff_ = kInitialBackoff;
        if (stopping()) break;
      }
      need_list = watchOnce();
      continue;
    } catch (const ApiError& e) {
      if (e.isGone()) {
        need_list = true;
        continue;
      }
      last_error_ = e.what();
    } catch (const std::exception& e) {
      last_error_ = e.what();
    }
    // The server is down or refused us: back off, with jitter, before trying again.
    thread_local std::mt19937 rng{std::random_device{}()};
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    auto delay = std::chrono::milliseconds(
        static_cast<int64_t>(static_cast<double>(backoff_.count()) * jitter(rng)));
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
    if (!sleepFor(delay)) break;
  }
}

bool Informer::waitForSync(std::chrono::milliseconds timeout) {
  std::unique_lock lock(synced_mutex_);
  return synced_cv_.wait_for(lock, timeout, [&] { return synced_.load() || stopping(); }) &&
         synced_.load();
}

}  // namespace internal

// ---------------------------------------------------------------------------------------------
// The factory.

struct SharedInformerFactory::Impl {
  Impl(Client& c, InformerOptions d) : client(c), defaults(std::move(d)) {}
  Client& client;
  InformerOptions defaults;
  std::mutex mutex;
  // One per resource and options.
  std::map<std::string, std::unique_ptr<internal::Informer>> informers;
  bool stopped = false;
};

namespace {

std::string informerId(const api::ResourceType& type, const InformerOptions& o) {
  return type.group + "/" + type.version + "/" + type.plural + "|" + o.ns + "|" + o.label_selector +
         "|" + o.field_selector + "|" + std::to_string(o.resync_period.count());
}

}  // namespace

SharedInformerFactory::SharedInformerFactory(Client& client, InformerOptions defaults)
    : impl_(std::make_unique<Impl>(client, std::move(defaults))) {}

SharedInformerFactory::~SharedInformerFactory() {
  stop();
}

SharedInformer& SharedInformerFactory::informerFor(const api::ResourceType& type) {
  return informerFor(type, impl_->defaults);
}

SharedInformer& SharedInformerFactory::informerFor(const api::ResourceType& type,
                                                   const InformerOptions& options) {
  if (!type.served()) {
    throw std::invalid_argument("informer: " + type.kind + " is not a served resource");
  }
  std::lock_guard lock(impl_->mutex);
  auto& slot = impl_->informers[informerId(type, options)];
  if (!slot) slot = std::make_unique<internal::Informer>(impl_->client, type, options);
  return *slot;
}

void SharedInformerFactory::start() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->stopped) return;
  for (auto& [id, informer] : impl_->informers)
    informer->start();
}

bool SharedInformerFactory::waitForCacheSync(std::chrono::milliseconds timeout) {
  std::vector<internal::Informer*> started;
  {
    std::lock_guard lock(impl_->mutex);
    for (auto& [id, informer] : impl_->informers)
      if (informer->started()) started.push_back(informer.get());
  }
  auto deadline = Clock::now() + timeout;
  for (auto* informer : started) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (!informer->waitForSync(std::max(left, std::chrono::milliseconds(0)))) return false;
  }
  return true;
}

void SharedInformerFactory::stop() {
  std::lock_guard lock(impl_->mutex);
  impl_->stopped = true;
  for (auto& [id, informer] : impl_->informers)
    informer->stop();
}

}  // namespace skiff::client

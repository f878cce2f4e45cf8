#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "control/client/informer.h"
#include "skiff/api/meta_v1.pb.h"

// The pieces behind SharedInformerFactory, for the factory, tests and benchmarks: the indexed
// cache and one informer (reflector + cache + handlers). Components use informer.h only.

namespace skiff::client {

// The metadata of any API object (the default instance when it has none).
const api::meta::v1::ObjectMeta& objectMeta(const google::protobuf::Message& object);

namespace internal {

// client-go's ThreadSafeStore: objects by key, and one index per IndexFunc (value -> keys).
class IndexedCache : public Cache {
 public:
  IndexedCache();

  void addIndex(std::string name, IndexFunc func);
  // Stores `object` under `key`; returns what was there before (null when new).
  ObjectPtr upsert(const std::string& key, ObjectPtr object);
  // Removes `key`; returns what was there (null when absent).
  ObjectPtr erase(const std::string& key);

  ObjectPtr get(std::string_view key) const override;
  ObjectPtr get(std::string_view ns, std::string_view name) const override;
  std::vector<ObjectPtr> list() const override;
  std::vector<ObjectPtr> list(std::string_view ns, std::string_view label_selector) const override;
  std::vector<ObjectPtr> byIndex(std::string_view index, std::string_view value) const override;
  std::vector<std::string> keys() const override;
  size_t size() const override;

 private:
  using Index = std::unordered_map<std::string, std::unordered_set<std::string>>;
  void indexLocked(const std::string& key, const google::protobuf::Message& object);
  void unindexLocked(const std::string& key, const google::protobuf::Message& object);

  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, ObjectPtr> items_;
  std::unordered_map<std::string, IndexFunc> indexers_;
  std::unordered_map<std::string, Index> indices_;
};

// One resource's list + watch into an IndexedCache, with handlers, on its own thread.
class Informer : public SharedInformer {
 public:
  static constexpr int64_t kListPageSize = 500;
  static constexpr std::chrono::milliseconds kInitialBackoff{100};
  static constexpr std::chrono::milliseconds kMaxBackoff{30000};

  Informer(Client& client, const api::ResourceType& type, InformerOptions options);
  ~Informer() override;

  const api::ResourceType& type() const override { return type_; }
  void addEventHandler(EventHandlers handlers) override;
  void addIndex(std::string name, IndexFunc func) override;
  const Cache& cache() const override { return cache_; }
  bool hasSynced() const override { return synced_.load(); }
  std::string lastSyncResourceVersion() const override;

  void start();
  void stop();
  bool started() const { return started_.load(); }
  bool waitForSync(std::chrono::milliseconds timeout);
  // How long each watch asks the server to keep it open (then it is resumed).
  void setWatchTimeoutSeconds(int seconds) { watch_timeout_seconds_ = seconds; }

  // The steps of the reflector, public for benchmarks that feed the informer without a server.
  ObjectPtr decode(const api::Value& value) const;
  void applyUpsert(const ObjectPtr& object);
  void applyDelete(const ObjectPtr& object);
  // A full list: adds, updates of changed objects, deletes of vanished ones.
  void replace(std::vector<ObjectPtr> objects, std::string resource_version);

 private:
  void run();
  void listAll();
  bool watchOnce();
  void resync();
  std::chrono::milliseconds nextWait() const;
  bool sleepFor(std::chrono::milliseconds delay);
  bool stopping() const;
  void setResourceVersion(std::string rv);
  void deliverAdd(const ObjectPtr& object);
  void deliverUpdate(const ObjectPtr& old_object, const ObjectPtr& new_object);
  void deliverDelete(const ObjectPtr& object);

  Client& client_;
  const api::ResourceType& type_;
  InformerOptions options_;
  IndexedCache cache_;
  int watch_timeout_seconds_ = 300;  // the minimum: each watch asks for up to twice it

  std::mutex handlers_mutex_;  // held while handlers run, so a late handler misses nothing
  std::vector<EventHandlers> handlers_;

  mutable std::mutex rv_mutex_;
  std::string last_rv_;

  std::atomic<bool> started_{false};
  std::atomic<bool> synced_{false};
  std::mutex synced_mutex_;
  std::condition_variable synced_cv_;

  mutable std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  WatchStream* watch_ = nullptr;  // the open watch, cancelled by stop()

  // The informer thread's own state.
  std::chrono::milliseconds backoff_ = kInitialBackoff;
  std::chrono::steady_clock::time_point last_resync_ = std::chrono::steady_clock::now();
  std::string last_error_;
  std::thread thread_;
};

}  // namespace internal
}  // namespace skiff::client

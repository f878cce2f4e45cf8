#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/message.h>

#include "control/api/registry.h"
#include "control/client/client.h"

// Informers as client-go has them: list + watch of one resource into an indexed cache, with event
// handlers. The cache holds typed messages (decoded once, shared read-only between every handler
// and reader), so a controller reads the cluster from memory and only writes through the Client.
//
// Threading: one thread per informer lists, watches and applies events to the cache, then calls the
// handlers in order on that thread. Handlers must be quick (client-go's rule: enqueue a key into a
// WorkQueue and return). Cache reads are safe from any thread at any time.

namespace skiff::client {

using ObjectPtr = std::shared_ptr<const google::protobuf::Message>;

// "namespace/name", or "name" for cluster-scoped objects (client-go's MetaNamespaceKeyFunc).
std::string objectKey(const google::protobuf::Message& object);
std::pair<std::string, std::string> splitObjectKey(std::string_view key);

// The built-in indexes every cache has.
inline constexpr std::string_view kIndexNamespace = "namespace";  // metadata.namespace
inline constexpr std::string_view kIndexOwner = "owner";          // each ownerReferences[].uid
inline constexpr std::string_view kIndexNodeName = "nodeName";    // Pod spec.nodeName
// Index functions return the values an object is filed under (none, one or several).
using IndexFunc = std::function<std::vector<std::string>(const google::protobuf::Message&)>;

// A read-only view of an informer's cache.
class Cache {
 public:
  virtual ~Cache() = default;
  // By "namespace/name" (or "name").
  virtual ObjectPtr get(std::string_view key) const = 0;
  virtual ObjectPtr get(std::string_view ns, std::string_view name) const = 0;
  virtual std::vector<ObjectPtr> list() const = 0;
  // Objects in `ns` ("" = all) whose labels match a label selector ("app=web"; "" = everything).
  virtual std::vector<ObjectPtr> list(std::string_view ns,
                                      std::string_view label_selector) const = 0;
  virtual std::vector<ObjectPtr> byIndex(std::string_view index, std::string_view value) const = 0;
  virtual std::vector<std::string> keys() const = 0;
  virtual size_t size() const = 0;
};

// What a handler is told. Updates carry the old and new object; a delete carries the last state
// the cache held (client-go's DeletedFinalStateUnknown is folded in: after a relist, objects that
// vanished are delivered as deletes of their last known state).
struct EventHandlers {
  std::function<void(const ObjectPtr& object)> on_add;
  std::function<void(const ObjectPtr& old_object, const ObjectPtr& new_object)> on_update;
  std::function<void(const ObjectPtr& object)> on_delete;
};

struct InformerOptions {
  std::string ns;  // one namespace only; "" = all
  std::string label_selector;
  std::string field_selector;  // e.g. "spec.nodeName=node-1" for a kubelet's pods
  // Every object is re-delivered to the handlers as an update (old == new) this often; 0 = never.
  std::chrono::milliseconds resync_period{0};
};

class SharedInformer {
 public:
  virtual ~SharedInformer() = default;

  virtual const api::ResourceType& type() const = 0;
  // A handler added after the informer started first gets an add for every cached object.
  virtual void addEventHandler(EventHandlers handlers) = 0;
  // Adds an index; only before start().
  virtual void addIndex(std::string name, IndexFunc func) = 0;
  virtual const Cache& cache() const = 0;
  // True once the first full list has been applied to the cache and delivered to the handlers.
  virtual bool hasSynced() const = 0;
  // The resourceVersion the cache is at (the last event or list applied).
  virtual std::string lastSyncResourceVersion() const = 0;
};

// One informer per (resource, options) for the whole process, as client-go's factory: every
// controller of a process shares one list+watch per resource.
class SharedInformerFactory {
 public:
  explicit SharedInformerFactory(Client& client, InformerOptions defaults = {});
  ~SharedInformerFactory();
  SharedInformerFactory(const SharedInformerFactory&) = delete;
  SharedInformerFactory& operator=(const SharedInformerFactory&) = delete;

  // The informer of `type` with the factory's default options (or `options`); made on first use.
  SharedInformer& informerFor(const api::ResourceType& type);
  SharedInformer& informerFor(const api::ResourceType& type, const InformerOptions& options);
  // The same, for a message type T (skiff::api::core::v1::Pod, ...).
  template <class T>
  SharedInformer& informerFor() {
    return informerFor(*api::Registry::builtin().byDescriptor(T::descriptor()));
  }

  // Starts every informer asked for so far that is not running (informers asked for later need
  // another start()).
  void start();
  // Waits until every started informer hasSynced(); false on timeout or stop.
  bool waitForCacheSync(std::chrono::milliseconds timeout);
  // Stops and joins every informer thread. Called by the destructor.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The typed object behind an ObjectPtr (the cache only holds messages of its informer's type).
template <class T>
const T& as(const ObjectPtr& object) {
  return static_cast<const T&>(*object);
}

}  // namespace skiff::client

#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/message.h>

#include "control/api/registry.h"
#include "control/api/selector.h"
#include "control/apiserver/errors.h"
#include "control/store/store.h"
#include "skiff/api/meta_v1.pb.h"

namespace skiff::apiserver {

using MessagePtr = std::unique_ptr<google::protobuf::Message>;
// An object shared read-only, as the watch cache hands them out.
using ObjectPtr = std::shared_ptr<const google::protobuf::Message>;

struct ListRequest {
  api::labels::Selector labels;  // default: everything
  api::fields::Selector fields;
  int64_t limit = 0;
  std::string continue_token;
  std::string resource_version;        // "", "0" or a revision
  std::string resource_version_match;  // "", "NotOlderThan", "Exact"
};

struct ListResponse {
  std::vector<ObjectPtr> items;
  std::string resource_version;
  std::string continue_token;
};

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted };
  Type type = Type::kAdded;
  MessagePtr object;
  int64_t revision = 0;
};

// The lifecycle of one kind of object over the Store, as Kubernetes' generic registry keeps it:
// uid and creationTimestamp on create, generation bumped on spec changes only, resourceVersion
// from the store's revisions with 409 on stale writes, the status kept apart from the spec for
// kinds with a status subresource, finalizers and deletionTimestamp, graceful deletion of pods
// bound to a node, selectors and paginated lists at a consistent revision.
//
// Thread-safe: every method may be called concurrently (the store serialises the writes).
class ResourceStorage {
 public:
  ResourceStorage(store::Store& store, const api::ResourceType& type);

  const api::ResourceType& type() const { return type_; }
  GroupResource groupResource() const { return {type_.group, type_.plural}; }

  MessagePtr get(std::string_view ns, std::string_view name) const;
  ListResponse list(std::string_view ns, const ListRequest& request) const;
  MessagePtr create(std::string_view ns, MessagePtr object, bool dry_run);
  // Replaces the object (`status_only`: only its status, the status subresource). A
  // resourceVersion in `object` must match the stored one.
  MessagePtr update(std::string_view ns, std::string_view name, MessagePtr object, bool status_only,
                    bool dry_run);
  // Replaces the whole object, spec and status together (pods/binding writes both).
  MessagePtr replace(std::string_view ns, std::string_view name, MessagePtr object, bool dry_run);
  // Kubernetes' GuaranteedUpdate: `mutate` changes a copy of the current object (it may throw to
  // refuse), which is written with a compare-and-swap on its revision; on a conflict the object is
  // read again and mutated again. `suggestion` (the watch cache's copy, possibly stale) saves the
  // store read of the first try.
  MessagePtr updateWith(std::string_view ns, std::string_view name,
                        const std::function<void(google::protobuf::Message&)>& mutate, bool dry_run,
                        const google::protobuf::Message* suggestion = nullptr);
  // namespaces/{name}/finalize: only spec.finalizers change; a terminating namespace left with no
  // finalizers of either kind is removed.
  MessagePtr finalize(std::string_view name, MessagePtr object, bool dry_run);
  // Deletes the object, or marks it (deletionTimestamp) while finalizers or a pod's grace period
  // hold it. Returns the object as it stands afterwards.
  MessagePtr remove(std::string_view ns, std::string_view name,
                    const api::meta::v1::DeleteOptions& options, bool dry_run);

  // The store's events for this resource after `revision`, decoded.
  store::WatchPtr watchStore(std::string_view ns, int64_t revision) const;
  WatchEvent toWatchEvent(const store::Event& event) const;
  // Whether the object passes a list's label and field selectors.
  bool matches(const google::protobuf::Message& object, const ListRequest& request) const;
  // The field selectors this kind supports (metadata.name, metadata.namespace, and per kind).
  const std::vector<std::string_view>& selectableFields() const { return selectable_fields_; }

  MessagePtr decode(const store::KeyValue& kv) const;
  std::string key(std::string_view ns, std::string_view name) const;

 private:
  MessagePtr newObject() const { return type_.newMessage(); }
  // The stored object, or 404.
  store::KeyValue read(std::string_view ns, std::string_view name) const;
  bool hasStatus() const;
  // A namespace's first delete: deletionTimestamp, phase Terminating, the propagation finalizers.
  MessagePtr markNamespaceTerminating(const google::protobuf::Message& current, int64_t revision,
                                      const api::meta::v1::DeleteOptions& options, bool dry_run);
  MessagePtr applyUpdate(std::string_view ns, std::string_view name, const MessagePtr& current,
                         int64_t current_revision, MessagePtr next, bool dry_run);

  store::Store& store_;
  const api::ResourceType& type_;
  std::vector<std::string_view> selectable_fields_;
};

// Maps a store failure to the Status Kubernetes answers with.
[[noreturn]] void throwStoreError(const store::StoreError& e, const GroupResource& gr,
                                  std::string_view name);

}  // namespace skiff::apiserver

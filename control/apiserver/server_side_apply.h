#pragma once

#include <string>

#include <google/protobuf/message.h>

#include "control/api/value.h"
#include "control/apiserver/errors.h"
#include "control/apiserver/managed_fields.h"

namespace skiff::apiserver {

// Server-side apply and the field ownership of every other write, as Kubernetes' field manager
// (structured-merge-diff's Updater) does them, over objects' JSON forms and their managedFields.

// Who writes: the manager, "Apply" or "Update", the object's apiVersion, the subresource ("" for
// the main resource) and when.
struct Writer {
  std::string manager;
  std::string operation;
  std::string api_version;
  std::string subresource;
  api::meta::v1::Time time;
};

struct ApplyResult {
  api::Value object;      // the live object with the configuration merged in and pruned
  ManagedFields managed;  // the new ownership
};

// Applies `config` (a partial object) for `writer` to `live` (null when there is none yet):
// merges it in (structs and maps key by key, associative lists item by item on their keys, sets
// as unions, everything else replaced), removes what this manager applied before and no longer
// does unless another manager owns it, and moves ownership. A field another manager owns and the
// configuration changes is a conflict: 409 with Kubernetes' message and FieldManagerConflict
// causes, unless `force`, which takes the fields over. Throws ApiError (400) for a configuration
// that cannot be applied (list items without their keys, duplicates).
ApplyResult applyConfiguration(const api::Value* live, const api::Value& config,
                               const FieldType& type, FieldScope scope, ManagedFields managed,
                               const Writer& writer, bool force);

// The ownership after a write other than apply (create, update, patch) changed `live` (null on
// create) into `next`: the writer's Update entry gets every field it changed, taken from the
// other managers; removed fields leave every set. Both cap the Update entries (capUpdateManagers).
ManagedFields updateManagedFields(const api::Value* live, const api::Value& next,
                                  const FieldType& type, FieldScope scope, ManagedFields managed,
                                  const Writer& writer);

// A conflict of an apply, as Kubernetes answers it (409 Conflict, details.causes).
struct FieldConflict {
  std::string manager;  // ManagerEntry::display()
  ManagedPath path;
};
ApiError applyConflict(std::vector<FieldConflict> conflicts);

// updateManagedFields over messages, as the apiserver calls it on create, update and patch: the
// managers come from `next` when the request sent some (the main resource only; one empty entry
// resets them), else from `live`; malformed managedFields count as none, as in Kubernetes.
void trackUpdate(const google::protobuf::Message* live, google::protobuf::Message& next,
                 FieldScope scope, const Writer& writer);

// Apply to the scale subresource, as Kubernetes' ScaleHandler: the Scale (autoscaling/v1) sees
// the parent's managers that own `parent_replicas` (the parent's path of its replicas), each with
// .spec.replicas alone and its identity unchanged (conflicts name "b" using apps/v1 as for the
// parent). kScaleReplicas is that path in the Scale.
inline const ManagedPath kScaleReplicas = {"f:spec", "f:replicas"};
ManagedFields scaleManagers(const ManagedFields& parent, const ManagedPath& parent_replicas);
// The parent's managers after an apply to its Scale: a parent manager the Scale no longer has
// (forced off) loses `parent_replicas` (and goes when it owned nothing else); the others stay as
// they were; a Scale manager new to the parent (the applier, with subresource "scale") gets
// `parent_replicas` and `parent_api_version`. Update entries are capped (capUpdateManagers).
ManagedFields parentManagers(const ManagedFields& parent, const ManagedFields& scale,
                             const ManagedPath& parent_replicas,
                             const std::string& parent_api_version);

// The managers of a stored object (none when its managedFields are malformed).
ManagedFields managersOf(const google::protobuf::Message& object);

}  // namespace skiff::apiserver

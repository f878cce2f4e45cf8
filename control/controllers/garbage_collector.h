#pragma once

#include <string>
#include <vector>

#include "control/controllers/controller_utils.h"

// The garbage collector's decision for one object (pkg/controller/garbagecollector
// attemptToDeleteItem / processDeletingDependentsItem / orphanDependents), as a pure function of
// the object, the state of each of its owners and its dependents.
//
// - Being deleted with the `orphan` finalizer: strip this object's ownerReferences from every
//   dependent, then remove the finalizer.
// - Being deleted with the `foregroundDeletion` finalizer: remove the finalizer once no dependent
//   with blockOwnerDeletion=true remains (the dependents' own decisions delete them).
// - Not being deleted, with owners: when every owner is gone (or waiting for its dependents to be
//   deleted), delete the object (Foreground when it has dependents of its own and its owner waits
//   in the foreground, so the chain goes in order; else as its own finalizers say, by default
//   Background); when some owners remain, drop the references to the ones that are gone.

namespace skiff::controllers {

struct GcOwner {
  enum class State {
    kPresent,             // exists with that uid, not deleting its dependents in the foreground
    kAbsent,              // no object with that uid (another with the same name counts as gone)
    kDeletingForeground,  // exists, being deleted, foregroundDeletion finalizer
    kUnknown,             // its kind is not known here: never treated as gone
  };
  api::meta::v1::OwnerReference ref;
  State state = State::kPresent;
};

struct GcDependent {
  const api::ResourceType* type = nullptr;
  const google::protobuf::Message* object = nullptr;
};

struct GcInput {
  const api::ResourceType* type = nullptr;
  const google::protobuf::Message* object = nullptr;
  std::vector<GcOwner> owners;          // one per metadata.ownerReferences entry
  std::vector<GcDependent> dependents;  // objects with an ownerReference to object's uid
};

struct GcResult : ReconcileResult {
  // Before a kDelete, the shell confirms with a live read that these owners are really gone (the
  // cache may lag), and drops the delete otherwise.
  std::vector<api::meta::v1::OwnerReference> verify_absent;
};

GcResult reconcileGarbage(const GcInput& input);

// The ObjectMeta of any API object (every kind has `metadata` as field 1).
const api::meta::v1::ObjectMeta& metaOf(const google::protobuf::Message& object);
api::meta::v1::ObjectMeta& mutableMetaOf(google::protobuf::Message& object);

inline constexpr std::string_view kOrphanFinalizer = "orphan";
inline constexpr std::string_view kForegroundFinalizer = "foregroundDeletion";

}  // namespace skiff::controllers

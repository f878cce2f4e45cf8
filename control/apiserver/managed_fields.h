#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/descriptor.h>

#include "control/api/value.h"
#include "skiff/api/meta_v1.pb.h"

namespace skiff::apiserver {

// Field ownership as Kubernetes tracks it in metadata.managedFields (structured-merge-diff's
// fieldpath): a set of paths, each a list of elements in FieldsV1's notation:
//   "f:replicas"          a struct field or a map key
//   "k:{\"name\":\"web\"}" an item of an associative list (listType map), by its keys
//   "v:\"a\""             an item of a set (listType set), by its value
// A path is in the set when its value is owned (a leaf, or a list item as a whole: FieldsV1's ".").
using ManagedPath = std::vector<std::string>;

// Orders paths as structured-merge-diff does: field names, then keys, then values, then indexes.
struct ManagedPathLess {
  bool operator()(const ManagedPath& a, const ManagedPath& b) const;
};

// ".spec.replicas", ".spec.template.spec.containers[name=\"web\"].image",
// ".metadata.finalizers[=\"x\"]".
std::string pathString(const ManagedPath& path);

class FieldSet {
 public:
  using Paths = std::set<ManagedPath, ManagedPathLess>;

  void insert(ManagedPath path) { paths_.insert(std::move(path)); }
  bool contains(const ManagedPath& path) const { return paths_.contains(path); }
  bool empty() const { return paths_.empty(); }
  size_t size() const { return paths_.size(); }
  const Paths& paths() const { return paths_; }

  FieldSet unite(const FieldSet& other) const;
  FieldSet difference(const FieldSet& other) const;
  FieldSet intersection(const FieldSet& other) const;
  friend bool operator==(const FieldSet& a, const FieldSet& b) { return a.paths_ == b.paths_; }

  // FieldsV1 JSON: {"f:spec":{"f:replicas":{}},"f:list":{"k:{...}":{".":{},"f:name":{}}}}.
  std::string toFieldsV1() const;
  // Throws std::invalid_argument naming what is malformed.
  static FieldSet fromFieldsV1(std::string_view json);

 private:
  Paths paths_;
};

// What part of an object a write covers: the whole object, the main resource of a kind with a
// status subresource (its status is the subresource's), or the status subresource.
enum class FieldScope { kAll, kMainResource, kStatus };

// The shape structured-merge-diff sees at one place of an object, read from the descriptors:
// proto maps are maps, repeated fields are lists by their (skiff.api.list_type) (a strategic
// merge key without a list type is an associative list on that key, as Kubernetes' schema
// conversion does), messages with a JSON form of their own (Quantity, Time, IntOrString, ...) and
// atomic structs (LabelSelector, ...) are leaves.
struct FieldType {
  enum class Kind { kLeaf, kStruct, kMap, kAssociativeList, kSet };
  Kind kind = Kind::kLeaf;
  const google::protobuf::Descriptor* message = nullptr;     // kStruct
  const google::protobuf::FieldDescriptor* field = nullptr;  // kMap, kAssociativeList, kSet
  std::vector<std::string> keys;                             // kAssociativeList

  static FieldType ofMessage(const google::protobuf::Descriptor* message);
  // The type of a struct's member (a leaf when the struct has no such field), or of a map's value
  // or a list's item.
  FieldType member(std::string_view json_name) const;
  FieldType element() const;
  // Whether `v` has this type's shape (an object for a struct or map, an array for a list or
  // set); a value that does not is handled as a leaf, as structured-merge-diff does.
  bool fits(const api::Value& v) const;
};

// The path element of an associative list's item ("k:{...}"), or nullopt when a key is missing
// and has no default.
std::optional<std::string> itemKey(const api::Value& item, const FieldType& list);
// "v:<json>" of a set's item.
std::string setElement(const api::Value& item);

// The fields set in `object` (an applied configuration): every leaf, every list item.
// Throws std::invalid_argument for a list item without its keys, or a key given twice.
FieldSet toFieldSet(const api::Value& object, const FieldType& type);

// Structured-merge-diff's comparison of two versions of an object.
struct Comparison {
  FieldSet added;
  FieldSet modified;
  FieldSet removed;
  bool same() const { return added.empty() && modified.empty() && removed.empty(); }
};
// `lhs` may be null (nothing before).
Comparison compareObjects(const api::Value* lhs, const api::Value& rhs, const FieldType& type);

// toFieldsV1() of compareObjects(nullptr, rhs, type).added, built in one walk without the path
// sets (a create's managed fields); "" when nothing is added.
std::string addedFieldsV1(const api::Value& rhs, const FieldType& type);

// An object's JSON form without what no manager owns: apiVersion, kind, the server's metadata
// (name, namespace, uid, resourceVersion, generation, creationTimestamp, deletion*, selfLink,
// managedFields) and, by scope, the status or everything but the status.
api::Value ownedPart(const api::Value& object, FieldScope scope);

// One entry of metadata.managedFields.
struct ManagerEntry {
  std::string manager;
  std::string operation;  // "Apply" or "Update"
  std::string api_version;
  std::string subresource;
  std::optional<api::meta::v1::Time> time;
  FieldSet fields;

  // Who this is for ownership: manager, operation, subresource and, for updates, apiVersion (as
  // Kubernetes' BuildManagerIdentifier).
  std::string identity() const;
  // As Kubernetes prints a manager in conflicts: "\"kubectl\"", "\"kubectl\" using apps/v1",
  // "\"kubectl\" with subresource \"scale\" using apps/v1".
  std::string display() const;
};
using ManagedFields = std::vector<ManagerEntry>;

// Reads metadata.managedFields. Throws std::invalid_argument for a malformed entry.
ManagedFields decodeManagedFields(const api::meta::v1::ObjectMeta& meta);
// Writes them sorted as Kubernetes does (operation, time, manager, apiVersion, subresource);
// entries without fields are left out.
void encodeManagedFields(const ManagedFields& managed, api::meta::v1::ObjectMeta& meta);
// Kubernetes' cap on Update entries (capManagersManager): while there are more than `max_updates`
// Update entries, the oldest ones (by time, then identity) are merged per apiVersion into one
// entry of manager "ancient-changes" with the time of the newest update merged in.
inline constexpr size_t kMaxUpdateManagers = 10;
inline constexpr std::string_view kAncientChangesManager = "ancient-changes";
void capUpdateManagers(ManagedFields& managed, size_t max_updates = kMaxUpdateManagers);
// Kubernetes' reset: one empty entry clears managedFields.
bool isResetManagedFields(const api::meta::v1::ObjectMeta& meta);

}  // namespace skiff::apiserver

#include "control/apiserver/server_side_apply.h"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "control/api/codec.h"
#include "control/apiserver/object_meta.h"

namespace skiff::apiserver {
namespace {

using api::Value;

std::optional<std::string> elementOf(const Value& item, const FieldType& list) {
  return list.kind == FieldType::Kind::kSet ? std::optional<std::string>(setElement(item))
                                            : itemKey(item, list);
}

Value merge(const Value* live, const Value& config, const FieldType& t) {
  if (live == nullptr || t.kind == FieldType::Kind::kLeaf || !t.fits(*live) || !t.fits(config)) {
    return config;
  }
  Value out = *live;
  if (t.kind == FieldType::Kind::kStruct || t.kind == FieldType::Kind::kMap) {
    for (const auto& m : config.members()) {
      if (m.value.isNull()) {
        out.erase(m.key);
        continue;
      }
      FieldType sub = t.kind == FieldType::Kind::kStruct ? t.member(m.key) : t.element();
      Value merged = merge(out.find(m.key), m.value, sub);
      out.set(m.key, std::move(merged));
    }
    return out;
  }
  FieldType item_type = t.kind == FieldType::Kind::kSet ? FieldType{} : t.element();
  for (const auto& item : config.items()) {
    std::optional<std::string> e = elementOf(item, t);
    auto it = std::find_if(out.items().begin(), out.items().end(),
                           [&](const Value& v) { return e && elementOf(v, t) == e; });
    if (it == out.items().end()) {
      out.push(item);
    } else if (t.kind == FieldType::Kind::kAssociativeList) {
      *it = merge(&*it, item, item_type);
    }
  }
  return out;
}

bool emptyContainer(const Value& v) {
  return (v.isObject() && v.members().empty()) || (v.isArray() && v.items().empty());
}

// Removes the value at `path` (from index i) below `v`; containers left empty on the way go too,
// unless `keep` owns them.
void removePath(Value& v, const FieldType& t, const ManagedPath& path, size_t i,
                ManagedPath& prefix, const FieldSet& keep) {
  const std::string& e = path[i];
  bool last = i + 1 == path.size();
  if (v.isObject() && e.starts_with("f:")) {
    std::string key = e.substr(2);
    Value* child = v.find(key);
    if (child == nullptr) return;
    if (last) {
      v.erase(key);
      return;
    }
    prefix.push_back(e);
    FieldType sub = t.kind == FieldType::Kind::kStruct ? t.member(key) : t.element();
    removePath(*child, sub, path, i + 1, prefix, keep);
    if (emptyContainer(*child) && !keep.contains(prefix)) v.erase(key);
    prefix.pop_back();
    return;
  }
  if (v.isArray() && (e.starts_with("k:") || e.starts_with("v:"))) {
    auto& items = v.items();
    auto it = std::find_if(items.begin(), items.end(),
                           [&](const Value& item) { return elementOf(item, t) == e; });
    if (it == items.end()) return;
    if (last) {
      items.erase(it);
      return;
    }
    prefix.push_back(e);
    removePath(*it, t.element(), path, i + 1, prefix, keep);
    prefix.pop_back();
  }
}

FieldSet ownedByAll(const ManagedFields& managed) {
  FieldSet all;
  for (const auto& e : managed)
    all = all.unite(e.fields);
  return all;
}

ManagerEntry* findEntry(ManagedFields& managed, const ManagerEntry& who) {
  for (auto& e : managed) {
    if (e.identity() == who.identity()) return &e;
  }
  return nullptr;
}

ManagerEntry entryFor(const Writer& w) {
  ManagerEntry e;
  e.manager = w.manager;
  e.operation = w.operation;
  e.api_version = w.api_version;
  e.subresource = w.subresource;
  e.time = w.time;
  return e;
}

// Structured-merge-diff's update step: the other managers' fields that changed are conflicts
// (dropped from them when forced), removed fields leave every other set.
std::vector<FieldConflict> moveOwnership(const Comparison& c, ManagedFields& managed,
                                         const std::string& writer_identity, bool force) {
  FieldSet changed = c.modified.unite(c.added);
  std::vector<FieldConflict> conflicts;
  for (auto& e : managed) {
    if (e.identity() == writer_identity) continue;
    FieldSet taken = e.fields.intersection(changed);
    for (const auto& p : taken.paths())
      conflicts.push_back({e.display(), p});
    if (force) e.fields = e.fields.difference(taken);
    e.fields = e.fields.difference(c.removed);
  }
  if (!force && !conflicts.empty()) return conflicts;
  std::erase_if(managed, [](const ManagerEntry& e) { return e.fields.empty(); });
  return {};
}

}  // namespace

ApiError applyConflict(std::vector<FieldConflict> conflicts) {
  std::stable_sort(conflicts.begin(), conflicts.end(),
                   [](const FieldConflict& a, const FieldConflict& b) {
                     if (a.manager != b.manager) return a.manager < b.manager;
                     return ManagedPathLess{}(a.path, b.path);
                   });
  std::string message;
  if (conflicts.size() == 1) {
    message = "Apply failed with 1 conflict: conflict with " + conflicts[0].manager + ": " +
              pathString(conflicts[0].path);
  } else {
    std::vector<std::string> lines;
    std::string current;
    for (const auto& c : conflicts) {
      if (c.manager != current) {
        lines.push_back("conflicts with " + c.manager + ":");
        current = c.manager;
      }
      lines.push_back("- " + pathString(c.path));
    }
    message = "Apply failed with " + std::to_string(conflicts.size()) + " conflicts: ";
    for (size_t i = 0; i < lines.size(); ++i)
      message += (i == 0 ? "" : "\n") + lines[i];
  }
  ApiError e(409, "Conflict", message);
  for (const auto& c : conflicts) {
    auto* cause = e.details().add_causes();
    cause->set_reason("FieldManagerConflict");
    cause->set_message("conflict with " + c.manager);
    cause->set_field(pathString(c.path));
  }
  return e;
}

ApplyResult applyConfiguration(const Value* live, const Value& config, const FieldType& type,
                               FieldScope scope, ManagedFields managed, const Writer& writer,
                               bool force) {
  Value owned_config = ownedPart(config, scope);
  FieldSet applied;
  try {
    applied = toFieldSet(owned_config, type);
  } catch (const std::invalid_argument& e) {
    throw badRequest(std::string("the applied configuration is invalid: ") + e.what());
  }
  Value empty = Value::object();
  Value merged = merge(live != nullptr ? live : &empty, config, type);

  ManagerEntry me = entryFor(writer);
  FieldSet last;
  std::optional<api::meta::v1::Time> last_time;
  if (ManagerEntry* previous = findEntry(managed, me)) {
    last = previous->fields;
    last_time = previous->time;
    previous->fields = applied;
  } else {
    me.fields = applied;
    managed.push_back(me);
  }
  // Prune: what this manager applied before and no longer does, and nobody else owns, goes.
  FieldSet keep = ownedByAll(managed);
  FieldSet gone = last.difference(keep);
  for (const auto& path : gone.paths()) {
    // An item that goes takes its fields along (they could not find it once its keys are gone).
    bool under_gone = false;
    for (size_t n = 1; n < path.size() && !under_gone; ++n)
      under_gone =
          gone.contains(ManagedPath(path.begin(), path.begin() + static_cast<std::ptrdiff_t>(n)));
    if (under_gone) continue;
    ManagedPath prefix;
    removePath(merged, type, path, 0, prefix, keep);
  }

  Value before = live != nullptr ? ownedPart(*live, scope) : Value::object();
  Comparison c = compareObjects(&before, ownedPart(merged, scope), type);
  std::vector<FieldConflict> conflicts = moveOwnership(c, managed, me.identity(), force);
  if (!conflicts.empty()) throw applyConflict(std::move(conflicts));
  // The time moves only when the applier's fields or the object changed.
  if (ManagerEntry* mine = findEntry(managed, me)) {
    mine->time = c.same() && last == applied && last_time ? last_time : writer.time;
  }
  capUpdateManagers(managed);
  return {std::move(merged), std::move(managed)};
}

ManagedFields updateManagedFields(const Value* live, const Value& next, const FieldType& type,
                                  FieldScope scope, ManagedFields managed, const Writer& writer) {
  Value before = live != nullptr ? ownedPart(*live, scope) : Value::object();
  Comparison c = compareObjects(&before, ownedPart(next, scope), type);
  if (c.same()) {
    capUpdateManagers(managed);
    return managed;
  }
  ManagerEntry me = entryFor(writer);
  moveOwnership(c, managed, me.identity(), /*force=*/true);
  ManagerEntry* mine = findEntry(managed, me);
  if (mine == nullptr) {
    managed.push_back(me);
    mine = &managed.back();
  }
  mine->fields = mine->fields.difference(c.removed).unite(c.modified).unite(c.added);
  mine->time = writer.time;
  std::erase_if(managed, [](const ManagerEntry& e) { return e.fields.empty(); });
  capUpdateManagers(managed);
  return managed;
}

ManagedFields scaleManagers(const ManagedFields& parent, const ManagedPath& parent_replicas) {
  ManagedFields out;
  for (const auto& e : parent) {
    if (!e.fields.contains(parent_replicas)) continue;
    ManagerEntry scale = e;
    scale.fields = FieldSet();
    scale.fields.insert(kScaleReplicas);
    out.push_back(std::move(scale));
  }
  return out;
}

ManagedFields parentManagers(const ManagedFields& parent, const ManagedFields& scale,
                             const ManagedPath& parent_replicas,
                             const std::string& parent_api_version) {
  auto inScale = [&](const ManagerEntry& e) -> const ManagerEntry* {
    for (const auto& s : scale) {
      if (s.identity() == e.identity()) return &s;
    }
    return nullptr;
  };
  ManagedFields out;
  for (const auto& e : parent) {
    if (!e.fields.contains(parent_replicas)) {
      out.push_back(e);
      continue;
    }
    const ManagerEntry* s = inScale(e);
    if (s != nullptr && s->fields.contains(kScaleReplicas)) {
      ManagerEntry kept = e;
      kept.time = s->time;  // the applier's own entry may have moved on
      out.push_back(std::move(kept));
      continue;
    }
    // Its replicas were taken over through the Scale.
    ManagerEntry rest = e;
    FieldSet replicas;
    replicas.insert(parent_replicas);
    rest.fields = rest.fields.difference(replicas);
    if (!rest.fields.empty()) out.push_back(std::move(rest));
  }
  for (const auto& s : scale) {
    if (!s.fields.contains(kScaleReplicas)) continue;
    bool known = std::any_of(parent.begin(), parent.end(), [&](const ManagerEntry& e) {
      return e.identity() == s.identity() && e.fields.contains(parent_replicas);
    });
    if (known) continue;
    ManagerEntry added = s;
    added.api_version = parent_api_version;
    added.fields = FieldSet();
    added.fields.insert(parent_replicas);
    out.push_back(std::move(added));
  }
  capUpdateManagers(out);
  return out;
}

ManagedFields managersOf(const google::protobuf::Message& object) {
  try {
    return decodeManagedFields(meta(object));
  } catch (const std::invalid_argument&) {
    return {};
  }
}

void trackUpdate(const google::protobuf::Message* live, google::protobuf::Message& next,
                 FieldScope scope, const Writer& writer) {
  auto& m = mutableMeta(next);
  if (isResetManagedFields(m)) {
    m.clear_managed_fields();
    return;
  }
  ManagedFields managed;
  bool from_request =
      scope != FieldScope::kStatus && writer.subresource.empty() && m.managed_fields_size() > 0;
  if (from_request) {
    try {
      managed = decodeManagedFields(m);
    } catch (const std::invalid_argument&) {
      from_request = false;
    }
  }
  if (!from_request && live != nullptr) managed = managersOf(*live);
  Value next_value = api::encode(next);
  FieldType type = FieldType::ofMessage(next.GetDescriptor());
  if (live == nullptr && managed.empty()) {
    // A create: the writer owns every field it set, the one entry updateManagedFields would make
    // (without its path sets: they were half of a pod create's admission).
    std::string fields = addedFieldsV1(ownedPart(next_value, scope), type);
    m.clear_managed_fields();
    if (fields.empty()) return;
    auto* out = m.add_managed_fields();
    out->set_manager(writer.manager);
    out->set_operation(writer.operation);
    out->set_api_version(writer.api_version);
    *out->mutable_time() = writer.time;
    out->set_fields_type("FieldsV1");
    out->mutable_fields_v1()->set_raw(std::move(fields));
    if (!writer.subresource.empty()) out->set_subresource(writer.subresource);
    return;
  }
  if (live == nullptr) {
    managed = updateManagedFields(nullptr, next_value, type, scope, std::move(managed), writer);
  } else {
    Value live_value = api::encode(*live);
    managed = updateManagedFields(&live_value, next_value, type, scope, std::move(managed), writer);
  }
  encodeManagedFields(managed, m);
}

}  // namespace skiff::apiserver

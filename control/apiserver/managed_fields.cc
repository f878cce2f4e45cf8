#include "control/apiserver/managed_fields.h"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "control/api/json.h"
#include "control/api/time.h"
#include "skiff/api/options.pb.h"

namespace skiff::apiserver {
namespace {

using api::Value;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

int elementRank(const std::string& e) {
  if (e.starts_with("f:")) return 0;
  if (e.starts_with("k:")) return 1;
  if (e.starts_with("v:")) return 2;
  return 3;
}

bool elementLess(const std::string& a, const std::string& b) {
  int ra = elementRank(a);
  int rb = elementRank(b);
  return ra != rb ? ra < rb : a < b;
}

// Structs Kubernetes marks +structType=atomic, and maps it marks +mapType=atomic: owned whole.
bool atomicStruct(const Descriptor* d) {
  static const std::set<std::string> names = {"skiff.api.meta.v1.LabelSelector",
                                              "skiff.api.core.v1.NodeSelector",
                                              "skiff.api.core.v1.LocalObjectReference"};
  return names.contains(d->full_name());
}

bool atomicMap(const FieldDescriptor* f) {
  // ServiceSpec.selector and ReplicationControllerSpec.selector are +mapType=atomic.
  return f->json_name() == "selector" &&
         (f->containing_type()->full_name() == "skiff.api.core.v1.ServiceSpec" ||
          f->containing_type()->full_name() == "skiff.api.core.v1.ReplicationControllerSpec");
}

FieldType ofField(const FieldDescriptor* f) {
  FieldType t;
  if (f == nullptr) return t;
  if (f->is_map()) {
    if (atomicMap(f)) return t;
    t.kind = FieldType::Kind::kMap;
    t.field = f;
    return t;
  }
  if (f->is_repeated()) {
    const std::string& list_type = f->options().GetExtension(skiff::api::list_type);
    t.field = f;
    if (list_type == "map") {
      t.kind = FieldType::Kind::kAssociativeList;
      int n = f->options().ExtensionSize(skiff::api::list_map_keys);
      for (int i = 0; i < n; ++i)
        t.keys.push_back(f->options().GetExtension(skiff::api::list_map_keys, i));
    } else if (list_type == "set") {
      t.kind = FieldType::Kind::kSet;
    } else if (list_type.empty() &&
               f->options().GetExtension(skiff::api::patch_strategy).find("merge") !=
                   std::string::npos) {
      const std::string& key = f->options().GetExtension(skiff::api::patch_merge_key);
      if (!key.empty() && f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        t.kind = FieldType::Kind::kAssociativeList;
        t.keys.push_back(key);
      } else if (key.empty() && f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
        t.kind = FieldType::Kind::kSet;
      } else {
        t.field = nullptr;
      }
    } else {
      t.field = nullptr;  // atomic, Kubernetes' default for lists
    }
    if (t.kind == FieldType::Kind::kAssociativeList && t.keys.empty()) {
      t = FieldType{};
    }
    return t;
  }
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE)
    return FieldType::ofMessage(f->message_type());
  return t;
}

const FieldDescriptor* fieldByJson(const Descriptor* d, std::string_view name) {
  if (d == nullptr) return nullptr;
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->json_name() == name) return d->field(i);
  }
  return nullptr;
}

// Defaults of list-map keys that Kubernetes' schema declares (ports' protocol).
const Value* keyDefault(const std::string& key) {
  static const Value tcp = Value::string("TCP");
  return key == "protocol" ? &tcp : nullptr;
}

bool emptyContainer(const Value* v) {
  return v == nullptr || (v->isObject() && v->members().empty()) ||
         (v->isArray() && v->items().empty()) || v->isNull();
}

void collect(const Value& v, const FieldType& t, ManagedPath& path, FieldSet& out) {
  if (t.kind == FieldType::Kind::kLeaf || !t.fits(v) || emptyContainer(&v)) {
    if (!path.empty()) out.insert(path);
    return;
  }
  if (t.kind == FieldType::Kind::kStruct || t.kind == FieldType::Kind::kMap) {
    for (const auto& m : v.members()) {
      path.push_back("f:" + m.key);
      collect(m.value, t.kind == FieldType::Kind::kStruct ? t.member(m.key) : t.element(), path,
              out);
      path.pop_back();
    }
    return;
  }
  std::set<std::string> seen;
  for (const auto& item : v.items()) {
    std::optional<std::string> element;
    if (t.kind == FieldType::Kind::kSet) {
      element = setElement(item);
    } else {
      element = itemKey(item, t);
      if (!element) {
        throw std::invalid_argument(pathString(path) + ": an item lacks its key field(s) " + [&] {
          std::string s;
          for (const auto& k : t.keys)
            s += (s.empty() ? "\"" : ", \"") + k + "\"";
          return s;
        }());
      }
    }
    if (!seen.insert(*element).second) {
      throw std::invalid_argument(pathString(path) + ": duplicate entries for key " +
                                  element->substr(2));
    }
    path.push_back(*element);
    out.insert(path);
    if (t.kind == FieldType::Kind::kAssociativeList) collect(item, t.element(), path, out);
    path.pop_back();
  }
}

// Items of a list by their path element; nullopt when the list cannot be keyed (a live object
// with an item lacking keys, or duplicates: then it is compared as one value).
std::optional<std::vector<std::pair<std::string, const Value*>>> keyedItems(const Value* list,
                                                                            const FieldType& t) {
  std::vector<std::pair<std::string, const Value*>> out;
  if (list == nullptr) return out;
  std::set<std::string> seen;
  for (const auto& item : list->items()) {
    std::optional<std::string> e =
        t.kind == FieldType::Kind::kSet ? setElement(item) : itemKey(item, t);
    if (!e || !seen.insert(*e).second) return std::nullopt;
    out.emplace_back(*e, &item);
  }
  return out;
}

void compareAt(const Value* lhs, const Value* rhs, const FieldType& t, ManagedPath& path,
               Comparison& c) {
  if (lhs == nullptr && rhs == nullptr) return;
  bool leaf = t.kind == FieldType::Kind::kLeaf || (lhs != nullptr && !t.fits(*lhs)) ||
              (rhs != nullptr && !t.fits(*rhs)) || (emptyContainer(lhs) && emptyContainer(rhs));
  std::optional<std::vector<std::pair<std::string, const Value*>>> left, right;
  if (!leaf && (t.kind == FieldType::Kind::kAssociativeList || t.kind == FieldType::Kind::kSet)) {
    left = keyedItems(lhs, t);
    right = keyedItems(rhs, t);
    leaf = !left || !right;
  }
  if (leaf) {
    if (path.empty()) return;
    if (lhs == nullptr) {
      c.added.insert(path);
    } else if (rhs == nullptr) {
      c.removed.insert(path);
    } else if (!(*lhs == *rhs)) {
      c.modified.insert(path);
    }
    return;
  }
  if (t.kind == FieldType::Kind::kStruct || t.kind == FieldType::Kind::kMap) {
    auto sub = [&](const std::string& key) {
      return t.kind == FieldType::Kind::kStruct ? t.member(key) : t.element();
    };
    if (lhs != nullptr) {
      for (const auto& m : lhs->members()) {
        path.push_back("f:" + m.key);
        compareAt(&m.value, rhs != nullptr ? rhs->find(m.key) : nullptr, sub(m.key), path, c);
        path.pop_back();
      }
    }
    if (rhs != nullptr) {
      for (const auto& m : rhs->members()) {
        if (lhs != nullptr && lhs->find(m.key) != nullptr) continue;
        path.push_back("f:" + m.key);
        compareAt(nullptr, &m.value, sub(m.key), path, c);
        path.pop_back();
      }
    }
  } else {
    FieldType item_type = t.kind == FieldType::Kind::kSet ? FieldType{} : t.element();
    auto find = [](const std::vector<std::pair<std::string, const Value*>>& items,
                   const std::string& e) -> const Value* {
      for (const auto& [k, v] : items) {
        if (k == e) return v;
      }
      return nullptr;
    };
    for (const auto& [e, v] : *left) {
      path.push_back(e);
      const Value* other = find(*right, e);
      if (t.kind == FieldType::Kind::kSet) {
        if (other == nullptr) c.removed.insert(path);
      } else {
        compareAt(v, other, item_type, path, c);
      }
      path.pop_back();
    }
    for (const auto& [e, v] : *right) {
      if (find(*left, e) != nullptr) continue;
      path.push_back(e);
      if (t.kind == FieldType::Kind::kSet) {
        c.added.insert(path);
      } else {
        compareAt(nullptr, v, item_type, path, c);
      }
      path.pop_back();
    }
  }
  if (!path.empty()) {
    if (lhs == nullptr) {
      c.added.insert(path);
    } else if (rhs == nullptr) {
      c.removed.insert(path);
    }
  }
}

// ------------------------------------------------------------------ FieldsV1

struct Node {
  bool member = false;
  std::vector<std::pair<std::string, Node>> children;  // sorted by elementLess
};

Node& child(Node& n, const std::string& e) {
  auto it =
      std::lower_bound(n.children.begin(), n.children.end(), e,
                       [](const auto& c, const std::string& k) { return elementLess(c.first, k); });
  if (it != n.children.end() && it->first == e) return it->second;
  return n.children.insert(it, {e, Node{}})->second;
}

void writeNode(const Node& n, std::string& out) {
  out += '{';
  bool first = true;
  if (n.member && !n.children.empty()) {
    out += "\".\":{}";
    first = false;
  }
  for (const auto& [e, c] : n.children) {
    if (!first) out += ',';
    first = false;
    api::appendJsonString(out, e);
    out += ':';
    writeNode(c, out);
  }
  out += '}';
}

// compareAt(nullptr, rhs, ...) with the added paths marked in a FieldsV1 tree as they are found
// (toFieldsV1 of the same paths builds the same tree): no path vectors, no sets.
void markAdded(const Value& rhs, const FieldType& t, Node& node) {
  bool leaf = t.kind == FieldType::Kind::kLeaf || !t.fits(rhs) || emptyContainer(&rhs);
  std::optional<std::vector<std::pair<std::string, const Value*>>> right;
  if (!leaf && (t.kind == FieldType::Kind::kAssociativeList || t.kind == FieldType::Kind::kSet)) {
    right = keyedItems(&rhs, t);
    leaf = !right;
  }
  if (!leaf) {
    if (t.kind == FieldType::Kind::kStruct || t.kind == FieldType::Kind::kMap) {
      for (const auto& m : rhs.members()) {
        markAdded(m.value, t.kind == FieldType::Kind::kStruct ? t.member(m.key) : t.element(),
                  child(node, "f:" + m.key));
      }
    } else {
      FieldType item_type = t.kind == FieldType::Kind::kSet ? FieldType{} : t.element();
      for (const auto& [e, v] : *right) {
        Node& item = child(node, e);
        if (t.kind == FieldType::Kind::kSet) {
          item.member = true;
        } else {
          markAdded(*v, item_type, item);
        }
      }
    }
  }
  node.member = true;
}

void readNode(const Value& v, ManagedPath& path, FieldSet& out) {
  if (!v.isObject()) {
    throw std::invalid_argument("fieldsV1 at " + pathString(path) + " is not an object");
  }
  if (v.members().empty()) {
    if (path.empty()) return;
    out.insert(path);
    return;
  }
  for (const auto& m : v.members()) {
    if (m.key == ".") {
      if (!path.empty()) out.insert(path);
      continue;
    }
    if (m.key.size() < 2 || m.key[1] != ':' ||
        (m.key[0] != 'f' && m.key[0] != 'k' && m.key[0] != 'v' && m.key[0] != 'i')) {
      throw std::invalid_argument("fieldsV1: unknown path element \"" + m.key + "\"");
    }
    path.push_back(m.key);
    readNode(m.value, path, out);
    path.pop_back();
  }
}

void setTime(api::meta::v1::Time& t, const std::optional<api::meta::v1::Time>& v) {
  if (v) t = *v;
}

}  // namespace

bool ManagedPathLess::operator()(const ManagedPath& a, const ManagedPath& b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), elementLess);
}

std::string pathString(const ManagedPath& path) {
  std::string out;
  for (const auto& e : path) {
    std::string_view body = std::string_view(e).substr(2);
    if (e.starts_with("f:")) {
      out += ".";
      out += body;
    } else if (e.starts_with("k:")) {
      // k:{"name":"web","port":80} -> [name="web",port=80]
      out += '[';
      try {
        Value keys = api::parseJson(body);
        bool first = true;
        for (const auto& m : keys.members()) {
          if (!first) out += ',';
          first = false;
          out += m.key + "=" + api::writeJson(m.value);
        }
      } catch (const std::exception&) {
        out += body;
      }
      out += ']';
    } else if (e.starts_with("v:")) {
      out += "[=";
      out += body;
      out += ']';
    } else {
      out += "[";
      out += body;
      out += "]";
    }
  }
  return out;
}

FieldSet FieldSet::unite(const FieldSet& other) const {
  FieldSet out = *this;
  out.paths_.insert(other.paths_.begin(), other.paths_.end());
  return out;
}

FieldSet FieldSet::difference(const FieldSet& other) const {
  FieldSet out;
  for (const auto& p : paths_) {
    if (!other.contains(p)) out.paths_.insert(p);
  }
  return out;
}

FieldSet FieldSet::intersection(const FieldSet& other) const {
  FieldSet out;
  for (const auto& p : paths_) {
    if (other.contains(p)) out.paths_.insert(p);
  }
  return out;
}

std::string FieldSet::toFieldsV1() const {
  Node root;
  for (const auto& p : paths_) {
    Node* n = &root;
    for (const auto& e : p)
      n = &child(*n, e);
    n->member = true;
  }
  std::string out;
  writeNode(root, out);
  return out;
}

FieldSet FieldSet::fromFieldsV1(std::string_view json) {
  Value v;
  try {
    v = api::parseJson(json);
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("fieldsV1 is not JSON: ") + e.what());
  }
  FieldSet out;
  ManagedPath path;
  readNode(v, path, out);
  return out;
}

FieldType FieldType::ofMessage(const Descriptor* message) {
  FieldType t;
  if (message == nullptr ||
      message->options().GetExtension(skiff::api::json_form) != skiff::api::JSON_FORM_OBJECT ||
      atomicStruct(message)) {
    return t;
  }
  t.kind = Kind::kStruct;
  t.message = message;
  return t;
}

FieldType FieldType::member(std::string_view json_name) const {
  if (kind != Kind::kStruct) return {};
  return ofField(fieldByJson(message, json_name));
}

FieldType FieldType::element() const {
  if (field == nullptr) return {};
  if (kind == Kind::kMap) {
    const FieldDescriptor* v = field->message_type()->map_value();
    return v->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ? ofMessage(v->message_type())
                                                             : FieldType{};
  }
  if (kind == Kind::kAssociativeList) {
    FieldType t = ofMessage(field->message_type());
    // The items of an associative list are structs even when their type is atomic elsewhere.
    if (t.kind == Kind::kLeaf) {
      t.kind = Kind::kStruct;
      t.message = field->message_type();
    }
    return t;
  }
  return {};
}

bool FieldType::fits(const Value& v) const {
  switch (kind) {
    case Kind::kLeaf:
      return true;
    case Kind::kStruct:
    case Kind::kMap:
      return v.isObject();
    case Kind::kAssociativeList:
    case Kind::kSet:
      return v.isArray();
  }
  return true;
}

std::optional<std::string> itemKey(const Value& item, const FieldType& list) {
  if (!item.isObject()) return std::nullopt;
  std::vector<std::string> keys = list.keys;
  std::sort(keys.begin(), keys.end());
  Value key = Value::object();
  for (const auto& k : keys) {
    const Value* v = item.find(k);
    if (v == nullptr || v->isNull()) v = keyDefault(k);
    if (v == nullptr) return std::nullopt;
    key.append(k, *v);
  }
  return "k:" + api::writeJson(key);
}

std::string setElement(const Value& item) {
  return "v:" + api::writeJson(item);
}

FieldSet toFieldSet(const Value& object, const FieldType& type) {
  FieldSet out;
  ManagedPath path;
  collect(object, type, path, out);
  return out;
}

Comparison compareObjects(const Value* lhs, const Value& rhs, const FieldType& type) {
  Comparison c;
  ManagedPath path;
  Value empty = Value::object();
  compareAt(lhs != nullptr ? lhs : &empty, &rhs, type, path, c);
  return c;
}

std::string addedFieldsV1(const Value& rhs, const FieldType& type) {
  // compareObjects(nullptr, rhs): an empty object before, so the top level is a struct whose
  // members are all new (and the empty path itself is never a field).
  Value empty = Value::object();
  bool leaf = type.kind == FieldType::Kind::kLeaf || !type.fits(empty) || !type.fits(rhs) ||
              emptyContainer(&rhs);
  if (leaf || (type.kind != FieldType::Kind::kStruct && type.kind != FieldType::Kind::kMap)) {
    return "";
  }
  Node root;
  for (const auto& m : rhs.members()) {
    markAdded(m.value, type.kind == FieldType::Kind::kStruct ? type.member(m.key) : type.element(),
              child(root, "f:" + m.key));
  }
  if (root.children.empty()) return "";
  std::string out;
  writeNode(root, out);
  return out;
}

Value ownedPart(const Value& object, FieldScope scope) {
  Value out = object;
  out.erase("apiVersion");
  out.erase("kind");
  if (scope == FieldScope::kStatus) {
    Value only = Value::object();
    if (const Value* status = out.find("status")) only.append("status", *status);
    return only;
  }
  if (scope == FieldScope::kMainResource) out.erase("status");
  if (Value* meta = out.find("metadata"); meta != nullptr && meta->isObject()) {
    for (const char* f : {"name", "namespace", "uid", "resourceVersion", "generation",
                          "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                          "selfLink", "managedFields", "generateName"}) {
      meta->erase(f);
    }
    if (meta->members().empty()) out.erase("metadata");
  }
  return out;
}

std::string ManagerEntry::identity() const {
  std::string id = manager + '\x1f' + operation + '\x1f' + subresource;
  if (operation != "Apply") id += '\x1f' + api_version;
  return id;
}

std::string ManagerEntry::display() const {
  std::string out;
  api::appendJsonString(out, manager);
  if (!subresource.empty()) {
    out += " with subresource ";
    api::appendJsonString(out, subresource);
  }
  if (operation == "Update") out += " using " + api_version;
  return out;
}

ManagedFields decodeManagedFields(const api::meta::v1::ObjectMeta& meta) {
  ManagedFields out;
  for (const auto& e : meta.managed_fields()) {
    ManagerEntry entry;
    entry.manager = e.manager();
    entry.operation = e.operation();
    entry.api_version = e.api_version();
    entry.subresource = e.subresource();
    if (e.has_time()) entry.time = e.time();
    if (entry.operation != "Apply" && entry.operation != "Update") {
      throw std::invalid_argument("managedFields: operation must be Apply or Update, not \"" +
                                  entry.operation + "\"");
    }
    if (e.fields_type() != "FieldsV1") {
      throw std::invalid_argument("managedFields: fieldsType must be FieldsV1, not \"" +
                                  e.fields_type() + "\"");
    }
    entry.fields = FieldSet::fromFieldsV1(e.fields_v1().raw().empty() ? "{}" : e.fields_v1().raw());
    out.push_back(std::move(entry));
  }
  return out;
}

void encodeManagedFields(const ManagedFields& managed, api::meta::v1::ObjectMeta& meta) {
  std::vector<const ManagerEntry*> sorted;
  for (const auto& e : managed) {
    if (!e.fields.empty()) sorted.push_back(&e);
  }
  std::stable_sort(sorted.begin(), sorted.end(), [](const ManagerEntry* p, const ManagerEntry* q) {
    if (p->operation != q->operation) return p->operation < q->operation;
    int64_t ps = p->time ? p->time->seconds() : 0;
    int64_t qs = q->time ? q->time->seconds() : 0;
    if (ps != qs) return ps < qs;
    if (p->manager != q->manager) return p->manager < q->manager;
    if (p->api_version != q->api_version) return p->api_version < q->api_version;
    return p->subresource < q->subresource;
  });
  meta.clear_managed_fields();
  for (const ManagerEntry* e : sorted) {
    auto* out = meta.add_managed_fields();
    out->set_manager(e->manager);
    out->set_operation(e->operation);
    out->set_api_version(e->api_version);
    setTime(*out->mutable_time(), e->time);
    if (!e->time) out->clear_time();
    out->set_fields_type("FieldsV1");
    out->mutable_fields_v1()->set_raw(e->fields.toFieldsV1());
    if (!e->subresource.empty()) out->set_subresource(e->subresource);
  }
}

void capUpdateManagers(ManagedFields& managed, size_t max_updates) {
  std::vector<size_t> updaters;
  for (size_t i = 0; i < managed.size(); ++i) {
    if (managed[i].operation == "Update") updaters.push_back(i);
  }
  if (updaters.size() <= max_updates) return;
  auto seconds = [&](size_t i) { return managed[i].time ? managed[i].time->seconds() : 0; };
  std::stable_sort(updaters.begin(), updaters.end(), [&](size_t a, size_t b) {
    if (seconds(a) != seconds(b)) return seconds(a) < seconds(b);
    return managed[a].identity() < managed[b].identity();
  });
  auto bucketOf = [&](const std::string& api_version) -> ManagerEntry* {
    for (auto& e : managed) {
      if (e.manager == kAncientChangesManager && e.operation == "Update" && e.subresource.empty() &&
          e.api_version == api_version) {
        return &e;
      }
    }
    return nullptr;
  };
  // As Kubernetes: the first (oldest) update of each apiVersion stays until a second one of that
  // version is merged; then the first becomes the bucket, and every later one merges into it.
  std::map<std::string, size_t> first_of_version;
  std::vector<bool> merged(managed.size(), false);
  size_t length = updaters.size();
  for (size_t n = 0; n < updaters.size() && length > max_updates; ++n) {
    size_t i = updaters[n];
    ManagerEntry& e = managed[i];
    ManagerEntry* bucket = bucketOf(e.api_version);
    auto first = first_of_version.find(e.api_version);
    if (bucket ==
        &e) {  // an earlier cap's bucket: later updates merge into it, never it into itself
      if (first == first_of_version.end()) first_of_version.emplace(e.api_version, i);
      continue;
    }
    if (first == first_of_version.end()) {
      first_of_version.emplace(e.api_version, i);
      continue;
    }
    if (bucket == nullptr) {
      bucket = &managed[first->second];
      bucket->manager = std::string(kAncientChangesManager);
      bucket->subresource.clear();
    }
    bucket->fields = bucket->fields.unite(e.fields);
    bucket->time = e.time;
    merged[i] = true;
    --length;
  }
  ManagedFields kept;
  for (size_t i = 0; i < managed.size(); ++i) {
    if (!merged[i]) kept.push_back(std::move(managed[i]));
  }
  managed = std::move(kept);
}

bool isResetManagedFields(const api::meta::v1::ObjectMeta& meta) {
  return meta.managed_fields_size() == 1 && meta.managed_fields(0).ByteSizeLong() == 0;
}

}  // namespace skiff::apiserver

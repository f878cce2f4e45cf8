#include "control/cli/apply_patch.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "control/api/json.h"
#include "skiff/api/options.pb.h"

namespace skiff::cli {
namespace {

using api::Value;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// ------------------------------------------------------------------ Go's encoding/json

void appendGoString(std::string& out, const std::string& s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == '<' || c == '>' || c == '&') {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
      continue;
    }
    // U+2028 and U+2029 (E2 80 A8/A9) are escaped by Go too.
    if (c == 0xe2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(s[i + 2]) == 0xa8 ||
         static_cast<unsigned char>(s[i + 2]) == 0xa9)) {
      out += static_cast<unsigned char>(s[i + 2]) == 0xa8 ? "\\u2028" : "\\u2029";
      i += 2;
      continue;
    }
    out += static_cast<char>(c);
  }
  out += '"';
}

void appendGoNumber(std::string& out, const Value& v) {
  if (v.isInteger()) {
    out += std::to_string(v.asInt());
    return;
  }
  double d = v.asDouble();
  if (!std::isfinite(d)) {
    out += v.text();
    return;
  }
  char buf[64];
  double a = std::fabs(d);
  if (a != 0 && (a < 1e-6 || a >= 1e21)) {
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
    std::string s(buf, ec == std::errc() ? end : buf);
    // Go writes "1e-07" as "1e-7".
    auto e = s.find('e');
    if (e != std::string::npos && e + 3 < s.size() + 1 && s[e + 2] == '0' && s.size() - e == 4) {
      s.erase(e + 2, 1);
    }
    out += s;
    return;
  }
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::fixed);
  out.append(buf, ec == std::errc() ? end : buf);
}

void appendGoJson(std::string& out, const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNull:
      out += "null";
      return;
    case Value::Kind::kBool:
      out += v.asBool() ? "true" : "false";
      return;
    case Value::Kind::kNumber:
      appendGoNumber(out, v);
      return;
    case Value::Kind::kString:
      appendGoString(out, v.text());
      return;
    case Value::Kind::kArray: {
      out += '[';
      bool first = true;
      for (const auto& item : v.items()) {
        if (!first) out += ',';
        first = false;
        appendGoJson(out, item);
      }
      out += ']';
      return;
    }
    case Value::Kind::kObject: {
      std::vector<const Value::Member*> members;
      for (const auto& m : v.members())
        members.push_back(&m);
      std::sort(members.begin(), members.end(),
                [](const Value::Member* a, const Value::Member* b) { return a->key < b->key; });
      out += '{';
      bool first = true;
      for (const auto* m : members) {
        if (!first) out += ',';
        first = false;
        appendGoString(out, m->key);
        out += ':';
        appendGoJson(out, m->value);
      }
      out += '}';
      return;
    }
  }
}

// ------------------------------------------------------------------ the schema of patch strategies

// What the patch computation needs to know of one place in an object.
struct Schema {
  const Descriptor* type = nullptr;  // the message at this place; null: unknown (a map value, RAW)
  bool is_map = false;               // a proto map: any key, each value of type `type`
};

bool isPlainMessage(const Descriptor* d) {
  return d != nullptr &&
         d->options().GetExtension(skiff::api::json_form) == skiff::api::JSON_FORM_OBJECT;
}

const FieldDescriptor* fieldByJson(const Descriptor* d, std::string_view name) {
  if (d == nullptr) return nullptr;
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->json_name() == name) return d->field(i);
  }
  return nullptr;
}

// The field at `key` of an object of `schema` (null for map entries and unknown places).
const FieldDescriptor* fieldOf(const Schema& schema, std::string_view key) {
  if (schema.is_map) return nullptr;
  return fieldByJson(schema.type, key);
}

// The schema of the value at `key` of an object of `schema`.
Schema childSchema(const Schema& schema, std::string_view key) {
  if (schema.is_map) return {schema.type, false};
  const FieldDescriptor* f = fieldOf(schema, key);
  if (f == nullptr || f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return {};
  if (f->is_map()) {
    const FieldDescriptor* v = f->message_type()->map_value();
    const Descriptor* vt =
        v->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ? v->message_type() : nullptr;
    return {isPlainMessage(vt) ? vt : nullptr, true};
  }
  return {isPlainMessage(f->message_type()) ? f->message_type() : nullptr, false};
}

std::string strategyOf(const FieldDescriptor* f) {
  return f == nullptr ? std::string() : f->options().GetExtension(skiff::api::patch_strategy);
}

struct DiffOptions {
  bool ignore_deletions = false;
  bool ignore_changes_and_additions = false;
  bool set_element_order = false;
  bool build_retain_keys = false;
};

Value diffMaps(const Value& original, const Value& modified, const Schema& schema,
               DiffOptions options);

bool isObjectList(const Value& list) {
  return std::all_of(list.items().begin(), list.items().end(),
                     [](const Value& v) { return v.isObject(); });
}

const Value* findByKey(const Value& list, const std::string& key, const Value& want) {
  for (const auto& item : list.items()) {
    const Value* k = item.isObject() ? item.find(key) : nullptr;
    if (k != nullptr && *k == want) return &item;
  }
  return nullptr;
}

bool contains(const Value& list, const Value& v) {
  return std::find(list.items().begin(), list.items().end(), v) != list.items().end();
}

// A list whose field merges (patchStrategy "merge"): element-wise, by the merge key for objects.
void diffMergeList(const std::string& key, const Value& original, const Value& modified,
                   const FieldDescriptor* f, const Schema& element_schema, DiffOptions options,
                   Value& patch) {
  const std::string& merge_key = f->options().GetExtension(skiff::api::patch_merge_key);
  bool objects = f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && isObjectList(original) &&
                 isObjectList(modified);
  Value patch_list = Value::array();
  Value set_order = Value::array();
  size_t deletions = 0;
  if (objects && !merge_key.empty()) {
    DiffOptions element_options = options;
    element_options.build_retain_keys = strategyOf(f).find("retainKeys") != std::string::npos;
    for (const auto& m : modified.items()) {
      const Value* k = m.find(merge_key);
      if (k == nullptr) continue;
      Value order_entry = Value::object();
      order_entry.append(merge_key, *k);
      set_order.push(std::move(order_entry));
      const Value* o = findByKey(original, merge_key, *k);
      if (o == nullptr) {
        if (!options.ignore_changes_and_additions) patch_list.push(m);
        continue;
      }
      Value sub = diffMaps(*o, m, element_schema, element_options);
      if (!sub.members().empty()) {
        sub.set(merge_key, *k);
        patch_list.push(std::move(sub));
      }
    }
    if (!options.ignore_deletions) {
      for (const auto& o : original.items()) {
        const Value* k = o.find(merge_key);
        if (k == nullptr || findByKey(modified, merge_key, *k) != nullptr) continue;
        Value deletion = Value::object();
        deletion.append(merge_key, *k);
        deletion.append("$patch", Value::string("delete"));
        patch_list.push(std::move(deletion));
        ++deletions;
      }
    }
    if (!patch_list.items().empty()) patch.set(key, patch_list);
  } else if (!objects) {
    // A set of scalars.
    Value deleted = Value::array();
    if (!options.ignore_changes_and_additions) {
      for (const auto& m : modified.items()) {
        if (!contains(original, m)) patch_list.push(m);
      }
    }
    if (!options.ignore_deletions) {
      for (const auto& o : original.items()) {
        if (!contains(modified, o)) deleted.push(o);
      }
    }
    deletions = deleted.items().size();
    set_order = modified;
    if (!patch_list.items().empty()) patch.set(key, patch_list);
    if (!deleted.items().empty()) patch.set("$deleteFromPrimitiveList/" + key, deleted);
  } else {
    // Objects without a merge key are replaced as a whole.
    if (!(original == modified) && !options.ignore_changes_and_additions) patch.set(key, modified);
    return;
  }
  bool changed = (!options.ignore_deletions && deletions > 0) ||
                 (!options.ignore_changes_and_additions && !patch_list.items().empty());
  if (options.set_element_order && changed) {
    patch.set("$setElementOrder/" + key, std::move(set_order));
  }
}

Value diffMaps(const Value& original, const Value& modified, const Schema& schema,
               DiffOptions options) {
  Value patch = Value::object();
  Value retain_keys = Value::array();
  for (const auto& member : modified.members()) {
    const std::string& key = member.key;
    const Value& m = member.value;
    if (options.build_retain_keys && !m.isNull()) retain_keys.push(Value::string(key));
    const Value* o = original.isObject() ? original.find(key) : nullptr;
    if (o == nullptr) {
      if (!options.ignore_changes_and_additions) patch.set(key, m);
      continue;
    }
    if (o->kind() != m.kind()) {
      if (!options.ignore_changes_and_additions) patch.set(key, m);
      continue;
    }
    const FieldDescriptor* f = fieldOf(schema, key);
    std::string strategy = strategyOf(f);
    if (m.isObject()) {
      if (strategy == "replace") {
        if (!(*o == m) && !options.ignore_changes_and_additions) patch.set(key, m);
        continue;
      }
      DiffOptions sub_options = options;
      sub_options.build_retain_keys = strategy.find("retainKeys") != std::string::npos;
      Value sub = diffMaps(*o, m, childSchema(schema, key), sub_options);
      if (!sub.members().empty()) patch.set(key, std::move(sub));
      continue;
    }
    if (m.isArray()) {
      if (f != nullptr && f->is_repeated() && !f->is_map() &&
          strategy.find("merge") != std::string::npos) {
        diffMergeList(key, *o, m, f, childSchema(schema, key), options, patch);
      } else if (!(*o == m) && !options.ignore_changes_and_additions) {
        patch.set(key, m);
      }
      continue;
    }
    if (!(*o == m) && !options.ignore_changes_and_additions) patch.set(key, m);
  }
  bool has_removed = false;
  if (original.isObject()) {
    for (const auto& member : original.members()) {
      if (modified.find(member.key) != nullptr) continue;
      if (!member.value.isNull()) has_removed = true;
      if (!options.ignore_deletions) patch.set(member.key, Value::null());
    }
  }
  if (!retain_keys.items().empty() && (!patch.members().empty() || has_removed)) {
    std::sort(retain_keys.items().begin(), retain_keys.items().end(),
              [](const Value& a, const Value& b) { return a.text() < b.text(); });
    patch.set("$retainKeys", std::move(retain_keys));
  }
  return patch;
}

// kubectl's mergeMap(deletions, delta): the two halves of a three-way patch joined. Lists of
// objects join on their merge key; anything else present in both comes from `delta`.
Value joinPatches(const Value& deletions, const Value& delta, const Schema& schema) {
  Value out = deletions;
  for (const auto& member : delta.members()) {
    Value* d = out.find(member.key);
    if (d == nullptr) {
      out.append(member.key, member.value);
      continue;
    }
    const FieldDescriptor* f = fieldOf(schema, member.key);
    if (d->isObject() && member.value.isObject()) {
      *d = joinPatches(*d, member.value, childSchema(schema, member.key));
      continue;
    }
    std::string merge_key =
        f == nullptr ? std::string() : f->options().GetExtension(skiff::api::patch_merge_key);
    if (d->isArray() && member.value.isArray() && !merge_key.empty() &&
        strategyOf(f).find("merge") != std::string::npos && !member.key.starts_with("$")) {
      Schema element = childSchema(schema, member.key);
      for (const auto& item : member.value.items()) {
        const Value* k = item.isObject() ? item.find(merge_key) : nullptr;
        Value* existing = nullptr;
        if (k != nullptr) {
          for (auto& e : d->items()) {
            const Value* ek = e.isObject() ? e.find(merge_key) : nullptr;
            if (ek != nullptr && *ek == *k) existing = &e;
          }
        }
        if (existing != nullptr) {
          *existing = joinPatches(*existing, item, element);
        } else {
          d->push(item);
        }
      }
      continue;
    }
    *d = member.value;
  }
  return out;
}

}  // namespace

std::string goJson(const Value& value) {
  std::string out;
  appendGoJson(out, value);
  return out;
}

Value withLastApplied(const Value& manifest) {
  Value object = manifest;
  if (!object.isObject()) return object;
  Value* metadata = object.find("metadata");
  if (metadata == nullptr || !metadata->isObject())
    metadata = &object.set("metadata", Value::object());
  Value* annotations = metadata->find("annotations");
  if (annotations == nullptr || !annotations->isObject()) {
    annotations = &metadata->set("annotations", Value::object());
  }
  annotations->erase(kLastAppliedAnnotation);
  std::string text = goJson(object) + "\n";
  annotations->set(kLastAppliedAnnotation, Value::string(std::move(text)));
  return object;
}

Value lastApplied(const Value& live) {
  const Value* metadata = live.isObject() ? live.find("metadata") : nullptr;
  const Value* annotations =
      metadata != nullptr && metadata->isObject() ? metadata->find("annotations") : nullptr;
  const Value* text = annotations != nullptr && annotations->isObject()
                          ? annotations->find(kLastAppliedAnnotation)
                          : nullptr;
  if (text == nullptr || !text->isString() || text->text().empty()) return Value::null();
  try {
    return api::parseJson(text->text());
  } catch (const std::exception&) {
    return Value::null();
  }
}

Value threeWayMergePatch(const Value& original, const Value& modified, const Value& current,
                         const Descriptor* type) {
  Schema schema{type, false};
  Value delta =
      diffMaps(current, modified, schema, {.ignore_deletions = true, .set_element_order = true});
  Value base = original.isObject() ? original : Value::object();
  Value deletions = diffMaps(base, modified, schema, {.ignore_changes_and_additions = true});
  return joinPatches(deletions, delta, schema);
}

}  // namespace skiff::cli

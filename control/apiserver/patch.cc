#include "control/apiserver/patch.h"

#include <algorithm>
#include <charconv>

#include "control/api/json.h"
#include "control/apiserver/errors.h"
#include "skiff/api/options.pb.h"

namespace skiff::apiserver {
namespace {

using api::Value;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// ------------------------------------------------------------------ merge patch

Value mergePatch(const Value* target, const Value& patch) {
  if (!patch.isObject()) return patch;
  Value out = target != nullptr && target->isObject() ? *target : Value::object();
  for (const auto& m : patch.members()) {
    if (m.value.isNull()) {
      out.erase(m.key);
    } else {
      Value merged = mergePatch(out.find(m.key), m.value);
      out.set(m.key, std::move(merged));
    }
  }
  return out;
}

// ------------------------------------------------------------------ JSON patch

std::vector<std::string> splitPointer(const std::string& pointer) {
  if (pointer.empty()) return {};
  if (pointer[0] != '/') throw badRequest("JSON patch: path \"" + pointer + "\" must start with /");
  std::vector<std::string> tokens;
  size_t start = 1;
  while (true) {
    size_t slash = pointer.find('/', start);
    std::string token = pointer.substr(start, slash == std::string::npos ? slash : slash - start);
    std::string decoded;
    for (size_t i = 0; i < token.size(); ++i) {
      if (token[i] == '~' && i + 1 < token.size() && (token[i + 1] == '0' || token[i + 1] == '1')) {
        decoded += token[i + 1] == '0' ? '~' : '/';
        ++i;
      } else {
        decoded += token[i];
      }
    }
    tokens.push_back(decoded);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return tokens;
}

size_t arrayIndex(const std::string& token, size_t size, bool allow_end, const std::string& path) {
  if (allow_end && token == "-") return size;
  if (token.empty() || token.find_first_not_of("0123456789") != std::string::npos ||
      (token.size() > 1 && token[0] == '0')) {
    throw badRequest("JSON patch: \"" + token + "\" in \"" + path + "\" is not an array index");
  }
  // Digits beyond size_t (std::stoul threw out_of_range, a 500) are out of range like any index
  // past the end.
  size_t i = 0;
  const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), i);
  if (ec != std::errc() || end != token.data() + token.size() || i > size ||
      (!allow_end && i == size)) {
    throw badRequest("JSON patch: index " + token + " in \"" + path + "\" is out of range");
  }
  return i;
}

// The parent container of the pointer's last token.
Value& parentOf(Value& doc, const std::vector<std::string>& tokens, const std::string& path) {
  Value* v = &doc;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    if (v->isObject()) {
      v = v->find(tokens[i]);
    } else if (v->isArray()) {
      v = &v->items()[arrayIndex(tokens[i], v->items().size(), false, path)];
    } else {
      v = nullptr;
    }
    if (v == nullptr) throw badRequest("JSON patch: path \"" + path + "\" does not exist");
  }
  return *v;
}

const Value& getAt(Value& doc, const std::string& path) {
  auto tokens = splitPointer(path);
  if (tokens.empty()) return doc;
  Value& parent = parentOf(doc, tokens, path);
  const Value* v = nullptr;
  if (parent.isObject()) {
    v = parent.find(tokens.back());
  } else if (parent.isArray()) {
    v = &parent.items()[arrayIndex(tokens.back(), parent.items().size(), false, path)];
  }
  if (v == nullptr) throw badRequest("JSON patch: path \"" + path + "\" does not exist");
  return *v;
}

Value removeAt(Value& doc, const std::string& path) {
  auto tokens = splitPointer(path);
  if (tokens.empty()) throw badRequest("JSON patch: cannot remove the whole document");
  Value& parent = parentOf(doc, tokens, path);
  if (parent.isObject()) {
    Value* v = parent.find(tokens.back());
    if (v == nullptr) throw badRequest("JSON patch: path \"" + path + "\" does not exist");
    Value removed = *v;
    parent.erase(tokens.back());
    return removed;
  }
  if (parent.isArray()) {
    size_t i = arrayIndex(tokens.back(), parent.items().size(), false, path);
    Value removed = parent.items()[i];
    parent.items().erase(parent.items().begin() + static_cast<std::ptrdiff_t>(i));
    return removed;
  }
  throw badRequest("JSON patch: path \"" + path + "\" does not exist");
}

void addAt(Value& doc, const std::string& path, Value value, bool replace) {
  auto tokens = splitPointer(path);
  if (tokens.empty()) {
    doc = std::move(value);
    return;
  }
  Value& parent = parentOf(doc, tokens, path);
  if (parent.isObject()) {
    if (replace && parent.find(tokens.back()) == nullptr) {
      throw badRequest("JSON patch: path \"" + path + "\" does not exist");
    }
    parent.set(tokens.back(), std::move(value));
  } else if (parent.isArray()) {
    auto& items = parent.items();
    size_t i = arrayIndex(tokens.back(), items.size(), !replace, path);
    if (replace) {
      items[i] = std::move(value);
    } else {
      items.insert(items.begin() + static_cast<std::ptrdiff_t>(i), std::move(value));
    }
  } else {
    throw badRequest("JSON patch: path \"" + path + "\" does not exist");
  }
}

// ------------------------------------------------------------------ strategic merge patch

const FieldDescriptor* fieldByJson(const Descriptor* d, std::string_view name) {
  if (d == nullptr) return nullptr;
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->json_name() == name) return d->field(i);
  }
  return nullptr;
}

bool mergesList(const FieldDescriptor* f) {
  if (f == nullptr || !f->is_repeated() || f->is_map()) return false;
  const std::string& strategy = f->options().GetExtension(skiff::api::patch_strategy);
  return strategy.find("merge") != std::string::npos;
}

const Descriptor* objectType(const FieldDescriptor* f) {
  if (f == nullptr || f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return nullptr;
  if (f->is_map()) {
    const FieldDescriptor* v = f->message_type()->map_value();
    return v->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ? v->message_type() : nullptr;
  }
  return f->message_type();
}

Value strategicMerge(const Value* target, const Value& patch, const Descriptor* type);

const Value* findByKey(const Value::Array& items, const std::string& key, const Value& want) {
  for (const auto& item : items) {
    const Value* k = item.isObject() ? item.find(key) : nullptr;
    if (k != nullptr && *k == want) return &item;
  }
  return nullptr;
}

Value mergeList(const Value* target, const Value& patch, const FieldDescriptor* f,
                const Value* element_order, const Value* delete_from_primitive) {
  Value out = target != nullptr && target->isArray() ? *target : Value::array();
  if (!patch.isArray())
    throw badRequest("strategic merge patch: " + f->json_name() + " must be a list");
  const std::string& key = f->options().GetExtension(skiff::api::patch_merge_key);
  bool primitive = f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE;
  if (primitive) {
    // A set of scalars: the union, minus $deleteFromPrimitiveList.
    for (const auto& v : patch.items()) {
      if (std::find(out.items().begin(), out.items().end(), v) == out.items().end()) out.push(v);
    }
    if (delete_from_primitive != nullptr && delete_from_primitive->isArray()) {
      auto& items = out.items();
      for (const auto& d : delete_from_primitive->items()) {
        items.erase(std::remove(items.begin(), items.end(), d), items.end());
      }
    }
  } else {
    if (key.empty()) return patch;  // no merge key: replaced, as Kubernetes does
    for (const auto& p : patch.items()) {
      if (!p.isObject())
        throw badRequest("strategic merge patch: " + f->json_name() + " items must be objects");
      const Value* directive = p.find("$patch");
      if (directive != nullptr && directive->isString() && directive->text() == "replace") {
        Value replaced = Value::array();
        for (const auto& q : patch.items()) {
          if (&q != &p) replaced.push(q);
        }
        return replaced;
      }
      const Value* k = p.find(key);
      if (k == nullptr) {
        throw badRequest("strategic merge patch: " + f->json_name() +
                         " item lacks its merge key \"" + key + "\"");
      }
      auto& items = out.items();
      auto it = std::find_if(items.begin(), items.end(), [&](const Value& item) {
        const Value* ik = item.isObject() ? item.find(key) : nullptr;
        return ik != nullptr && *ik == *k;
      });
      if (directive != nullptr && directive->isString() && directive->text() == "delete") {
        if (it != items.end()) items.erase(it);
        continue;
      }
      if (it == items.end()) {
        Value added = strategicMerge(nullptr, p, f->message_type());
        out.push(std::move(added));
      } else {
        *it = strategicMerge(&*it, p, f->message_type());
      }
    }
  }
  // $setElementOrder: the order the client wants, for the items it names.
  if (element_order != nullptr && element_order->isArray()) {
    Value ordered = Value::array();
    for (const auto& want : element_order->items()) {
      const Value* found = nullptr;
      if (primitive) {
        auto it = std::find(out.items().begin(), out.items().end(), want);
        if (it != out.items().end()) found = &*it;
      } else if (want.isObject() && want.find(key) != nullptr) {
        found = findByKey(out.items(), key, *want.find(key));
      }
      if (found != nullptr) ordered.push(*found);
    }
    for (const auto& item : out.items()) {
      bool named =
          std::find(ordered.items().begin(), ordered.items().end(), item) != ordered.items().end();
      if (!named) ordered.push(item);
    }
    out = std::move(ordered);
  }
  return out;
}

Value strategicMerge(const Value* target, const Value& patch, const Descriptor* type) {
  if (!patch.isObject()) return patch;
  const Value* directive = patch.find("$patch");
  if (directive != nullptr && directive->isString()) {
    if (directive->text() == "delete") return Value::null();
    if (directive->text() == "replace") {
      Value replaced = patch;
      replaced.erase("$patch");
      return replaced;
    }
  }
  Value out = target != nullptr && target->isObject() ? *target : Value::object();
  // $retainKeys: keys of the target not listed are dropped (kubectl sends it for unions).
  if (const Value* retain = patch.find("$retainKeys"); retain != nullptr && retain->isArray()) {
    Value kept = Value::object();
    for (auto& m : out.members()) {
      if (std::find(retain->items().begin(), retain->items().end(), Value::string(m.key)) !=
          retain->items().end()) {
        kept.append(m.key, m.value);
      }
    }
    out = std::move(kept);
  }
  for (const auto& m : patch.members()) {
    if (m.key.starts_with("$")) continue;  // directives, handled with their fields
    const FieldDescriptor* f = fieldByJson(type, m.key);
    if (m.value.isNull()) {
      out.erase(m.key);
      continue;
    }
    if (mergesList(f) && m.value.isArray()) {
      const Value* order = patch.find("$setElementOrder/" + m.key);
      const Value* remove = patch.find("$deleteFromPrimitiveList/" + m.key);
      out.set(m.key, mergeList(out.find(m.key), m.value, f, order, remove));
      continue;
    }
    const Descriptor* sub = f != nullptr && f->is_map() ? nullptr : objectType(f);
    if (f != nullptr && f->is_map() && m.value.isObject()) {
      // Maps (labels, resources) merge key by key; their values merge by their own type.
      Value merged = out.find(m.key) != nullptr && out.find(m.key)->isObject() ? *out.find(m.key)
                                                                               : Value::object();
      for (const auto& entry : m.value.members()) {
        if (entry.value.isNull()) {
          merged.erase(entry.key);
        } else {
          merged.set(entry.key, strategicMerge(merged.find(entry.key), entry.value, objectType(f)));
        }
      }
      out.set(m.key, std::move(merged));
      continue;
    }
    Value merged = strategicMerge(out.find(m.key), m.value, sub);
    if (merged.isNull() && m.value.isObject()) {
      out.erase(m.key);  // $patch: delete of a whole object
    } else {
      out.set(m.key, std::move(merged));
    }
  }
  // Lists named only by $setElementOrder or $deleteFromPrimitiveList still change.
  for (const auto& m : patch.members()) {
    for (std::string_view prefix : {"$setElementOrder/", "$deleteFromPrimitiveList/"}) {
      if (!m.key.starts_with(prefix)) continue;
      std::string field = m.key.substr(prefix.size());
      if (patch.find(field) != nullptr) continue;
      const FieldDescriptor* f = fieldByJson(type, field);
      if (!mergesList(f) || out.find(field) == nullptr) continue;
      bool order = prefix == "$setElementOrder/";
      out.set(field, mergeList(out.find(field), Value::array(), f, order ? &m.value : nullptr,
                               order ? nullptr : &m.value));
    }
  }
  return out;
}

}  // namespace

Value applyMergePatch(const Value& target, const Value& patch) {
  return mergePatch(&target, patch);
}

Value applyJsonPatch(const Value& target, const Value& patch) {
  if (!patch.isArray()) throw badRequest("JSON patch: the patch must be a list of operations");
  Value doc = target;
  for (size_t i = 0; i < patch.items().size(); ++i) {
    const Value& op = patch.items()[i];
    const Value* name = op.isObject() ? op.find("op") : nullptr;
    const Value* path = op.isObject() ? op.find("path") : nullptr;
    if (name == nullptr || !name->isString() || path == nullptr || !path->isString()) {
      throw badRequest("JSON patch: operation " + std::to_string(i) + " needs \"op\" and \"path\"");
    }
    const std::string& o = name->text();
    const Value* value = op.find("value");
    auto need_value = [&]() -> const Value& {
      if (value == nullptr)
        throw badRequest("JSON patch: operation " + std::to_string(i) + " (" + o +
                         ") needs \"value\"");
      return *value;
    };
    auto from = [&]() -> std::string {
      const Value* f = op.find("from");
      if (f == nullptr || !f->isString())
        throw badRequest("JSON patch: operation " + std::to_string(i) + " (" + o +
                         ") needs \"from\"");
      return f->text();
    };
    if (o == "add") {
      addAt(doc, path->text(), need_value(), false);
    } else if (o == "remove") {
      removeAt(doc, path->text());
    } else if (o == "replace") {
      addAt(doc, path->text(), need_value(), true);
    } else if (o == "move") {
      Value moved = removeAt(doc, from());
      addAt(doc, path->text(), std::move(moved), false);
    } else if (o == "copy") {
      Value copied = getAt(doc, from());
      addAt(doc, path->text(), std::move(copied), false);
    } else if (o == "test") {
      if (!(getAt(doc, path->text()) == need_value())) {
        throw ApiError(422, "Invalid",
                       "JSON patch: test operation " + std::to_string(i) + " failed at \"" +
                           path->text() + "\"");
      }
    } else {
      throw badRequest("JSON patch: unknown operation \"" + o + "\"");
    }
  }
  return doc;
}

Value applyStrategicMergePatch(const Value& target, const Value& patch, const Descriptor* type) {
  if (!patch.isObject()) throw badRequest("strategic merge patch: the patch must be an object");
  return strategicMerge(&target, patch, type);
}

}  // namespace skiff::apiserver

#include "control/api/codec.h"

#include <algorithm>
#include <bitset>
#include <charconv>
#include <cmath>
#include <limits>
#include <mutex>
#include <unordered_map>

#include <google/protobuf/descriptor.pb.h>

#include "control/api/base64.h"
#include "control/api/quantity.h"
#include "control/api/time.h"
#include "control/api/yaml.h"
#include "skiff/api/options.pb.h"

namespace skiff::api {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr size_t kMaxErrors = 50;

// ------------------------------------------------------------------ field index by JSON name

struct FieldIndex {
  std::unordered_map<std::string_view, const FieldDescriptor*> by_json_name;
  JsonForm form = JSON_FORM_OBJECT;
  bool is_resource = false;
};

const FieldIndex& buildFieldIndex(const Descriptor* d) {
  // Descriptors live as long as the process; the index is built once per message type.
  static std::mutex mu;
  static std::unordered_map<const Descriptor*, std::unique_ptr<FieldIndex>> cache;
  std::lock_guard lock(mu);
  auto& slot = cache[d];
  if (!slot) {
    slot = std::make_unique<FieldIndex>();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      slot->by_json_name.emplace(f->json_name(), f);
    }
    slot->form = d->options().GetExtension(skiff::api::json_form);
    slot->is_resource = d->options().HasExtension(skiff::api::resource);
  }
  return *slot;
}

const FieldIndex& fieldIndex(const Descriptor* d) {
  // Each thread remembers what it has looked up, so the shared table's lock is taken once per
  // thread and type rather than once per message.
  thread_local std::unordered_map<const Descriptor*, const FieldIndex*> local;
  auto [it, inserted] = local.try_emplace(d, nullptr);
  if (inserted) it->second = &buildFieldIndex(d);
  return *it->second;
}

// ------------------------------------------------------------------ decoder

class Decoder {
 public:
  explicit Decoder(const DecodeOptions& options) : options_(options) {}

  void decodeRoot(const Value& v, Message& m) {
    decodeMessage(v, m);
    if (!errors_.empty()) throw DecodeError(std::move(errors_));
  }

 private:
  void report(Mark mark, std::string message) {
    if (errors_.size() < kMaxErrors) {
      errors_.push_back(
          Diagnostic{std::string(options_.source), mark, path_.str(), std::move(message)});
    }
  }

  // Unknown and duplicate fields follow the field-validation policy.
  void reportPolicy(Mark mark, std::string message) {
    switch (options_.unknown_fields) {
      case UnknownFields::kStrict:
        report(mark, std::move(message));
        break;
      case UnknownFields::kWarn:
        if (options_.warnings != nullptr) {
          options_.warnings->push_back(
              Diagnostic{std::string(options_.source), mark, path_.str(), std::move(message)});
        }
        break;
      case UnknownFields::kIgnore:
        break;
    }
  }

  static std::string got(const Value& v) {
    if (v.isString()) return "got string \"" + v.text() + "\"";
    if (v.isBool()) return std::string("got boolean ") + (v.asBool() ? "true" : "false");
    if (v.isNumber()) return "got number " + v.text();
    return "got " + std::string(v.typeName());
  }

  void decodeMessage(const Value& v, Message& m) {
    const Descriptor* d = m.GetDescriptor();
    const FieldIndex& index = fieldIndex(d);
    if (index.form != JSON_FORM_OBJECT) {
      decodeSpecial(v, m, index.form);
      return;
    }
    if (v.isNull()) return;
    if (!v.isObject()) {
      report(v.mark(), "expected object, " + got(v));
      return;
    }
    const Reflection* r = m.GetReflection();
    // Which fields appeared, for duplicate detection; API messages have far fewer than 128.
    std::bitset<128> seen_small;
    std::vector<bool> seen_large(d->field_count() > 128 ? static_cast<size_t>(d->field_count())
                                                        : 0);
    auto seen = [&](int field) -> bool {
      if (!seen_large.empty()) {
        bool was = seen_large[static_cast<size_t>(field)];
        seen_large[static_cast<size_t>(field)] = true;
        return was;
      }
      bool was = seen_small.test(static_cast<size_t>(field));
      seen_small.set(static_cast<size_t>(field));
      return was;
    };
    bool seen_api_version = false, seen_kind = false;
    for (const auto& member : v.members()) {
      auto it = index.by_json_name.find(member.key);
      if (it == index.by_json_name.end()) {
        if (index.is_resource && (member.key == "apiVersion" || member.key == "kind")) {
          bool& seen_meta = member.key == "kind" ? seen_kind : seen_api_version;
          path_.pushField(member.key);
          if (seen_meta) reportPolicy(member.key_mark, "duplicate field");
          seen_meta = true;
          checkTypeMeta(member, d);
          path_.pop();
          continue;
        }
        path_.pushField(member.key);
        reportPolicy(member.key_mark, "unknown field");
        path_.pop();
        continue;
      }
      const FieldDescriptor* f = it->second;
      path_.pushField(member.key);
      if (seen(f->index())) {
        reportPolicy(member.key_mark, "duplicate field");
        r->ClearField(&m, f);  // as Go does, the last occurrence wins when duplicates are allowed
      }
      decodeField(member.value, m, f);
      path_.pop();
    }
  }

  void checkTypeMeta(const Value::Member& member, const Descriptor* d) {
    const auto& info = d->options().GetExtension(skiff::api::resource);
    if (!member.value.isString()) {
      report(member.value.mark(), "expected string, " + got(member.value));
      return;
    }
    if (member.key == "kind") {
      if (member.value.text() != info.kind()) {
        report(member.value.mark(),
               "expected \"" + info.kind() + "\", got \"" + member.value.text() + "\"");
      }
      return;
    }
    std::string want = info.group().empty() ? info.version() : info.group() + "/" + info.version();
    if (member.value.text() != want) {
      report(member.value.mark(), "expected \"" + want + "\", got \"" + member.value.text() + "\"");
    }
  }

  void decodeField(const Value& v, Message& m, const FieldDescriptor* f) {
    if (f->is_map()) {
      decodeMap(v, m, f);
      return;
    }
    if (f->is_repeated()) {
      if (v.isNull()) return;
      if (!v.isArray()) {
        report(v.mark(), "expected array, " + got(v));
        return;
      }
      const Reflection* r = m.GetReflection();
      for (size_t i = 0; i < v.items().size(); ++i) {
        path_.pushIndex(i);
        const Value& item = v.items()[i];
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          decodeMessage(item, *r->AddMessage(&m, f));
        } else {
          setScalar(item, m, f, /*add=*/true);
        }
        path_.pop();
      }
      return;
    }
    if (v.isNull()) return;  // null leaves a field unset, as in Kubernetes
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      decodeMessage(v, *m.GetReflection()->MutableMessage(&m, f));
    } else {
      setScalar(v, m, f, /*add=*/false);
    }
  }

  void decodeMap(const Value& v, Message& m, const FieldDescriptor* f) {
    if (v.isNull()) return;
    if (!v.isObject()) {
      report(v.mark(), "expected object, " + got(v));
      return;
    }
    const Reflection* r = m.GetReflection();
    const Descriptor* entry_type = f->message_type();
    const FieldDescriptor* key_field = entry_type->map_key();
    const FieldDescriptor* value_field = entry_type->map_value();
    std::vector<std::string_view> keys;
    for (const auto& member : v.members()) {
      path_.pushKey(member.key);
      if (std::find(keys.begin(), keys.end(), member.key) != keys.end()) {
        reportPolicy(member.key_mark, "duplicate key");
      }
      keys.push_back(member.key);
      Message* entry = r->AddMessage(&m, f);
      entry->GetReflection()->SetString(entry, key_field, member.key);
      if (value_field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        decodeMessage(member.value, *entry->GetReflection()->MutableMessage(entry, value_field));
      } else if (member.value.isNull() && value_field->type() != FieldDescriptor::TYPE_STRING) {
        report(member.value.mark(),
               "expected " + std::string(value_field->type_name()) + ", got null");
      } else {
        setScalar(member.value, *entry, value_field, /*add=*/false);
      }
      path_.pop();
    }
  }

  // Integers must be written as integers and fit the field's type.
  bool integerOf(const Value& v, int64_t min, int64_t max, int64_t& out, const char* type_name) {
    if (!v.isNumber()) {
      report(v.mark(), "expected integer, " + got(v));
      return false;
    }
    if (!v.isInteger()) {
      // Written as an integer but too large for int64 (YAML may also use _ separators).
      std::string_view digits = v.text();
      if (!digits.empty() && (digits.front() == '-' || digits.front() == '+'))
        digits.remove_prefix(1);
      bool integral_text =
          !digits.empty() && digits.find_first_not_of(v.isPlain() ? "0123456789_" : "0123456789") ==
                                 std::string_view::npos;
      if (integral_text) {
        report(v.mark(), "value " + v.text() + " is out of range for " + type_name);
      } else {
        report(v.mark(), "expected integer, got number " + v.text());
      }
      return false;
    }
    if (v.asInt() < min || v.asInt() > max) {
      report(v.mark(), "value " + v.text() + " is out of range for " + type_name);
      return false;
    }
    out = v.asInt();
    return true;
  }

  void setScalar(const Value& v, Message& m, const FieldDescriptor* f, bool add) {
    const Reflection* r = m.GetReflection();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string s;
        if (v.isString() || (v.isPlain() && !v.isNull())) {
          s = v.text();  // a YAML plain scalar is text when the field is text
        } else if (!v.isNull()) {
          report(v.mark(), "expected string, " + got(v));
          return;
        }
        if (f->type() == FieldDescriptor::TYPE_BYTES) {
          auto raw = base64Decode(s);
          if (!raw) {
            report(v.mark(), "illegal base64 data");
            return;
          }
          s = std::move(*raw);
        }
        add ? r->AddString(&m, f, std::move(s)) : r->SetString(&m, f, std::move(s));
        return;
      }
      case FieldDescriptor::CPPTYPE_INT32: {
        int64_t i = 0;
        if (!v.isNull() && !integerOf(v, std::numeric_limits<int32_t>::min(),
                                      std::numeric_limits<int32_t>::max(), i, "int32")) {
          return;
        }
        add ? r->AddInt32(&m, f, static_cast<int32_t>(i))
            : r->SetInt32(&m, f, static_cast<int32_t>(i));
        return;
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t i = 0;
        if (!v.isNull() && !integerOf(v, std::numeric_limits<int64_t>::min(),
                                      std::numeric_limits<int64_t>::max(), i, "int64")) {
          return;
        }
        add ? r->AddInt64(&m, f, i) : r->SetInt64(&m, f, i);
        return;
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        int64_t i = 0;
        if (!v.isNull() && !integerOf(v, 0, std::numeric_limits<uint32_t>::max(), i, "uint32")) {
          return;
        }
        add ? r->AddUInt32(&m, f, static_cast<uint32_t>(i))
            : r->SetUInt32(&m, f, static_cast<uint32_t>(i));
        return;
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        int64_t i = 0;
        if (!v.isNull() && !integerOf(v, 0, std::numeric_limits<int64_t>::max(), i, "uint64")) {
          return;
        }
        add ? r->AddUInt64(&m, f, static_cast<uint64_t>(i))
            : r->SetUInt64(&m, f, static_cast<uint64_t>(i));
        return;
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        if (!v.isBool() && !v.isNull()) {
          report(v.mark(), "expected boolean, " + got(v));
          return;
        }
        add ? r->AddBool(&m, f, v.asBool()) : r->SetBool(&m, f, v.asBool());
        return;
      }
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        if (!v.isNumber() && !v.isNull()) {
          report(v.mark(), "expected number, " + got(v));
          return;
        }
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
          add ? r->AddDouble(&m, f, v.asDouble()) : r->SetDouble(&m, f, v.asDouble());
        } else {
          auto x = static_cast<float>(v.asDouble());
          add ? r->AddFloat(&m, f, x) : r->SetFloat(&m, f, x);
        }
        return;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const auto* e =
            v.isString() || v.isPlain() ? f->enum_type()->FindValueByName(v.text()) : nullptr;
        if (e == nullptr) {
          report(v.mark(), "unsupported value, " + got(v));
          return;
        }
        add ? r->AddEnum(&m, f, e) : r->SetEnum(&m, f, e);
        return;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;
    }
  }

  void decodeSpecial(const Value& v, Message& m, JsonForm form) {
    const Descriptor* d = m.GetDescriptor();
    const Reflection* r = m.GetReflection();
    switch (form) {
      case JSON_FORM_INT_OR_STRING: {
        const auto* type = d->FindFieldByName("type");
        if (v.isNumber() && (!v.isPlain() || v.isInteger())) {
          int64_t i = 0;
          if (!integerOf(v, std::numeric_limits<int32_t>::min(),
                         std::numeric_limits<int32_t>::max(), i, "int32")) {
            return;
          }
          r->SetEnumValue(&m, type, 0);
          r->SetInt32(&m, d->FindFieldByName("int_val"), static_cast<int32_t>(i));
        } else if (v.isString() || (v.isPlain() && !v.isNull())) {
          r->SetEnumValue(&m, type, 1);
          r->SetString(&m, d->FindFieldByName("str_val"), v.text());
        } else if (!v.isNull()) {
          report(v.mark(), "expected integer or string, " + got(v));
        }
        return;
      }
      case JSON_FORM_QUANTITY: {
        if (v.isNull()) return;
        if (!v.isString() && !v.isNumber() && !v.isPlain()) {
          report(v.mark(), "expected quantity (string or number), " + got(v));
          return;
        }
        std::string error;
        auto q = Quantity::parse(v.text(), &error);
        if (!q) {
          report(v.mark(), error);
          return;
        }
        r->SetString(&m, d->FindFieldByName("string"), q->toString());
        return;
      }
      case JSON_FORM_TIME:
      case JSON_FORM_MICRO_TIME: {
        if (v.isNull()) return;
        if (!v.isString() && !v.isPlain()) {
          report(v.mark(), "expected RFC 3339 time string, " + got(v));
          return;
        }
        std::string error;
        auto t = parseRfc3339(v.text(), &error);
        if (!t) {
          report(v.mark(), error);
          return;
        }
        r->SetInt64(&m, d->FindFieldByName("seconds"), t->seconds);
        int32_t nanos = form == JSON_FORM_TIME ? 0 : t->nanos / 1000 * 1000;
        if (nanos != 0) r->SetInt32(&m, d->FindFieldByName("nanos"), nanos);
        return;
      }
      case JSON_FORM_DURATION: {
        if (v.isNull()) return;
        std::string error;
        auto nanos = v.isString() || v.isPlain() ? parseGoDuration(v.text(), &error)
                                                 : std::optional<int64_t>();
        if (!nanos) {
          report(v.mark(), error.empty() ? "expected duration string, " + got(v) : error);
          return;
        }
        r->SetInt64(&m, d->FindFieldByName("nanos"), *nanos);
        return;
      }
      case JSON_FORM_RAW:
        if (const Value* bad = findNonFinite(v)) {
          report(bad->mark(), "number " + bad->text() + " cannot be represented in JSON");
          return;
        }
        r->SetString(&m, d->FindFieldByName("raw"), writeJson(v));
        return;
      case JSON_FORM_OBJECT:
        break;
    }
  }

  // YAML's .inf and .nan have no JSON form; raw fields hold JSON.
  static const Value* findNonFinite(const Value& v) {
    if (v.isNumber() && !std::isfinite(v.asDouble()) && !v.isInteger()) return &v;
    for (const auto& item : v.items()) {
      if (const Value* bad = findNonFinite(item)) return bad;
    }
    for (const auto& member : v.members()) {
      if (const Value* bad = findNonFinite(member.value)) return bad;
    }
    return nullptr;
  }

  const DecodeOptions& options_;
  std::vector<Diagnostic> errors_;
  FieldPath path_;
};

// ------------------------------------------------------------------ encoder

// Builds a Value tree: for YAML, patches and callers that edit the result.
class ValueSink {
 public:
  Value take() { return std::move(root_); }

  void beginObject() { open(Value::object()); }
  void beginArray() { open(Value::array()); }
  void end() { stack_.pop_back(); }
  void key(std::string_view k) { key_ = k; }
  void string(std::string_view s) { put(Value::string(std::string(s))); }
  void integer(int64_t i) { put(Value::integer(i)); }
  void boolean(bool b) { put(Value::boolean(b)); }
  void number(double d) { put(Value::number(d)); }
  void null() { put(Value::null()); }
  void rawJson(const std::string& json) { put(parseJson(json)); }

 private:
  Value& put(Value v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return root_;
    }
    Value& parent = *stack_.back();
    if (parent.isArray()) return parent.push(std::move(v));
    return parent.append(std::string(key_), std::move(v));
  }
  void open(Value v) { stack_.push_back(&put(std::move(v))); }

  Value root_;
  std::vector<Value*> stack_;  // each points into its parent, which does not grow meanwhile
  std::string_view key_;
};

// Writes compact JSON text straight from the message: the apiserver's hot path.
class JsonSink {
 public:
  explicit JsonSink(std::string& out) : out_(out) {}

  void beginObject() { open('{', '}'); }
  void beginArray() { open('[', ']'); }
  void end() {
    out_ += levels_.back().closer;
    levels_.pop_back();
  }
  void key(std::string_view k) {
    separate();
    appendJsonString(out_, k);
    out_ += ':';
    after_key_ = true;
  }
  void string(std::string_view s) {
    separate();
    appendJsonString(out_, s);
  }
  void integer(int64_t i) {
    separate();
    char buf[24];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), i);
    out_.append(buf, ptr);
  }
  void boolean(bool b) {
    separate();
    out_ += b ? "true" : "false";
  }
  void number(double d) {
    separate();
    out_ += Value::number(d).text();
  }
  void null() {
    separate();
    out_ += "null";
  }
  void rawJson(const std::string& json) {
    separate();
    out_ += json;  // raw fields hold compact JSON already
  }

 private:
  struct Level {
    char closer;
    bool first;
  };

  void open(char opener, char closer) {
    separate();
    out_ += opener;
    levels_.push_back({closer, true});
  }
  // A comma before every element but the first of its container; none right after a key.
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (levels_.empty()) return;
    if (!levels_.back().first) out_ += ',';
    levels_.back().first = false;
  }

  std::string& out_;
  std::vector<Level> levels_;
  bool after_key_ = false;
};

// One walk over a message for every output form, so the encoding rules exist once.
template <typename Sink>
class Encoder {
 public:
  Encoder(const EncodeOptions& options, Sink& sink) : options_(options), sink_(sink) {}

  void encodeMessage(const Message& m, bool root) {
    const Descriptor* d = m.GetDescriptor();
    const FieldIndex& index = fieldIndex(d);
    if (index.form != JSON_FORM_OBJECT) {
      encodeSpecial(m, index.form);
      return;
    }
    sink_.beginObject();
    if (root && index.is_resource && options_.type_meta) {
      const auto& info = d->options().GetExtension(skiff::api::resource);
      sink_.key("apiVersion");
      sink_.string(info.group().empty() ? info.version() : info.group() + "/" + info.version());
      sink_.key("kind");
      sink_.string(info.kind());
    }
    const Reflection* r = m.GetReflection();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (f->is_repeated()) {
        if (r->FieldSize(m, f) == 0) continue;
      } else if (!r->HasField(m, f)) {
        continue;
      }
      sink_.key(f->json_name());
      encodeField(m, f);
    }
    sink_.end();
  }

 private:
  void encodeField(const Message& m, const FieldDescriptor* f) {
    const Reflection* r = m.GetReflection();
    if (f->is_map()) {
      const FieldDescriptor* key_field = f->message_type()->map_key();
      const FieldDescriptor* value_field = f->message_type()->map_value();
      std::vector<std::pair<std::string_view, const Message*>> entries;
      std::string scratch;
      int n = r->FieldSize(m, f);
      entries.reserve(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) {
        const Message& entry = r->GetRepeatedMessage(m, f, i);
        entries.emplace_back(entry.GetReflection()->GetStringReference(entry, key_field, &scratch),
                             &entry);
      }
      // Kubernetes (Go's encoding/json) writes map keys sorted.
      std::sort(entries.begin(), entries.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      sink_.beginObject();
      for (const auto& [key, entry] : entries) {
        sink_.key(key);
        encodeValue(*entry, value_field, -1);
      }
      sink_.end();
      return;
    }
    if (f->is_repeated()) {
      sink_.beginArray();
      int n = r->FieldSize(m, f);
      for (int i = 0; i < n; ++i)
        encodeValue(m, f, i);
      sink_.end();
      return;
    }
    encodeValue(m, f, -1);
  }

  // The value of a singular field (index < 0) or of one element of a repeated field.
  void encodeValue(const Message& m, const FieldDescriptor* f, int index) {
    const Reflection* r = m.GetReflection();
    bool repeated = index >= 0;
    std::string scratch;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING: {
        const std::string& s = repeated ? r->GetRepeatedStringReference(m, f, index, &scratch)
                                        : r->GetStringReference(m, f, &scratch);
        if (f->type() == FieldDescriptor::TYPE_BYTES) {
          sink_.string(base64Encode(s));
        } else {
          sink_.string(s);
        }
        return;
      }
      case FieldDescriptor::CPPTYPE_INT32:
        sink_.integer(repeated ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
        return;
      case FieldDescriptor::CPPTYPE_INT64:
        sink_.integer(repeated ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
        return;
      case FieldDescriptor::CPPTYPE_UINT32:
        sink_.integer(repeated ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
        return;
      case FieldDescriptor::CPPTYPE_UINT64:
        sink_.integer(static_cast<int64_t>(repeated ? r->GetRepeatedUInt64(m, f, index)
                                                    : r->GetUInt64(m, f)));
        return;
      case FieldDescriptor::CPPTYPE_BOOL:
        sink_.boolean(repeated ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f));
        return;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        sink_.number(repeated ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
        return;
      case FieldDescriptor::CPPTYPE_FLOAT:
        sink_.number(repeated ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
        return;
      case FieldDescriptor::CPPTYPE_ENUM:
        sink_.string((repeated ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f))->name());
        return;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        encodeMessage(repeated ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f), false);
        return;
    }
  }

  void encodeSpecial(const Message& m, JsonForm form) {
    const Descriptor* d = m.GetDescriptor();
    const Reflection* r = m.GetReflection();
    std::string scratch;
    switch (form) {
      case JSON_FORM_INT_OR_STRING:
        if (r->GetEnumValue(m, d->FindFieldByName("type")) == 1) {
          sink_.string(r->GetStringReference(m, d->FindFieldByName("str_val"), &scratch));
        } else {
          sink_.integer(r->GetInt32(m, d->FindFieldByName("int_val")));
        }
        return;
      case JSON_FORM_QUANTITY:
        sink_.string(r->GetStringReference(m, d->FindFieldByName("string"), &scratch));
        return;
      case JSON_FORM_TIME:
      case JSON_FORM_MICRO_TIME: {
        Timestamp t{r->GetInt64(m, d->FindFieldByName("seconds")),
                    r->GetInt32(m, d->FindFieldByName("nanos"))};
        sink_.string(formatRfc3339(t, form == JSON_FORM_MICRO_TIME));
        return;
      }
      case JSON_FORM_DURATION:
        sink_.string(formatGoDuration(r->GetInt64(m, d->FindFieldByName("nanos"))));
        return;
      case JSON_FORM_RAW: {
        const std::string& raw = r->GetStringReference(m, d->FindFieldByName("raw"), &scratch);
        if (raw.empty()) {
          sink_.null();
        } else {
          sink_.rawJson(raw);
        }
        return;
      }
      case JSON_FORM_OBJECT:
        break;
    }
  }

  const EncodeOptions& options_;
  Sink& sink_;
};

bool looksLikeJson(std::string_view text) {
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    return c == '{' || c == '[';
  }
  return false;
}

}  // namespace

void decode(const Value& value, Message& out, const DecodeOptions& options) {
  Decoder(options).decodeRoot(value, out);
}

Value encode(const Message& message, const EncodeOptions& options) {
  ValueSink sink;
  Encoder<ValueSink>(options, sink).encodeMessage(message, true);
  return sink.take();
}

void decodeJson(std::string_view json, Message& out, const DecodeOptions& options) {
  decode(parseJson(json, JsonParseOptions{.source = options.source}), out, options);
}

void decodeYaml(std::string_view yaml, Message& out, const DecodeOptions& options) {
  decode(parseYaml(yaml, YamlParseOptions{.source = options.source}), out, options);
}

std::string encodeJson(const Message& message, JsonStyle style, const EncodeOptions& options) {
  if (style == JsonStyle::kPretty) return writeJson(encode(message, options), style);
  std::string out;
  out.reserve(1024);
  JsonSink sink(out);
  Encoder<JsonSink>(options, sink).encodeMessage(message, true);
  return out;
}

std::string encodeYaml(const Message& message, const EncodeOptions& options) {
  return writeYaml(encode(message, options));
}

std::vector<Value> parseDocuments(std::string_view text, std::string_view source) {
  if (looksLikeJson(text)) {
    // A JSON text may still be YAML (flow style) with several documents; one JSON value is the
    // common case and gets the precise JSON errors.
    return {parseJson(text, JsonParseOptions{.source = source})};
  }
  return parseYamlDocuments(text, YamlParseOptions{.source = source});
}

DecodedObject decodeObject(const Value& value, const DecodeOptions& options) {
  auto fail = [&](Mark mark, std::string path, std::string message) {
    throw DecodeError(
        Diagnostic{std::string(options.source), mark, std::move(path), std::move(message)});
  };
  if (!value.isObject())
    fail(value.mark(), "", "expected an object, got " + std::string(value.typeName()));
  const Value* api_version = value.find("apiVersion");
  const Value* kind = value.find("kind");
  if (api_version == nullptr || !api_version->isString() || api_version->text().empty()) {
    fail(value.mark(), "apiVersion", "missing: every object needs apiVersion and kind");
  }
  if (kind == nullptr || !kind->isString() || kind->text().empty()) {
    fail(value.mark(), "kind", "missing: every object needs apiVersion and kind");
  }
  const ResourceType* type = Registry::builtin().byKind(api_version->text(), kind->text());
  if (type == nullptr) {
    fail(kind->mark(), "kind",
         "no kind \"" + kind->text() + "\" is registered for version \"" + api_version->text() +
             "\"");
  }
  DecodedObject object{type, type->newMessage(), value.mark()};
  decode(value, *object.message, options);
  return object;
}

std::vector<DecodedObject> decodeManifests(std::string_view text, const DecodeOptions& options) {
  std::vector<Value> docs = parseDocuments(text, options.source);
  std::vector<DecodedObject> objects;
  std::vector<Diagnostic> errors;
  auto take = [&](const Value& v) {
    try {
      objects.push_back(decodeObject(v, options));
    } catch (const DecodeError& e) {
      errors.insert(errors.end(), e.diagnostics().begin(), e.diagnostics().end());
    }
  };
  for (const Value& doc : docs) {
    const Value* kind = doc.isObject() ? doc.find("kind") : nullptr;
    const Value* items = doc.isObject() ? doc.find("items") : nullptr;
    if (kind != nullptr && kind->isString() && kind->text().ends_with("List") && items != nullptr) {
      if (!items->isArray()) {
        errors.push_back(Diagnostic{std::string(options.source), items->mark(), "items",
                                    "expected array, got " + std::string(items->typeName())});
        continue;
      }
      for (const Value& item : items->items())
        take(item);
      continue;
    }
    take(doc);
  }
  if (!errors.empty()) throw DecodeError(std::move(errors));
  return objects;
}

}  // namespace skiff::api

#include "control/api/kube_protobuf.h"

#include <algorithm>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/unknown_field_set.h>
#include <google/protobuf/wire_format_lite.h>

#include "skiff/api/options.pb.h"

namespace skiff::api::kubepb {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using google::protobuf::internal::WireFormatLite;

constexpr std::string_view kMagic{"k8s\0", 4};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

void putVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

// A length-delimited field (wire type 2).
void putBytes(std::string& out, int field, std::string_view bytes) {
  putVarint(out, (static_cast<uint64_t>(field) << 3) | 2);
  putVarint(out, bytes.size());
  out.append(bytes);
}

size_t varintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// A message as a length-delimited field, serialized in place (deterministic: map entries sorted
// by key). `size` is its ByteSizeLong(), which also cached the sizes the write uses.
void putMessage(std::string& out, int field, const Message& m, size_t size) {
  putVarint(out, (static_cast<uint64_t>(field) << 3) | 2);
  putVarint(out, size);
  size_t start = out.size();
  out.resize(start + size);
  google::protobuf::io::ArrayOutputStream array(out.data() + start, static_cast<int>(size));
  google::protobuf::io::CodedOutputStream coded(&array);
  coded.SetSerializationDeterministic(true);
  m.SerializeWithCachedSizes(&coded);
}

// Reads the length-delimited fields of a flat message; other wire types are skipped. Returns
// false on malformed bytes.
template <typename F>
bool forEachBytesField(std::string_view bytes, F&& f) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  while (true) {
    uint32_t tag = in.ReadTag();
    if (tag == 0) return in.CurrentPosition() == static_cast<int>(bytes.size());
    if (WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      std::string value;
      if (!WireFormatLite::ReadBytes(&in, &value)) return false;
      f(WireFormatLite::GetTagFieldNumber(tag), std::move(value));
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
}

void collectUnknown(const Message& m, const std::string& path, std::vector<std::string>& out) {
  const Reflection* r = m.GetReflection();
  const auto& unknown = r->GetUnknownFields(m);
  for (int i = 0; i < unknown.field_count(); ++i) {
    out.push_back((path.empty() ? "" : path + ".") + "field " +
                  std::to_string(unknown.field(i).number()));
  }
  const Descriptor* d = m.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || f->is_map()) continue;
    std::string child = (path.empty() ? "" : path + ".") + f->json_name();
    if (f->is_repeated()) {
      for (int j = 0; j < r->FieldSize(m, f); ++j) {
        collectUnknown(r->GetRepeatedMessage(m, f, j), child + "[" + std::to_string(j) + "]", out);
      }
    } else if (r->HasField(m, f)) {
      collectUnknown(r->GetMessage(m, f), child, out);
    }
  }
}

// Kubernetes' Go types write every non-pointer field, zero or not, and Go's JSON leaves the same
// zero values out. So that a protobuf body decodes to what its JSON form would, the zero values
// that stand for "unset" are cleared: empty strings, zero times, and zero numbers and bools of the
// non-pointer fields below (pointer fields such as replicas keep an explicit 0).
bool nonPointerScalar(std::string_view json_name) {
  static const std::vector<std::string_view> names = {"stdin",
                                                      "stdinOnce",
                                                      "tty",
                                                      "readOnly",
                                                      "paused",
                                                      "minReadySeconds",
                                                      "generation",
                                                      "hostPort",
                                                      "containerPort",
                                                      "port",
                                                      "nodePort",
                                                      "publishNotReadyAddresses",
                                                      "healthCheckNodePort",
                                                      "initialDelaySeconds",
                                                      "timeoutSeconds",
                                                      "periodSeconds",
                                                      "successThreshold",
                                                      "failureThreshold",
                                                      "weight",
                                                      "observedGeneration"};
  return std::find(names.begin(), names.end(), json_name) != names.end();
}

void clearGoZeroValues(Message& m) {
  const Descriptor* d = m.GetDescriptor();
  if (d->options().GetExtension(skiff::api::json_form) != skiff::api::JSON_FORM_OBJECT) return;
  const Reflection* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_map()) continue;
    if (f->is_repeated()) {
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        for (int j = 0; j < r->FieldSize(m, f); ++j)
          clearGoZeroValues(*r->MutableRepeatedMessage(&m, f, j));
      }
      continue;
    }
    if (!r->HasField(m, f)) continue;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        if (r->GetString(m, f).empty()) r->ClearField(&m, f);
        break;
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        Message* child = r->MutableMessage(&m, f);
        auto form = child->GetDescriptor()->options().GetExtension(skiff::api::json_form);
        if (form == skiff::api::JSON_FORM_TIME || form == skiff::api::JSON_FORM_MICRO_TIME) {
          const Descriptor* td = child->GetDescriptor();
          const Reflection* tr = child->GetReflection();
          if (tr->GetInt64(*child, td->FindFieldByName("seconds")) == 0 &&
              tr->GetInt32(*child, td->FindFieldByName("nanos")) == 0) {
            r->ClearField(&m, f);
          }
        } else {
          clearGoZeroValues(*child);
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_INT32:
        if (r->GetInt32(m, f) == 0 && nonPointerScalar(f->json_name())) r->ClearField(&m, f);
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        if (r->GetInt64(m, f) == 0 && nonPointerScalar(f->json_name())) r->ClearField(&m, f);
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        if (!r->GetBool(m, f) && nonPointerScalar(f->json_name())) r->ClearField(&m, f);
        break;
      default:
        break;
    }
  }
}

}  // namespace

bool isMediaType(std::string_view content_type) {
  std::string_view t = trim(content_type.substr(0, content_type.find(';')));
  return t == kMediaType;
}

bool prefersProtobuf(std::string_view accept) {
  // The first entry decides; kubectl puts the type it prefers first.
  std::string_view first = accept.substr(0, accept.find(','));
  if (!isMediaType(first)) return false;
  // A protobuf Table or PartialObjectMetadata is not served: answer those in JSON.
  return first.find("as=") == std::string_view::npos;
}

Unknown parseEnvelope(std::string_view body) {
  if (!body.starts_with(kMagic)) {
    throw ProtobufError("the body does not start with Kubernetes' protobuf magic \"k8s\\0\"");
  }
  Unknown u;
  bool inner_ok = true;
  bool ok = forEachBytesField(body.substr(kMagic.size()), [&](int field, std::string value) {
    switch (field) {
      case 1:
        inner_ok = inner_ok && forEachBytesField(value, [&](int f, std::string v) {
                     if (f == 1) u.api_version = std::move(v);
                     if (f == 2) u.kind = std::move(v);
                   });
        break;
      case 2:
        u.raw = std::move(value);
        break;
      case 3:
        u.content_encoding = std::move(value);
        break;
      case 4:
        u.content_type = std::move(value);
        break;
      default:
        break;
    }
  });
  if (!ok || !inner_ok) throw ProtobufError("malformed protobuf envelope");
  return u;
}

std::string writeEnvelope(const Unknown& u) {
  std::string type_meta;
  if (!u.api_version.empty()) putBytes(type_meta, 1, u.api_version);
  if (!u.kind.empty()) putBytes(type_meta, 2, u.kind);
  std::string out(kMagic);
  putBytes(out, 1, type_meta);
  putBytes(out, 2, u.raw);
  // Kubernetes always writes both strings, empty.
  putBytes(out, 3, u.content_encoding);
  putBytes(out, 4, u.content_type);
  return out;
}

void decodeObject(std::string_view body, Message& out, std::vector<std::string>* unknown_fields) {
  Unknown u = parseEnvelope(body);
  if (!u.content_encoding.empty()) {
    throw ProtobufError("unsupported contentEncoding \"" + u.content_encoding + "\"");
  }
  const auto& info = out.GetDescriptor()->options().GetExtension(skiff::api::resource);
  if (!u.kind.empty() && !info.kind().empty() && u.kind != info.kind()) {
    throw ProtobufError("the object's kind \"" + u.kind + "\" is not the expected \"" +
                        info.kind() + "\"");
  }
  out.Clear();
  if (!out.ParseFromString(u.raw)) {
    throw ProtobufError("malformed protobuf " + out.GetDescriptor()->name());
  }
  if (unknown_fields != nullptr) collectUnknown(out, "", *unknown_fields);
  out.DiscardUnknownFields();
  clearGoZeroValues(out);
}

std::string serialize(const Message& object) {
  std::string raw;
  {
    google::protobuf::io::StringOutputStream stream(&raw);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    object.SerializePartialToCodedStream(&coded);
  }
  return raw;
}

std::string encodeObject(const Message& object, std::string_view api_version,
                         std::string_view kind) {
  Unknown u;
  const auto& info = object.GetDescriptor()->options().GetExtension(skiff::api::resource);
  u.api_version = api_version.empty() ? (info.group().empty() ? info.version()
                                                              : info.group() + "/" + info.version())
                                      : std::string(api_version);
  u.kind = kind.empty() ? info.kind() : std::string(kind);
  u.raw = serialize(object);
  return writeEnvelope(u);
}

std::string encodeList(std::string_view api_version, std::string_view list_kind,
                       const meta::v1::ListMeta& metadata,
                       const std::vector<const Message*>& items) {
  // The list is the apiserver's biggest answer: its size is added up first, so that every item
  // is serialized once, in place, into the one buffer of the envelope.
  std::vector<size_t> sizes;
  sizes.reserve(items.size());
  size_t metadata_size = metadata.ByteSizeLong();
  size_t raw_size = 1 + varintSize(metadata_size) + metadata_size;
  for (const Message* item : items) {
    sizes.push_back(item->ByteSizeLong());
    raw_size += 1 + varintSize(sizes.back()) + sizes.back();
  }
  std::string type_meta;
  if (!api_version.empty()) putBytes(type_meta, 1, api_version);
  if (!list_kind.empty()) putBytes(type_meta, 2, list_kind);
  std::string out;
  out.reserve(kMagic.size() + type_meta.size() + raw_size + 32);
  out.append(kMagic);
  putBytes(out, 1, type_meta);
  putVarint(out, (2 << 3) | 2);  // raw = 2
  putVarint(out, raw_size);
  putMessage(out, 1, metadata, metadata_size);
  for (size_t i = 0; i < items.size(); ++i)
    putMessage(out, 2, *items[i], sizes[i]);
  putBytes(out, 3, "");  // contentEncoding and contentType, empty as Kubernetes writes them
  putBytes(out, 4, "");
  return out;
}

std::string encodeWatchFrame(std::string_view type, std::string_view enveloped_object) {
  std::string raw_extension;
  putBytes(raw_extension, 1, enveloped_object);
  std::string event;
  putBytes(event, 1, type);
  putBytes(event, 2, raw_extension);
  std::string frame(4, '\0');
  uint32_t n = static_cast<uint32_t>(event.size());
  frame[0] = static_cast<char>(n >> 24);
  frame[1] = static_cast<char>(n >> 16);
  frame[2] = static_cast<char>(n >> 8);
  frame[3] = static_cast<char>(n);
  return frame + event;
}

std::vector<WatchFrame> parseWatchFrames(std::string_view stream) {
  std::vector<WatchFrame> frames;
  while (!stream.empty()) {
    if (stream.size() < 4) throw ProtobufError("truncated watch frame length");
    uint32_t n = (uint32_t(uint8_t(stream[0])) << 24) | (uint32_t(uint8_t(stream[1])) << 16) |
                 (uint32_t(uint8_t(stream[2])) << 8) | uint32_t(uint8_t(stream[3]));
    if (stream.size() - 4 < n) throw ProtobufError("truncated watch frame");
    WatchFrame frame;
    bool inner_ok = true;
    bool ok = forEachBytesField(stream.substr(4, n), [&](int field, std::string value) {
      if (field == 1) frame.type = std::move(value);
      if (field == 2) {
        inner_ok = inner_ok && forEachBytesField(value, [&](int f, std::string v) {
                     if (f == 1) frame.object = std::move(v);
                   });
      }
    });
    if (!ok || !inner_ok) throw ProtobufError("malformed watch event");
    frames.push_back(std::move(frame));
    stream.remove_prefix(4 + n);
  }
  return frames;
}

}  // namespace skiff::api::kubepb

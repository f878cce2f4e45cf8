#include "control/apiserver/object_meta.h"

#include <openssl/rand.h>

#include <stdexcept>

namespace skiff::apiserver {
namespace {

using google::protobuf::FieldDescriptor;

const FieldDescriptor* metadataField(const google::protobuf::Message& object) {
  const FieldDescriptor* f = object.GetDescriptor()->FindFieldByName("metadata");
  if (f == nullptr || f->message_type() != api::meta::v1::ObjectMeta::descriptor()) {
    throw std::logic_error(object.GetDescriptor()->full_name() + " has no ObjectMeta");
  }
  return f;
}

void randomBytes(unsigned char* out, size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) throw std::runtime_error("RAND_bytes failed");
}

}  // namespace

api::meta::v1::ObjectMeta& mutableMeta(google::protobuf::Message& object) {
  return static_cast<api::meta::v1::ObjectMeta&>(
      *object.GetReflection()->MutableMessage(&object, metadataField(object)));
}

const api::meta::v1::ObjectMeta& meta(const google::protobuf::Message& object) {
  return static_cast<const api::meta::v1::ObjectMeta&>(
      object.GetReflection()->GetMessage(object, metadataField(object)));
}

std::optional<std::string> fieldText(const google::protobuf::Message& object,
                                     std::string_view json_path) {
  const google::protobuf::Message* m = &object;
  while (true) {
    size_t dot = json_path.find('.');
    std::string_view name = json_path.substr(0, dot);
    const FieldDescriptor* f = nullptr;
    const auto* d = m->GetDescriptor();
    for (int i = 0; i < d->field_count(); ++i) {
      if (d->field(i)->json_name() == name) f = d->field(i);
    }
    if (f == nullptr || f->is_repeated()) return std::nullopt;
    const auto* r = m->GetReflection();
    if (dot == std::string_view::npos) {
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_STRING:
          return r->GetString(*m, f);
        case FieldDescriptor::CPPTYPE_BOOL:
          return r->GetBool(*m, f) ? "true" : "false";
        case FieldDescriptor::CPPTYPE_INT32:
          return std::to_string(r->GetInt32(*m, f));
        case FieldDescriptor::CPPTYPE_INT64:
          return std::to_string(r->GetInt64(*m, f));
        default:
          return std::nullopt;
      }
    }
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return std::nullopt;
    m = &r->GetMessage(*m, f);  // an unset message reads as its defaults, as Go's zero values
    json_path.remove_prefix(dot + 1);
  }
}

std::string newUid() {
  unsigned char b[16];
  randomBytes(b, sizeof(b));
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 0xf];
  }
  return out;
}

std::string randomSuffix(size_t length) {
  static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string out;
  unsigned char b[64];
  randomBytes(b, length);
  for (size_t i = 0; i < length; ++i)
    out += kAlphabet[b[i] % kAlphabet.size()];
  return out;
}

}  // namespace skiff::apiserver

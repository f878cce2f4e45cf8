#include "control/apiserver/object_meta.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace skiff::apiserver {
namespace {

using google::protobuf::FieldDescriptor;

const FieldDescriptor* metadataField(const google::protobuf::Message& object) {
  // The last type asked about, per thread: a request asks about one type many times.
  thread_local const google::protobuf::Descriptor* last_type = nullptr;
  thread_local const FieldDescriptor* last_field = nullptr;
  if (object.GetDescriptor() == last_type) return last_field;
  const FieldDescriptor* f = object.GetDescriptor()->FindFieldByName("metadata");
  if (f == nullptr || f->message_type() != api::meta::v1::ObjectMeta::descriptor()) {
    throw std::logic_error(object.GetDescriptor()->full_name() + " has no ObjectMeta");
  }
  last_type = object.GetDescriptor();
  last_field = f;
  return f;
}

// From a per-thread buffer refilled by RAND_bytes: one call per 4 KiB rather than per uid. Every
// create takes a uid, and OpenSSL's DRBG takes a lock shared by all threads on each call (1.8%
// of the process's CPU at 64 concurrent creates).
// A forked child must not hand out the bytes its parent will: fork bumps the generation.
std::atomic<unsigned> fork_generation{0};

void randomBytes(unsigned char* out, size_t n) {
  static std::once_flag at_fork;
  std::call_once(at_fork,
                 [] { ::pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); }); });
  struct Pool {
    unsigned char bytes[4096];
    size_t used = sizeof(bytes);
    unsigned generation = 0;
  };
  thread_local Pool pool;
  const unsigned generation = fork_generation.load(std::memory_order_relaxed);
  if (pool.generation != generation) {
    pool.used = sizeof(pool.bytes);
    pool.generation = generation;
  }
  while (n > 0) {
    if (pool.used == sizeof(pool.bytes)) {
      if (RAND_bytes(pool.bytes, sizeof(pool.bytes)) != 1)
        throw std::runtime_error("RAND_bytes failed");
      pool.used = 0;
    }
    const size_t take = std::min(n, sizeof(pool.bytes) - pool.used);
    std::memcpy(out, pool.bytes + pool.used, take);
    // What was handed out is not kept around.
    OPENSSL_cleanse(pool.bytes + pool.used, take);
    pool.used += take;
    out += take;
    n -= take;
  }
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

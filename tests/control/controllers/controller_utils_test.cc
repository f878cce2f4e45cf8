// What the controllers share (controller_utils.h): the pod-template hash (Kubernetes'
// controller.ComputeHash: FNV-32a of the template, then the collision count as 4 little-endian
// bytes, rendered with rand.SafeEncodeString) and v1.Toleration.ToleratesTaint.

#include "control/controllers/controller_utils.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "tests/control/controllers/builders.h"

namespace skiff::controllers {
namespace {

using testing::fromYaml;

api::core::v1::PodTemplateSpec webTemplate(const std::string& image) {
  return fromYaml<api::core::v1::PodTemplateSpec>(R"(
metadata: {labels: {app: web}}
spec: {containers: [{name: c, image: )" + image + R"(}]}
)");
}

std::string deterministicBytes(const google::protobuf::Message& m) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream out(&stream);
  out.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&out);
  return bytes;
}

TEST(TemplateHash, FnvAndTheSafeAlphabet) {
  EXPECT_EQ(fnv32a(""), 0x811c9dc5u);
  EXPECT_EQ(fnv32a("a"), 0xe40c292cu);
  EXPECT_EQ(fnv32a("foobar"), 0xbf9cf968u);
  // Incremental: hashing "foo" then "bar" from its state is hashing "foobar".
  EXPECT_EQ(fnv32a("bar", fnv32a("foo")), 0xbf9cf968u);
  // rand.SafeEncodeString: byte % 27 into "bcdfghjklmnpqrstvwxz2456789".
  EXPECT_EQ(safeEncodeString("0123456789"), "456789bcdf");
  EXPECT_EQ(safeEncodeString("abc"), "vwx");
}

TEST(TemplateHash, IsTheSafeEncodedDecimalOfFnv32a) {
  const auto tmpl = webTemplate("nginx:1");
  const uint32_t h = fnv32a(deterministicBytes(tmpl));
  EXPECT_EQ(computeTemplateHash(tmpl, std::nullopt), safeEncodeString(std::to_string(h)));
  // A decimal uint32 has at most 10 digits, which the alphabet maps into "456789bcdf": the
  // names kubectl shows (nginx-deployment-66b6c48dd5).
  const std::string name = computeTemplateHash(tmpl, std::nullopt);
  EXPECT_LE(name.size(), 10u);
  EXPECT_EQ(name.find_first_not_of("456789bcdf"), std::string::npos);
}

TEST(TemplateHash, CollisionCountIsHashedAsFourLittleEndianBytes) {
  const auto tmpl = webTemplate("nginx:1");
  const std::string bytes = deterministicBytes(tmpl);
  const std::string one("\x01\x00\x00\x00", 4);
  const std::string big("\x04\x03\x02\x01", 4);
  EXPECT_EQ(computeTemplateHash(tmpl, 1),
            safeEncodeString(std::to_string(fnv32a(one, fnv32a(bytes)))));
  EXPECT_EQ(computeTemplateHash(tmpl, 0x01020304),
            safeEncodeString(std::to_string(fnv32a(big, fnv32a(bytes)))));
  // collisionCount 0 is set (4 zero bytes), unlike no collisionCount at all.
  EXPECT_NE(computeTemplateHash(tmpl, 0), computeTemplateHash(tmpl, std::nullopt));
  // Each collision gives a new name.
  std::set<std::string> names;
  for (int c = 0; c < 20; ++c)
    names.insert(computeTemplateHash(tmpl, c));
  EXPECT_EQ(names.size(), 20u);
}

TEST(TemplateHash, StableForEqualTemplatesAndChangesWithThem) {
  EXPECT_EQ(computeTemplateHash(webTemplate("nginx:1"), std::nullopt),
            computeTemplateHash(webTemplate("nginx:1"), std::nullopt));
  EXPECT_NE(computeTemplateHash(webTemplate("nginx:1"), std::nullopt),
            computeTemplateHash(webTemplate("nginx:2"), std::nullopt));
  // Map order does not matter (deterministic serialization sorts map keys).
  auto a = webTemplate("nginx:1");
  auto b = webTemplate("nginx:1");
  for (int i = 0; i < 30; ++i)
    (*a.mutable_metadata()->mutable_labels())["k" + std::to_string(i)] = "v";
  for (int i = 29; i >= 0; --i)
    (*b.mutable_metadata()->mutable_labels())["k" + std::to_string(i)] = "v";
  EXPECT_EQ(computeTemplateHash(a, std::nullopt), computeTemplateHash(b, std::nullopt));
}

TEST(ToleratesTaint, Table) {
  struct Case {
    const char* toleration;
    const char* taint;
    bool tolerates;
  };
  const Case cases[] = {
      {"{key: k, operator: Exists}", "{key: k, effect: NoExecute}", true},
      {"{operator: Exists}", "{key: anything, value: v, effect: NoSchedule}", true},
      {"{key: k, value: v}", "{key: k, value: v, effect: NoExecute}", true},
      {"{key: k, operator: Equal, value: v}", "{key: k, value: w, effect: NoExecute}", false},
      {"{key: k, operator: Exists, effect: NoSchedule}", "{key: k, effect: NoExecute}", false},
      {"{key: other, operator: Exists}", "{key: k, effect: NoExecute}", false},
      {"{value: v}", "{key: k, value: v, effect: NoExecute}", false},
      {"{key: k, operator: Lt}", "{key: k, effect: NoExecute}", false},
      // An empty key goes only with Exists; an empty effect matches every effect.
      {"{operator: Equal, value: v}", "{key: k, value: v, effect: NoSchedule}", false},
      {"{key: k, operator: Equal}", "{key: k, effect: NoSchedule}", true},
      {"{key: k, operator: Exists, effect: NoExecute}", "{key: k, value: x, effect: NoExecute}",
       true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.toleration) + " vs " + c.taint);
    EXPECT_EQ(toleratesTaint(fromYaml<api::core::v1::Toleration>(c.toleration),
                             fromYaml<api::core::v1::Taint>(c.taint)),
              c.tolerates);
  }
}

}  // namespace
}  // namespace skiff::controllers

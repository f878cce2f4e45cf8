#include "control/api/kube_protobuf.h"

#include <gtest/gtest.h>

#include "control/api/codec.h"
#include "skiff/api/batch_v1.pb.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/rbac_v1.pb.h"

namespace skiff::api::kubepb {
namespace {

std::string unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  return out;
}

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// Request bodies captured from kubectl v1.32 (a socket listener in place of the apiserver).
constexpr std::string_view kKubectlConfigMap =  // create configmap cm1 --from-literal=a=b
    "6b3873000a0f0a0276311209436f6e6669674d617012240a1a0a03636d3112001a0764656661756c7422002a00"
    "32003800420012060a01611201621a002200";
constexpr std::string_view kKubectlSecret =  // create secret generic s1 --from-literal=k=v
    "6b3873000a0c0a027631120653656372657412250a190a02733112001a0764656661756c7422002a00320038004200"
    "12060a016b1201761a001a002200";
constexpr std::string_view kKubectlService =  // create service clusterip svc1 --tcp=80:8080
    "6b3873000a0d0a02763112075365727669636512730a280a047376633112001a0764656661756c7422002a00320038"
    "0042005a0b0a0361707012047376633112430a1b0a0738302d38303830120354435018502207080010903f1a002800"
    "120b0a036170701204737663311a002209436c757374657249503a00420052005a00600068001a020a001a002200";
constexpr std::string_view kKubectlJob =  // create job j1 --image=busybox -- true -n default
    "6b3873000a0f0a0862617463682f763112034a6f62128d010a120a026a3112001a0022002a00320038004200126d32"
    "6b0a100a0012001a0022002a00320038004200125712340a026a31120762757379626f781a04747275651a022d6e1a"
    "0764656661756c742a0042006a007200800100880100900100a201001a054e65766572320042004a00520058006000"
    "68008201008a01009a0100c201001a082000280030003a001a002200";
constexpr std::string_view kKubectlRoleBinding =  // create rolebinding rb1 --role=r1 --user=jane
    "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b526f6c6542696e6469"
    "6e67126e0a1a0a0372623112001a0764656661756c7422002a0032003800420012290a04557365721219726261632e"
    "617574686f72697a6174696f6e2e6b38732e696f1a046a616e6522001a250a19726261632e617574686f72697a6174"
    "696f6e2e6b38732e696f1204526f6c651a0272311a002200";
constexpr std::string_view kKubectlNamespace =  // create namespace ns1
    "6b3873000a0f0a02763112094e616d657370616365121b0a130a036e733112001a0022002a0032003800420012001a"
    "020a001a002200";

TEST(KubeProtobuf, MediaTypes) {
  EXPECT_TRUE(isMediaType("application/vnd.kubernetes.protobuf"));
  EXPECT_TRUE(isMediaType("application/vnd.kubernetes.protobuf; charset=binary"));
  EXPECT_FALSE(isMediaType("application/json"));
  EXPECT_TRUE(prefersProtobuf("application/vnd.kubernetes.protobuf,application/json"));
  EXPECT_TRUE(prefersProtobuf("application/vnd.kubernetes.protobuf, */*"));
  EXPECT_FALSE(prefersProtobuf("application/json, application/vnd.kubernetes.protobuf"));
  EXPECT_FALSE(prefersProtobuf(
      "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json"));
  EXPECT_FALSE(prefersProtobuf(""));
}

TEST(KubeProtobuf, EnvelopeGoldenBytes) {
  // Built by hand from the field numbers: ObjectMeta{name=1, namespace=3}, ConfigMap{metadata=1,
  // data=2 (map entries key=1, value=2)}, Unknown{typeMeta=1{apiVersion=1, kind=2}, raw=2,
  // contentEncoding=3, contentType=4}.
  core::v1::ConfigMap cm;
  cm.mutable_metadata()->set_name("cm1");
  cm.mutable_metadata()->set_namespace_("default");
  (*cm.mutable_data())["b"] = "2";
  (*cm.mutable_data())["a"] = "1";
  EXPECT_EQ(hex(encodeObject(cm)),
            "6b387300"  // magic
            "0a0f"
            "0a027631"
            "1209436f6e6669674d6170"  // typeMeta v1 ConfigMap
            "1220"                    // raw, 32 bytes
            "0a0e"
            "0a03636d31"
            "1a0764656661756c74"  // metadata
            "1206"
            "0a0161"
            "120131"  // data a=1 (sorted)
            "1206"
            "0a0162"
            "120132"  // data b=2
            "1a00"
            "2200");
}

TEST(KubeProtobuf, DecodesKubectlConfigMap) {
  core::v1::ConfigMap cm;
  std::vector<std::string> unknown;
  decodeObject(unhex(kKubectlConfigMap), cm, &unknown);
  EXPECT_TRUE(unknown.empty());
  EXPECT_EQ(cm.metadata().name(), "cm1");
  EXPECT_EQ(cm.metadata().namespace_(), "default");
  EXPECT_EQ(cm.data().at("a"), "b");
  // Go's zero values (generateName "", creationTimestamp {}) are not taken as set.
  EXPECT_FALSE(cm.metadata().has_generate_name());
  EXPECT_FALSE(cm.metadata().has_creation_timestamp());
  EXPECT_FALSE(cm.metadata().has_generation());
  EXPECT_EQ(
      encodeJson(cm, JsonStyle::kCompact),
      R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm1","namespace":"default"},"data":{"a":"b"}})");
  // Re-encoded, the same object reads back the same.
  core::v1::ConfigMap again;
  decodeObject(encodeObject(cm), again);
  EXPECT_EQ(again.SerializeAsString(), cm.SerializeAsString());
}

TEST(KubeProtobuf, DecodesKubectlSecretServiceJobRoleBindingNamespace) {
  std::vector<std::string> unknown;
  core::v1::Secret secret;
  decodeObject(unhex(kKubectlSecret), secret, &unknown);
  EXPECT_EQ(secret.metadata().name(), "s1");
  EXPECT_EQ(secret.data().at("k"), "v");

  core::v1::Service svc;
  decodeObject(unhex(kKubectlService), svc, &unknown);
  ASSERT_EQ(svc.spec().ports_size(), 1);
  EXPECT_EQ(svc.spec().ports(0).name(), "80-8080");
  EXPECT_EQ(svc.spec().ports(0).protocol(), "TCP");
  EXPECT_EQ(svc.spec().ports(0).port(), 80);
  EXPECT_EQ(svc.spec().ports(0).target_port().int_val(), 8080);
  EXPECT_EQ(svc.spec().type(), "ClusterIP");
  EXPECT_EQ(svc.spec().selector().at("app"), "svc1");
  EXPECT_FALSE(svc.spec().ports(0).has_node_port());

  batch::v1::Job job;
  decodeObject(unhex(kKubectlJob), job, &unknown);
  ASSERT_EQ(job.spec().template_().spec().containers_size(), 1);
  const auto& c = job.spec().template_().spec().containers(0);
  EXPECT_EQ(c.name(), "j1");
  EXPECT_EQ(c.image(), "busybox");
  EXPECT_EQ(c.command(0), "true");
  EXPECT_EQ(job.spec().template_().spec().restart_policy(), "Never");
  EXPECT_FALSE(c.has_stdin());
  EXPECT_FALSE(c.has_tty());

  rbac::v1::RoleBinding rb;
  decodeObject(unhex(kKubectlRoleBinding), rb, &unknown);
  ASSERT_EQ(rb.subjects_size(), 1);
  EXPECT_EQ(rb.subjects(0).kind(), "User");
  EXPECT_EQ(rb.subjects(0).name(), "jane");
  EXPECT_EQ(rb.subjects(0).api_group(), "rbac.authorization.k8s.io");
  EXPECT_EQ(rb.role_ref().kind(), "Role");
  EXPECT_EQ(rb.role_ref().name(), "r1");

  core::v1::Namespace ns;
  decodeObject(unhex(kKubectlNamespace), ns, &unknown);
  EXPECT_EQ(ns.metadata().name(), "ns1");
  EXPECT_TRUE(unknown.empty()) << unknown.front();
}

TEST(KubeProtobuf, RejectsBadBodies) {
  core::v1::ConfigMap cm;
  EXPECT_THROW(decodeObject("{\"kind\":\"ConfigMap\"}", cm), ProtobufError);
  EXPECT_THROW(decodeObject(std::string("k8s\0\x0a\x05\x0a", 7), cm), ProtobufError);
  core::v1::Secret secret;
  EXPECT_THROW(decodeObject(unhex(kKubectlConfigMap), secret), ProtobufError);  // wrong kind
}

TEST(KubeProtobuf, ReportsUnknownFields) {
  core::v1::ConfigMap cm;
  cm.mutable_metadata()->set_name("x");
  std::string raw = cm.SerializeAsString() + std::string("\xf8\x06\x01", 3);  // field 111 = 1
  Unknown u{.api_version = "v1", .kind = "ConfigMap", .raw = raw};
  std::vector<std::string> unknown;
  core::v1::ConfigMap out;
  decodeObject(writeEnvelope(u), out, &unknown);
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_EQ(unknown[0], "field 111");
}

TEST(KubeProtobuf, ListAndWatchFrames) {
  core::v1::ConfigMap a, b;
  a.mutable_metadata()->set_name("a");
  b.mutable_metadata()->set_name("b");
  meta::v1::ListMeta lm;
  lm.set_resource_version("7");
  Unknown list = parseEnvelope(encodeList("v1", "ConfigMapList", lm, {&a, &b}));
  EXPECT_EQ(list.kind, "ConfigMapList");
  EXPECT_EQ(hex(list.raw),
            "0a03"
            "120137"  // metadata{resourceVersion=2 "7"}
            "1205"
            "0a03"
            "0a0161"  // items[0]{metadata{name a}}
            "1205"
            "0a03"
            "0a0162");

  // Items serialized in place are the bytes of each item's own serialization, multi-byte lengths
  // and sorted map entries included, in the envelope writeEnvelope makes.
  core::v1::ConfigMap big;
  big.mutable_metadata()->set_name("big");
  for (int i = 0; i < 40; ++i)
    (*big.mutable_data())["key-" + std::to_string(39 - i)] = std::string(10, 'v');
  lm.set_continue_("next");
  std::string raw =
      "\x0a" + std::string(1, static_cast<char>(serialize(lm).size())) + serialize(lm);
  for (const auto* item : {&a, &big}) {
    std::string bytes = serialize(*item);
    raw += '\x12';
    for (size_t n = bytes.size(); true; n >>= 7) {
      raw += static_cast<char>(n >= 0x80 ? (n & 0x7f) | 0x80 : n);
      if (n < 0x80) break;
    }
    raw += bytes;
  }
  ASSERT_GT(serialize(big).size(), 128u);
  EXPECT_EQ(hex(encodeList("v1", "ConfigMapList", lm, {&a, &big})),
            hex(writeEnvelope({.api_version = "v1", .kind = "ConfigMapList", .raw = raw})));
  Unknown listed = parseEnvelope(encodeList("v1", "ConfigMapList", lm, {&a, &big}));
  EXPECT_EQ(listed.raw, raw);

  std::string stream =
      encodeWatchFrame("ADDED", encodeObject(a)) + encodeWatchFrame("DELETED", encodeObject(b));
  // Frame 1: big-endian length, WatchEvent{type=1, object=2 RawExtension{raw=1}}.
  std::string first = encodeWatchFrame("ADDED", "xy");
  EXPECT_EQ(hex(first),
            "0000000d"
            "0a054144444544"
            "1204"
            "0a027879");
  auto frames = parseWatchFrames(stream);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].type, "ADDED");
  EXPECT_EQ(frames[1].type, "DELETED");
  core::v1::ConfigMap out;
  decodeObject(frames[1].object, out);
  EXPECT_EQ(out.metadata().name(), "b");
  EXPECT_THROW(parseWatchFrames(stream.substr(0, stream.size() - 1)), ProtobufError);
}

}  // namespace
}  // namespace skiff::api::kubepb

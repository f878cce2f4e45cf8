#include "control/api/codec.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "control/api/yaml.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/options.pb.h"
#include "tests/control/api/test_util.h"

namespace skiff::api {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::util::MessageDifferencer;

// The manifest as Kubernetes would read it: null members are absent, and a YAML plain scalar is
// text where the schema wants text (`cpu: 1`, `port: http`).
bool sameManifest(const Value& original, const Value& encoded, std::string& where,
                  const std::string& path = "") {
  if (original.isPlain() && encoded.isString() && !original.isNull()) {
    if (original.text() == encoded.text()) return true;
    where = path + ": " + original.text() + " != " + encoded.text();
    return false;
  }
  if (original.isObject() && encoded.isObject()) {
    size_t non_null = 0;
    for (const auto& m : original.members()) {
      if (m.value.isNull()) continue;
      ++non_null;
      const Value* other = encoded.find(m.key);
      if (other == nullptr) {
        where = path + "." + m.key + ": missing after round trip";
        return false;
      }
      if (!sameManifest(m.value, *other, where, path + "." + m.key)) return false;
    }
    if (non_null != encoded.members().size()) {
      where = path + ": round trip added members";
      return false;
    }
    return true;
  }
  if (original.isArray() && encoded.isArray()) {
    if (original.items().size() != encoded.items().size()) {
      where = path + ": array length differs";
      return false;
    }
    for (size_t i = 0; i < original.items().size(); ++i) {
      if (!sameManifest(original.items()[i], encoded.items()[i], where,
                        path + "[" + std::to_string(i) + "]")) {
        return false;
      }
    }
    return true;
  }
  if (original == encoded) return true;
  where = path + ": " + writeJson(original) + " != " + writeJson(encoded);
  return false;
}

class FixtureRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureRoundTrip, EncodeOfDecodeEqualsManifestUpToKeyOrder) {
  std::string text = skiff::testing::readFixture("manifests/" + GetParam());
  std::vector<Value> docs = parseDocuments(text, GetParam());
  std::vector<DecodedObject> objects = decodeManifests(text, {.source = GetParam()});
  ASSERT_EQ(docs.size(), objects.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    Value encoded = encode(*objects[i].message);
    std::string where;
    EXPECT_TRUE(sameManifest(docs[i], encoded, where))
        << GetParam() << " document " << i << " (" << objects[i].type->kind << "): " << where
        << "\n"
        << writeYaml(encoded);
    // And the binary form keeps everything.
    auto copy = objects[i].type->newMessage();
    ASSERT_TRUE(copy->ParseFromString(objects[i].message->SerializeAsString()));
    EXPECT_TRUE(MessageDifferencer::Equals(*copy, *objects[i].message));
  }
}

INSTANTIATE_TEST_SUITE_P(Manifests, FixtureRoundTrip,
                         ::testing::Values("nginx-deployment.yaml", "redis-statefulset.yaml",
                                           "node-exporter-daemonset.yaml", "pi-job.yaml",
                                           "services.yaml", "config.yaml", "cluster.yaml",
                                           "pod.json"));

TEST(Codec, FixtureValuesLandInTheRightFields) {
  auto objects = decodeManifests(skiff::testing::readFixture("manifests/nginx-deployment.yaml"));
  ASSERT_EQ(objects.size(), 1u);
  const auto& d = dynamic_cast<const apps::v1::Deployment&>(*objects[0].message);
  EXPECT_EQ(d.spec().replicas(), 3);
  EXPECT_EQ(d.spec().strategy().rolling_update().max_surge().str_val(), "25%");
  EXPECT_EQ(d.spec().strategy().rolling_update().max_unavailable().int_val(), 0);
  EXPECT_EQ(d.spec().strategy().rolling_update().max_unavailable().type(),
            runtime::IntOrString::INT);
  const auto& c = d.spec().template_().spec().containers(0);
  EXPECT_EQ(c.ports(0).container_port(), 8080);
  EXPECT_EQ(c.liveness_probe().http_get().port().str_val(), "http");
  EXPECT_EQ(c.readiness_probe().http_get().port().int_val(), 8080);
  EXPECT_EQ(c.resources().requests().at("cpu").string(), "250m");
  EXPECT_EQ(c.resources().limits().at("cpu").string(), "1");
  EXPECT_EQ(c.env(0).value(), "8080");
  EXPECT_EQ(c.env(2).value_from().resource_field_ref().divisor().string(), "1m");
  EXPECT_TRUE(d.spec().template_().spec().volumes(0).has_empty_dir());
  EXPECT_EQ(d.metadata().labels().at("app.kubernetes.io/name"), "nginx");
}

TEST(Codec, SecretDataIsBase64AndBinaryDataStaysExact) {
  auto objects = decodeManifests(skiff::testing::readFixture("manifests/config.yaml"));
  const auto& secret = dynamic_cast<const core::v1::Secret&>(*objects[1].message);
  EXPECT_EQ(secret.data().at("username"), "admin");
  EXPECT_EQ(secret.data().at("password"), "s3cr3t-p@ssw0rd");
  const auto& cm = dynamic_cast<const core::v1::ConfigMap&>(*objects[0].message);
  EXPECT_EQ(cm.binary_data().at("logo.png"), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(cm.data().at("WORKERS"), "4");
  EXPECT_TRUE(cm.data().at("default.conf").starts_with("server {\n    listen 8080;"));
}

TEST(Codec, TimesAndMicroTimes) {
  auto objects = decodeManifests(skiff::testing::readFixture("manifests/cluster.yaml"));
  Value lease = encode(*objects[3].message);
  EXPECT_EQ(lease.find("spec")->find("renewTime")->text(), "2026-11-20T10:00:00.123456Z");
  core::v1::Pod pod;
  decodeJson(R"({"metadata":{"creationTimestamp":"2026-11-20T12:00:00.987+02:00"}})", pod);
  // meta/v1.Time keeps seconds, in UTC.
  EXPECT_EQ(encode(pod).find("metadata")->find("creationTimestamp")->text(),
            "2026-11-20T10:00:00Z");
}

// ------------------------------------------------------------------ every field of every type

class Filler {
 public:
  void fill(Message& m, int depth = 0) {
    const Descriptor* d = m.GetDescriptor();
    const auto* r = m.GetReflection();
    switch (d->options().GetExtension(skiff::api::json_form)) {
      case JSON_FORM_INT_OR_STRING:
        if (++counter_ % 2 == 0) {
          r->SetEnumValue(&m, d->FindFieldByName("type"), 1);
          r->SetString(&m, d->FindFieldByName("str_val"), "port-" + std::to_string(counter_));
        } else {
          r->SetEnumValue(&m, d->FindFieldByName("type"), 0);
          r->SetInt32(&m, d->FindFieldByName("int_val"), counter_);
        }
        return;
      case JSON_FORM_QUANTITY:
        // Canonical text, since decoding canonicalises ("1024Mi" comes back as "1Gi").
        r->SetString(&m, d->FindFieldByName("string"), std::to_string(++counter_ * 1000 + 7) + "m");
        return;
      case JSON_FORM_TIME:
        r->SetInt64(&m, d->FindFieldByName("seconds"), 1'700'000'000 + ++counter_);
        return;
      case JSON_FORM_MICRO_TIME:
        r->SetInt64(&m, d->FindFieldByName("seconds"), 1'700'000'000 + ++counter_);
        r->SetInt32(&m, d->FindFieldByName("nanos"), 123'456'000);
        return;
      case JSON_FORM_DURATION:
        r->SetInt64(&m, d->FindFieldByName("nanos"), int64_t{1'500'000'000} * ++counter_);
        return;
      case JSON_FORM_RAW:
        r->SetString(&m, d->FindFieldByName("raw"),
                     R"({"n":)" + std::to_string(++counter_) + R"(,"s":"x"})");
        return;
      case JSON_FORM_OBJECT:
        break;
    }
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && depth > 12) continue;
      if (f->is_map()) {
        for (int k = 0; k < 2; ++k) {
          Message* entry = r->AddMessage(&m, f);
          const auto* er = entry->GetReflection();
          er->SetString(entry, f->message_type()->map_key(), "key/" + std::to_string(++counter_));
          setOne(*entry, f->message_type()->map_value(), depth, false);
        }
      } else if (f->is_repeated()) {
        for (int k = 0; k < 2; ++k)
          setOne(m, f, depth, true);
      } else {
        setOne(m, f, depth, false);
      }
    }
  }

 private:
  void setOne(Message& m, const FieldDescriptor* f, int depth, bool add) {
    const auto* r = m.GetReflection();
    int n = ++counter_;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_MESSAGE:
        fill(add ? *r->AddMessage(&m, f) : *r->MutableMessage(&m, f), depth + 1);
        return;
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string s = f->type() == FieldDescriptor::TYPE_BYTES
                            ? std::string("\x00\xff\x10 bytes ", 10) + std::to_string(n)
                            : "text \"" + std::to_string(n) + "\": yes";
        add ? r->AddString(&m, f, s) : r->SetString(&m, f, s);
        return;
      }
      case FieldDescriptor::CPPTYPE_INT32:
        add ? r->AddInt32(&m, f, -n) : r->SetInt32(&m, f, -n);
        return;
      case FieldDescriptor::CPPTYPE_INT64:
        add ? r->AddInt64(&m, f, int64_t{1} << 40 | n) : r->SetInt64(&m, f, int64_t{1} << 40 | n);
        return;
      case FieldDescriptor::CPPTYPE_BOOL:
        add ? r->AddBool(&m, f, n % 2 == 0) : r->SetBool(&m, f, n % 2 == 0);
        return;
      default:
        FAIL() << "field type not covered by the filler: " << f->full_name();
    }
  }

  int counter_ = 0;
};

TEST(Codec, EveryRegisteredTypeRoundTripsThroughJsonAndYaml) {
  for (const auto& type : Registry::builtin().types()) {
    SCOPED_TRACE(type.kind);
    auto original = type.newMessage();
    Filler().fill(*original);
    for (bool yaml : {false, true}) {
      std::string text = yaml ? encodeYaml(*original) : encodeJson(*original, JsonStyle::kPretty);
      auto decoded = type.newMessage();
      try {
        yaml ? decodeYaml(text, *decoded) : decodeJson(text, *decoded);
      } catch (const DecodeError& e) {
        FAIL() << e.what() << "\n" << text;
      }
      std::string diff;
      MessageDifferencer differ;
      differ.ReportDifferencesToString(&diff);
      EXPECT_TRUE(differ.Compare(*original, *decoded)) << (yaml ? "YAML" : "JSON") << ": " << diff;
    }
  }
}

TEST(Codec, DirectJsonWriterMatchesTheValueTree) {
  for (const auto& type : Registry::builtin().types()) {
    auto m = type.newMessage();
    Filler().fill(*m);
    EXPECT_EQ(encodeJson(*m), writeJson(encode(*m))) << type.kind;
  }
}

TEST(Codec, EmptyValuesAreLeftOutAndPresentZeroesKept) {
  apps::v1::Deployment d;
  d.mutable_metadata()->set_name("web");
  d.mutable_spec()->set_replicas(0);  // a present zero is meaningful (scaled to zero)
  d.mutable_spec()->mutable_template_()->mutable_spec();
  EXPECT_EQ(encodeJson(d),
            R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},)"
            R"("spec":{"replicas":0,"template":{"spec":{}}}})");
  EXPECT_EQ(encodeJson(d, JsonStyle::kCompact, {.type_meta = false}),
            R"({"metadata":{"name":"web"},"spec":{"replicas":0,"template":{"spec":{}}}})");
}

TEST(Codec, Int64IsAJsonNumber) {
  core::v1::Pod pod;
  pod.mutable_metadata()->set_generation(9007199254740993);  // beyond double precision
  EXPECT_EQ(encodeJson(pod, JsonStyle::kCompact, {.type_meta = false}),
            R"({"metadata":{"generation":9007199254740993}})");
  core::v1::Pod back;
  decodeJson(R"({"metadata":{"generation":9007199254740993}})", back);
  EXPECT_EQ(back.metadata().generation(), 9007199254740993);
}

TEST(Codec, YamlPlainScalarsTakeTheFieldsType) {
  core::v1::ConfigMap cm;
  decodeYaml("data:\n  version: 1.10\n  enabled: yes\n  count: 007\n  empty: ''\n", cm);
  EXPECT_EQ(cm.data().at("version"), "1.10");
  EXPECT_EQ(cm.data().at("enabled"), "yes");
  EXPECT_EQ(cm.data().at("count"), "007");
  EXPECT_EQ(cm.data().at("empty"), "");
  core::v1::Container c;
  decodeYaml("stdin: yes\ntty: false\n", c);
  EXPECT_TRUE(c.stdin());
  EXPECT_FALSE(c.tty());
  EXPECT_TRUE(c.has_tty());
}

TEST(Codec, NullLeavesFieldsUnset) {
  apps::v1::Deployment d;
  decodeYaml("metadata:\n  labels: null\nspec:\n  replicas: ~\n  selector:\n", d);
  EXPECT_FALSE(d.spec().has_replicas());
  EXPECT_FALSE(d.spec().has_selector());
  EXPECT_EQ(d.metadata().labels_size(), 0);
}

TEST(Codec, QuantitiesAreCanonicalised) {
  core::v1::ResourceRequirements r;
  decodeJson(R"({"requests":{"cpu":0.5,"memory":"1.5Gi","storage":"2e3"},"limits":{"cpu":2}})", r);
  EXPECT_EQ(r.requests().at("cpu").string(), "500m");
  EXPECT_EQ(r.requests().at("memory").string(), "1536Mi");
  EXPECT_EQ(r.requests().at("storage").string(), "2e3");
  EXPECT_EQ(r.limits().at("cpu").string(), "2");
}

// ------------------------------------------------------------------ errors

std::string decodeError(std::string_view text, Message& m, DecodeOptions options = {}) {
  try {
    if (!text.empty() && (text[0] == '{' || text[0] == '[')) {
      decodeJson(text, m, options);
    } else {
      decodeYaml(text, m, options);
    }
  } catch (const DecodeError& e) {
    return e.what();
  }
  return "no error";
}

TEST(CodecErrors, WrongTypeNamesTheFieldPath) {
  apps::v1::Deployment d;
  EXPECT_EQ(decodeError(R"({"spec":{"template":{"spec":{"containers":[{"name":"a","ports":)"
                        R"([{"containerPort":"80"}]}]}}}})",
                        d, {.source = "web.json"}),
            "web.json:1:82: spec.template.spec.containers[0].ports[0].containerPort: expected "
            "integer, got string \"80\"");
}

TEST(CodecErrors, YamlErrorsNameFileLineAndColumn) {
  apps::v1::Deployment d;
  std::string yaml =
      "spec:\n"
      "  replicas: three\n"
      "  template:\n"
      "    spec:\n"
      "      containers:\n"
      "      - name: web\n"
      "        ports:\n"
      "        - containerPort: \"80\"\n";
  EXPECT_EQ(decodeError(yaml, d, {.source = "web.yaml"}),
            "web.yaml:2:13: spec.replicas: expected integer, got string \"three\"\n"
            "web.yaml:8:26: spec.template.spec.containers[0].ports[0].containerPort: expected "
            "integer, got string \"80\"");
}

TEST(CodecErrors, UnknownFieldsUnderStrictWarnIgnore) {
  std::string json = R"({"spec":{"replicas":1,"replicaz":2,"template":{"spec":{"containers":)"
                     R"([{"name":"a","imagePullPolcy":"Always"}]}}}})";
  apps::v1::Deployment strict;
  EXPECT_EQ(decodeError(json, strict),
            "1:23: spec.replicaz: unknown field\n"
            "1:82: spec.template.spec.containers[0].imagePullPolcy: unknown field");

  apps::v1::Deployment warn;
  std::vector<Diagnostic> warnings;
  decodeJson(json, warn, {.unknown_fields = UnknownFields::kWarn, .warnings = &warnings});
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0].path, "spec.replicaz");
  EXPECT_EQ(warnings[1].path, "spec.template.spec.containers[0].imagePullPolcy");
  EXPECT_EQ(warn.spec().replicas(), 1);

  apps::v1::Deployment ignore;
  warnings.clear();
  decodeJson(json, ignore, {.unknown_fields = UnknownFields::kIgnore, .warnings = &warnings});
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(ignore.spec().template_().spec().containers(0).name(), "a");
}

TEST(CodecErrors, DuplicateFields) {
  apps::v1::Deployment d;
  EXPECT_EQ(decodeError("spec:\n  replicas: 1\n  replicas: 2\n", d),
            "3:3: spec.replicas: duplicate field");
  apps::v1::Deployment lax;
  decodeYaml("spec:\n  replicas: 1\n  replicas: 2\n", lax,
             {.unknown_fields = UnknownFields::kIgnore});
  EXPECT_EQ(lax.spec().replicas(), 2);  // the last one wins, as in Go
  core::v1::ConfigMap cm;
  EXPECT_EQ(decodeError(R"({"data":{"a":"1","a":"2"}})", cm), "1:18: data[a]: duplicate key");
}

TEST(CodecErrors, OutOfRangeNumbers) {
  apps::v1::Deployment d;
  EXPECT_EQ(decodeError(R"({"spec":{"replicas":2147483648}})", d),
            "1:21: spec.replicas: value 2147483648 is out of range for int32");
  core::v1::Pod p;
  EXPECT_EQ(decodeError(R"({"metadata":{"generation":99999999999999999999}})", p),
            "1:27: metadata.generation: value 99999999999999999999 is out of range for int64");
  EXPECT_EQ(decodeError(R"({"metadata":{"generation":1.5}})", p),
            "1:27: metadata.generation: expected integer, got number 1.5");
  apps::v1::Deployment y;
  EXPECT_EQ(decodeError("spec:\n  replicas: 1e3\n", y),
            "2:13: spec.replicas: expected integer, got number 1e3");
}

TEST(CodecErrors, BadSpecialValues) {
  core::v1::Container c;
  EXPECT_EQ(decodeError(R"({"resources":{"requests":{"cpu":"1.5.3"}}})", c),
            "1:33: resources.requests[cpu]: invalid quantity \"1.5.3\": quantities must match the "
            "regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
  core::v1::Pod p;
  EXPECT_EQ(decodeError(R"({"metadata":{"creationTimestamp":"yesterday"}})", p),
            "1:34: metadata.creationTimestamp: invalid time \"yesterday\": malformed date or time "
            "(expected RFC 3339, e.g. 2006-01-02T15:04:05Z)");
  core::v1::Secret s;
  EXPECT_EQ(decodeError(R"({"data":{"k":"not base64!"}})", s),
            "1:14: data[k]: illegal base64 data");
  core::v1::ServicePort sp;
  EXPECT_EQ(decodeError(R"({"targetPort":true})", sp),
            "1:15: targetPort: expected integer or string, got boolean true");
  EXPECT_EQ(decodeError(R"({"targetPort":1.5})", sp),
            "1:15: targetPort: expected integer, got number 1.5");
  EXPECT_EQ(decodeError(R"({"ports":{}})", sp), "1:2: ports: unknown field");
  core::v1::ServiceSpec spec;
  EXPECT_EQ(decodeError(R"({"ports":{"port":80}})", spec),
            "1:10: ports: expected array, got object");
  EXPECT_EQ(decodeError(R"({"selector":["a"]})", spec),
            "1:13: selector: expected object, got array");
}

TEST(CodecErrors, TypeMetaMustMatch) {
  apps::v1::Deployment d;
  EXPECT_EQ(decodeError("apiVersion: v1\nkind: Service\n", d),
            "1:13: apiVersion: expected \"apps/v1\", got \"v1\"\n"
            "2:7: kind: expected \"Deployment\", got \"Service\"");
}

TEST(CodecErrors, ManifestsNeedKnownKinds) {
  auto error = [](std::string_view text) {
    try {
      decodeManifests(text, {.source = "m.yaml"});
    } catch (const DecodeError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error("apiVersion: v1\nmetadata:\n  name: x\n"),
            "m.yaml:1:1: kind: missing: every object needs apiVersion and kind");
  EXPECT_EQ(error("apiVersion: v1\nkind: Pdo\n"),
            "m.yaml:2:7: kind: no kind \"Pdo\" is registered for version \"v1\"");
  EXPECT_EQ(error("kind: Pod\napiVersion: v1\n---\nkind: Pod\napiVersion: v1\nspec: []\n"),
            "m.yaml:6:7: spec: expected object, got array");
  EXPECT_EQ(error("a: [1, 2\n").substr(0, 12), "m.yaml:2:1: ");
  EXPECT_EQ(error("{\"kind\": \"Pod\",}"),
            "m.yaml:1:16: unexpected character '}', expected a quoted key");
}

TEST(Manifests, ListsAreExpandedAndEmptyDocumentsDropped) {
  std::string text =
      "---\n"
      "# just a comment\n"
      "---\n"
      "apiVersion: v1\n"
      "kind: List\n"
      "items:\n"
      "- apiVersion: v1\n"
      "  kind: ConfigMap\n"
      "  metadata: {name: a}\n"
      "- apiVersion: v1\n"
      "  kind: Secret\n"
      "  metadata: {name: b}\n"
      "---\n"
      "apiVersion: apps/v1\n"
      "kind: Deployment\n"
      "metadata: {name: c}\n";
  auto objects = decodeManifests(text);
  ASSERT_EQ(objects.size(), 3u);
  EXPECT_EQ(objects[0].type->kind, "ConfigMap");
  EXPECT_EQ(objects[1].type->kind, "Secret");
  EXPECT_EQ(objects[2].type->kind, "Deployment");
  EXPECT_EQ(objects[2].mark.line, 14u);
}

TEST(Descriptors, JsonNamesKeepKubernetesAcronyms) {
  // Kubernetes writes acronyms in capitals inside JSON names (podIP, hostIPC, podCIDRs, imageID);
  // a name like "podIp" means a proto field is missing its json_name.
  std::regex lowered(
      "[a-z](Ip|Ips|Ipc|Pid|Cidr|Cidrs|Uid|Uuid|Id|Fqdn|Url|Dns|Tcp|Udp|Api)([A-Z]|$)");
  std::vector<const Descriptor*> pending;
  std::set<const Descriptor*> seen;
  for (const auto& t : Registry::builtin().types())
    pending.push_back(t.descriptor);
  while (!pending.empty()) {
    const Descriptor* d = pending.back();
    pending.pop_back();
    if (!seen.insert(d).second) continue;
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      EXPECT_FALSE(std::regex_search(f->json_name(), lowered))
          << f->full_name() << " is written " << f->json_name();
      if (f->message_type() != nullptr) pending.push_back(f->message_type());
    }
  }
  EXPECT_GT(seen.size(), 100u);
}

}  // namespace
}  // namespace skiff::api

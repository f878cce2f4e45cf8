#include "control/apiserver/managed_fields.h"

#include <gtest/gtest.h>

#include "control/api/json.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver {
namespace {

api::Value j(std::string_view text) {
  return api::parseJson(text);
}

FieldType deployment() {
  return FieldType::ofMessage(api::apps::v1::Deployment::descriptor());
}

TEST(FieldSet, AppliedConfigurationInKubernetesNotation) {
  // What Kubernetes records for `kubectl apply --server-side` of this Deployment.
  api::Value config = j(R"({"metadata":{"labels":{"app":"web"}},
    "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
      "template":{"metadata":{"labels":{"app":"web"}},
        "spec":{"containers":[{"name":"web","image":"busybox",
          "ports":[{"containerPort":80}]}]}}}})");
  FieldSet set = toFieldSet(config, deployment());
  EXPECT_EQ(
      set.toFieldsV1(),
      R"({"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},)"
      R"("f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":)"
      R"({"k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:name":{},"f:ports":)"
      R"({"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}})");
  EXPECT_TRUE(set.contains({"f:spec", "f:replicas"}));
  EXPECT_FALSE(set.contains({"f:spec"}));
  // FieldsV1 reads back into the same set.
  EXPECT_EQ(FieldSet::fromFieldsV1(set.toFieldsV1()), set);
}

TEST(FieldSet, SetsListsAndEmptyValues) {
  FieldType pod = FieldType::ofMessage(api::core::v1::Pod::descriptor());
  FieldSet set = toFieldSet(
      j(R"({"metadata":{"finalizers":["a/b"]},"spec":{"containers":[{"name":"c","resources":{},"args":["x"]}]}})"),
      pod);
  EXPECT_TRUE(set.contains({"f:metadata", "f:finalizers", "v:\"a/b\""}));
  // An empty struct is owned as a leaf; atomic lists are leaves.
  EXPECT_TRUE(set.contains({"f:spec", "f:containers", "k:{\"name\":\"c\"}", "f:resources"}));
  EXPECT_TRUE(set.contains({"f:spec", "f:containers", "k:{\"name\":\"c\"}", "f:args"}));
  EXPECT_EQ(pathString({"f:spec", "f:containers", "k:{\"name\":\"c\"}", "f:image"}),
            ".spec.containers[name=\"c\"].image");
  EXPECT_EQ(pathString({"f:metadata", "f:finalizers", "v:\"a/b\""}),
            ".metadata.finalizers[=\"a/b\"]");
  EXPECT_EQ(pathString({"f:spec", "f:ports", "k:{\"port\":80,\"protocol\":\"TCP\"}"}),
            ".spec.ports[port=80,protocol=\"TCP\"]");
}

TEST(FieldSet, BadConfigurationsAndFieldsV1AreNamed) {
  try {
    toFieldSet(j(R"({"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}})"), deployment());
    FAIL() << "no error for an item without its key";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(".spec.template.spec.containers"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(
      toFieldSet(j(R"({"spec":{"template":{"spec":{"containers":[{"name":"a"},{"name":"a"}]}}}})"),
                 deployment()),
      std::invalid_argument);
  EXPECT_THROW(FieldSet::fromFieldsV1(R"({"x:y":{}})"), std::invalid_argument);
  EXPECT_THROW(FieldSet::fromFieldsV1("[1]"), std::invalid_argument);
  EXPECT_THROW(FieldSet::fromFieldsV1("{"), std::invalid_argument);
}

TEST(Compare, AddedModifiedRemoved) {
  api::Value a = j(R"({"metadata":{"labels":{"app":"web","old":"x"}},"spec":{"replicas":1,
    "template":{"spec":{"containers":[{"name":"a","image":"1"}]}}}})");
  api::Value b = j(R"({"metadata":{"labels":{"app":"web"}},"spec":{"replicas":3,
    "template":{"spec":{"containers":[{"name":"a","image":"2"},{"name":"b","image":"1"}]}}}})");
  Comparison c = compareObjects(&a, b, deployment());
  EXPECT_EQ(
      c.modified.toFieldsV1(),
      R"({"f:spec":{"f:replicas":{},"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"a\"}":{"f:image":{}}}}}}})");
  EXPECT_TRUE(c.removed.contains({"f:metadata", "f:labels", "f:old"}));
  const ManagedPath b_item = {"f:spec", "f:template", "f:spec", "f:containers",
                              "k:{\"name\":\"b\"}"};
  EXPECT_TRUE(c.added.contains(b_item));
  ManagedPath b_image = b_item;
  b_image.push_back("f:image");
  EXPECT_TRUE(c.added.contains(b_image));
  EXPECT_TRUE(compareObjects(&a, a, deployment()).same());
  // Nothing before: everything is added, containers included.
  Comparison created = compareObjects(nullptr, a, deployment());
  EXPECT_TRUE(created.added.contains({"f:spec", "f:replicas"}));
  EXPECT_TRUE(created.modified.empty());
}

TEST(ManagedFieldsEntries, EncodedSortedAndDecoded) {
  ManagedFields managed(2);
  managed[0].manager = "b";
  managed[0].operation = "Update";
  managed[0].api_version = "apps/v1";
  managed[0].fields.insert({"f:spec", "f:replicas"});
  managed[1].manager = "z";
  managed[1].operation = "Apply";
  managed[1].api_version = "apps/v1";
  managed[1].fields.insert({"f:metadata", "f:labels", "f:app"});
  ManagerEntry empty;
  empty.manager = "nothing";
  empty.operation = "Update";
  managed.push_back(empty);  // owns nothing: left out
  api::meta::v1::ObjectMeta meta;
  encodeManagedFields(managed, meta);
  ASSERT_EQ(meta.managed_fields_size(), 2);
  EXPECT_EQ(meta.managed_fields(0).manager(), "z");  // Apply before Update
  EXPECT_EQ(meta.managed_fields(0).fields_type(), "FieldsV1");
  EXPECT_EQ(meta.managed_fields(1).fields_v1().raw(), R"({"f:spec":{"f:replicas":{}}})");
  ManagedFields back = decodeManagedFields(meta);
  ASSERT_EQ(back.size(), 2U);
  EXPECT_EQ(back[1].fields, managed[0].fields);
  EXPECT_EQ(back[1].display(), "\"b\" using apps/v1");
  EXPECT_EQ(back[0].display(), "\"z\"");
  meta.mutable_managed_fields(0)->set_operation("Delete");
  EXPECT_THROW(decodeManagedFields(meta), std::invalid_argument);
  api::meta::v1::ObjectMeta reset;
  reset.add_managed_fields();
  EXPECT_TRUE(isResetManagedFields(reset));
}

ManagerEntry update(std::string manager, int64_t seconds, std::string field,
                    std::string api_version = "apps/v1", std::string subresource = "") {
  ManagerEntry e;
  e.manager = std::move(manager);
  e.operation = "Update";
  e.api_version = std::move(api_version);
  e.subresource = std::move(subresource);
  e.time.emplace().set_seconds(seconds);
  e.fields.insert({"f:metadata", "f:labels", "f:" + field});
  return e;
}

TEST(ManagedFieldsEntries, UpdateEntriesCappedAtTenIntoAncientChanges) {
  ManagedFields managed;
  ManagerEntry applied;
  applied.manager = "applier";
  applied.operation = "Apply";
  applied.api_version = "apps/v1";
  applied.fields.insert({"f:spec", "f:replicas"});
  managed.push_back(applied);
  for (int i = 0; i < 10; ++i)
    managed.push_back(update("m" + std::to_string(i), 100 + i, "l" + std::to_string(i)));
  capUpdateManagers(managed);  // ten updates: nothing merged
  EXPECT_EQ(managed.size(), 11U);
  // Two more (one through the status subresource): the three oldest merge into one entry.
  managed.push_back(update("late", 300, "late", "apps/v1", "status"));
  managed.push_back(update("later", 301, "later"));
  capUpdateManagers(managed);
  ASSERT_EQ(managed.size(), 11U);
  const ManagerEntry* bucket = nullptr;
  size_t updates = 0;
  for (const auto& e : managed) {
    if (e.operation == "Update") ++updates;
    if (e.manager == "ancient-changes") bucket = &e;
    EXPECT_NE(e.manager, "m0");
    EXPECT_NE(e.manager, "m1");
    EXPECT_NE(e.manager, "m2");
  }
  EXPECT_EQ(updates, 10U);
  ASSERT_NE(bucket, nullptr);
  EXPECT_EQ(bucket->api_version, "apps/v1");
  EXPECT_EQ(bucket->subresource, "");
  EXPECT_EQ(bucket->time->seconds(), 102);  // the newest update merged in
  EXPECT_EQ(bucket->fields.toFieldsV1(),
            R"({"f:metadata":{"f:labels":{"f:l0":{},"f:l1":{},"f:l2":{}}}})");
  EXPECT_EQ(managed[0].manager, "applier");  // Apply entries are never merged
  // Another update later: the oldest remaining one joins the existing bucket.
  managed.push_back(update("newest", 400, "newest"));
  capUpdateManagers(managed);
  ASSERT_EQ(managed.size(), 11U);
  for (const auto& e : managed) {
    EXPECT_NE(e.manager, "m3");
    if (e.manager == "ancient-changes") {
      EXPECT_EQ(e.time->seconds(), 103);
      EXPECT_TRUE(e.fields.contains({"f:metadata", "f:labels", "f:l3"}));
      EXPECT_TRUE(e.fields.contains({"f:metadata", "f:labels", "f:l0"}));
    }
  }
  // Buckets are per apiVersion: eleven updates of two versions, the oldest of each stays alone
  // until a second of its version merges.
  ManagedFields versions;
  versions.push_back(update("v1a", 1, "a", "apps/v1beta1"));
  for (int i = 0; i < 10; ++i)
    versions.push_back(update("n" + std::to_string(i), 10 + i, "n" + std::to_string(i)));
  capUpdateManagers(versions);
  ASSERT_EQ(versions.size(), 10U);
  EXPECT_EQ(versions[0].manager, "v1a");  // the only one of its version: left as it was
  EXPECT_EQ(versions[1].manager, "ancient-changes");
  EXPECT_EQ(versions[1].fields.size(), 2U);
  EXPECT_EQ(versions[1].time->seconds(), 11);
}

TEST(OwnedPart, LeavesOutServerMetadataAndByScopeTheStatus) {
  api::Value o = j(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"w",
    "uid":"1","resourceVersion":"5","labels":{"a":"b"}},"spec":{"replicas":1},"status":{"replicas":1}})");
  EXPECT_EQ(api::writeJson(ownedPart(o, FieldScope::kMainResource)),
            R"({"metadata":{"labels":{"a":"b"}},"spec":{"replicas":1}})");
  EXPECT_EQ(api::writeJson(ownedPart(o, FieldScope::kStatus)), R"({"status":{"replicas":1}})");
}

// A create's managed fields come from one walk (addedFieldsV1) rather than from the path sets of
// compareObjects: the two must write the same FieldsV1 for every shape of object.
TEST(Compare, AddedFieldsV1IsTheComparisonOfNothingBefore) {
  FieldType pod = FieldType::ofMessage(api::core::v1::Pod::descriptor());
  FieldType service = FieldType::ofMessage(api::core::v1::Service::descriptor());
  FieldType configmap = FieldType::ofMessage(api::core::v1::ConfigMap::descriptor());
  const std::vector<std::pair<FieldType, std::string>> cases = {
      {deployment(), R"({"metadata":{"labels":{"app":"web"},"annotations":{"a":"b"}},
        "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
        "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":"25%"}},
        "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[
          {"name":"web","image":"busybox","args":["a","b"],"env":[{"name":"A","value":"1"}],
           "ports":[{"containerPort":80},{"containerPort":443,"protocol":"TCP"}],
           "resources":{"requests":{"cpu":"10m"}}},
          {"name":"side","image":"x","volumeMounts":[{"name":"v","mountPath":"/v"}]}],
          "volumes":[{"name":"v","emptyDir":{}}],"tolerations":[{"key":"k","operator":"Exists"}]}}}})"},
      {pod, R"({"metadata":{"finalizers":["a/b","c/d"],"ownerReferences":[{"apiVersion":"v1",
        "kind":"ReplicaSet","name":"rs","uid":"u1","controller":true}]},
        "spec":{"containers":[{"name":"c","image":"i","command":[]}],"nodeSelector":{},
        "terminationGracePeriodSeconds":0}})"},
      // Items without their keys and duplicates: the list is one value, as compareObjects has it.
      {pod, R"({"spec":{"containers":[{"image":"no-name"},{"name":"d"},{"name":"d"}]}})"},
      {service, R"({"spec":{"type":"NodePort","selector":{"app":"web"},"ports":[
        {"name":"http","port":80,"targetPort":8080,"protocol":"TCP"},
        {"name":"udp","port":53,"protocol":"UDP"}],"externalIPs":["10.0.0.1"]}})"},
      {configmap, R"({"data":{"k":"v","e":""},"immutable":true})"},
      {configmap, R"({})"},
      {configmap, R"({"metadata":{}})"},
  };
  for (const auto& [type, text] : cases) {
    const api::Value object = j(text);
    EXPECT_EQ(addedFieldsV1(object, type),
              compareObjects(nullptr, object, type).added.empty()
                  ? ""
                  : compareObjects(nullptr, object, type).added.toFieldsV1())
        << text;
  }
}

}  // namespace
}  // namespace skiff::apiserver

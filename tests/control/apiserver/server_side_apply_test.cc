#include "control/apiserver/server_side_apply.h"

#include <gtest/gtest.h>

#include "control/api/json.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/autoscaling_v1.pb.h"

namespace skiff::apiserver {
namespace {

api::Value j(std::string_view text) {
  return api::parseJson(text);
}

FieldType deployment() {
  return FieldType::ofMessage(api::apps::v1::Deployment::descriptor());
}

Writer applier(std::string name, int64_t seconds = 100) {
  Writer w{std::move(name), "Apply", "apps/v1", "", {}};
  w.time.set_seconds(seconds);
  return w;
}

Writer updater(std::string name, std::string subresource = "") {
  Writer w{std::move(name), "Update", "apps/v1", std::move(subresource), {}};
  w.time.set_seconds(200);
  return w;
}

const ManagerEntry* entry(const ManagedFields& managed, std::string_view manager) {
  for (const auto& e : managed) {
    if (e.manager == manager) return &e;
  }
  return nullptr;
}

const std::string kWeb = R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web",
  "labels":{"app":"web","tier":"front"}},"spec":{"replicas":2,"template":{"spec":{"containers":[
  {"name":"web","image":"busybox:1"}]}}}})";

TEST(Apply, CreatesAndOwnsWhatItApplied) {
  ApplyResult r = applyConfiguration(nullptr, j(kWeb), deployment(), FieldScope::kMainResource, {},
                                     applier("a"), false);
  EXPECT_EQ(*r.object.find("spec")->find("replicas"), api::Value::integer(2));
  ASSERT_EQ(r.managed.size(), 1U);
  EXPECT_EQ(r.managed[0].operation, "Apply");
  EXPECT_EQ(r.managed[0].time->seconds(), 100);
  EXPECT_TRUE(r.managed[0].fields.contains({"f:spec", "f:replicas"}));
  EXPECT_FALSE(r.managed[0].fields.contains({"f:metadata", "f:name"}));
}

TEST(Apply, ConflictsWithAnotherManagersValueUnlessForced) {
  ApplyResult first = applyConfiguration(nullptr, j(kWeb), deployment(), FieldScope::kMainResource,
                                         {}, applier("a"), false);
  // The same value: no conflict, both own it.
  api::Value same = j(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
    "spec":{"replicas":2}})");
  ApplyResult shared =
      applyConfiguration(&first.object, same, deployment(), FieldScope::kMainResource,
                         first.managed, applier("b"), false);
  EXPECT_TRUE(entry(shared.managed, "a")->fields.contains({"f:spec", "f:replicas"}));
  EXPECT_TRUE(entry(shared.managed, "b")->fields.contains({"f:spec", "f:replicas"}));

  api::Value other = j(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web",
    "labels":{"tier":"back"}},"spec":{"replicas":5}})");
  try {
    applyConfiguration(&first.object, other, deployment(), FieldScope::kMainResource, first.managed,
                       applier("b"), false);
    FAIL() << "no conflict";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 409);
    EXPECT_EQ(e.reason(), "Conflict");
    EXPECT_EQ(std::string(e.what()),
              "Apply failed with 2 conflicts: conflicts with \"a\":\n- .metadata.labels.tier\n"
              "- .spec.replicas");
    ASSERT_EQ(e.details().causes_size(), 2);
    EXPECT_EQ(e.details().causes(1).reason(), "FieldManagerConflict");
    EXPECT_EQ(e.details().causes(1).message(), "conflict with \"a\"");
    EXPECT_EQ(e.details().causes(1).field(), ".spec.replicas");
  }
  ApplyResult forced =
      applyConfiguration(&first.object, other, deployment(), FieldScope::kMainResource,
                         first.managed, applier("b"), true);
  EXPECT_EQ(*forced.object.find("spec")->find("replicas"), api::Value::integer(5));
  EXPECT_FALSE(entry(forced.managed, "a")->fields.contains({"f:spec", "f:replicas"}));
  EXPECT_TRUE(entry(forced.managed, "a")->fields.contains({"f:metadata", "f:labels", "f:app"}));
  EXPECT_TRUE(entry(forced.managed, "b")->fields.contains({"f:spec", "f:replicas"}));
}

TEST(Apply, FieldsNoLongerAppliedAreRemovedUnlessAnotherManagerOwnsThem) {
  ApplyResult first = applyConfiguration(nullptr, j(kWeb), deployment(), FieldScope::kMainResource,
                                         {}, applier("a"), false);
  // "b" also applies the tier label (same value: shared).
  ApplyResult shared = applyConfiguration(
      &first.object,
      j(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels":{"tier":"front"}}})"),
      deployment(), FieldScope::kMainResource, first.managed, applier("b"), false);
  // "a" drops replicas, the tier label and adds a second container.
  api::Value smaller = j(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web",
    "labels":{"app":"web"}},"spec":{"template":{"spec":{"containers":[{"name":"web","image":"busybox:1"},
    {"name":"side","image":"pause"}]}}}})");
  ApplyResult r =
      applyConfiguration(&shared.object, smaller, deployment(), FieldScope::kMainResource,
                         shared.managed, applier("a", 300), false);
  EXPECT_EQ(r.object.find("spec")->find("replicas"), nullptr);  // nobody owns it: gone
  EXPECT_EQ(*r.object.find("metadata")->find("labels")->find("tier"), api::Value::string("front"));
  EXPECT_EQ(
      r.object.find("spec")->find("template")->find("spec")->find("containers")->items().size(),
      2U);
  EXPECT_EQ(entry(r.managed, "a")->time->seconds(), 300);
  // Applying the same again changes nothing, not even the time.
  ApplyResult again =
      applyConfiguration(&r.object, smaller, deployment(), FieldScope::kMainResource, r.managed,
                         applier("a", 400), false);
  EXPECT_EQ(again.object, r.object);
  EXPECT_EQ(entry(again.managed, "a")->time->seconds(), 300);
  // A container dropped from the configuration goes, with all its fields.
  ApplyResult one = applyConfiguration(&r.object, j(kWeb), deployment(), FieldScope::kMainResource,
                                       r.managed, applier("a"), false);
  EXPECT_EQ(
      one.object.find("spec")->find("template")->find("spec")->find("containers")->items().size(),
      1U);
}

TEST(Apply, ItemsMergeOnTheirKeysAcrossManagers) {
  ApplyResult first = applyConfiguration(nullptr, j(kWeb), deployment(), FieldScope::kMainResource,
                                         {}, applier("a"), false);
  ApplyResult r = applyConfiguration(
      &first.object,
      j(R"({"spec":{"template":{"spec":{"containers":[{"name":"side","image":"pause"}]}}}})"),
      deployment(), FieldScope::kMainResource, first.managed, applier("b"), false);
  const auto& items =
      r.object.find("spec")->find("template")->find("spec")->find("containers")->items();
  ASSERT_EQ(items.size(), 2U);
  EXPECT_EQ(*items[0].find("name"), api::Value::string("web"));
  EXPECT_EQ(*items[1].find("name"), api::Value::string("side"));
  EXPECT_THROW(
      applyConfiguration(
          &first.object, j(R"({"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}})"),
          deployment(), FieldScope::kMainResource, first.managed, applier("b"), false),
      ApiError);
}

TEST(Update, TakesTheFieldsItChangedAndLaterAppliesConflict) {
  ApplyResult first = applyConfiguration(nullptr, j(kWeb), deployment(), FieldScope::kMainResource,
                                         {}, applier("kubectl"), false);
  api::Value scaled = first.object;
  scaled.find("spec")->set("replicas", api::Value::integer(7));
  ManagedFields managed =
      updateManagedFields(&first.object, scaled, deployment(), FieldScope::kMainResource,
                          first.managed, updater("kubectl", "scale"));
  const ManagerEntry* scale = nullptr;
  for (const auto& e : managed) {
    if (e.operation == "Update") scale = &e;
  }
  ASSERT_NE(scale, nullptr);
  EXPECT_EQ(scale->fields.toFieldsV1(), R"({"f:spec":{"f:replicas":{}}})");
  EXPECT_FALSE(entry(managed, "kubectl")->operation == "Apply" &&
               entry(managed, "kubectl")->fields.contains({"f:spec", "f:replicas"}));
  // Nothing changed: no entry, no time.
  EXPECT_EQ(updateManagedFields(&scaled, scaled, deployment(), FieldScope::kMainResource, managed,
                                updater("other"))
                .size(),
            managed.size());
  try {
    applyConfiguration(&scaled, j(kWeb), deployment(), FieldScope::kMainResource, managed,
                       applier("kubectl"), false);
    FAIL() << "no conflict";
  } catch (const ApiError& e) {
    EXPECT_EQ(std::string(e.what()),
              "Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" "
              "using apps/v1: .spec.replicas");
  }
}

TEST(Update, MoreThanTenUpdateManagersMergeIntoAncientChanges) {
  ApplyResult first = applyConfiguration(nullptr, j(kWeb), deployment(), FieldScope::kMainResource,
                                         {}, applier("a"), false);
  api::Value object = first.object;
  ManagedFields managed = first.managed;
  for (int i = 0; i < 12; ++i) {
    api::Value next = object;
    next.find("metadata")->find("labels")->set("l" + std::to_string(i), api::Value::string("x"));
    Writer w = updater("u" + std::to_string(i));
    w.time.set_seconds(1000 + i);
    managed = updateManagedFields(&object, next, deployment(), FieldScope::kMainResource,
                                  std::move(managed), w);
    object = std::move(next);
  }
  // 12 updaters: the three oldest became one "ancient-changes" entry; the applier stays.
  ASSERT_EQ(managed.size(), 11U);
  ASSERT_NE(entry(managed, "a"), nullptr);
  EXPECT_EQ(entry(managed, "u0"), nullptr);
  EXPECT_EQ(entry(managed, "u1"), nullptr);
  EXPECT_EQ(entry(managed, "u2"), nullptr);
  const ManagerEntry* ancient = entry(managed, "ancient-changes");
  ASSERT_NE(ancient, nullptr);
  EXPECT_EQ(ancient->operation, "Update");
  EXPECT_EQ(ancient->fields.toFieldsV1(),
            R"({"f:metadata":{"f:labels":{"f:l0":{},"f:l1":{},"f:l2":{}}}})");
  // The bucket is a manager like any other: an apply changing its field conflicts with it.
  api::Value take = j(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web",
    "labels":{"l0":"y"}}})");
  try {
    applyConfiguration(&object, take, deployment(), FieldScope::kMainResource, managed,
                       applier("b"), false);
    FAIL() << "no conflict";
  } catch (const ApiError& e) {
    EXPECT_EQ(std::string(e.what()),
              "Apply failed with 1 conflict: conflict with \"ancient-changes\" using apps/v1: "
              ".metadata.labels.l0");
  }
}

TEST(ScaleApply, ParentReplicasOwnersSeenByTheScaleAndTakenOverByForce) {
  ApplyResult first = applyConfiguration(nullptr, j(kWeb), deployment(), FieldScope::kMainResource,
                                         {}, applier("a"), false);
  const ManagedPath replicas = {"f:spec", "f:replicas"};
  // A label-only updater is not seen by the Scale; "a" is, with its replicas alone.
  ManagerEntry labels;
  labels.manager = "l";
  labels.operation = "Update";
  labels.api_version = "apps/v1";
  labels.fields.insert({"f:metadata", "f:labels", "f:x"});
  ManagedFields parent = first.managed;
  parent.push_back(labels);
  ManagedFields scale = scaleManagers(parent, replicas);
  ASSERT_EQ(scale.size(), 1U);
  EXPECT_EQ(scale[0].manager, "a");
  EXPECT_EQ(scale[0].fields.toFieldsV1(), R"({"f:spec":{"f:replicas":{}}})");
  FieldType scale_type = FieldType::ofMessage(api::autoscaling::v1::Scale::descriptor());
  api::Value live = j(R"({"metadata":{"name":"web"},"spec":{"replicas":2}})");
  api::Value config = j(R"({"apiVersion":"autoscaling/v1","kind":"Scale",
    "metadata":{"name":"web"},"spec":{"replicas":5}})");
  Writer w = applier("s");
  w.subresource = "scale";
  try {
    applyConfiguration(&live, config, scale_type, FieldScope::kMainResource, scale, w, false);
    FAIL() << "no conflict";
  } catch (const ApiError& e) {
    EXPECT_EQ(std::string(e.what()),
              "Apply failed with 1 conflict: conflict with \"a\": .spec.replicas");
  }
  ApplyResult forced =
      applyConfiguration(&live, config, scale_type, FieldScope::kMainResource, scale, w, true);
  EXPECT_EQ(forced.object.find("spec")->find("replicas")->asInt(), 5);
  ManagedFields back = parentManagers(parent, forced.managed, replicas, "apps/v1");
  ASSERT_EQ(back.size(), 3U);
  const ManagerEntry* a = entry(back, "a");
  ASSERT_NE(a, nullptr);
  EXPECT_FALSE(a->fields.contains(replicas));
  EXPECT_TRUE(a->fields.contains({"f:metadata", "f:labels", "f:app"}));
  ASSERT_NE(entry(back, "l"), nullptr);
  EXPECT_EQ(entry(back, "l")->fields, labels.fields);
  const ManagerEntry* s = entry(back, "s");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->operation, "Apply");
  EXPECT_EQ(s->subresource, "scale");
  EXPECT_EQ(s->api_version, "apps/v1");
  EXPECT_EQ(s->fields.toFieldsV1(), R"({"f:spec":{"f:replicas":{}}})");
  // A second manager applying the same value shares the field; both keep their entries.
  Writer t = applier("t");
  t.subresource = "scale";
  ApplyResult shared =
      applyConfiguration(&forced.object, config, scale_type, FieldScope::kMainResource,
                         scaleManagers(back, replicas), t, false);
  ManagedFields both = parentManagers(back, shared.managed, replicas, "apps/v1");
  EXPECT_EQ(both.size(), 4U);
  ASSERT_NE(entry(both, "s"), nullptr);
  EXPECT_TRUE(entry(both, "s")->fields.contains(replicas));
  ASSERT_NE(entry(both, "t"), nullptr);
  EXPECT_TRUE(entry(both, "t")->fields.contains(replicas));
}

}  // namespace
}  // namespace skiff::apiserver

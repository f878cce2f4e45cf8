// The namespace controller's pure parts: discovery documents to deletable namespaced resources,
// and one deletion pass to status conditions and the finalize decision. Also the serviceaccount
// controller's decision of what to create.

#include "control/controllers/namespace.h"

#include <gtest/gtest.h>

#include "control/api/json.h"
#include "control/controllers/serviceaccount_controller.h"
#include "tests/control/controllers/builders.h"

namespace skiff::controllers {
namespace {

using api::core::v1::Namespace;
using testing::ago;
using testing::fromYaml;
using testing::kNow;

TEST(NamespaceDiscoveryTest, KeepsNamespacedDeletableResourcesOnly) {
  api::Value list = api::parseJson(R"({
    "kind": "APIResourceList", "groupVersion": "apps/v1",
    "resources": [
      {"name": "deployments", "namespaced": true, "kind": "Deployment",
       "verbs": ["create", "delete", "deletecollection", "get", "list"]},
      {"name": "deployments/scale", "namespaced": true, "kind": "Scale",
       "verbs": ["get", "update"]},
      {"name": "nodes", "namespaced": false, "kind": "Node",
       "verbs": ["delete", "deletecollection", "list"]},
      {"name": "bindings", "namespaced": true, "kind": "Binding", "verbs": ["create"]},
      {"name": "widgets", "namespaced": true, "kind": "Widget", "verbs": ["delete", "list"]}
    ]})");
  auto resources = namespacedResourcesOf(list);
  ASSERT_EQ(resources.size(), 2u);
  EXPECT_EQ(resources[0].type.group, "apps");
  EXPECT_EQ(resources[0].type.version, "v1");
  EXPECT_EQ(resources[0].type.plural, "deployments");
  EXPECT_EQ(resources[0].type.kind, "Deployment");
  EXPECT_TRUE(resources[0].type.namespaced);
  EXPECT_TRUE(resources[0].delete_collection);
  EXPECT_EQ(resources[0].groupVersionResource(), "apps/v1, Resource=deployments");
  // Without deletecollection, but listable and deletable one by one.
  EXPECT_EQ(resources[1].type.plural, "widgets");
  EXPECT_FALSE(resources[1].delete_collection);
  EXPECT_TRUE(resources[1].list);
  EXPECT_TRUE(resources[1].remove);
}

TEST(NamespaceDiscoveryTest, CoreGroupHasNoGroupName) {
  auto resources = namespacedResourcesOf(api::parseJson(R"({
    "kind": "APIResourceList", "groupVersion": "v1",
    "resources": [{"name": "pods", "namespaced": true, "kind": "Pod",
                   "verbs": ["deletecollection", "list"]}]})"));
  ASSERT_EQ(resources.size(), 1u);
  EXPECT_EQ(resources[0].type.group, "");
  EXPECT_EQ(resources[0].type.apiVersion(), "v1");
}

TEST(NamespaceDiscoveryTest, BadDocumentsAreNamed) {
  try {
    namespacedResourcesOf(api::parseJson(R"({"kind": "Status"})"));
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "discovery: expected kind APIResourceList, got Status");
  }
  EXPECT_THROW(namespacedResourcesOf(api::parseJson(R"({"kind": "APIResourceList"})")),
               std::invalid_argument);
  EXPECT_THROW(preferredGroupVersions(api::parseJson("{}")), std::invalid_argument);
}

TEST(NamespaceDiscoveryTest, PreferredVersionsOfGroups) {
  auto gvs = preferredGroupVersions(api::parseJson(R"({
    "kind": "APIGroupList", "groups": [
      {"name": "apps", "versions": [{"groupVersion": "apps/v1"}],
       "preferredVersion": {"groupVersion": "apps/v1"}},
      {"name": "batch", "versions": [{"groupVersion": "batch/v1"}, {"groupVersion": "batch/v2"}]}
    ]})"));
  EXPECT_EQ(gvs, (std::vector<std::string>{"apps/v1", "batch/v1"}));
}

Namespace terminating(bool with_finalizer) {
  auto ns = fromYaml<Namespace>(R"(
metadata: {name: doomed, deletionTimestamp: "2023-11-14T22:13:20Z"}
status: {phase: Active}
)");
  if (with_finalizer) ns.mutable_spec()->add_finalizers(std::string(kNamespaceFinalizer));
  ns.mutable_spec()->add_finalizers("example.com/other");
  return ns;
}

const api::core::v1::NamespaceCondition* condition(const Namespace& ns, const std::string& type) {
  for (const auto& c : ns.status().conditions()) {
    if (c.type() == type) return &c;
  }
  return nullptr;
}

struct DeletionCase {
  const char* name;
  NamespaceContent content;
  bool with_finalizer;
  bool finalizes;
  // type -> expected status, reason, message prefix
  std::vector<std::tuple<std::string, std::string, std::string, std::string>> conditions;
  std::optional<std::chrono::milliseconds> requeue;
};

TEST(NamespaceDeletionTest, Table) {
  const std::vector<DeletionCase> cases = {
      {"empty namespace: finalize",
       {},
       true,
       true,
       {{"NamespaceDeletionDiscoveryFailure", "False", "ResourcesDiscovered",
         "All resources successfully discovered"},
        {"NamespaceDeletionGroupVersionParsingFailure", "False", "ParsedGroupVersions",
         "All legacy kube types successfully parsed"},
        {"NamespaceDeletionContentFailure", "False", "ContentDeleted",
         "All content successfully deleted, may be waiting on finalization"},
        {"NamespaceContentRemaining", "False", "ContentRemoved",
         "All content successfully removed"},
        {"NamespaceFinalizersRemaining", "False", "ContentHasNoFinalizers",
         "All content-preserving finalizers finished"}},
       std::nullopt},
      {"already finalized: nothing to send to /finalize", {}, false, false, {}, std::nullopt},
      {"pods terminating: wait for their grace period",
       {.remaining = {{"pods", 2}}, .estimate_seconds = 30},
       true,
       false,
       {{"NamespaceContentRemaining", "True", "SomeResourcesRemain",
         "Some resources are remaining: pods has 2 resource instances"},
        {"NamespaceFinalizersRemaining", "False", "ContentHasNoFinalizers", ""}},
       std::chrono::milliseconds(15000)},
      {"held by finalizers",
       {.remaining = {{"configmaps", 1}, {"deployments.apps", 1}},
        .finalizers_remaining = {{"foregroundDeletion", 1}, {"example.com/keep", 1}}},
       true,
       false,
       {{"NamespaceContentRemaining", "True", "SomeResourcesRemain",
         "Some resources are remaining: configmaps has 1 resource instances, deployments.apps "
         "has 1 resource instances"},
        {"NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain",
         "Some content in the namespace has finalizers remaining: example.com/keep in 1 "
         "resource instances, foregroundDeletion in 1 resource instances"}},
       std::chrono::milliseconds(1000)},
      {"a delete failed: no finalize",
       {.deletion_failures = {"secrets: forbidden"}},
       true,
       false,
       {{"NamespaceDeletionContentFailure", "True", "ContentDeletionFailed",
         "Failed to delete all resource types, 1 remaining: secrets: forbidden"}},
       std::chrono::milliseconds(1000)},
      {"discovery failed: no finalize (something may be left unseen)",
       {.discovery_failures = {"batch/v1: HTTP 503"}},
       true,
       false,
       {{"NamespaceDeletionDiscoveryFailure", "True", "DiscoveryFailed",
         "Discovery failed for some groups, 1 failing: batch/v1: HTTP 503"}},
       std::chrono::milliseconds(1000)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Namespace ns = terminating(c.with_finalizer);
    auto result = reconcileNamespaceDeletion(ns, c.content, kNow);
    ASSERT_TRUE(result.status_update.has_value());
    EXPECT_EQ(result.status_update->status().phase(), "Terminating");
    EXPECT_EQ(result.status_update->status().conditions_size(), 5);
    for (const auto& [type, status, reason, message] : c.conditions) {
      const auto* cond = condition(*result.status_update, type);
      ASSERT_NE(cond, nullptr) << type;
      EXPECT_EQ(cond->status(), status) << type;
      EXPECT_EQ(cond->reason(), reason) << type;
      EXPECT_EQ(cond->message().substr(0, message.size()), message) << type;
      EXPECT_EQ(toTimestamp(cond->last_transition_time()), kNow) << type;
    }
    EXPECT_EQ(result.finalize.has_value(), c.finalizes);
    if (result.finalize) {
      // Only the "kubernetes" finalizer goes; others' stay.
      ASSERT_EQ(result.finalize->spec().finalizers_size(), 1);
      EXPECT_EQ(result.finalize->spec().finalizers(0), "example.com/other");
      EXPECT_EQ(result.finalize->status().phase(), "Terminating");
    }
    EXPECT_EQ(result.requeue_after, c.requeue);
  }
}

TEST(NamespaceDeletionTest, UnchangedStatusIsNotWrittenAgain) {
  Namespace ns = terminating(true);
  NamespaceContent content{.remaining = {{"pods", 1}}};
  auto first = reconcileNamespaceDeletion(ns, content, ago(10));
  ASSERT_TRUE(first.status_update);
  auto second = reconcileNamespaceDeletion(*first.status_update, content, kNow);
  EXPECT_FALSE(second.status_update.has_value());
  // A condition that flips gets a new transition time; the others keep theirs.
  auto third = reconcileNamespaceDeletion(*first.status_update, {}, kNow);
  ASSERT_TRUE(third.status_update);
  EXPECT_EQ(
      toTimestamp(
          condition(*third.status_update, "NamespaceContentRemaining")->last_transition_time()),
      kNow);
  EXPECT_EQ(toTimestamp(condition(*third.status_update, "NamespaceDeletionContentFailure")
                            ->last_transition_time()),
            ago(10));
  EXPECT_TRUE(third.finalize.has_value());
}

TEST(NamespaceDeletionTest, NeedsFinalize) {
  EXPECT_TRUE(namespaceNeedsFinalize(terminating(true)));
  EXPECT_FALSE(namespaceNeedsFinalize(terminating(false)));
}

TEST(ServiceAccountsToCreateTest, Table) {
  struct Case {
    const char* name;
    const char* ns_yaml;
    std::vector<std::string> existing;
    std::vector<std::string> expected;
  };
  const Case cases[] = {
      {"new namespace gets default",
       "metadata: {name: team}\nstatus: {phase: Active}",
       {},
       {"default"}},
      {"present: nothing", "metadata: {name: team}\nstatus: {phase: Active}", {"default"}, {}},
      {"other accounts do not count", "metadata: {name: team}", {"builder"}, {"default"}},
      {"terminating: nothing",
       "metadata: {name: team, deletionTimestamp: \"2023-11-14T22:13:20Z\"}",
       {},
       {}},
      {"phase Terminating: nothing",
       "metadata: {name: team}\nstatus: {phase: Terminating}",
       {},
       {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto ns = fromYaml<Namespace>(c.ns_yaml);
    auto out = serviceAccountsToCreate(ns, {"default"}, [&](const std::string& name) {
      return std::find(c.existing.begin(), c.existing.end(), name) != c.existing.end();
    });
    std::vector<std::string> names;
    for (const auto& sa : out) {
      names.push_back(sa.metadata().name());
      EXPECT_EQ(sa.metadata().namespace_(), "team");
    }
    EXPECT_EQ(names, c.expected);
  }
}

}  // namespace
}  // namespace skiff::controllers

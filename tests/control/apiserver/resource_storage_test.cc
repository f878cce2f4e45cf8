#include "control/apiserver/resource_storage.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "control/api/codec.h"
#include "control/apiserver/object_meta.h"
#include "control/store/sqlite_store.h"
#include "skiff/api/apps_v1.pb.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver {
namespace {

using api::apps::v1::Deployment;
using api::core::v1::Pod;

class ResourceStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-rs-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    store_ = store::SqliteStore::open({.path = (dir_ / "db").string(), .fsync = false});
    const auto& registry = api::Registry::builtin();
    deployments_ =
        std::make_unique<ResourceStorage>(*store_, *registry.byKind("apps/v1", "Deployment"));
    pods_ = std::make_unique<ResourceStorage>(*store_, *registry.byKind("v1", "Pod"));
    namespaces_ = std::make_unique<ResourceStorage>(*store_, *registry.byKind("v1", "Namespace"));
  }
  void TearDown() override {
    deployments_.reset();
    pods_.reset();
    namespaces_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  static MessagePtr deployment(const std::string& yaml) {
    auto d = std::make_unique<Deployment>();
    api::decodeYaml(yaml, *d);
    return d;
  }
  static int apiCode(const std::function<void()>& f) {
    try {
      f();
    } catch (const ApiError& e) {
      return e.code();
    }
    return 0;
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<ResourceStorage> deployments_, pods_, namespaces_;
};

TEST_F(ResourceStorageTest, CreateFillsServerFields) {
  auto created = deployments_->create(
      "web", deployment("metadata: {name: nginx}\nspec: {replicas: 2}\nstatus: {replicas: 9}\n"),
      false);
  const auto& m = meta(*created);
  EXPECT_EQ(m.namespace_(), "web");
  EXPECT_EQ(m.uid().size(), 36u);
  EXPECT_GT(m.creation_timestamp().seconds(), 1700000000);
  EXPECT_EQ(m.generation(), 1);
  EXPECT_FALSE(m.resource_version().empty());
  EXPECT_FALSE(dynamic_cast<Deployment&>(*created).has_status());  // status is the server's
  auto got = deployments_->get("web", "nginx");
  EXPECT_EQ(meta(*got).resource_version(), m.resource_version());
  EXPECT_EQ(meta(*got).uid(), m.uid());
  EXPECT_EQ(
      apiCode([&] { deployments_->create("web", deployment("metadata: {name: nginx}"), false); }),
      409);
  EXPECT_EQ(apiCode([&] { deployments_->get("web", "nope"); }), 404);
  EXPECT_EQ(apiCode([&] {
              deployments_->create("other", deployment("metadata: {name: x, namespace: web}"),
                                   false);
            }),
            400);
  EXPECT_EQ(apiCode([&] { deployments_->create("web", deployment("metadata: {}"), false); }), 422);
}

TEST_F(ResourceStorageTest, GenerateNameAndDryRun) {
  auto a = deployments_->create("web", deployment("metadata: {generateName: web-}"), false);
  EXPECT_TRUE(meta(*a).name().starts_with("web-"));
  EXPECT_EQ(meta(*a).name().size(), 9u);
  auto dry = deployments_->create("web", deployment("metadata: {name: dry}"), true);
  EXPECT_TRUE(meta(*dry).resource_version().empty());
  EXPECT_EQ(apiCode([&] { deployments_->get("web", "dry"); }), 404);
}

TEST_F(ResourceStorageTest, UpdateBumpsGenerationOnSpecChangesOnlyAndChecksVersions) {
  auto created =
      deployments_->create("web", deployment("metadata: {name: d}\nspec: {replicas: 1}"), false);
  std::string rv1 = meta(*created).resource_version();

  auto labels = deployment("metadata: {name: d, labels: {a: b}}\nspec: {replicas: 1}");
  auto relabelled = deployments_->update("web", "d", std::move(labels), false, false);
  EXPECT_EQ(meta(*relabelled).generation(), 1);
  EXPECT_NE(meta(*relabelled).resource_version(), rv1);
  EXPECT_EQ(meta(*relabelled).uid(), meta(*created).uid());

  auto scaled = deployments_->update(
      "web", "d", deployment("metadata: {name: d, labels: {a: b}}\nspec: {replicas: 3}"), false,
      false);
  EXPECT_EQ(meta(*scaled).generation(), 2);

  // A stale resourceVersion is a conflict; the same content again is not a new revision.
  auto stale =
      deployment("metadata: {name: d, resourceVersion: \"" + rv1 + "\"}\nspec: {replicas: 5}");
  EXPECT_EQ(apiCode([&] { deployments_->update("web", "d", std::move(stale), false, false); }),
            409);
  std::string rv3 = meta(*scaled).resource_version();
  auto same = deployments_->update(
      "web", "d", deployment("metadata: {name: d, labels: {a: b}}\nspec: {replicas: 3}"), false,
      false);
  EXPECT_EQ(meta(*same).resource_version(), rv3);
  EXPECT_EQ(apiCode([&] {
              deployments_->update("web", "nope", deployment("metadata: {name: nope}"), false,
                                   false);
            }),
            404);
  EXPECT_EQ(apiCode([&] {
              deployments_->update("web", "d", deployment("metadata: {name: other}"), false, false);
            }),
            400);
}

TEST_F(ResourceStorageTest, StatusIsKeptApartFromSpec) {
  deployments_->create("web", deployment("metadata: {name: d}\nspec: {replicas: 1}"), false);
  auto status = deployments_->update(
      "web", "d",
      deployment(
          "metadata: {name: d}\nspec: {replicas: 7}\nstatus: {replicas: 1, readyReplicas: 1}"),
      true, false);
  auto& d = dynamic_cast<Deployment&>(*status);
  EXPECT_EQ(d.status().ready_replicas(), 1);
  EXPECT_EQ(d.spec().replicas(), 1);  // the status subresource ignores the spec
  EXPECT_EQ(meta(d).generation(), 1);
  auto main = deployments_->update(
      "web", "d", deployment("metadata: {name: d}\nspec: {replicas: 2}\nstatus: {replicas: 0}"),
      false, false);
  auto& d2 = dynamic_cast<Deployment&>(*main);
  EXPECT_EQ(d2.status().ready_replicas(), 1);  // and the main resource ignores the status
  EXPECT_EQ(d2.spec().replicas(), 2);
}

TEST_F(ResourceStorageTest, UpdateWithRetriesAStaleSuggestionOnTheCurrentObject) {
  deployments_->create("web", deployment("metadata: {name: d}\nspec: {replicas: 1}"), false);
  MessagePtr stale = deployments_->get("web", "d");
  // Someone else writes after the copy was taken: the copy is now a revision behind.
  auto labelled = deployments_->get("web", "d");
  (*mutableMeta(*labelled).mutable_labels())["tier"] = "front";
  deployments_->update("web", "d", std::move(labelled), false, false);

  int calls = 0;
  auto scaled = deployments_->updateWith(
      "web", "d",
      [&](google::protobuf::Message& object) {
        ++calls;
        dynamic_cast<Deployment&>(object).mutable_spec()->set_replicas(5);
      },
      false, stale.get());
  EXPECT_EQ(calls, 2);  // the stale copy, then the object read again
  auto now = deployments_->get("web", "d");
  auto& d = dynamic_cast<Deployment&>(*now);
  EXPECT_EQ(d.spec().replicas(), 5);
  EXPECT_EQ(meta(d).labels().at("tier"), "front");  // the other write is kept
  EXPECT_EQ(meta(d).resource_version(), meta(*scaled).resource_version());

  // A refusal from the mutation is not retried, and nothing is written.
  EXPECT_EQ(apiCode([&] {
              deployments_->updateWith(
                  "web", "d",
                  [&](google::protobuf::Message&) {
                    throw conflict({"apps", "deployments"}, "d", "refused");
                  },
                  false, nullptr);
            }),
            409);
  EXPECT_EQ(meta(*deployments_->get("web", "d")).resource_version(), meta(d).resource_version());
}

TEST_F(ResourceStorageTest, FinalizersHoldDeletionUntilRemoved) {
  deployments_->create("web", deployment("metadata: {name: d, finalizers: [example.com/hold]}"),
                       false);
  auto marked = deployments_->remove("web", "d", {}, false);
  EXPECT_TRUE(meta(*marked).has_deletion_timestamp());
  auto still = deployments_->get("web", "d");
  EXPECT_TRUE(meta(*still).has_deletion_timestamp());
  auto cleared = deployment("metadata: {name: d}");
  deployments_->update("web", "d", std::move(cleared), false, false);
  EXPECT_EQ(apiCode([&] { deployments_->get("web", "d"); }), 404);
}

TEST_F(ResourceStorageTest, PodsOnNodesAreDeletedGracefully) {
  auto pod = std::make_unique<Pod>();
  api::decodeYaml("metadata: {name: p}\nspec: {nodeName: n1, containers: [{name: c, image: i}]}",
                  *pod);
  pods_->create("default", std::move(pod), false);
  auto marked = pods_->remove("default", "p", {}, false);
  EXPECT_EQ(meta(*marked).deletion_grace_period_seconds(), 30);
  EXPECT_NO_THROW(pods_->get("default", "p"));
  api::meta::v1::DeleteOptions now;
  now.set_grace_period_seconds(0);
  pods_->remove("default", "p", now, false);
  EXPECT_EQ(apiCode([&] { pods_->get("default", "p"); }), 404);
  auto unscheduled = std::make_unique<Pod>();
  api::decodeYaml("metadata: {name: q}", *unscheduled);
  pods_->create("default", std::move(unscheduled), false);
  pods_->remove("default", "q", {}, false);
  EXPECT_EQ(apiCode([&] { pods_->get("default", "q"); }), 404);
}

TEST_F(ResourceStorageTest, DeletePreconditions) {
  auto created = deployments_->create("web", deployment("metadata: {name: d}"), false);
  api::meta::v1::DeleteOptions wrong;
  wrong.mutable_preconditions()->set_uid("not-it");
  EXPECT_EQ(apiCode([&] { deployments_->remove("web", "d", wrong, false); }), 409);
  api::meta::v1::DeleteOptions right;
  right.mutable_preconditions()->set_resource_version(meta(*created).resource_version());
  deployments_->remove("web", "d", right, false);
  EXPECT_EQ(apiCode([&] { deployments_->remove("web", "d", {}, false); }), 404);
}

TEST_F(ResourceStorageTest, ListsWithSelectorsAndPagesAtOneRevision) {
  for (int i = 0; i < 10; ++i) {
    deployments_->create(i < 5 ? "a" : "b",
                         deployment("metadata: {name: d" + std::to_string(i) +
                                    ", labels: {tier: " + (i % 2 == 0 ? "front" : "back") + "}}"),
                         false);
  }
  EXPECT_EQ(deployments_->list("a", {}).items.size(), 5u);
  EXPECT_EQ(deployments_->list("", {}).items.size(), 10u);
  ListRequest front{.labels = api::labels::Selector::parse("tier=front")};
  EXPECT_EQ(deployments_->list("", front).items.size(), 5u);
  ListRequest by_name{.fields = api::fields::Selector::parse("metadata.name=d3")};
  ASSERT_EQ(deployments_->list("", by_name).items.size(), 1u);

  ListRequest page{.limit = 4};
  auto first = deployments_->list("", page);
  ASSERT_EQ(first.items.size(), 4u);
  ASSERT_FALSE(first.continue_token.empty());
  deployments_->create("a", deployment("metadata: {name: late}"), false);  // not in this list
  std::vector<std::string> names;
  for (const auto& o : first.items)
    names.push_back(meta(*o).name());
  std::string token = first.continue_token;
  while (!token.empty()) {
    auto next = deployments_->list("", {.limit = 4, .continue_token = token});
    EXPECT_EQ(next.resource_version, first.resource_version);
    for (const auto& o : next.items)
      names.push_back(meta(*o).name());
    token = next.continue_token;
  }
  EXPECT_EQ(names.size(), 10u);
  EXPECT_EQ(std::count(names.begin(), names.end(), "late"), 0);
  EXPECT_EQ(apiCode([&] { deployments_->list("", {.continue_token = "garbage!"}); }), 400);
  EXPECT_EQ(apiCode([&] { deployments_->list("", {.resource_version = "99999"}); }), 504);
}

TEST_F(ResourceStorageTest, WatchEventsCarryObjectsAndVersions) {
  auto created = deployments_->create("web", deployment("metadata: {name: d}"), false);
  int64_t rv = std::stoll(meta(*created).resource_version());
  auto watch = deployments_->watchStore("web", rv);
  deployments_->update("web", "d", deployment("metadata: {name: d, labels: {x: y}}"), false, false);
  deployments_->remove("web", "d", {}, false);
  std::vector<store::Event> events;
  while (events.size() < 2 && watch->next(events, std::chrono::seconds(5))) {
  }
  ASSERT_EQ(events.size(), 2u);
  auto modified = deployments_->toWatchEvent(events[0]);
  EXPECT_EQ(modified.type, WatchEvent::Type::kModified);
  EXPECT_EQ(meta(*modified.object).labels().at("x"), "y");
  auto deleted = deployments_->toWatchEvent(events[1]);
  EXPECT_EQ(deleted.type, WatchEvent::Type::kDeleted);
  EXPECT_EQ(meta(*deleted.object).name(), "d");
  EXPECT_EQ(meta(*deleted.object).resource_version(), std::to_string(deleted.revision));
}

TEST_F(ResourceStorageTest, ClusterScopedObjectsHaveNoNamespace) {
  auto ns = std::make_unique<api::core::v1::Namespace>();
  api::decodeYaml("metadata: {name: web}", *ns);
  auto created = namespaces_->create("web", std::move(ns), false);
  EXPECT_EQ(meta(*created).namespace_(), "");
  EXPECT_NO_THROW(namespaces_->get("", "web"));
  EXPECT_EQ(namespaces_->key("ignored", "web"), "/registry/namespaces/web");
}

// A store that could not be reached is a 503 (nothing was done: clients may resend); a write the
// store took without confirming is a 504 Timeout, which clients do not resend (it may have landed).
TEST(StoreErrors, UnavailableIs503AndAnUnknownOutcomeIs504) {
  auto httpOf = [](store::ErrorCode code) {
    try {
      throwStoreError(store::StoreError(code, "etcd says"), {"", "configmaps"}, "c");
    } catch (const ApiError& e) {
      return std::to_string(e.code()) + " " + e.reason();
    }
    return std::string("no error");
  };
  EXPECT_EQ(httpOf(store::ErrorCode::kUnavailable), "503 ServiceUnavailable");
  EXPECT_EQ(httpOf(store::ErrorCode::kOutcomeUnknown), "504 Timeout");
}

}  // namespace
}  // namespace skiff::apiserver

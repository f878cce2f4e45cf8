#include "control/client/informer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "control/client/informer_internal.h"
#include "control/client/typed.h"
#include "skiff/api/core_v1.pb.h"
#include "tests/control/client/test_server.h"

namespace skiff::client {
namespace {

using namespace std::chrono_literals;
using testing::ServerMode;
using testing::TestApiServer;
using ::testing::UnorderedElementsAre;
namespace core = api::core::v1;

core::ConfigMap configMap(const std::string& name, const std::string& ns = "default",
                          const std::string& app = "") {
  core::ConfigMap cm;
  cm.mutable_metadata()->set_name(name);
  cm.mutable_metadata()->set_namespace_(ns);
  if (!app.empty()) (*cm.mutable_metadata()->mutable_labels())["app"] = app;
  (*cm.mutable_data())["v"] = "1";
  return cm;
}

core::Pod pod(const std::string& name, const std::string& node, const std::string& owner_uid = "",
              const std::string& ns = "default") {
  core::Pod p;
  p.mutable_metadata()->set_name(name);
  p.mutable_metadata()->set_namespace_(ns);
  if (!owner_uid.empty()) {
    auto* ref = p.mutable_metadata()->add_owner_references();
    ref->set_api_version("apps/v1");
    ref->set_kind("ReplicaSet");
    ref->set_name("rs");
    ref->set_uid(owner_uid);
  }
  (*p.mutable_metadata()->mutable_labels())["app"] = name.substr(0, name.find('-'));
  p.mutable_spec()->set_node_name(node);
  auto* c = p.mutable_spec()->add_containers();
  c->set_name("c");
  c->set_image("busybox");
  return p;
}

// Records what handlers are told, as "add ns/name", "update ns/name", "delete ns/name".
class Recorder {
 public:
  EventHandlers handlers() {
    return {
        .on_add = [this](const ObjectPtr& o) { record("add " + objectKey(*o)); },
        .on_update =
            [this](const ObjectPtr& old_object, const ObjectPtr& new_object) {
              record((old_object == new_object ? "resync " : "update ") + objectKey(*new_object));
            },
        .on_delete = [this](const ObjectPtr& o) { record("delete " + objectKey(*o)); },
    };
  }
  // Waits until `event` was recorded; returns every event so far.
  bool waitFor(const std::string& event, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] {
      return std::find(events_.begin(), events_.end(), event) != events_.end();
    });
  }
  std::vector<std::string> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }
  void clear() {
    std::lock_guard lock(mutex_);
    events_.clear();
  }

 private:
  void record(std::string e) {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(e));
    cv_.notify_all();
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::string> events_;
};

std::vector<std::string> names(const std::vector<ObjectPtr>& objects) {
  std::vector<std::string> out;
  for (const auto& o : objects)
    out.push_back(objectMeta(*o).name());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Informer, SyncsThenFollowsAddsUpdatesAndDeletes) {
  TestApiServer server(ServerMode::kPlain);
  ClientPtr client = server.client();
  create(*client, configMap("a"));
  create(*client, configMap("b", "kube-system"));

  SharedInformerFactory factory(*client);
  SharedInformer& informer = factory.informerFor<core::ConfigMap>();
  Recorder recorder;
  informer.addEventHandler(recorder.handlers());
  EXPECT_FALSE(informer.hasSynced());
  factory.start();
  ASSERT_TRUE(factory.waitForCacheSync(10s));
  EXPECT_TRUE(informer.hasSynced());
  EXPECT_THAT(recorder.events(), UnorderedElementsAre("add default/a", "add kube-system/b"));
  EXPECT_EQ(informer.cache().size(), 2u);
  EXPECT_FALSE(informer.lastSyncResourceVersion().empty());

  recorder.clear();
  create(*client, configMap("c"));
  ASSERT_TRUE(recorder.waitFor("add default/c"));
  client->patch(resourceTypeOf<core::ConfigMap>(), "default", "a", PatchType::kMerge,
                R"({"data":{"v":"2"}})");
  ASSERT_TRUE(recorder.waitFor("update default/a"));
  remove<core::ConfigMap>(*client, "kube-system", "b");
  ASSERT_TRUE(recorder.waitFor("delete kube-system/b"));
  EXPECT_EQ(recorder.events(), (std::vector<std::string>{"add default/c", "update default/a",
                                                         "delete kube-system/b"}));

  const Cache& cache = informer.cache();
  ObjectPtr a = cache.get("default/a");
  ASSERT_TRUE(a);
  EXPECT_EQ(as<core::ConfigMap>(a).data().at("v"), "2");
  EXPECT_EQ(cache.get("default", "a"), a);
  EXPECT_FALSE(cache.get("kube-system/b"));
  EXPECT_THAT(cache.keys(), UnorderedElementsAre("default/a", "default/c"));

  // A handler added late hears of everything cached first.
  Recorder late;
  informer.addEventHandler(late.handlers());
  EXPECT_THAT(late.events(), UnorderedElementsAre("add default/a", "add default/c"));
}

TEST(Informer, TheFactorySharesOneInformerPerResourceAndOptions) {
  TestApiServer server(ServerMode::kPlain);
  ClientPtr client = server.client();
  SharedInformerFactory factory(*client);
  SharedInformer& one = factory.informerFor<core::ConfigMap>();
  SharedInformer& two = factory.informerFor(resourceTypeOf<core::ConfigMap>());
  EXPECT_EQ(&one, &two);
  SharedInformer& scoped = factory.informerFor(resourceTypeOf<core::ConfigMap>(), {.ns = "x"});
  EXPECT_NE(&one, &scoped);
  EXPECT_NE(static_cast<void*>(&factory.informerFor<core::Pod>()), static_cast<void*>(&one));
  EXPECT_EQ(one.type().kind, "ConfigMap");
}

TEST(Informer, ListsInPagesAndHonoursNamespaceAndSelectors) {
  TestApiServer server(ServerMode::kPlain);
  ClientPtr client = server.client();
  // More than one page of 500.
  for (int i = 0; i < 520; ++i)
    create(*client, configMap("cm-" + std::to_string(i), "default", i < 3 ? "web" : "other"));
  create(*client, configMap("elsewhere", "kube-system", "web"));

  SharedInformerFactory factory(*client);
  SharedInformer& all = factory.informerFor<core::ConfigMap>();
  SharedInformer& web = factory.informerFor(resourceTypeOf<core::ConfigMap>(),
                                            {.ns = "default", .label_selector = "app=web"});
  factory.start();
  ASSERT_TRUE(factory.waitForCacheSync(20s));
  EXPECT_EQ(all.cache().size(), 521u);
  EXPECT_EQ(names(web.cache().list()), (std::vector<std::string>{"cm-0", "cm-1", "cm-2"}));

  EXPECT_EQ(all.cache().list("default", "").size(), 520u);
  EXPECT_EQ(names(all.cache().list("", "app=web")),
            (std::vector<std::string>{"cm-0", "cm-1", "cm-2", "elsewhere"}));
  EXPECT_EQ(names(all.cache().list("kube-system", "app in (web)")),
            (std::vector<std::string>{"elsewhere"}));
  EXPECT_EQ(all.cache().byIndex(kIndexNamespace, "kube-system").size(), 1u);
}

TEST(Informer, BuiltInAndCustomIndexes) {
  TestApiServer server(ServerMode::kPlain);
  ClientPtr client = server.client();
  create(*client, pod("web-1", "node-1", "uid-a"));
  create(*client, pod("web-2", "node-2", "uid-a"));
  create(*client, pod("db-1", "node-1", "uid-b", "kube-system"));
  create(*client, pod("pending", ""));

  SharedInformerFactory factory(*client);
  SharedInformer& pods = factory.informerFor<core::Pod>();
  pods.addIndex("image", [](const google::protobuf::Message& m) {
    std::vector<std::string> images;
    for (const auto& c : static_cast<const core::Pod&>(m).spec().containers())
      images.push_back(c.image());
    return images;
  });
  factory.start();
  ASSERT_TRUE(factory.waitForCacheSync(10s));
  EXPECT_THROW(pods.addIndex("late", {}), std::logic_error);

  const Cache& cache = pods.cache();
  EXPECT_EQ(names(cache.byIndex(kIndexNodeName, "node-1")),
            (std::vector<std::string>{"db-1", "web-1"}));
  EXPECT_EQ(names(cache.byIndex(kIndexOwner, "uid-a")),
            (std::vector<std::string>{"web-1", "web-2"}));
  EXPECT_EQ(names(cache.byIndex(kIndexNamespace, "default")),
            (std::vector<std::string>{"pending", "web-1", "web-2"}));
  EXPECT_EQ(cache.byIndex("image", "busybox").size(), 4u);
  EXPECT_TRUE(cache.byIndex(kIndexNodeName, "node-9").empty());
  EXPECT_THROW(cache.byIndex("no-such-index", "x"), std::invalid_argument);

  // Indexes follow changes: the scheduler binds the pending pod.
  client->bind("default", "pending", "node-2");
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (cache.byIndex(kIndexNodeName, "node-2").size() < 2 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(names(cache.byIndex(kIndexNodeName, "node-2")),
            (std::vector<std::string>{"pending", "web-2"}));
  remove<core::Pod>(*client, "default", "web-1", {.grace_period_seconds = 0});
  while (cache.byIndex(kIndexOwner, "uid-a").size() > 1 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(names(cache.byIndex(kIndexOwner, "uid-a")), (std::vector<std::string>{"web-2"}));
  EXPECT_EQ(names(cache.byIndex(kIndexNodeName, "node-1")), (std::vector<std::string>{"db-1"}));
}

TEST(Informer, RelistsAfterGoneWithDeletesAndUpdatesOfWhatChangedMeanwhile) {
  TestApiServer server(ServerMode::kPlain);
  ClientPtr client = server.client();
  create(*client, configMap("stays"));
  create(*client, configMap("changes"));
  create(*client, configMap("goes"));

  RestClientOptions quick{.max_retries = 0, .initial_backoff = 1ms};
  ClientPtr informer_client = server.client(quick);
  auto informer = std::make_unique<internal::Informer>(
      *informer_client, resourceTypeOf<core::ConfigMap>(), InformerOptions{});
  Recorder recorder;
  informer->addEventHandler(recorder.handlers());
  informer->start();
  ASSERT_TRUE(informer->waitForSync(10s));
  recorder.clear();

  // The informer loses the server; meanwhile the objects change and history is compacted.
  server.stopServing();
  ClientPtr side = makeRestClient({.server = server.sideUrl()});
  client::remove<core::ConfigMap>(*side, "default", "goes");
  side->patch(resourceTypeOf<core::ConfigMap>(), "default", "changes", PatchType::kMerge,
              R"({"data":{"v":"2"}})");
  create(*side, configMap("new"));
  server.compact();
  std::this_thread::sleep_for(300ms);  // a few failed reconnects, with backoff
  server.resumeServing();

  ASSERT_TRUE(recorder.waitFor("delete default/goes"));
  ASSERT_TRUE(recorder.waitFor("update default/changes"));
  ASSERT_TRUE(recorder.waitFor("add default/new"));
  EXPECT_THAT(recorder.events(), UnorderedElementsAre("delete default/goes",
                                                      "update default/changes", "add default/new"));
  EXPECT_EQ(as<core::ConfigMap>(informer->cache().get("default/changes")).data().at("v"), "2");
  EXPECT_FALSE(informer->cache().get("default/goes"));

  // And it keeps watching after the relist.
  recorder.clear();
  create(*client, configMap("after"));
  ASSERT_TRUE(recorder.waitFor("add default/after"));
  informer->stop();
}

TEST(Informer, ResumesFromTheLastRevisionWhenAWatchEnds) {
  TestApiServer server(ServerMode::kPlain, 1);
  ClientPtr client = server.client();
  internal::Informer informer(*client, resourceTypeOf<core::ConfigMap>(), {});
  informer.setWatchTimeoutSeconds(1);  // every watch ends after a second and is resumed
  Recorder recorder;
  informer.addEventHandler(recorder.handlers());
  informer.start();
  ASSERT_TRUE(informer.waitForSync(10s));
  for (int i = 0; i < 3; ++i) {
    create(*client, configMap("r" + std::to_string(i)));
    std::this_thread::sleep_for(700ms);
  }
  ASSERT_TRUE(recorder.waitFor("add default/r2"));
  // Across the resumed watches every object came exactly once, with no relist in between.
  EXPECT_EQ(recorder.events(),
            (std::vector<std::string>{"add default/r0", "add default/r1", "add default/r2"}));
  informer.stop();
}

TEST(Informer, ResyncRedeliversEveryObject) {
  TestApiServer server(ServerMode::kPlain);
  ClientPtr client = server.client();
  create(*client, configMap("x"));
  create(*client, configMap("y"));
  SharedInformerFactory factory(*client, {.resync_period = 200ms});
  Recorder recorder;
  factory.informerFor<core::ConfigMap>().addEventHandler(recorder.handlers());
  factory.start();
  ASSERT_TRUE(factory.waitForCacheSync(10s));
  ASSERT_TRUE(recorder.waitFor("resync default/x", 5s));
  ASSERT_TRUE(recorder.waitFor("resync default/y", 5s));
}

TEST(Informer, KeepsRetryingWhileTheServerIsDownAndStopsPromptly) {
  TestApiServer server(ServerMode::kPlain);
  ClientPtr client = server.client({.max_retries = 0});
  server.stopServing();
  SharedInformerFactory factory(*client);
  factory.informerFor<core::ConfigMap>();
  factory.start();
  EXPECT_FALSE(factory.waitForCacheSync(300ms));
  server.resumeServing();
  EXPECT_TRUE(factory.waitForCacheSync(10s));
  auto start = std::chrono::steady_clock::now();
  factory.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(Informer, ObjectKeys) {
  core::ConfigMap cm = configMap("n", "ns");
  EXPECT_EQ(objectKey(cm), "ns/n");
  core::Node node;
  node.mutable_metadata()->set_name("node-1");
  EXPECT_EQ(objectKey(node), "node-1");
  EXPECT_EQ(splitObjectKey("ns/n"), (std::pair<std::string, std::string>{"ns", "n"}));
  EXPECT_EQ(splitObjectKey("node-1"), (std::pair<std::string, std::string>{"", "node-1"}));
}

}  // namespace
}  // namespace skiff::client

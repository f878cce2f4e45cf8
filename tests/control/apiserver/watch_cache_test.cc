#include "control/apiserver/watch_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "control/api/codec.h"
#include "control/apiserver/object_meta.h"
#include "control/store/sqlite_store.h"
#include "skiff/api/core_v1.pb.h"
#include "tests/mocks/watch_counting_store.h"

namespace skiff::apiserver {
namespace {

using api::core::v1::Pod;
using namespace std::chrono_literals;

class WatchCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-wc-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    sqlite_ = store::SqliteStore::open({.path = (dir_ / "db").string(), .fsync = false});
    store_ = std::make_unique<skiff::store::testing::WatchCountingStore>(*sqlite_);
    const auto& registry = api::Registry::builtin();
    pods_ = std::make_unique<ResourceStorage>(*store_, *registry.byKind("v1", "Pod"));
    configmaps_ = std::make_unique<ResourceStorage>(*store_, *registry.byKind("v1", "ConfigMap"));
  }
  void TearDown() override {
    cache_.reset();
    pods_.reset();
    configmaps_.reset();
    store_.reset();
    sqlite_.reset();
    std::filesystem::remove_all(dir_);
  }

  WatchCache& start(WatchCacheOptions options = {}) {
    cache_ = std::make_unique<WatchCache>(*store_, *pods_, options);
    return *cache_;
  }
  int64_t createPod(const std::string& name, const std::string& node = "",
                    const std::string& ns = "default", const std::string& app = "web") {
    auto pod = std::make_unique<Pod>();
    pod->mutable_metadata()->set_name(name);
    (*pod->mutable_metadata()->mutable_labels())["app"] = app;
    pod->mutable_spec()->set_node_name(node);
    pod->mutable_spec()->add_containers()->set_name("c");
    return std::stoll(meta(*pods_->create(ns, std::move(pod), false)).resource_version());
  }
  int64_t relabel(const std::string& name, const std::string& app) {
    MessagePtr pod = pods_->get("default", name);
    (*mutableMeta(*pod).mutable_labels())["app"] = app;
    return std::stoll(
        meta(*pods_->update("default", name, std::move(pod), false, false)).resource_version());
  }
  // Waits until the cache has applied everything the store has.
  void caughtUp() {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (cache_->revision() < sqlite_->currentRevision() &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(2ms);
    }
    ASSERT_GE(cache_->revision(), sqlite_->currentRevision());
  }
  // Every item the watcher has now, as "TYPE name".
  static std::vector<std::string> drain(CacheWatcher& w, std::chrono::milliseconds wait = 200ms) {
    std::vector<std::string> seen;
    CacheWatcher::Item item;
    while (w.next(item, wait) == CacheWatcher::Next::kItem) {
      std::string_view type = item.type == WatchEvent::Type::kAdded      ? "ADDED"
                              : item.type == WatchEvent::Type::kModified ? "MODIFIED"
                                                                         : "DELETED";
      seen.push_back(std::string(type) + " " + meta(*item.object->object).name());
    }
    return seen;
  }
  static ListRequest selector(const std::string& labels, const std::string& fields = "") {
    return {.labels = api::labels::Selector::parse(labels),
            .fields = api::fields::Selector::parse(fields)};
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::SqliteStore> sqlite_;
  std::unique_ptr<skiff::store::testing::WatchCountingStore> store_;
  std::unique_ptr<ResourceStorage> pods_, configmaps_;
  std::unique_ptr<WatchCache> cache_;
};

TEST_F(WatchCacheTest, ListsFromMemoryWithSelectorsNamespacesAndTheNodeIndex) {
  createPod("a", "n1");
  createPod("b", "n2", "default", "db");
  WatchCache& cache = start();
  ASSERT_TRUE(cache.ready());
  createPod("c", "n1", "other");
  createPod("d", "", "default", "db");
  caughtUp();

  auto names = [](const ListResponse& r) {
    std::vector<std::string> out;
    for (const auto& o : r.items)
      out.push_back(meta(*o).name());
    return out;
  };
  auto all = cache.list("", {});
  ASSERT_TRUE(all);
  EXPECT_EQ(names(*all), (std::vector<std::string>{"a", "b", "d", "c"}));  // key order
  EXPECT_EQ(all->resource_version, std::to_string(sqlite_->currentRevision()));
  EXPECT_EQ(names(*cache.list("default", {})), (std::vector<std::string>{"a", "b", "d"}));
  EXPECT_EQ(names(*cache.list("", selector("app=db"))), (std::vector<std::string>{"b", "d"}));
  EXPECT_EQ(names(*cache.list("", selector("", "spec.nodeName=n1"))),
            (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(names(*cache.list("default", selector("", "spec.nodeName=n1"))),
            (std::vector<std::string>{"a"}));
  EXPECT_EQ(names(*cache.list("", selector("", "spec.nodeName="))),
            (std::vector<std::string>{"d"}));
  EXPECT_EQ(names(*cache.list("", selector("app=web", "spec.nodeName!=n1"))),
            (std::vector<std::string>{}));
  // Objects carry the revision that last wrote them.
  EXPECT_EQ(meta(*all->items[0]).resource_version(),
            meta(*pods_->get("default", "a")).resource_version());
  // A revision the cache has not reached is left to the store.
  EXPECT_FALSE(cache.list("", {}, sqlite_->currentRevision() + 5));
}

TEST_F(WatchCacheTest, ServesTheListsKubernetesServesFromItsCache) {
  EXPECT_TRUE(WatchCache::servesList({.resource_version = "0"}));
  EXPECT_TRUE(WatchCache::servesList({.limit = 10, .resource_version = "0"}));
  EXPECT_TRUE(WatchCache::servesList({.resource_version = "12"}));
  EXPECT_TRUE(
      WatchCache::servesList({.resource_version = "12", .resource_version_match = "NotOlderThan"}));
  EXPECT_FALSE(WatchCache::servesList({}));  // consistent read
  EXPECT_FALSE(WatchCache::servesList({.limit = 10, .resource_version = "12"}));
  EXPECT_FALSE(
      WatchCache::servesList({.resource_version = "12", .resource_version_match = "Exact"}));
  EXPECT_FALSE(WatchCache::servesList({.continue_token = "x", .resource_version = "0"}));
}

TEST_F(WatchCacheTest, ReplaysFromARevisionInTheRingThenFollows) {
  WatchCache& cache = start();
  createPod("p1");
  int64_t after_p2 = createPod("p2");
  createPod("p3");
  createPod("p4");
  caughtUp();
  auto w = cache.watch("default", {}, after_p2);
  EXPECT_EQ(drain(*w), (std::vector<std::string>{"ADDED p3", "ADDED p4"}));
  relabel("p3", "web2");
  auto removed = pods_->remove("default", "p4", {}, false);
  EXPECT_EQ(drain(*w), (std::vector<std::string>{"MODIFIED p3", "DELETED p4"}));

  // A delete reports the object as it last was, at the delete's revision.
  auto again = cache.watch("default", {}, after_p2);
  CacheWatcher::Item item;
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(again->next(item, 1s), CacheWatcher::Next::kItem);
  EXPECT_EQ(item.type, WatchEvent::Type::kDeleted);
  EXPECT_EQ(meta(*item.object->object).resource_version(),
            std::to_string(sqlite_->currentRevision()));
  EXPECT_EQ(meta(*item.object->object).labels().at("app"), "web");
  // The JSON is made once and shared.
  EXPECT_NE(item.object->json().find(R"("kind":"Pod")"), std::string::npos);
  EXPECT_EQ(&item.object->json(), &item.object->json());
}

TEST_F(WatchCacheTest, InitialStateThenChangesWithSelectorTransitions) {
  createPod("a");
  createPod("b", "", "default", "db");
  WatchCache& cache = start();
  auto w = cache.watch("", selector("app=web"), std::nullopt);
  EXPECT_EQ(drain(*w), (std::vector<std::string>{"ADDED a"}));
  relabel("b", "web");  // into the view
  relabel("a", "db");   // out of it
  relabel("a", "db2");  // not in view before or after: nothing
  createPod("c", "", "other");
  EXPECT_EQ(drain(*w), (std::vector<std::string>{"ADDED b", "DELETED a", "ADDED c"}));
}

TEST_F(WatchCacheTest, RevisionOlderThanTheRingIsGone) {
  WatchCache& cache = start({.min_capacity = 4, .max_capacity = 4});
  int64_t first = createPod("p0");
  for (int i = 1; i < 10; ++i)
    createPod("p" + std::to_string(i));
  caughtUp();
  EXPECT_EQ(cache.capacity(), 4u);
  EXPECT_GT(cache.oldestRevision(), first);
  try {
    cache.watch("default", {}, first);
    FAIL() << "expected 410";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 410);
    EXPECT_NE(std::string(e.what()).find("too old resource version"), std::string::npos);
  }
  // The newest four are still there.
  auto w = cache.watch("default", {}, cache.oldestRevision());
  EXPECT_EQ(drain(*w).size(), 4u);
}

TEST_F(WatchCacheTest, RingGrowsWhileItsEventsAreFresh) {
  WatchCache& cache = start({.min_capacity = 4, .max_capacity = 64});
  int64_t first = createPod("p0");
  for (int i = 1; i < 20; ++i)
    createPod("p" + std::to_string(i));
  caughtUp();
  EXPECT_EQ(cache.capacity(), 32u);
  auto w = cache.watch("default", {}, first - 1);
  EXPECT_EQ(drain(*w).size(), 20u);
}

TEST_F(WatchCacheTest, RingIsBoundedByBytesAsWellAsByCount) {
  // Room for 1024 events by count, but objects of over 4 KiB each and a 128 KiB budget.
  WatchCache& cache = start({.min_capacity = 1024, .max_capacity = 1024, .max_bytes = 128 << 10});
  auto pod = [&](const std::string& name) {
    auto p = std::make_unique<Pod>();
    p->mutable_metadata()->set_name(name);
    (*p->mutable_metadata()->mutable_annotations())["payload"] = std::string(4096, 'x');
    p->mutable_spec()->add_containers()->set_name("c");
    return p;
  };
  const int64_t first =
      std::stoll(meta(*pods_->create("default", pod("p0"), false)).resource_version());
  for (int i = 1; i < 100; ++i)
    pods_->create("default", pod("p" + std::to_string(i)), false);
  caughtUp();
  EXPECT_LE(cache.ringBytes(), size_t{128} << 10);
  EXPECT_GT(cache.ringSize(), 4u);   // it still holds what fits
  EXPECT_LT(cache.ringSize(), 20u);  // not 100 events of 4 KiB
  EXPECT_EQ(cache.capacity(), 1024u);
  EXPECT_EQ(cache.objectCount(), 100u);  // the objects themselves all stay
  try {
    cache.watch("default", {}, first);
    FAIL() << "expected 410";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 410);
  }
  // Every event still in the ring replays.
  auto w = cache.watch("default", {}, cache.oldestRevision());
  EXPECT_EQ(drain(*w).size(), cache.ringSize());
}

TEST_F(WatchCacheTest, RingsOfSeveralCachesShareOneByteBudget) {
  // Each ring may hold 256 KiB alone, but the two share 192 KiB: the one that writes on while
  // over it drops its own oldest events, keeping at least min_capacity.
  WatchCacheOptions options{.min_capacity = 4, .max_capacity = 4096, .max_bytes = 256 << 10};
  options.budget = std::make_shared<WatchCacheBudget>(192 << 10);
  WatchCache& pods = start(options);
  auto configmaps = std::make_unique<WatchCache>(*store_, *configmaps_, options);
  const std::string payload(2048, 'x');
  auto configMap = [&](int i) {
    auto c = std::make_unique<api::core::v1::ConfigMap>();
    c->mutable_metadata()->set_name("c" + std::to_string(i));
    (*c->mutable_data())["payload"] = payload;
    return c;
  };
  auto pod = [&](int i) {
    auto p = std::make_unique<Pod>();
    p->mutable_metadata()->set_name("p" + std::to_string(i));
    (*p->mutable_metadata()->mutable_annotations())["payload"] = payload;
    p->mutable_spec()->add_containers()->set_name("c");
    return p;
  };
  auto bothCaughtUp = [&] {
    caughtUp();
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (configmaps->revision() < sqlite_->currentRevision() &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(2ms);
    }
    ASSERT_GE(configmaps->revision(), sqlite_->currentRevision());
  };
  // The pods' ring first fills most of the budget, then ConfigMaps write on.
  for (int i = 0; i < 15; ++i)
    pods_->create("default", pod(i), false);
  bothCaughtUp();
  const size_t pods_alone = pods.ringBytes();
  EXPECT_EQ(pods.ringSize(), 15u);
  EXPECT_GT(pods_alone, size_t{64} << 10);
  EXPECT_LT(pods_alone, size_t{160} << 10);
  for (int i = 0; i < 200; ++i) {
    configmaps_->create("default", configMap(i), false);
    if (i % 50 == 49) {
      bothCaughtUp();
      EXPECT_EQ(options.budget->usedBytes(), pods.ringBytes() + configmaps->ringBytes());
      EXPECT_LE(options.budget->usedBytes(), size_t{192} << 10);
    }
  }
  // ConfigMaps paid for the overflow: the pods' ring is as it was, theirs holds what is left.
  EXPECT_EQ(pods.ringBytes(), pods_alone);
  EXPECT_GT(configmaps->ringSize(), 4u);
  EXPECT_GT(configmaps->ringBytes(), (size_t{192} << 10) - pods_alone - (size_t{16} << 10));
  // Pods written now, over the budget, drop the pods' oldest events (down to min_capacity).
  for (int i = 15; i < 75; ++i)
    pods_->create("default", pod(i), false);
  bothCaughtUp();
  EXPECT_LE(options.budget->usedBytes(), size_t{192} << 10);
  EXPECT_GE(pods.ringSize(), 4u);
  // What each ring holds still replays; older is 410 Gone.
  auto w = configmaps->watch("default", {}, configmaps->oldestRevision());
  EXPECT_EQ(drain(*w).size(), configmaps->ringSize());
  configmaps->stopWatching(w);
  try {
    configmaps->watch("default", {}, configmaps->oldestRevision() - 1);
    FAIL() << "expected 410";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 410);
  }
  // A cache that goes away gives its bytes back.
  configmaps.reset();
  EXPECT_EQ(options.budget->usedBytes(), pods.ringBytes());
}

TEST_F(WatchCacheTest, FansOutToAThousandWatchersOnOneStoreWatch) {
  WatchCache& cache = start();
  EXPECT_EQ(store_->totalWatches(), 1);
  std::vector<CacheWatcherPtr> on_n1, everyone;
  for (int i = 0; i < 500; ++i) {
    on_n1.push_back(cache.watch("", selector("", "spec.nodeName=n1"), std::nullopt));
    everyone.push_back(cache.watch("", {}, std::nullopt));
  }
  EXPECT_EQ(cache.watcherCount(), 1000u);
  for (int i = 0; i < 10; ++i)
    createPod("p" + std::to_string(i), i % 2 == 0 ? "n1" : "n2");
  caughtUp();
  for (const auto& w : on_n1)
    EXPECT_EQ(w->queued(), 5u);
  for (const auto& w : everyone)
    EXPECT_EQ(w->queued(), 10u);
  EXPECT_EQ(drain(*on_n1[0], 10ms),
            (std::vector<std::string>{"ADDED p0", "ADDED p2", "ADDED p4", "ADDED p6", "ADDED p8"}));
  // A pod moving off the node is seen leaving by that node's watchers.
  MessagePtr pod = pods_->get("default", "p0");
  dynamic_cast<Pod&>(*pod).mutable_spec()->set_node_name("n3");
  pods_->update("default", "p0", std::move(pod), false, false);
  EXPECT_EQ(drain(*on_n1[0]), (std::vector<std::string>{"DELETED p0"}));
  EXPECT_EQ(store_->totalWatches(), 1);
  for (const auto& w : on_n1)
    cache.stopWatching(w);
  EXPECT_EQ(cache.watcherCount(), 500u);
}

TEST_F(WatchCacheTest, SlowWatcherIsDroppedWithoutHoldingBackOthers) {
  WatchCache& cache = start({.watcher_queue = 8});
  auto slow = cache.watch("", {}, std::nullopt);
  auto fast = cache.watch("", {}, std::nullopt);
  std::atomic<int> received{0};
  std::thread reader([&] {
    CacheWatcher::Item item;
    while (received < 50) {
      if (fast->next(item, 5s) != CacheWatcher::Next::kItem) return;
      ++received;
    }
  });
  for (int i = 0; i < 50; ++i) {
    createPod("p" + std::to_string(i));
    // Let the fast one keep up: it must not be dropped.
    auto deadline = std::chrono::steady_clock::now() + 2s;
    while (received < i + 1 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
  }
  reader.join();
  EXPECT_EQ(received.load(), 50);
  EXPECT_FALSE(fast->dropped());
  EXPECT_TRUE(slow->dropped());
  EXPECT_EQ(cache.watcherCount(), 1u);
  // What it had queued is still delivered, then its stream ends.
  EXPECT_EQ(drain(*slow, 10ms).size(), 8u);
  CacheWatcher::Item item;
  EXPECT_EQ(slow->next(item, 10ms), CacheWatcher::Next::kEnded);
}

TEST_F(WatchCacheTest, BookmarkCarriesTheCacheRevisionOnceEverythingIsDelivered) {
  WatchCache& cache = start();
  auto w = cache.watch("", {}, std::nullopt);
  createPod("a");
  caughtUp();
  EXPECT_EQ(w->bookmarkRevision(), std::nullopt);  // "a" is not delivered yet
  drain(*w, 10ms);
  EXPECT_EQ(w->bookmarkRevision(), sqlite_->currentRevision());
  // Writes elsewhere move the revision on (the store's progress) without events.
  auto cm = std::make_unique<api::core::v1::ConfigMap>();
  cm->mutable_metadata()->set_name("x");
  configmaps_->create("default", std::move(cm), false);
  caughtUp();
  EXPECT_EQ(w->bookmarkRevision(), sqlite_->currentRevision());
  EXPECT_EQ(w->queued(), 0u);
  // A watch from a revision the cache has not reached bookmarks no lower than it.
  auto ahead = cache.watch("", {}, sqlite_->currentRevision() + 3);
  EXPECT_EQ(ahead->bookmarkRevision(), sqlite_->currentRevision() + 3);
}

TEST_F(WatchCacheTest, CountsTheEventsItReceives) {
  Metrics metrics;
  start({.metrics = &metrics});
  createPod("a");
  createPod("b");
  caughtUp();
  EXPECT_NE(
      metrics.render().find(R"(apiserver_watch_cache_events_received_total{resource="pods"} 2)"),
      std::string::npos)
      << metrics.render();
}

TEST_F(WatchCacheTest, EventsUpToAWatchStartAreSkipped) {
  WatchCache& cache = start();
  createPod("a");
  caughtUp();
  int64_t now = sqlite_->currentRevision();
  auto w = cache.watch("", {}, now);
  createPod("b");
  EXPECT_EQ(drain(*w), (std::vector<std::string>{"ADDED b"}));
}

}  // namespace
}  // namespace skiff::apiserver

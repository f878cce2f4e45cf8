#include "scheduler/cache.h"

#include <gtest/gtest.h>

#include "tests/scheduler/test_objects.h"

namespace skiff::scheduler {
namespace {

using testing::NodeBuilder;
using testing::PodBuilder;

TEST(PodRequests, InitContainersMaxRuleAndOverhead) {
  struct Case {
    const char* name;
    Pod pod;
    int64_t cpu;
    int64_t memory;
  };
  const Case cases[] = {
      {"containers sum", PodBuilder("a").req("500m", "1Gi").container("250m", "1Gi").build(), 750,
       2LL << 30},
      {"init larger than sum", PodBuilder("b").req("500m", "1Gi").init("2", "512Mi").build(), 2000,
       1LL << 30},
      {"overhead added", PodBuilder("c").req("1", "1Gi").overhead("100m", "64Mi").build(), 1100,
       (1LL << 30) + (64LL << 20)},
      {"sidecar adds to everything after it",
       PodBuilder("d").req("1", "1Gi").init("200m", "100Mi", true).init("500m", "100Mi").build(),
       1200, (1LL << 30) + (100LL << 20)},
      {"no requests", PodBuilder("e").build(), 0, 0},
  };
  for (const Case& c : cases) {
    const Resource r = podRequests(c.pod);
    EXPECT_EQ(r.milli_cpu, c.cpu) << c.name;
    EXPECT_EQ(r.memory, c.memory) << c.name;
  }
  const Resource nz = podNonZeroRequests(PodBuilder("e").build());
  EXPECT_EQ(nz.milli_cpu, kDefaultMilliCpuRequest);
  EXPECT_EQ(nz.memory, kDefaultMemoryRequest);
}

TEST(NodeInfo, AddRemovePodsTracksRequestsAndPorts) {
  NodeInfo info(NodeBuilder("n1").ptr());
  EXPECT_EQ(info.allocatable().milli_cpu, 4000);
  EXPECT_EQ(info.allocatable().allowed_pods, 110);
  info.addPod(PodInfo::make(PodBuilder("a").req("1", "1Gi").hostPort(80).node("n1").ptr()));
  info.addPod(PodInfo::make(PodBuilder("b").req("500m").node("n1").ptr()));
  EXPECT_EQ(info.requested().milli_cpu, 1500);
  EXPECT_EQ(info.nonZeroRequested().memory, (1LL << 30) + kDefaultMemoryRequest);
  EXPECT_TRUE(info.portConflicts({"0.0.0.0", "TCP", 80}));
  EXPECT_TRUE(info.portConflicts({"10.0.0.1", "TCP", 80}));
  EXPECT_FALSE(info.portConflicts({"0.0.0.0", "UDP", 80}));
  EXPECT_TRUE(info.removePod("default/a"));
  EXPECT_FALSE(info.removePod("default/a"));
  EXPECT_EQ(info.requested().milli_cpu, 500);
  EXPECT_FALSE(info.portConflicts({"0.0.0.0", "TCP", 80}));
}

struct FakeClock {
  Cache::Clock::time_point now{};
  Cache::ClockFn fn() {
    return [this] { return now; };
  }
};

TEST(Cache, AssumedPodCountsUntilForgotten) {
  FakeClock clock;
  Cache cache(std::chrono::seconds(30), clock.fn());
  cache.addNode(NodeBuilder("n1").ptr());
  Snapshot snap;
  cache.updateSnapshot(snap);
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap.get("n1")->requested().milli_cpu, 0);

  cache.assumePod(PodBuilder("p").req("1").node("n1").ptr());
  EXPECT_TRUE(cache.isAssumed("default/p"));
  EXPECT_THROW(cache.assumePod(PodBuilder("p").req("1").node("n1").ptr()), CacheError);
  EXPECT_THROW(cache.assumePod(PodBuilder("q").req("1").ptr()), CacheError);
  // The old snapshot is immutable; a refreshed one sees the assumption.
  EXPECT_EQ(snap.get("n1")->requested().milli_cpu, 0);
  cache.updateSnapshot(snap);
  EXPECT_EQ(snap.get("n1")->requested().milli_cpu, 1000);

  cache.forgetPod("default/p");
  EXPECT_FALSE(cache.isAssumed("default/p"));
  EXPECT_THROW(cache.forgetPod("default/p"), CacheError);
  cache.updateSnapshot(snap);
  EXPECT_EQ(snap.get("n1")->requested().milli_cpu, 0);
  EXPECT_EQ(cache.podCount(), 0u);
}

TEST(Cache, AssumptionExpiresOnlyAfterBindingFinishedAndTtl) {
  FakeClock clock;
  Cache cache(std::chrono::seconds(30), clock.fn());
  cache.addNode(NodeBuilder("n1").ptr());
  cache.assumePod(PodBuilder("p").req("1").node("n1").ptr());
  clock.now += std::chrono::minutes(5);
  EXPECT_TRUE(cache.cleanupExpired().empty()) << "binding still in flight";
  cache.finishBinding("default/p");
  clock.now += std::chrono::seconds(29);
  EXPECT_TRUE(cache.cleanupExpired().empty());
  clock.now += std::chrono::seconds(1);
  EXPECT_EQ(cache.cleanupExpired(), std::vector<std::string>{"default/p"});
  EXPECT_EQ(cache.podCount(), 0u);
}

TEST(Cache, InformerConfirmsAssumptionAndMovesIt) {
  FakeClock clock;
  Cache cache(std::chrono::seconds(30), clock.fn());
  cache.addNode(NodeBuilder("n1").ptr());
  cache.addNode(NodeBuilder("n2").ptr());
  cache.assumePod(PodBuilder("p").req("1").node("n1").ptr());
  cache.finishBinding("default/p");
  // The bound pod shows up on another node (someone else bound it): it moves there.
  cache.addPod(PodBuilder("p").req("1").node("n2").ptr());
  EXPECT_FALSE(cache.isAssumed("default/p"));
  EXPECT_EQ(cache.nodeOf("default/p"), "n2");
  clock.now += std::chrono::hours(1);
  EXPECT_TRUE(cache.cleanupExpired().empty()) << "confirmed pods never expire";
  Snapshot snap;
  cache.updateSnapshot(snap);
  EXPECT_EQ(snap.get("n1")->requested().milli_cpu, 0);
  EXPECT_EQ(snap.get("n2")->requested().milli_cpu, 1000);
  cache.removePod("default/p");
  cache.updateSnapshot(snap);
  EXPECT_EQ(snap.get("n2")->pods().size(), 0u);
}

TEST(Cache, SnapshotIsIncrementalAndTracksMembership) {
  Cache cache;
  for (int i = 0; i < 5; ++i)
    cache.addNode(NodeBuilder("n" + std::to_string(i)).ptr());
  Snapshot snap;
  cache.updateSnapshot(snap);
  ASSERT_EQ(snap.size(), 5u);
  const NodeInfoPtr untouched = snap.nodes()[0];
  cache.addPod(PodBuilder("p").req("1").node("n3").antiAffinity("app", "x").ptr());
  cache.updateSnapshot(snap);
  EXPECT_EQ(snap.nodes()[0], untouched) << "unchanged nodes are shared, not copied";
  EXPECT_EQ(snap.get("n3")->pods().size(), 1u);
  ASSERT_EQ(snap.nodesWithRequiredAntiAffinity().size(), 1u);
  EXPECT_EQ(snap.nodesWithRequiredAntiAffinity()[0]->name(), "n3");

  // A pod bound to a node the cache has not seen yet waits in a placeholder.
  cache.addPod(PodBuilder("early").req("1").node("n9").ptr());
  cache.updateSnapshot(snap);
  EXPECT_EQ(snap.size(), 5u);
  cache.addNode(NodeBuilder("n9").ptr());
  cache.updateSnapshot(snap);
  ASSERT_EQ(snap.size(), 6u);
  EXPECT_EQ(snap.get("n9")->requested().milli_cpu, 1000);

  cache.removeNode("n3");
  cache.updateSnapshot(snap);
  EXPECT_EQ(snap.size(), 5u);
  EXPECT_EQ(snap.get("n3"), nullptr);
  EXPECT_TRUE(snap.nodesWithRequiredAntiAffinity().empty());
  EXPECT_EQ(cache.nodeCount(), 5u);
}

}  // namespace
}  // namespace skiff::scheduler

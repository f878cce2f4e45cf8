#include "scheduler/queue.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/scheduler/test_objects.h"

namespace skiff::scheduler {
namespace {

using testing::PodBuilder;
using namespace std::chrono_literals;

struct FakeClock {
  SchedulingQueue::Clock::time_point now{std::chrono::hours(1)};
  SchedulingQueue::ClockFn fn() {
    return [this] { return now; };
  }
};

std::string popName(SchedulingQueue& q) {
  QueuedPodInfo info;
  if (!q.tryPop(info)) return "";
  q.done(info.pod->key);
  return info.pod->pod->metadata().name();
}

TEST(SchedulingQueue, ActiveOrderIsPriorityThenAge) {
  FakeClock clock;
  SchedulingQueue q({}, clock.fn());
  q.add(PodBuilder("low-old").priority(1).ptr());
  clock.now += 1s;
  q.add(PodBuilder("high").priority(10).ptr());
  clock.now += 1s;
  q.add(PodBuilder("low-new").priority(1).ptr());
  q.add(PodBuilder("high").priority(10).ptr());  // already queued: keeps its place
  EXPECT_EQ(q.activeSize(), 3u);
  EXPECT_EQ(popName(q), "high");
  EXPECT_EQ(popName(q), "low-old");
  EXPECT_EQ(popName(q), "low-new");
  EXPECT_EQ(popName(q), "");
}

TEST(SchedulingQueue, BackoffDoublesUpToTheCap) {
  SchedulingQueue q;
  EXPECT_EQ(q.backoffDuration(1), 1000ms);
  EXPECT_EQ(q.backoffDuration(2), 2000ms);
  EXPECT_EQ(q.backoffDuration(3), 4000ms);
  EXPECT_EQ(q.backoffDuration(4), 8000ms);
  EXPECT_EQ(q.backoffDuration(5), 10000ms);
  EXPECT_EQ(q.backoffDuration(50), 10000ms);
}

TEST(SchedulingQueue, ErrorsBackOffThenReturn) {
  FakeClock clock;
  SchedulingQueue q({}, clock.fn());
  q.add(PodBuilder("p").ptr());
  QueuedPodInfo info;
  ASSERT_TRUE(q.tryPop(info));
  EXPECT_EQ(info.attempts, 1);
  q.addUnschedulable(std::move(info), /*unschedulable=*/false);
  EXPECT_EQ(q.backoffSize(), 1u);
  clock.now += 999ms;
  q.flushBackoff();
  EXPECT_EQ(q.activeSize(), 0u);
  clock.now += 1ms;
  q.flushBackoff();
  ASSERT_TRUE(q.tryPop(info));
  EXPECT_EQ(info.attempts, 2);
  q.addUnschedulable(std::move(info), false);
  clock.now += 1s;
  q.flushBackoff();
  EXPECT_EQ(q.activeSize(), 0u) << "second failure waits 2s";
  clock.now += 1s;
  q.flushBackoff();
  EXPECT_EQ(q.activeSize(), 1u);
}

TEST(SchedulingQueue, UnschedulablePodsWaitForARelevantEvent) {
  FakeClock clock;
  SchedulingQueue q({}, clock.fn());
  q.add(PodBuilder("cpu").ptr());
  q.add(PodBuilder("affinity").ptr());
  QueuedPodInfo a, b;
  ASSERT_TRUE(q.tryPop(a));
  ASSERT_TRUE(q.tryPop(b));
  a.unschedulable_plugins = {"NodeResourcesFit"};
  b.unschedulable_plugins = {"NodeAffinity"};
  q.addUnschedulable(std::move(a), true);
  q.addUnschedulable(std::move(b), true);
  EXPECT_EQ(q.unschedulableSize(), 2u);
  clock.now += 20s;
  q.flushBackoff();
  EXPECT_EQ(q.activeSize(), 0u) << "parked pods do not return by themselves";
  // A deleted pod frees resources: only the cpu-starved pod moves (its backoff is over).
  q.onEvent(ClusterEvent::kAssignedPodDelete);
  EXPECT_EQ(q.unschedulableSize(), 1u);
  EXPECT_EQ(popName(q), "cpu");
  // A new node can satisfy affinity.
  q.onEvent(ClusterEvent::kNodeAdd);
  EXPECT_EQ(popName(q), "affinity");
}

TEST(SchedulingQueue, EventDuringTheCycleSendsThePodToBackoff) {
  FakeClock clock;
  SchedulingQueue q({}, clock.fn());
  q.add(PodBuilder("p").ptr());
  QueuedPodInfo info;
  ASSERT_TRUE(q.tryPop(info));
  q.onEvent(ClusterEvent::kNodeAdd);  // while "p" is being scheduled
  info.unschedulable_plugins = {"NodeResourcesFit"};
  q.addUnschedulable(std::move(info), true);
  EXPECT_EQ(q.unschedulableSize(), 0u);
  EXPECT_EQ(q.backoffSize(), 1u);
}

TEST(SchedulingQueue, LongParkedPodsAreFlushed) {
  FakeClock clock;
  SchedulingQueue q({}, clock.fn());
  q.add(PodBuilder("p").ptr());
  QueuedPodInfo info;
  ASSERT_TRUE(q.tryPop(info));
  info.unschedulable_plugins = {"NodeAffinity"};
  q.addUnschedulable(std::move(info), true);
  clock.now += 4min;
  q.flushUnschedulableLeftovers();
  EXPECT_EQ(q.unschedulableSize(), 1u);
  clock.now += 1min;
  q.flushUnschedulableLeftovers();
  EXPECT_EQ(q.unschedulableSize(), 0u);
  EXPECT_EQ(popName(q), "p");
}

TEST(SchedulingQueue, UpdateAndRemove) {
  FakeClock clock;
  SchedulingQueue q({}, clock.fn());
  q.add(PodBuilder("p").ptr());
  QueuedPodInfo info;
  ASSERT_TRUE(q.tryPop(info));
  info.unschedulable_plugins = {"NodeAffinity"};
  q.addUnschedulable(std::move(info), true);
  clock.now += 2s;
  // The pod's spec changed (say its nodeSelector): it gets another chance right away.
  q.update(PodBuilder("p").nodeSelector("disk", "ssd").ptr());
  ASSERT_TRUE(q.tryPop(info));
  EXPECT_EQ(info.pod->pod->spec().node_selector().at("disk"), "ssd");
  q.done(info.pod->key);
  q.add(PodBuilder("gone").ptr());
  q.remove("default/gone");
  EXPECT_FALSE(q.contains("default/gone"));
  EXPECT_EQ(popName(q), "");
}

TEST(SchedulingQueue, PopBlocksUntilAddOrClose) {
  SchedulingQueue q;
  std::thread t([&] {
    std::this_thread::sleep_for(20ms);
    q.add(PodBuilder("late").ptr());
  });
  QueuedPodInfo info;
  ASSERT_TRUE(q.pop(info));
  EXPECT_EQ(info.pod->pod->metadata().name(), "late");
  t.join();
  std::thread c([&] {
    std::this_thread::sleep_for(20ms);
    q.close();
  });
  EXPECT_FALSE(q.pop(info));
  c.join();
}

}  // namespace
}  // namespace skiff::scheduler

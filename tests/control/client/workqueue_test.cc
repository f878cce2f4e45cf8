#include "control/client/workqueue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

namespace skiff::client {
namespace {

using namespace std::chrono_literals;

// A table of queue operations and what get() must hand out at each step.
struct Step {
  enum Op { kAdd, kGet, kDone, kExpectEmpty, kExpectLen };
  Op op;
  std::string key;  // for kAdd/kDone; the key get() must return for kGet
  size_t len = 0;
};

struct Case {
  std::string name;
  std::vector<Step> steps;
};

TEST(WorkQueue, SemanticsTable) {
  using S = Step;
  const std::vector<Case> cases = {
      {"fifo", {{S::kAdd, "a"}, {S::kAdd, "b"}, {S::kGet, "a"}, {S::kGet, "b"}, {S::kExpectEmpty}}},
      {"dedupe while waiting",
       {{S::kAdd, "a"},
        {S::kAdd, "b"},
        {S::kAdd, "a"},
        {S::kExpectLen, "", 2},
        {S::kGet, "a"},
        {S::kGet, "b"},
        {S::kExpectEmpty}}},
      {"added while processing is held back until done",
       {{S::kAdd, "a"},
        {S::kGet, "a"},
        {S::kAdd, "a"},
        {S::kExpectEmpty},
        {S::kExpectLen, "", 0},
        {S::kDone, "a"},
        {S::kGet, "a"},
        {S::kDone, "a"},
        {S::kExpectEmpty}}},
      {"several adds while processing come back once",
       {{S::kAdd, "a"},
        {S::kGet, "a"},
        {S::kAdd, "a"},
        {S::kAdd, "a"},
        {S::kAdd, "b"},
        {S::kDone, "a"},
        {S::kGet, "b"},
        {S::kGet, "a"},
        {S::kExpectEmpty}}},
      {"done without re-add forgets the key",
       {{S::kAdd, "a"}, {S::kGet, "a"}, {S::kDone, "a"}, {S::kExpectEmpty}}},
      {"other keys flow while one is processing",
       {{S::kAdd, "a"},
        {S::kGet, "a"},
        {S::kAdd, "b"},
        {S::kAdd, "a"},
        {S::kGet, "b"},
        {S::kExpectEmpty},
        {S::kDone, "a"},
        {S::kGet, "a"}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    WorkQueue q;
    for (size_t i = 0; i < c.steps.size(); ++i) {
      const Step& s = c.steps[i];
      SCOPED_TRACE("step " + std::to_string(i));
      switch (s.op) {
        case S::kAdd:
          q.add(s.key);
          break;
        case S::kGet: {
          auto got = q.get(100ms);
          ASSERT_TRUE(got);
          EXPECT_EQ(*got, s.key);
          break;
        }
        case S::kDone:
          q.done(s.key);
          break;
        case S::kExpectEmpty:
          EXPECT_FALSE(q.get(10ms));
          break;
        case S::kExpectLen:
          EXPECT_EQ(q.len(), s.len);
          break;
      }
    }
  }
}

TEST(WorkQueue, NeverTwoWorkersOnOneKey) {
  WorkQueue q;
  std::mutex mutex;
  std::set<std::string> in_flight;
  std::atomic<int> overlaps{0};
  std::atomic<int> handled{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto key = q.get()) {
        {
          std::lock_guard lock(mutex);
          if (!in_flight.insert(*key).second) ++overlaps;
        }
        std::this_thread::sleep_for(50us);
        {
          std::lock_guard lock(mutex);
          in_flight.erase(*key);
        }
        ++handled;
        q.done(*key);
      }
    });
  }
  for (int i = 0; i < 5000; ++i)
    q.add("key-" + std::to_string(i % 7));
  // Drain, then stop.
  for (int i = 0; i < 200 && (q.len() > 0 || handled.load() == 0); ++i)
    std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(20ms);
  q.shutDown();
  for (auto& w : workers)
    w.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_GE(handled.load(), 7);
  EXPECT_LE(handled.load(), 5000);
}

TEST(WorkQueue, AddAfterDelaysAndTheEarlierDelayWins) {
  WorkQueue q;
  auto start = std::chrono::steady_clock::now();
  q.addAfter("late", 300ms);
  q.addAfter("late", 60ms);   // earlier: wins
  q.addAfter("late", 500ms);  // later: ignored
  EXPECT_FALSE(q.get(20ms));
  auto got = q.get(2s);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, "late");
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 55ms);
  EXPECT_LT(waited, 290ms);
  q.done("late");
  EXPECT_FALSE(q.get(400ms));  // the dropped later delays do not fire again

  q.addAfter("now", 0ms);
  EXPECT_EQ(q.len(), 1u);
}

TEST(WorkQueue, RateLimitedRequeueBacksOffPerKeyUntilForgotten) {
  WorkQueue q({.base_delay = 20ms, .max_delay = 80ms, .qps = 1000, .burst = 1000});
  auto delayOf = [&](const std::string& key) {
    auto start = std::chrono::steady_clock::now();
    q.addRateLimited(key);
    auto got = q.get(2s);
    EXPECT_TRUE(got);
    q.done(*got);
    return std::chrono::steady_clock::now() - start;
  };
  EXPECT_GE(delayOf("a"), 18ms);  // 20ms
  EXPECT_GE(delayOf("a"), 38ms);  // 40ms
  EXPECT_EQ(q.numRequeues("a"), 2);
  EXPECT_GE(delayOf("a"), 78ms);  // 80ms
  auto capped = delayOf("a");     // capped at 80ms
  EXPECT_GE(capped, 78ms);
  EXPECT_LT(capped, 160ms);
  EXPECT_EQ(q.numRequeues("a"), 4);
  EXPECT_LT(delayOf("b"), 40ms);  // another key starts at the base delay
  q.forget("a");
  EXPECT_EQ(q.numRequeues("a"), 0);
  EXPECT_LT(delayOf("a"), 40ms);
}

TEST(WorkQueue, TheTokenBucketLimitsOverallRequeues) {
  // Burst 2 at 10 qps: the third immediate requeue waits about 100ms for a token.
  WorkQueue q({.base_delay = 0ms, .max_delay = 0ms, .qps = 10, .burst = 2});
  auto start = std::chrono::steady_clock::now();
  q.addRateLimited("a");
  q.addRateLimited("b");
  q.addRateLimited("c");
  EXPECT_EQ(q.len(), 2u);
  for (int i = 0; i < 3; ++i) {
    auto got = q.get(2s);
    ASSERT_TRUE(got);
    q.done(*got);
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start, 90ms);
}

TEST(WorkQueue, ShutDownWakesWorkersDrainsAndIgnoresLaterAdds) {
  WorkQueue q;
  std::atomic<bool> woke{false};
  std::thread worker([&] {
    EXPECT_FALSE(q.get());
    woke = true;
  });
  std::this_thread::sleep_for(20ms);
  q.shutDown();
  worker.join();
  EXPECT_TRUE(woke.load());
  EXPECT_TRUE(q.shuttingDown());
  q.add("x");
  q.addAfter("y", 1ms);
  q.addRateLimited("z");
  EXPECT_EQ(q.len(), 0u);
  EXPECT_FALSE(q.get(10ms));

  WorkQueue draining;
  draining.add("a");
  draining.shutDown();
  auto got = draining.get();
  ASSERT_TRUE(got);  // what was queued before the shutdown is still handed out
  EXPECT_EQ(*got, "a");
  EXPECT_FALSE(draining.get());
}

}  // namespace
}  // namespace skiff::client

#include "endpoints/sync_runner.h"

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

namespace skiff::endpoints {
namespace {

using namespace std::chrono_literals;

bool waitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 2000ms) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return done();
}

TEST(BoundedFrequencyRunner, RunsWhenAskedAndCoalesces) {
  std::atomic<int> calls{0};
  BoundedFrequencyRunner runner([&] { ++calls; }, {.minInterval = 0ms, .maxInterval = 1h});
  runner.start();
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(calls.load(), 0);  // nothing asked, maxInterval far away
  runner.run();
  ASSERT_TRUE(waitFor([&] { return calls.load() == 1; }));
  runner.stop();
}

TEST(BoundedFrequencyRunner, BurstThenMinInterval) {
  std::atomic<int> calls{0};
  std::vector<std::chrono::steady_clock::time_point> at;
  std::mutex m;
  BoundedFrequencyRunner runner(
      [&] {
        std::lock_guard lock(m);
        at.push_back(std::chrono::steady_clock::now());
        ++calls;
      },
      {.minInterval = 100ms, .maxInterval = 1h, .burst = 2});
  runner.start();
  // Ask 5 times, waiting for each run that can happen: 2 at once, then one per 100 ms.
  for (int i = 0; i < 4; ++i) {
    runner.run();
    ASSERT_TRUE(waitFor([&] { return calls.load() == i + 1; }));
  }
  runner.stop();
  std::lock_guard lock(m);
  ASSERT_EQ(at.size(), 4u);
  EXPECT_LT(at[1] - at[0], 50ms);  // the burst
  EXPECT_GE(at[2] - at[1], 90ms);  // then rate limited
  EXPECT_GE(at[3] - at[2], 90ms);
}

TEST(BoundedFrequencyRunner, PeriodicAndRetry) {
  std::atomic<int> calls{0};
  BoundedFrequencyRunner* self = nullptr;
  BoundedFrequencyRunner runner(
      [&] {
        if (++calls == 1) self->retryAfter(30ms);  // a failed run asks for a retry
      },
      {.minInterval = 0ms, .maxInterval = 150ms});
  self = &runner;
  auto start = std::chrono::steady_clock::now();
  runner.start();
  runner.run();
  ASSERT_TRUE(waitFor([&] { return calls.load() >= 2; }));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 140ms);  // the retry, not the period
  // Then the period alone keeps it running.
  ASSERT_TRUE(waitFor([&] { return calls.load() >= 3; }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  runner.stop();
  EXPECT_EQ(runner.runs(), static_cast<uint64_t>(calls.load()));
}

}  // namespace
}  // namespace skiff::endpoints

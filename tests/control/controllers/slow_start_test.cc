// runParallel and the slow-start batch numbers the workload reconcilers give their pod creates.

#include "control/controllers/slow_start.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace skiff::controllers {
namespace {

TEST(SlowStartBatch, BatchesDoubleFromOne) {
  // Batch sizes 1, 2, 4, 8: indexes 0 | 1 2 | 3..6 | 7..14 | 15...
  const int want[] = {0, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 4};
  for (int i = 0; i < static_cast<int>(std::size(want)); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(slowStartBatch(i), want[i]);
  }
  // 500 creates (the burst) take 9 batches: 1+2+...+256 = 511 >= 500.
  EXPECT_EQ(slowStartBatch(499), 8);
  EXPECT_EQ(slowStartBatch(510), 8);
  EXPECT_EQ(slowStartBatch(511), 9);
}

TEST(RunParallel, CallsEveryIndexOnce) {
  std::vector<std::atomic<int>> calls(100);
  ParallelResult r = runParallel(100, 8, [&](int i) { ++calls[static_cast<size_t>(i)]; });
  EXPECT_EQ(r.failures, 0);
  EXPECT_FALSE(r.first_error);
  for (const auto& c : calls)
    EXPECT_EQ(c.load(), 1);
  EXPECT_EQ(runParallel(0, 8, [](int) { FAIL() << "nothing to call"; }).failures, 0);
}

TEST(RunParallel, RunsConcurrentlyUpToTheLimit) {
  // Every call waits until `limit` calls are in flight at once (or a deadline passes): with
  // sequential calls the first would time out.
  constexpr int kLimit = 4;
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  int most = 0;
  bool reached = false;
  ParallelResult r = runParallel(3 * kLimit, kLimit, [&](int) {
    std::unique_lock lock(mu);
    most = std::max(most, ++in_flight);
    if (in_flight == kLimit) reached = true;
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(5), [&] { return reached; });
    --in_flight;
  });
  EXPECT_EQ(r.failures, 0);
  EXPECT_TRUE(reached);
  EXPECT_EQ(most, kLimit);  // never more than max_parallel at once
}

TEST(RunParallel, OneAtATimeRunsOnTheCallingThread) {
  const auto caller = std::this_thread::get_id();
  int calls = 0;
  runParallel(5, 1, [&](int) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    ++calls;
  });
  EXPECT_EQ(calls, 5);
}

TEST(RunParallel, CountsFailuresAndKeepsTheFirstError) {
  std::atomic<int> calls{0};
  ParallelResult r = runParallel(10, 3, [&](int i) {
    ++calls;
    if (i % 4 == 1) throw std::runtime_error("index " + std::to_string(i));
  });
  EXPECT_EQ(calls.load(), 10);  // a failure does not stop the others of the batch
  EXPECT_EQ(r.failures, 3);     // 1, 5, 9
  ASSERT_TRUE(r.first_error);
  try {
    std::rethrow_exception(r.first_error);
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("index ", 0), 0u);
  }
}

}  // namespace
}  // namespace skiff::controllers

// Expectations (client-go's UID-tracking ControllerExpectations): what a controller asked for is
// awaited until its informer has seen it, failed writes settle, records expire.

#include "control/controllers/expectations.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace skiff::controllers {
namespace {

TEST(Expectations, CountsAndExpiry) {
  Expectations e;
  EXPECT_TRUE(e.satisfied("ns/a"));
  e.expectCreations("ns/a", 2);
  EXPECT_FALSE(e.satisfied("ns/a"));
  e.creationObserved("ns/a");
  EXPECT_FALSE(e.satisfied("ns/a"));
  e.creationObserved("ns/a");
  EXPECT_TRUE(e.satisfied("ns/a"));
  e.expectDeletions("ns/a", {"ns/p1"});
  EXPECT_FALSE(e.satisfied("ns/a"));
  e.deletionObserved("ns/a", "ns/other");
  EXPECT_FALSE(e.satisfied("ns/a"));
  e.deletionObserved("ns/a", "ns/p1");
  EXPECT_TRUE(e.satisfied("ns/a"));
  Expectations quick(std::chrono::milliseconds(0));
  quick.expectCreations("k", 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_TRUE(quick.satisfied("k"));
}

TEST(Expectations, KeysAreIndependentAndObservationsDoNotGoBelowZero) {
  Expectations e;
  e.expectCreations("ns/a", 1);
  e.expectCreations("ns/b", 1);
  e.creationObserved("ns/a");
  e.creationObserved("ns/a");  // an extra add (someone else's pod) owes nothing
  EXPECT_TRUE(e.satisfied("ns/a"));
  EXPECT_EQ(e.pendingCreations("ns/a"), 0);
  EXPECT_FALSE(e.satisfied("ns/b"));
  // A later expectation is not paid off by the extra observation above.
  e.expectCreations("ns/a", 1);
  EXPECT_FALSE(e.satisfied("ns/a"));
  // Observations for keys never expected are ignored.
  e.creationObserved("ns/none");
  e.deletionObserved("ns/none", "ns/p");
  EXPECT_TRUE(e.satisfied("ns/none"));
}

TEST(Expectations, DeletionsAreTrackedByPodKey) {
  Expectations e;
  e.expectDeletions("ns/a", {"ns/p1", "ns/p2"});
  e.deletionObserved("ns/a", "ns/p1");
  e.deletionObserved("ns/a", "ns/p1");  // the same pod twice counts once
  EXPECT_FALSE(e.satisfied("ns/a"));
  e.deletionObserved("ns/a", "ns/p2");
  EXPECT_TRUE(e.satisfied("ns/a"));
}

TEST(Expectations, RemoveForgetsTheOwner) {
  Expectations e;
  e.expectCreations("ns/a", 5);
  e.remove("ns/a");
  EXPECT_TRUE(e.satisfied("ns/a"));
  EXPECT_EQ(e.pendingCreations("ns/a"), 0);
}

TEST(Expectations, ConcurrentObserversSettleExactly) {
  // Informer threads observe while a worker checks: every one of 4 x 250 adds is counted.
  Expectations e;
  e.expectCreations("ns/a", 1000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 250; ++i)
        e.creationObserved("ns/a");
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(e.pendingCreations("ns/a"), 0);
  EXPECT_TRUE(e.satisfied("ns/a"));
}

}  // namespace
}  // namespace skiff::controllers

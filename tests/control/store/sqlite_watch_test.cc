#include "control/store/sqlite_watch.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace skiff::store::sqlite {
namespace {

using namespace std::chrono_literals;

// Watches here start at the hub's own revision, so history is never needed.
class NoHistory : public EventHistory {
 public:
  Page readEvents(std::string_view, int64_t, size_t) override {
    ADD_FAILURE() << "history read";
    throw StoreError(ErrorCode::kCompacted, "no history");
  }
};

EventBatchPtr batch(int64_t revision, const std::string& prefix = "/r/") {
  auto b = std::make_shared<EventBatch>();
  b->first_revision = b->last_revision = revision;
  Event e;
  e.kv.key = prefix + "k" + std::to_string(revision);
  e.kv.value = std::string(100, 'v');
  e.kv.create_revision = e.kv.mod_revision = revision;
  b->bytes = eventBytes(e);
  b->events.push_back(std::move(e));
  return b;
}

// Reads until `want` events came or the watch stays quiet.
size_t drain(Watch& w, size_t want) {
  std::vector<Event> out;
  for (int i = 0; i < 100 && out.size() < want; ++i) {
    if (!w.next(out, 20ms)) break;
  }
  return out.size();
}

TEST(WatchHubTest, KeepsWhatAJoinedWatcherHasNotReadThenOnlyTheReadAllowance) {
  auto hub = std::make_shared<WatchHub>(
      0, WatchHub::Limits{.max_events = 1000, .read_events = 10, .read_bytes = 1 << 20});
  auto history = std::make_shared<NoHistory>();
  WatchPtr watch = WatchHub::watch(hub, history, "/r/", 0);
  std::vector<Event> out;
  EXPECT_TRUE(watch->next(out, 10ms));  // joins the log, nothing yet
  EXPECT_TRUE(out.empty());

  for (int64_t r = 1; r <= 100; ++r)
    hub->publish(batch(r));
  EXPECT_EQ(hub->loggedEvents(), 100u);  // all unread by the watch

  EXPECT_EQ(drain(*watch, 100), 100u);
  hub->publish(batch(101));
  // Read by every watch: only the allowance stays, the unread newest one included.
  EXPECT_EQ(hub->loggedEvents(), 10u);
  EXPECT_LE(hub->loggedBytes(), 10 * eventBytes(batch(101)->events[0]));

  // A watch that joins at the newest revision reads on from there.
  WatchPtr late = WatchHub::watch(hub, history, "/r/", 101);
  EXPECT_TRUE(late->next(out, 10ms));
  hub->publish(batch(102));
  std::vector<Event> got;
  ASSERT_TRUE(late->next(got, 100ms));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kv.mod_revision, 102);
}

TEST(WatchHubTest, ACancelledWatchNoLongerHoldsTheLog) {
  auto hub = std::make_shared<WatchHub>(
      0, WatchHub::Limits{.max_events = 1000, .read_events = 5, .read_bytes = 1 << 20});
  auto history = std::make_shared<NoHistory>();
  WatchPtr idle = WatchHub::watch(hub, history, "/r/", 0);
  std::vector<Event> out;
  EXPECT_TRUE(idle->next(out, 10ms));
  for (int64_t r = 1; r <= 50; ++r)
    hub->publish(batch(r));
  EXPECT_EQ(hub->loggedEvents(), 50u);
  idle->cancel();
  hub->publish(batch(51));
  EXPECT_EQ(hub->loggedEvents(), 5u);
}

TEST(WatchHubTest, WithoutWatchersOnlyTheReadAllowanceStays) {
  auto hub = std::make_shared<WatchHub>(
      0, WatchHub::Limits{.max_events = 1000, .read_events = 3, .read_bytes = 1 << 20});
  for (int64_t r = 1; r <= 20; ++r)
    hub->publish(batch(r));
  EXPECT_EQ(hub->loggedEvents(), 3u);
  EXPECT_EQ(hub->lastRevision(), 20);
}

// A watch waiting on a quiet prefix is not woken by other prefixes' batches, yet its cursor moves
// past them: it neither holds them in the log nor lags in its progress. A batch under its prefix
// wakes it at once.
TEST(WatchHubTest, AWaitingWatchOfAQuietPrefixMovesOnWithoutHoldingTheLog) {
  auto hub = std::make_shared<WatchHub>(
      0, WatchHub::Limits{.max_events = 1000, .read_events = 5, .read_bytes = 1 << 20});
  auto history = std::make_shared<NoHistory>();
  WatchPtr quiet = WatchHub::watch(hub, history, "/q/", 0);
  std::vector<Event> out;
  EXPECT_TRUE(quiet->next(out, 1ms));  // joins the log
  std::thread waiter([&] {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(quiet->next(out, 10s));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  });
  std::this_thread::sleep_for(50ms);  // the waiter waits by now (if not, it reads the log)
  for (int64_t r = 1; r <= 50; ++r)
    hub->publish(batch(r));
  EXPECT_EQ(hub->loggedEvents(), 5u);
  EXPECT_EQ(quiet->progressRevision(), 50);
  hub->publish(batch(51, "/q/"));
  waiter.join();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kv.key, "/q/k51");
  EXPECT_EQ(quiet->progressRevision(), 51);
}

// Cancel and close end a wait at once, whichever prefix waits.
TEST(WatchHubTest, CancelAndCloseWakeAWaitingWatch) {
  auto hub = std::make_shared<WatchHub>(0, WatchHub::Limits{});
  auto history = std::make_shared<NoHistory>();
  WatchPtr a = WatchHub::watch(hub, history, "/a/", 0);
  WatchPtr b = WatchHub::watch(hub, history, "/b/", 0);
  WatchPtr b2 = WatchHub::watch(hub, history, "/b/", 0);
  auto waitFor = [](Watch& w, bool& ended) {
    return std::thread([&w, &ended] {
      const auto start = std::chrono::steady_clock::now();
      std::vector<Event> events;
      ended = !w.next(events, 10s);
      EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    });
  };
  bool a_ended = false, b_ended = false, b2_ended = false;
  std::thread ta = waitFor(*a, a_ended);
  std::thread tb = waitFor(*b, b_ended);
  std::thread tb2 = waitFor(*b2, b2_ended);
  std::this_thread::sleep_for(50ms);
  b->cancel();
  tb.join();
  EXPECT_TRUE(b_ended);
  hub->close();
  ta.join();
  tb2.join();
  EXPECT_TRUE(a_ended);
  EXPECT_TRUE(b2_ended);
  ASSERT_TRUE(a->error().has_value());
  EXPECT_EQ(a->error()->code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace skiff::store::sqlite

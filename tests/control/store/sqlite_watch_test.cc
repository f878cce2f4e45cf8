#include "control/store/sqlite_watch.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
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

EventBatchPtr batch(int64_t revision) {
  auto b = std::make_shared<EventBatch>();
  b->first_revision = b->last_revision = revision;
  Event e;
  e.kv.key = "/r/k" + std::to_string(revision);
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

}  // namespace
}  // namespace skiff::store::sqlite

#include "control/client/event_recorder.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>

#include "control/client/typed.h"
#include "tests/control/client/test_server.h"

namespace skiff::client {
namespace {

using namespace std::chrono_literals;
using api::core::v1::Event;
using api::core::v1::Pod;
using testing::ServerMode;
using testing::TestApiServer;

// A clock the test moves by hand; every read also ticks 1 µs so that Event names (object name and
// the time in nanoseconds) stay distinct.
struct FakeClock {
  std::atomic<int64_t> micros{1'800'000'000'000'000};
  std::chrono::system_clock::time_point operator()() {
    return std::chrono::system_clock::time_point(std::chrono::microseconds(micros.fetch_add(1)));
  }
  void advance(std::chrono::seconds s) {
    micros += std::chrono::duration_cast<std::chrono::microseconds>(s).count();
  }
};

Pod makePod(const std::string& name) {
  Pod pod;
  pod.mutable_metadata()->set_name(name);
  pod.mutable_metadata()->set_namespace_("default");
  pod.mutable_metadata()->set_uid("uid-" + name);
  return pod;
}

class EventRecorderTest : public ::testing::Test {
 protected:
  TestApiServer server_{ServerMode::kPlain};
  ClientPtr client_ = server_.client();
  FakeClock clock_;

  std::unique_ptr<EventRecorder> recorder(EventRecorderOptions options = {}) {
    options.clock = [this] { return clock_(); };
    return std::make_unique<EventRecorder>(
        *client_, EventSource{.component = "default-scheduler", .instance = "test-1"},
        std::move(options));
  }
  std::vector<Event> events() { return client::list<Event>(*client_, "default"); }
  std::map<std::string, Event> byMessage() {
    std::map<std::string, Event> out;
    for (Event& e : events())
      out[e.message()] = e;
    return out;
  }
};

TEST_F(EventRecorderTest, RepeatsAreCountedIntoOneEvent) {
  auto rec = recorder();
  const Pod pod = makePod("web-1");
  rec->record(resourceTypeOf<Pod>(), pod, "Warning", "FailedScheduling", "0/3 nodes are available");
  rec->flush();
  clock_.advance(30s);
  rec->record(resourceTypeOf<Pod>(), pod, "Warning", "FailedScheduling", "0/3 nodes are available");
  clock_.advance(30s);
  rec->record(resourceTypeOf<Pod>(), pod, "Warning", "FailedScheduling", "0/3 nodes are available");
  rec->flush();

  auto all = events();
  ASSERT_EQ(all.size(), 1u);
  const Event& e = all[0];
  EXPECT_EQ(e.count(), 3);
  EXPECT_EQ(e.last_timestamp().seconds() - e.first_timestamp().seconds(), 60);
  EXPECT_EQ(e.involved_object().kind(), "Pod");
  EXPECT_EQ(e.involved_object().uid(), "uid-web-1");
  EXPECT_EQ(e.source().component(), "default-scheduler");
  EXPECT_EQ(e.reporting_instance(), "test-1");
  EXPECT_EQ(e.metadata().name().rfind("web-1.", 0), 0u) << e.metadata().name();
  EXPECT_EQ(rec->stats().created, 1u);
  EXPECT_EQ(rec->stats().patched, 2u);
}

TEST_F(EventRecorderTest, DifferentObjectsReasonsAndMessagesAreSeparateEvents) {
  auto rec = recorder();
  rec->record(resourceTypeOf<Pod>(), makePod("a"), "Normal", "Scheduled", "to node-1");
  rec->record(resourceTypeOf<Pod>(), makePod("b"), "Normal", "Scheduled", "to node-1");
  rec->record(resourceTypeOf<Pod>(), makePod("a"), "Warning", "FailedScheduling", "to node-1");
  rec->record(resourceTypeOf<Pod>(), makePod("a"), "Normal", "Scheduled", "to node-2");
  rec->flush();
  EXPECT_EQ(events().size(), 4u);
}

TEST_F(EventRecorderTest, SimilarEventsAreCombinedPastTheLimit) {
  auto rec = recorder({.aggregate_max_events = 4});
  const Pod pod = makePod("web-1");
  for (int i = 0; i < 6; ++i) {
    rec->record(resourceTypeOf<Pod>(), pod, "Warning", "BackOff", "attempt " + std::to_string(i));
  }
  rec->flush();
  auto by = byMessage();
  // Three distinct events, then the fourth distinct message onward share one combined Event.
  ASSERT_EQ(by.size(), 4u);
  EXPECT_TRUE(by.count("attempt 0") && by.count("attempt 1") && by.count("attempt 2"));
  auto combined = by.find("(combined from similar events): attempt 5");
  ASSERT_NE(combined, by.end());
  EXPECT_EQ(combined->second.count(), 3);

  // After the aggregation interval, messages stand alone again.
  clock_.advance(601s);
  rec->record(resourceTypeOf<Pod>(), pod, "Warning", "BackOff", "attempt 6");
  rec->flush();
  EXPECT_EQ(byMessage().count("attempt 6"), 1u);
}

TEST_F(EventRecorderTest, SpamFilterLimitsOneObjectNotOthers) {
  auto rec = recorder({.spam_burst = 3, .spam_refill_interval = 300s});
  const Pod noisy = makePod("noisy");
  for (int i = 0; i < 5; ++i) {
    rec->record(resourceTypeOf<Pod>(), noisy, "Warning", "Unhealthy", "probe " + std::to_string(i));
  }
  rec->record(resourceTypeOf<Pod>(), makePod("quiet"), "Normal", "Pulled", "image present");
  rec->flush();
  EXPECT_EQ(rec->stats().filtered, 2u);
  EXPECT_EQ(events().size(), 4u);

  clock_.advance(300s);  // one token back
  rec->record(resourceTypeOf<Pod>(), noisy, "Warning", "Unhealthy", "probe 9");
  rec->record(resourceTypeOf<Pod>(), noisy, "Warning", "Unhealthy", "probe 10");
  rec->flush();
  EXPECT_EQ(rec->stats().filtered, 3u);
  EXPECT_EQ(byMessage().count("probe 9"), 1u);
}

TEST_F(EventRecorderTest, ClusterScopedObjectsGetEventsInDefault) {
  auto rec = recorder();
  api::core::v1::Node node;
  node.mutable_metadata()->set_name("node-1");
  rec->record(resourceTypeOf<api::core::v1::Node>(), node, "Normal", "NodeReady", "ready");
  rec->flush();
  auto all = events();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].involved_object().kind(), "Node");
  EXPECT_EQ(all[0].involved_object().namespace_(), "");
}

TEST_F(EventRecorderTest, ARepeatOfADeletedEventIsWrittenAnewWithItsCount) {
  auto rec = recorder();
  const Pod pod = makePod("web-1");
  rec->record(resourceTypeOf<Pod>(), pod, "Warning", "BackOff", "restarting");
  rec->record(resourceTypeOf<Pod>(), pod, "Warning", "BackOff", "restarting");
  rec->flush();
  auto all = events();
  ASSERT_EQ(all.size(), 1u);
  client::remove<Event>(*client_, "default", all[0].metadata().name());

  rec->record(resourceTypeOf<Pod>(), pod, "Warning", "BackOff", "restarting");
  rec->flush();
  all = events();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].count(), 3);
}

TEST_F(EventRecorderTest, AFullQueueDropsInsteadOfBlocking) {
  server_.stopServing();  // writes fail; the queue backs up
  ClientPtr unretried = server_.client({.max_retries = 0});
  auto rec = std::make_unique<EventRecorder>(*unretried, EventSource{.component = "kubelet"},
                                             EventRecorderOptions{.max_queued = 2});
  for (int i = 0; i < 50; ++i) {
    rec->record(resourceTypeOf<Pod>(), makePod("p" + std::to_string(i)), "Normal", "X", "y");
  }
  rec->flush();
  const auto stats = rec->stats();
  EXPECT_EQ(stats.created, 0u);
  EXPECT_EQ(stats.dropped, 50u);
}

}  // namespace
}  // namespace skiff::client

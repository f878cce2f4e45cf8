#include "endpoints/trigger_time.h"

#include <gtest/gtest.h>

namespace skiff::endpoints {
namespace {

api::core::v1::Pod readyPod(const std::string& name, int64_t seconds, int32_t nanos = 0) {
  api::core::v1::Pod pod;
  pod.mutable_metadata()->set_name(name);
  auto* c = pod.mutable_status()->add_conditions();
  c->set_type("Ready");
  c->set_status("True");
  c->mutable_last_transition_time()->set_seconds(seconds);
  c->mutable_last_transition_time()->set_nanos(nanos);
  return pod;
}

TEST(FormatRfc3339Nano, TrimsTheFraction) {
  EXPECT_EQ(formatRfc3339Nano({1700000000, 0}), "2023-11-14T22:13:20Z");
  EXPECT_EQ(formatRfc3339Nano({1700000000, 500000000}), "2023-11-14T22:13:20.5Z");
  EXPECT_EQ(formatRfc3339Nano({1700000000, 123456789}), "2023-11-14T22:13:20.123456789Z");
  EXPECT_EQ(formatRfc3339Nano({1700000000, 1000}), "2023-11-14T22:13:20.000001Z");
}

TEST(TriggerTimeTracker, EarliestChangeSinceLastSync) {
  TriggerTimeTracker tracker;
  api::core::v1::Service svc;
  svc.mutable_metadata()->mutable_creation_timestamp()->set_seconds(50);
  auto a = readyPod("a", 100);
  auto b = readyPod("b", 90);
  // First sync: the service's creation is the earliest change.
  auto t = tracker.compute("ns/s", svc, {&a, &b});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->seconds, 50);
  // Nothing changed since: no trigger time.
  EXPECT_FALSE(tracker.compute("ns/s", svc, {&a, &b}));
  // Pod a transitions again: its new time.
  auto a2 = readyPod("a", 120, 7);
  t = tracker.compute("ns/s", svc, {&a2, &b});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->seconds, 120);
  EXPECT_EQ(t->nanos, 7);
  // A new pod c and a change of b: the earlier of them.
  auto b2 = readyPod("b", 130);
  auto c = readyPod("c", 125);
  t = tracker.compute("ns/s", svc, {&a2, &b2, &c});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->seconds, 125);
  tracker.forget("ns/s");
  t = tracker.compute("ns/s", svc, {&a2});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->seconds, 50);
}

}  // namespace
}  // namespace skiff::endpoints

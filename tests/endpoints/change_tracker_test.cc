#include "endpoints/change_tracker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/api/codec.h"
#include "endpoints/endpointslice_reconciler.h"

namespace skiff::endpoints {
namespace {

namespace core = api::core::v1;
namespace discovery = api::discovery::v1;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

ServicePtr svc(const std::string& spec, const std::string& rv = "1") {
  auto s = std::make_shared<core::Service>();
  api::decodeYaml(
      "metadata: {name: web, namespace: default, resourceVersion: '" + rv + "'}\nspec: " + spec,
      *s);
  return s;
}

SlicePtr slice(const std::string& name, const std::vector<std::string>& ips,
               const std::string& service = "web", const std::string& trigger = "") {
  auto s = std::make_shared<discovery::EndpointSlice>();
  s->mutable_metadata()->set_name(name);
  s->mutable_metadata()->set_namespace_("default");
  (*s->mutable_metadata()->mutable_labels())[std::string(kLabelServiceName)] = service;
  if (!trigger.empty())
    (*s->mutable_metadata()->mutable_annotations())[std::string(kAnnotationLastChangeTriggerTime)] =
        trigger;
  s->set_address_type("IPv4");
  for (const auto& ip : ips)
    s->add_endpoints()->add_addresses(ip);
  return s;
}

TEST(ServiceChangeTracker, KeepsOldestPreviousAndNewestCurrent) {
  ServiceChangeTracker t;
  auto a = svc("{clusterIP: 10.96.0.1, ports: [{port: 80}]}");
  auto b = svc("{clusterIP: 10.96.0.1, ports: [{port: 81}]}");
  auto c = svc("{clusterIP: 10.96.0.1, ports: [{port: 82}]}");
  t.update(a, b);
  t.update(b, c);
  auto changes = t.checkout();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes["default/web"].previous, a);
  EXPECT_EQ(changes["default/web"].current, c);
  EXPECT_EQ(t.pending(), 0u);
}

TEST(ServiceChangeTracker, FlipBackAndIrrelevantChangesAreDropped) {
  ServiceChangeTracker t;
  auto a = svc("{clusterIP: 10.96.0.1, ports: [{port: 80}]}");
  auto b = svc("{clusterIP: 10.96.0.1, ports: [{port: 81}]}");
  t.update(a, b);
  t.update(b, a);
  EXPECT_EQ(t.pending(), 0u);
  // Only the resourceVersion differs.
  t.update(a, svc("{clusterIP: 10.96.0.1, ports: [{port: 80}]}", "2"));
  EXPECT_EQ(t.pending(), 0u);
  // Added then deleted before a sync.
  t.update(nullptr, a);
  t.update(a, nullptr);
  EXPECT_EQ(t.pending(), 0u);
  // Headless services count as absent.
  t.update(nullptr, svc("{clusterIP: None}"));
  EXPECT_EQ(t.pending(), 0u);
}

TEST(EndpointsChangeTracker, ChangesPerServiceAndFlipBack) {
  EndpointsChangeTracker t;
  t.update(slice("web-a", {"10.0.0.1"}), false);
  t.update(slice("web-b", {"10.0.0.2"}), false);
  t.update(slice("db-a", {"10.0.1.1"}, "db"), false);
  auto c = t.checkout();
  EXPECT_THAT(c.changed, ElementsAre("default/db", "default/web"));
  ASSERT_EQ(t.slices("default/web").size(), 2u);
  EXPECT_EQ(t.slices("default/web")[0]->metadata().name(), "web-a");

  // A -> B -> A: nothing.
  t.update(slice("web-a", {"10.0.0.9"}), false);
  t.update(slice("web-a", {"10.0.0.1"}), false);
  EXPECT_THAT(t.checkout().changed, IsEmpty());

  // Removal.
  t.update(slice("web-b", {"10.0.0.2"}), true);
  EXPECT_THAT(t.checkout().changed, ElementsAre("default/web"));
  EXPECT_EQ(t.slices("default/web").size(), 1u);

  // The label moves a slice to another service: both change.
  t.update(slice("web-a", {"10.0.0.1"}, "db"), false);
  EXPECT_THAT(t.checkout().changed, ElementsAre("default/db", "default/web"));
  EXPECT_THAT(t.slices("default/web"), IsEmpty());
  EXPECT_EQ(t.slices("default/db").size(), 2u);
  EXPECT_THAT(t.services(), ElementsAre("default/db"));
  // No label: ignored.
  t.update(slice("x", {"10.0.0.1"}, ""), false);
  EXPECT_THAT(t.checkout().changed, IsEmpty());
}

TEST(EndpointsChangeTracker, TriggerTimesOfChangesSinceStart) {
  EndpointsChangeTracker t(api::Timestamp{1700000000, 0});
  t.update(slice("web-a", {"10.0.0.1"}, "web", "2023-11-14T22:13:21.5Z"), false);
  t.update(slice("web-b", {"10.0.0.2"}, "web", "2020-01-01T00:00:00Z"), false);  // before start
  auto c = t.checkout();
  ASSERT_EQ(c.triggerTimes["default/web"].size(), 1u);
  EXPECT_EQ(c.triggerTimes["default/web"][0].seconds, 1700000001);
  EXPECT_EQ(c.triggerTimes["default/web"][0].nanos, 500000000);
  // A rewrite that changes nothing reports nothing.
  t.update(slice("web-a", {"10.0.0.1"}, "web", "2023-11-14T22:13:25Z"), false);
  c = t.checkout();
  EXPECT_THAT(c.changed, IsEmpty());
  EXPECT_THAT(c.triggerTimes, IsEmpty());
}

}  // namespace
}  // namespace skiff::endpoints

// ClusterSpreadSelector: the selector of a pod's default spread constraints, from the Services
// that select it and its controlling ReplicaSet or StatefulSet (kube-scheduler's
// helper.DefaultSelector).
#include "scheduler/default_spread_selector.h"

#include <gtest/gtest.h>

#include "skiff/api/apps_v1.pb.h"
#include "tests/mocks/fake_informer.h"
#include "tests/scheduler/test_objects.h"

namespace skiff::scheduler {
namespace {

using client::testing::FakeInformer;
using testing::PodBuilder;

api::core::v1::Service service(const std::string& ns, const std::string& name,
                               std::map<std::string, std::string> selector) {
  api::core::v1::Service s;
  s.mutable_metadata()->set_namespace_(ns);
  s.mutable_metadata()->set_name(name);
  for (auto& [k, v] : selector)
    (*s.mutable_spec()->mutable_selector())[k] = v;
  return s;
}

template <class Set>
Set workload(const std::string& name, const std::string& key, const std::string& value) {
  Set set;
  set.mutable_metadata()->set_namespace_("default");
  set.mutable_metadata()->set_name(name);
  auto* expr = set.mutable_spec()->mutable_selector()->add_match_expressions();
  expr->set_key(key);
  expr->set_operator_("In");
  expr->add_values(value);
  return set;
}

Pod ownedPod(const std::string& kind, const std::string& owner, bool controller = true) {
  Pod pod = PodBuilder("p").label("app", "web").label("tier", "front").build();
  pod.mutable_metadata()->set_namespace_("default");
  auto* ref = pod.mutable_metadata()->add_owner_references();
  ref->set_api_version("apps/v1");
  ref->set_kind(kind);
  ref->set_name(owner);
  ref->set_uid("uid-" + owner);
  ref->set_controller(controller);
  return pod;
}

class ClusterSpreadSelectorTest : public ::testing::Test {
 protected:
  ClusterSpreadSelectorTest() {
    selector_.setCaches(&services_.cache(), &replica_sets_.cache(), &stateful_sets_.cache());
  }
  std::string of(const Pod& pod) { return selector_.selectorFor(pod).toString(); }

  FakeInformer services_ = FakeInformer::of<api::core::v1::Service>();
  FakeInformer replica_sets_ = FakeInformer::of<api::apps::v1::ReplicaSet>();
  FakeInformer stateful_sets_ = FakeInformer::of<api::apps::v1::StatefulSet>();
  ClusterSpreadSelector selector_;
};

TEST_F(ClusterSpreadSelectorTest, ServicesThatSelectThePodAreMerged) {
  services_.put(service("default", "web", {{"app", "web"}}));
  services_.put(service("default", "front", {{"tier", "front"}}));
  services_.put(service("default", "db", {{"app", "db"}}));              // does not select it
  services_.put(service("default", "headless", {}));                     // selects nothing
  services_.put(service("other", "web", {{"app", "web"}, {"x", "y"}}));  // another namespace
  Pod pod = PodBuilder("p").label("app", "web").label("tier", "front").build();
  pod.mutable_metadata()->set_namespace_("default");
  EXPECT_EQ(of(pod), "app=web,tier=front");
}

TEST_F(ClusterSpreadSelectorTest, NoServiceNoControllerSelectsNothingInParticular) {
  Pod pod = PodBuilder("p").label("app", "web").build();
  pod.mutable_metadata()->set_namespace_("default");
  EXPECT_TRUE(selector_.selectorFor(pod).empty());
  // An owner that is not the controller, or a controller the caches do not hold, adds nothing.
  replica_sets_.put(workload<api::apps::v1::ReplicaSet>("rs", "app", "web"));
  EXPECT_TRUE(selector_.selectorFor(ownedPod("ReplicaSet", "rs", false)).empty());
  EXPECT_TRUE(selector_.selectorFor(ownedPod("ReplicaSet", "gone")).empty());
  EXPECT_TRUE(selector_.selectorFor(ownedPod("Deployment", "rs")).empty());
}

TEST_F(ClusterSpreadSelectorTest, ControllersSelectorIsAdded) {
  services_.put(service("default", "web", {{"app", "web"}}));
  replica_sets_.put(workload<api::apps::v1::ReplicaSet>("rs", "pod-template-hash", "abc"));
  stateful_sets_.put(workload<api::apps::v1::StatefulSet>("ss", "tier", "front"));
  EXPECT_EQ(of(ownedPod("ReplicaSet", "rs")), "app=web,pod-template-hash in (abc)");
  EXPECT_EQ(of(ownedPod("StatefulSet", "ss")), "app=web,tier in (front)");
}

TEST(ClusterSpreadSelector, WithoutCachesSelectsNothingInParticular) {
  ClusterSpreadSelector selector;
  EXPECT_TRUE(selector.selectorFor(PodBuilder("p").label("app", "web").build()).empty());
}

}  // namespace
}  // namespace skiff::scheduler

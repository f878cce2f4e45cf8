// The scheduler shell against a mocked Client, with informer events fed by hand.
#include "scheduler/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/api/json.h"
#include "control/client/typed.h"
#include "tests/mocks/mock_client.h"
#include "tests/scheduler/test_objects.h"

namespace skiff::scheduler {
namespace {

using ::testing::_;
using ::testing::AnyNumber;
using ::testing::Invoke;
using ::testing::NiceMock;
using testing::NodeBuilder;
using testing::PodBuilder;
using ::testing::Return;
using ::testing::StrEq;

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest() {
    ON_CALL(client_, create(_, _, _, _))
        .WillByDefault(Invoke([this](const api::ResourceType&, std::string_view,
                                     const api::Value& object, const client::WriteOptions&) {
          std::lock_guard lock(mu_);
          events_.push_back(client::fromValue<api::core::v1::Event>(object));
          return object;
        }));
    ON_CALL(client_, patch(_, _, _, _, _, _, _))
        .WillByDefault(
            Invoke([this](const api::ResourceType&, std::string_view, std::string_view name,
                          client::PatchType, std::string_view body, const client::WriteOptions&,
                          std::string_view subresource) {
              std::lock_guard lock(mu_);
              patches_.push_back(std::string(name) + " " + std::string(subresource) + " " +
                                 std::string(body));
              return api::Value::object();
            }));
  }

  std::vector<api::core::v1::Event> eventsWithReason(const std::string& reason) {
    std::lock_guard lock(mu_);
    std::vector<api::core::v1::Event> out;
    for (const auto& e : events_) {
      if (e.reason() == reason) out.push_back(e);
    }
    return out;
  }

  NiceMock<client::testing::MockClient> client_;
  std::mutex mu_;
  std::vector<api::core::v1::Event> events_;
  std::vector<std::string> patches_;
};

TEST_F(SchedulerTest, BindsToTheFittingNodeAndConfirms) {
  Scheduler s(client_);
  s.onNodeAdd(NodeBuilder("small").capacity("1", "1Gi").ptr());
  s.onNodeAdd(NodeBuilder("big").capacity("8", "16Gi").ptr());
  EXPECT_CALL(client_, bind(StrEq("default"), StrEq("web"), StrEq("big"))).Times(1);
  auto pod = PodBuilder("web").req("2", "1Gi").ptr();
  s.onPodAdd(pod);
  ASSERT_TRUE(s.scheduleOne(false));
  s.drainBindings();
  EXPECT_EQ(s.scheduled(), 1u);
  EXPECT_TRUE(s.cache().isAssumed("default/web"));
  // The informer reports the bound pod: the assumption is confirmed.
  auto bound = PodBuilder("web").req("2", "1Gi").node("big").ptr();
  s.onPodUpdate(pod, bound);
  EXPECT_FALSE(s.cache().isAssumed("default/web"));
  EXPECT_EQ(s.cache().nodeOf("default/web"), "big");
  auto scheduled = eventsWithReason("Scheduled");
  ASSERT_EQ(scheduled.size(), 1u);
  EXPECT_EQ(scheduled[0].message(), "Successfully assigned default/web to big");
  EXPECT_EQ(scheduled[0].type(), "Normal");
  EXPECT_EQ(scheduled[0].involved_object().name(), "web");
}

TEST_F(SchedulerTest, AssumedPodsCountBeforeTheirBindingLands) {
  Scheduler s(client_);
  s.onNodeAdd(NodeBuilder("a").capacity("2", "4Gi").ptr());
  s.onNodeAdd(NodeBuilder("b").capacity("2", "4Gi").ptr());
  std::vector<std::string> nodes;
  EXPECT_CALL(client_, bind(_, _, _))
      .Times(2)
      .WillRepeatedly(Invoke([&](std::string_view, std::string_view, std::string_view node) {
        std::lock_guard lock(mu_);
        nodes.emplace_back(node);
      }));
  s.onPodAdd(PodBuilder("p1").req("1500m").ptr());
  s.onPodAdd(PodBuilder("p2").req("1500m").ptr());
  ASSERT_TRUE(s.scheduleOne(false));
  ASSERT_TRUE(s.scheduleOne(false));
  s.drainBindings();
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_NE(nodes[0], nodes[1]) << "the second pod must see the first one's assumption";
}

TEST_F(SchedulerTest, UnschedulablePodGetsEventAndConditionThenFitsANewNode) {
  Scheduler s(client_);
  s.onNodeAdd(NodeBuilder("a").capacity("1", "1Gi").ptr());
  s.onNodeAdd(
      NodeBuilder("cp").taint("node-role.kubernetes.io/control-plane", "", "NoSchedule").ptr());
  EXPECT_CALL(client_, bind(_, _, _)).Times(0);
  s.onPodAdd(PodBuilder("big").req("2").ptr());
  ASSERT_TRUE(s.scheduleOne(false));
  s.drainBindings();
  auto failed = eventsWithReason("FailedScheduling");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].type(), "Warning");
  EXPECT_EQ(failed[0].message(),
            "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint "
            "{node-role.kubernetes.io/control-plane: }. preemption: 0/2 nodes are available: 1 "
            "No preemption victims found for incoming pod, 1 Preemption is not helpful for "
            "scheduling.");
  {
    std::lock_guard lock(mu_);
    ASSERT_EQ(patches_.size(), 1u);
    EXPECT_THAT(patches_[0], ::testing::StartsWith("big status "));
    EXPECT_THAT(patches_[0], ::testing::HasSubstr("\"type\":\"PodScheduled\""));
    EXPECT_THAT(patches_[0], ::testing::HasSubstr("\"status\":\"False\""));
    EXPECT_THAT(patches_[0], ::testing::HasSubstr("\"reason\":\"Unschedulable\""));
  }
  EXPECT_EQ(s.queue().unschedulableSize(), 1u);
  ASSERT_FALSE(s.scheduleOne(false)) << "parked until an event";

  ::testing::Mock::VerifyAndClearExpectations(&client_);
  EXPECT_CALL(client_, bind(StrEq("default"), StrEq("big"), StrEq("huge"))).Times(1);
  s.onNodeAdd(NodeBuilder("huge").capacity("16", "64Gi").ptr());
  // The pod's first backoff (1s) may not be over yet: wait for it to become active.
  for (int i = 0; i < 40 && s.queue().activeSize() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    s.queue().flushBackoff();
  }
  ASSERT_TRUE(s.scheduleOne(false));
  s.drainBindings();
  EXPECT_EQ(s.scheduled(), 1u);
}

TEST_F(SchedulerTest, FailedBindingForgetsTheAssumptionAndRequeues) {
  Scheduler s(client_);
  s.onNodeAdd(NodeBuilder("a").capacity("2", "4Gi").ptr());
  EXPECT_CALL(client_, bind(_, _, _))
      .WillOnce(Invoke([](std::string_view, std::string_view, std::string_view) {
        throw client::ApiError(409, "Conflict", "Operation cannot be fulfilled");
      }));
  s.onPodAdd(PodBuilder("p").req("1").ptr());
  ASSERT_TRUE(s.scheduleOne(false));
  s.drainBindings();
  EXPECT_EQ(s.bindErrors(), 1u);
  EXPECT_FALSE(s.cache().nodeOf("default/p").has_value()) << "the assumption is forgotten";
  EXPECT_TRUE(s.queue().contains("default/p"));
  EXPECT_EQ(s.queue().backoffSize(), 1u);
  auto failed = eventsWithReason("FailedScheduling");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_THAT(failed[0].message(), ::testing::StartsWith("Binding rejected: "));
}

TEST_F(SchedulerTest, IgnoresOtherSchedulersAndBoundPodsAreNeverBoundTwice) {
  Scheduler s(client_);
  s.onNodeAdd(NodeBuilder("a").ptr());
  EXPECT_CALL(client_, bind(_, _, _)).Times(0);
  auto other = PodBuilder("other");
  other.mut().mutable_spec()->set_scheduler_name("my-scheduler");
  s.onPodAdd(other.ptr());
  EXPECT_FALSE(s.scheduleOne(false));
  // A pending pod is bound by someone else before its turn comes.
  auto pending = PodBuilder("p").ptr();
  s.onPodAdd(pending);
  s.onPodUpdate(pending, PodBuilder("p").node("a").ptr());
  EXPECT_FALSE(s.scheduleOne(false));
  EXPECT_EQ(s.cache().nodeOf("default/p"), "a");
}

TEST_F(SchedulerTest, StatusOnlyUpdatesDoNotRequeue) {
  Scheduler s(client_);
  s.onNodeAdd(NodeBuilder("a").capacity("1", "1Gi").ptr());
  auto pod = PodBuilder("p").req("2").ptr();
  s.onPodAdd(pod);
  ASSERT_TRUE(s.scheduleOne(false));
  s.drainBindings();
  ASSERT_EQ(s.queue().unschedulableSize(), 1u);
  auto with_condition = std::make_shared<Pod>(*pod);
  with_condition->mutable_status()->add_conditions()->set_type("PodScheduled");
  s.onPodUpdate(pod, with_condition);
  EXPECT_EQ(s.queue().unschedulableSize(), 1u) << "our own status write must not requeue";
}

TEST_F(SchedulerTest, PreemptionDeletesVictimsAndNominates) {
  Scheduler s(client_);
  s.onNodeAdd(NodeBuilder("a").capacity("2", "4Gi").ptr());
  s.onPodAdd(PodBuilder("low").req("2").priority(1).node("a").ptr());
  EXPECT_CALL(client_, remove(_, StrEq("default"), StrEq("low"), _)).Times(1);
  s.onPodAdd(PodBuilder("high").req("2").priority(100).ptr());
  ASSERT_TRUE(s.scheduleOne(false));
  s.drainBindings();
  {
    std::lock_guard lock(mu_);
    ASSERT_EQ(patches_.size(), 1u);
    EXPECT_THAT(patches_[0], ::testing::HasSubstr("\"nominatedNodeName\":\"a\""));
  }
  EXPECT_EQ(s.nominator().size(), 1u);

  // The victim is gone; a less important pod arriving first does not take the room.
  s.onPodDelete(PodBuilder("low").req("2").priority(1).node("a").ptr());
  EXPECT_CALL(client_, bind(StrEq("default"), StrEq("late"), _)).Times(0);
  s.onPodAdd(PodBuilder("late").req("1").priority(0).ptr());
  ASSERT_TRUE(s.scheduleOne(false));
  s.drainBindings();
  EXPECT_TRUE(s.queue().contains("default/late")) << "tried and parked, not bound";
  ::testing::Mock::VerifyAndClearExpectations(&client_);

  // Once the preemptor is bound, it is no longer nominated.
  s.onPodUpdate(PodBuilder("high").req("2").priority(100).ptr(),
                PodBuilder("high").req("2").priority(100).node("a").ptr());
  EXPECT_EQ(s.nominator().size(), 0u);
}

}  // namespace
}  // namespace skiff::scheduler

#include "control/controllers/replicaset.h"

#include <gtest/gtest.h>

#include "tests/control/controllers/builders.h"

namespace skiff::controllers {
namespace {

using namespace testing;  // NOLINT
using api::apps::v1::ReplicaSet;
using api::core::v1::Pod;

struct Run {
  ReplicaSetResult result;
  std::vector<const Action*> creates, deletes, updates;
  const ReplicaSet* status = nullptr;
};

Run run(const ReplicaSet& rs, const std::vector<Pod>& pods, bool satisfied = true,
        std::string error = "") {
  ReplicaSetInput in;
  in.rs = &rs;
  for (const auto& p : pods)
    in.pods.push_back(&p);
  in.now = kNow;
  in.expectations_satisfied = satisfied;
  if (!error.empty()) {
    in.manage_error_reason = "FailedCreate";
    in.manage_error = error;
  }
  Run r;
  r.result = reconcileReplicaSet(in);
  for (const auto& a : r.result.actions) {
    switch (a.verb) {
      case Action::Verb::kCreate:
        r.creates.push_back(&a);
        break;
      case Action::Verb::kDelete:
        r.deletes.push_back(&a);
        break;
      case Action::Verb::kUpdate:
        r.updates.push_back(&a);
        break;
      case Action::Verb::kUpdateStatus:
        r.status = static_cast<const ReplicaSet*>(a.object.get());
        break;
    }
  }
  return r;
}

std::vector<Pod> ownedPods(int n, const std::string& prefix = "p") {
  std::vector<Pod> pods;
  for (int i = 0; i < n; ++i) {
    pods.push_back(makePod({.name = prefix + std::to_string(i), .owner_uid = "rs-uid"}));
  }
  return pods;
}

TEST(ReplicaSetReconcile, CreatesMissingPodsInSlowStartBatches) {
  struct Case {
    int replicas;
    int existing;
    std::vector<int> batches;  // batch of each create
  };
  const Case cases[] = {
      {1, 0, {0}},    {3, 0, {0, 1, 1}}, {10, 0, {0, 1, 1, 2, 2, 2, 2, 3, 3, 3}},
      {5, 3, {0, 1}}, {3, 3, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.replicas);
    auto rs = makeReplicaSet(c.replicas);
    auto r = run(rs, ownedPods(c.existing));
    ASSERT_EQ(r.creates.size(), c.batches.size());
    EXPECT_EQ(r.result.creates, static_cast<int>(c.batches.size()));
    for (size_t i = 0; i < c.batches.size(); ++i)
      EXPECT_EQ(r.creates[i]->batch, c.batches[i]);
  }
}

TEST(ReplicaSetReconcile, CreatedPodComesFromTheTemplate) {
  auto rs = makeReplicaSet(1);
  auto r = run(rs, {});
  ASSERT_EQ(r.creates.size(), 1u);
  const auto& pod = static_cast<const Pod&>(*r.creates[0]->object);
  EXPECT_EQ(pod.metadata().generate_name(), "web-");
  EXPECT_EQ(pod.metadata().namespace_(), "default");
  EXPECT_EQ(pod.metadata().labels().at("tier"), "front");
  EXPECT_EQ(pod.metadata().annotations().at("a"), "b");
  ASSERT_EQ(pod.metadata().owner_references_size(), 1);
  const auto& ref = pod.metadata().owner_references(0);
  EXPECT_EQ(ref.kind(), "ReplicaSet");
  EXPECT_EQ(ref.api_version(), "apps/v1");
  EXPECT_EQ(ref.uid(), "rs-uid");
  EXPECT_TRUE(ref.controller());
  EXPECT_TRUE(ref.block_owner_deletion());
  EXPECT_EQ(pod.spec().containers(0).image(), "busybox");
  EXPECT_EQ(r.creates[0]->type->kind, "Pod");
}

TEST(ReplicaSetReconcile, BurstLimitsOneSync) {
  auto rs = makeReplicaSet(700);
  auto r = run(rs, {});
  EXPECT_EQ(r.creates.size(), 500u);
  auto rs2 = makeReplicaSet(0);
  auto r2 = run(rs2, ownedPods(600));
  EXPECT_EQ(r2.deletes.size(), 500u);
}

TEST(ReplicaSetReconcile, WaitsForExpectationsButKeepsStatus) {
  auto rs = makeReplicaSet(5);
  auto r = run(rs, ownedPods(2), /*satisfied=*/false);
  EXPECT_TRUE(r.creates.empty());
  ASSERT_NE(r.status, nullptr);
  EXPECT_EQ(r.status->status().replicas(), 2);
}

TEST(ReplicaSetReconcile, DeletesUnscheduledThenPendingThenUnreadyThenNewer) {
  auto rs = makeReplicaSet(2);
  std::vector<Pod> pods = {
      makePod({.name = "old-ready", .owner_uid = "rs-uid", .ready_since = 500, .created = 900}),
      makePod({.name = "new-ready", .owner_uid = "rs-uid", .ready_since = 500, .created = 100}),
      makePod({.name = "unready", .owner_uid = "rs-uid", .ready = false}),
      makePod({.name = "pending", .owner_uid = "rs-uid", .phase = "Pending", .ready = false}),
      makePod({.name = "unscheduled",
               .owner_uid = "rs-uid",
               .phase = "Pending",
               .node = "",
               .ready = false}),
      makePod({.name = "recently-ready", .owner_uid = "rs-uid", .ready_since = 10}),
  };
  auto r = run(rs, pods);
  ASSERT_EQ(r.deletes.size(), 4u);
  EXPECT_EQ(r.deletes[0]->name, "unscheduled");
  EXPECT_EQ(r.deletes[1]->name, "pending");
  EXPECT_EQ(r.deletes[2]->name, "unready");
  EXPECT_EQ(r.deletes[3]->name, "recently-ready");
  EXPECT_EQ(r.deletes[0]->precondition_uid, "uid-unscheduled");
  EXPECT_EQ(r.result.deleted_pod_keys[0], "default/unscheduled");

  // Ties of readiness: more restarts first, then newer first.
  std::vector<Pod> tied = {
      makePod({.name = "a", .owner_uid = "rs-uid", .created = 300}),
      makePod({.name = "b", .owner_uid = "rs-uid", .created = 100}),
      makePod({.name = "c", .owner_uid = "rs-uid", .created = 500, .restarts = 3}),
  };
  auto rs1 = makeReplicaSet(1);
  auto r2 = run(rs1, tied);
  ASSERT_EQ(r2.deletes.size(), 2u);
  EXPECT_EQ(r2.deletes[0]->name, "c");
  EXPECT_EQ(r2.deletes[1]->name, "b");
}

TEST(ReplicaSetReconcile, AdoptsOrphansReleasesMismatchesIgnoresOthers) {
  auto rs = makeReplicaSet(3);
  std::vector<Pod> pods = {
      makePod({.name = "orphan"}),
      makePod({.name = "mine", .owner_uid = "rs-uid"}),
      makePod({.name = "relabeled", .labels = {{"app", "db"}}, .owner_uid = "rs-uid"}),
      makePod({.name = "theirs", .owner_uid = "other-uid"}),
      makePod({.name = "orphan-elsewhere", .labels = {{"app", "db"}}}),
      makePod({.name = "orphan-deleting", .deleting = true}),
  };
  auto r = run(rs, pods);
  ASSERT_EQ(r.updates.size(), 2u);
  const auto& adopted = static_cast<const Pod&>(*r.updates[0]->object);
  EXPECT_EQ(adopted.metadata().name(), "orphan");
  ASSERT_EQ(adopted.metadata().owner_references_size(), 1);
  EXPECT_EQ(adopted.metadata().owner_references(0).uid(), "rs-uid");
  const auto& released = static_cast<const Pod&>(*r.updates[1]->object);
  EXPECT_EQ(released.metadata().name(), "relabeled");
  EXPECT_EQ(released.metadata().owner_references_size(), 0);
  // orphan + mine are the two active pods: one more is created.
  EXPECT_EQ(r.creates.size(), 1u);
  ASSERT_NE(r.status, nullptr);
  EXPECT_EQ(r.status->status().replicas(), 2);
}

TEST(ReplicaSetReconcile, BeingDeletedNeitherAdoptsNorCreates) {
  auto rs = makeReplicaSet(3);
  setTime(*rs.mutable_metadata()->mutable_deletion_timestamp(), kNow);
  auto r =
      run(rs, {makePod({.name = "orphan"}),
               makePod({.name = "relabeled", .labels = {{"app", "x"}}, .owner_uid = "rs-uid"})});
  EXPECT_TRUE(r.updates.empty());
  EXPECT_TRUE(r.creates.empty());
}

TEST(ReplicaSetReconcile, StatusCountsReadyAvailableAndFullyLabeled) {
  auto rs = makeReplicaSet(4, /*min_ready=*/30);
  std::vector<Pod> pods = {
      makePod({.name = "available", .owner_uid = "rs-uid", .ready_since = 60}),
      makePod({.name = "ready-new",
               .labels = {{"app", "web"}, {"tier", "front"}},
               .owner_uid = "rs-uid",
               .ready_since = 10}),
      makePod({.name = "unready", .owner_uid = "rs-uid", .ready = false}),
      makePod({.name = "done", .owner_uid = "rs-uid", .phase = "Succeeded"}),
      makePod({.name = "going", .owner_uid = "rs-uid", .deleting = true}),
  };
  auto r = run(rs, pods);
  ASSERT_NE(r.status, nullptr);
  const auto& s = r.status->status();
  EXPECT_EQ(s.replicas(), 3);
  EXPECT_EQ(s.ready_replicas(), 2);
  EXPECT_EQ(s.available_replicas(), 1);
  EXPECT_EQ(s.fully_labeled_replicas(), 1);
  EXPECT_EQ(s.observed_generation(), 3);
  // ready-new becomes available 20 s from now: look again then.
  ASSERT_TRUE(r.result.requeue_after.has_value());
  EXPECT_EQ(r.result.requeue_after->count(), 20001);
  // Terminal and deleting pods do not count: one more pod is made.
  EXPECT_EQ(r.creates.size(), 1u);
}

TEST(ReplicaSetReconcile, NoStatusWriteWhenNothingChanged) {
  auto rs = makeReplicaSet(2);
  auto pods = ownedPods(2);
  auto r = run(rs, pods);
  ASSERT_NE(r.status, nullptr);
  ReplicaSet again = *r.status;
  auto r2 = run(again, pods);
  EXPECT_EQ(r2.status, nullptr);
  EXPECT_TRUE(r2.result.actions.empty());
}

TEST(ReplicaSetReconcile, ReplicaFailureConditionFollowsTheLastError) {
  auto rs = makeReplicaSet(2);
  auto r = run(rs, ownedPods(2), true, "pods \"web-x\" is forbidden: quota");
  ASSERT_NE(r.status, nullptr);
  ASSERT_EQ(r.status->status().conditions_size(), 1);
  const auto& c = r.status->status().conditions(0);
  EXPECT_EQ(c.type(), "ReplicaFailure");
  EXPECT_EQ(c.status(), "True");
  EXPECT_EQ(c.reason(), "FailedCreate");
  ReplicaSet failed = *r.status;
  auto r2 = run(failed, ownedPods(2));
  ASSERT_NE(r2.status, nullptr);
  EXPECT_EQ(r2.status->status().conditions_size(), 0);
}

TEST(ReplicaSetReconcile, InvalidOrEmptySelectorIsReportedAndNothingDone) {
  auto rs = makeReplicaSet(2);
  auto* e = rs.mutable_spec()->mutable_selector()->add_match_expressions();
  e->set_key("app");
  e->set_operator_("Foo");
  auto r = run(rs, {makePod({.name = "orphan"})});
  EXPECT_TRUE(r.result.actions.empty());
  EXPECT_EQ(r.result.warning_reason, "InvalidSelector");
  EXPECT_NE(r.result.warning.find("spec.selector.matchExpressions[0].operator"), std::string::npos)
      << r.result.warning;

  auto rs2 = makeReplicaSet(2);
  rs2.mutable_spec()->mutable_selector()->Clear();
  auto r2 = run(rs2, {makePod({.name = "orphan"})});
  EXPECT_TRUE(r2.result.actions.empty());
  EXPECT_EQ(r2.result.warning_reason, "InvalidSelector");
}

}  // namespace
}  // namespace skiff::controllers

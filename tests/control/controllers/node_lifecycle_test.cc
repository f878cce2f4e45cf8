// The node lifecycle controller's pure parts with an explicit clock: heartbeat tracking, the
// grace period, the lifecycle taints, pods marked not ready and taint-based eviction.

#include "control/controllers/node_lifecycle.h"

#include <gtest/gtest.h>

#include "tests/control/controllers/builders.h"

namespace skiff::controllers {
namespace {

using api::coordination::v1::Lease;
using api::core::v1::Node;
using api::core::v1::Pod;
using api::core::v1::Taint;
using testing::ago;
using testing::fromYaml;
using testing::kNow;
using namespace std::chrono_literals;

api::Timestamp at(int64_t seconds_after_now) {
  return api::Timestamp{kNow.seconds + seconds_after_now, 0};
}

Node readyNode(const std::string& status = "True", int64_t heartbeat_ago = 1) {
  Node node;
  node.mutable_metadata()->set_name("node-1");
  setTime(*node.mutable_metadata()->mutable_creation_timestamp(), ago(3600));
  auto* c = node.mutable_status()->add_conditions();
  c->set_type("Ready");
  c->set_status(status);
  c->set_reason("KubeletReady");
  setTime(*c->mutable_last_heartbeat_time(), ago(heartbeat_ago));
  setTime(*c->mutable_last_transition_time(), ago(3000));
  auto* m = node.mutable_status()->add_conditions();
  m->set_type("MemoryPressure");
  m->set_status("False");
  return node;
}

Lease leaseRenewed(const api::Timestamp& t) {
  Lease lease;
  lease.mutable_metadata()->set_name("node-1");
  lease.mutable_metadata()->set_namespace_("kube-node-lease");
  lease.mutable_spec()->mutable_renew_time()->set_seconds(t.seconds);
  return lease;
}

TEST(NodeHealthTest, ProbeTimeMovesOnlyWithHeartbeats) {
  Node node = readyNode();
  Lease lease = leaseRenewed(ago(1));
  // First sight: now, whatever the node's clock says.
  NodeHealth h = observeNodeHealth(std::nullopt, node, &lease, kNow);
  EXPECT_EQ(h.probe_time, kNow);
  // Nothing moved: the probe time stays.
  NodeHealth h2 = observeNodeHealth(h, node, &lease, at(10));
  EXPECT_EQ(h2.probe_time, kNow);
  // The Lease renewed: probe time is the controller's now (not the lease's time).
  Lease renewed = leaseRenewed(at(5));
  NodeHealth h3 = observeNodeHealth(h2, node, &renewed, at(12));
  EXPECT_EQ(h3.probe_time, at(12));
  // A stale cache entry with an older renewTime is no news.
  NodeHealth h4 = observeNodeHealth(h3, node, &lease, at(20));
  EXPECT_EQ(h4.probe_time, at(12));
  ASSERT_TRUE(h4.lease_renew);
  EXPECT_EQ(*h4.lease_renew, at(5));
  // The Ready heartbeat moving counts too (no Lease at all).
  Node beat = readyNode();
  setTime(*beat.mutable_status()->mutable_conditions(0)->mutable_last_heartbeat_time(), at(25));
  NodeHealth h5 = observeNodeHealth(h4, beat, nullptr, at(26));
  EXPECT_EQ(h5.probe_time, at(26));
}

TEST(NodeHealthTest, NeverReadyNodeCountsFromCreation) {
  Node node;
  node.mutable_metadata()->set_name("node-1");
  setTime(*node.mutable_metadata()->mutable_creation_timestamp(), ago(100));
  NodeHealth h = observeNodeHealth(std::nullopt, node, nullptr, kNow);
  EXPECT_EQ(h.probe_time, ago(100));
  // Within the startup grace period: no verdict, so no taints either.
  auto early =
      evaluateNodeStatus(node, h, {.grace_period = 40s, .startup_grace_period = 200s}, kNow);
  EXPECT_FALSE(early.status_update);
  EXPECT_EQ(early.ready, "");
  EXPECT_EQ(early.stale_in, 100001ms);
  EXPECT_FALSE(desiredNodeTaints(node, early.ready, kNow));
  NodeLifecycleTiming timing{.grace_period = 40s, .startup_grace_period = 60s};
  auto d = evaluateNodeStatus(node, h, timing, kNow);
  ASSERT_TRUE(d.status_update);
  EXPECT_EQ(d.ready, "Unknown");
  const auto* ready = nodeCondition(*d.status_update, "Ready");
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->status(), "Unknown");
  EXPECT_EQ(ready->reason(), "NodeStatusNeverUpdated");
  EXPECT_EQ(ready->message(), "Kubelet never posted node status.");
  EXPECT_EQ(toTimestamp(ready->last_heartbeat_time()), ago(100));
}

TEST(NodeStatusTest, Table) {
  NodeLifecycleTiming timing{.grace_period = 3s, .startup_grace_period = 10s};
  struct Case {
    const char* name;
    std::string ready;
    int64_t probe_ago_ms;
    bool update;
    std::string effective;
    std::optional<std::chrono::milliseconds> stale_in;
  };
  const Case cases[] = {
      {"fresh and ready", "True", 1000, false, "True", 2001ms},
      {"exactly at the grace period: still fresh", "True", 3000, false, "True", 1ms},
      {"past the grace period: Unknown", "True", 3001, true, "Unknown", std::nullopt},
      {"kubelet says not ready, fresh", "False", 500, false, "False", 2501ms},
      {"not ready and stale: Unknown", "False", 5000, true, "Unknown", std::nullopt},
      {"Ready already Unknown: the others follow", "Unknown", 9000, true, "Unknown", std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Node node = readyNode(c.ready);
    NodeHealth h;
    h.probe_time = api::Timestamp{kNow.seconds - c.probe_ago_ms / 1000,
                                  static_cast<int32_t>(-(c.probe_ago_ms % 1000) * 1000000)};
    if (h.probe_time.nanos < 0) {
      h.probe_time.seconds -= 1;
      h.probe_time.nanos += 1000000000;
    }
    auto d = evaluateNodeStatus(node, h, timing, kNow);
    EXPECT_EQ(d.ready, c.effective);
    EXPECT_EQ(d.stale_in, c.stale_in);
    EXPECT_EQ(d.status_update.has_value(), c.update);
    if (d.status_update) {
      for (const auto& cond : d.status_update->status().conditions()) {
        EXPECT_EQ(cond.status(), "Unknown") << cond.type();
      }
      const auto* ready = nodeCondition(*d.status_update, "Ready");
      if (c.ready != "Unknown") {
        EXPECT_EQ(ready->reason(), "NodeStatusUnknown");
        EXPECT_EQ(ready->message(), "Kubelet stopped posting node status.");
        EXPECT_EQ(toTimestamp(ready->last_transition_time()), kNow);
      }
      // The heartbeat is the kubelet's: kept as it was.
      EXPECT_EQ(toTimestamp(ready->last_heartbeat_time()), ago(1));
    }
  }
  // Every condition Unknown already: nothing to write.
  Node all_unknown = readyNode("Unknown");
  all_unknown.mutable_status()->mutable_conditions(1)->set_status("Unknown");
  NodeHealth stale{.probe_time = ago(60)};
  EXPECT_FALSE(evaluateNodeStatus(all_unknown, stale, timing, kNow).status_update.has_value());
}

std::vector<std::string> taintNames(const std::vector<Taint>& taints) {
  std::vector<std::string> out;
  for (const auto& t : taints)
    out.push_back(t.key() + ":" + t.effect());
  return out;
}

TEST(NodeTaintsTest, Table) {
  struct Case {
    const char* name;
    std::vector<std::string> existing;  // "key:effect"
    std::string ready;
    std::optional<std::vector<std::string>> expected;
  };
  const std::string kUnreachableNS = "node.kubernetes.io/unreachable:NoSchedule";
  const std::string kUnreachableNE = "node.kubernetes.io/unreachable:NoExecute";
  const std::string kNotReadyNS = "node.kubernetes.io/not-ready:NoSchedule";
  const std::string kNotReadyNE = "node.kubernetes.io/not-ready:NoExecute";
  const std::string kOwn = "dedicated:NoSchedule";
  const Case cases[] = {
      {"ready, clean: nothing", {kOwn}, "True", std::nullopt},
      {"unreachable: both taints, own kept",
       {kOwn},
       "Unknown",
       std::vector<std::string>{kOwn, kUnreachableNS, kUnreachableNE}},
      {"not ready: not-ready taints",
       {},
       "False",
       std::vector<std::string>{kNotReadyNS, kNotReadyNE}},
      {"unreachable again: no change", {kUnreachableNS, kUnreachableNE}, "Unknown", std::nullopt},
      {"not ready turned unreachable: swapped",
       {kNotReadyNS, kNotReadyNE, kOwn},
       "Unknown",
       std::vector<std::string>{kOwn, kUnreachableNS, kUnreachableNE}},
      {"recovered: removed",
       {kUnreachableNS, kOwn, kUnreachableNE},
       "True",
       std::vector<std::string>{kOwn}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Node node = readyNode();
    for (const auto& e : c.existing) {
      auto colon = e.rfind(':');
      auto* t = node.mutable_spec()->add_taints();
      t->set_key(e.substr(0, colon));
      t->set_effect(e.substr(colon + 1));
      if (t->effect() == "NoExecute") setTime(*t->mutable_time_added(), ago(50));
    }
    auto out = desiredNodeTaints(node, c.ready, kNow);
    ASSERT_EQ(out.has_value(), c.expected.has_value());
    if (!out) continue;
    EXPECT_EQ(taintNames(*out), *c.expected);
    for (const auto& t : *out) {
      if (t.effect() != "NoExecute") {
        EXPECT_FALSE(t.has_time_added());
        continue;
      }
      // New NoExecute taints are stamped now; kept ones keep their time.
      bool kept = std::find(c.existing.begin(), c.existing.end(), t.key() + ":NoExecute") !=
                  c.existing.end();
      EXPECT_EQ(toTimestamp(t.time_added()), kept ? ago(50) : kNow);
    }
  }
}

TEST(PodNotReadyTest, OnlyReadyLivePodsChange) {
  Pod ready = testing::makePod({.name = "a"});
  auto marked = podMarkedNotReady(ready, kNow);
  ASSERT_TRUE(marked);
  EXPECT_FALSE(isPodReady(*marked));
  EXPECT_EQ(toTimestamp(podCondition(*marked, "Ready")->last_transition_time()), kNow);
  EXPECT_FALSE(podMarkedNotReady(*marked, kNow));  // already False
  EXPECT_FALSE(podMarkedNotReady(testing::makePod({.name = "b", .ready = false}), kNow));
  EXPECT_FALSE(podMarkedNotReady(testing::makePod({.name = "c", .phase = "Succeeded"}), kNow));
  EXPECT_FALSE(podMarkedNotReady(testing::makePod({.name = "d", .deleting = true}), kNow));
}

TEST(PodEvictionTest, Table) {
  Taint unreachable;
  unreachable.set_key(std::string(kTaintUnreachable));
  unreachable.set_effect("NoExecute");
  setTime(*unreachable.mutable_time_added(), ago(10));
  Taint no_schedule = unreachable;
  no_schedule.set_effect("NoSchedule");
  no_schedule.clear_time_added();
  Taint untimed = unreachable;
  untimed.set_key("example.com/maintenance");
  untimed.clear_time_added();

  using Kind = EvictionDecision::Kind;
  struct Case {
    const char* name;
    std::vector<const char*> tolerations;
    std::vector<Taint> taints;
    Kind kind;
    std::chrono::milliseconds after;
  };
  const char* kTolerate300 =
      "{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, "
      "tolerationSeconds: 300}";
  const char* kTolerate5 =
      "{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, "
      "tolerationSeconds: 5}";
  const char* kTolerateForever = "{key: node.kubernetes.io/unreachable, operator: Exists}";
  const char* kTolerateAll30 = "{operator: Exists, tolerationSeconds: 30}";
  const Case cases[] = {
      {"no NoExecute taint: stays", {}, {no_schedule}, Kind::kNever, 0ms},
      {"no toleration: at once (no default tolerations in Skiff)",
       {},
       {unreachable},
       Kind::kNow,
       0ms},
      {"300 s toleration, tainted 10 s ago: 290 s left",
       {kTolerate300},
       {unreachable},
       Kind::kLater,
       290000ms},
      {"5 s toleration, tainted 10 s ago: now", {kTolerate5}, {unreachable}, Kind::kNow, 0ms},
      {"tolerated forever", {kTolerateForever}, {unreachable, no_schedule}, Kind::kNever, 0ms},
      {"first matching toleration is the one used",
       {kTolerateForever, kTolerate5},
       {unreachable},
       Kind::kNever,
       0ms},
      {"one of two taints untolerated: now",
       {kTolerate300},
       {unreachable, untimed},
       Kind::kNow,
       0ms},
      {"earliest of two taints wins; untimed counts from the fallback",
       {kTolerateAll30},
       {unreachable, untimed},
       Kind::kLater,
       20000ms},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Pod pod = testing::makePod({.name = "p"});
    for (const char* t : c.tolerations)
      *pod.mutable_spec()->add_tolerations() = fromYaml<api::core::v1::Toleration>(t);
    auto d = podEviction(pod, c.taints, ago(2), kNow);
    EXPECT_EQ(d.kind, c.kind);
    if (c.kind == Kind::kLater) {
      EXPECT_EQ(d.after, c.after);
    }
    if (c.kind != Kind::kNever) {
      EXPECT_FALSE(d.taint.empty());
    }
  }
}

TEST(NoExecuteTaintLimiterTest, Table) {
  NoExecuteTaintLimiter unlimited(0);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(unlimited.tryTake(kNow), 0ms);
  // 0.5 nodes a second: one now, the next 2 s later.
  NoExecuteTaintLimiter half(0.5);
  struct Step {
    int64_t at_ms;
    std::chrono::milliseconds wait;
  };
  const Step steps[] = {{0, 0ms},    {0, 2000ms},    {1500, 500ms},
                        {2000, 0ms}, {2100, 1900ms}, {10000, 0ms}};
  for (const auto& step : steps) {
    SCOPED_TRACE(step.at_ms);
    api::Timestamp t{kNow.seconds + step.at_ms / 1000,
                     static_cast<int32_t>((step.at_ms % 1000) * 1000000)};
    EXPECT_EQ(half.tryTake(t), step.wait);
  }
}

}  // namespace
}  // namespace skiff::controllers

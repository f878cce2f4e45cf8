#include "scheduler/framework.h"

#include <gtest/gtest.h>

#include <atomic>

#include "scheduler/nominator.h"
#include "scheduler/plugins/plugins.h"
#include "tests/scheduler/test_objects.h"

namespace skiff::scheduler {
namespace {

using testing::NodeBuilder;
using testing::PodBuilder;

Snapshot snapshotOf(std::vector<NodeInfo> nodes) {
  std::vector<NodeInfoPtr> ptrs;
  for (auto& n : nodes)
    ptrs.push_back(std::make_shared<NodeInfo>(std::move(n)));
  return Snapshot::fromNodes(std::move(ptrs));
}

NodeInfo nodeWith(NodePtr node, std::vector<PodPtr> pods = {}) {
  NodeInfo info(std::move(node));
  for (auto& p : pods)
    info.addPod(PodInfo::make(std::move(p)));
  return info;
}

TEST(FitErrorMessage, KubernetesShape) {
  Diagnosis d;
  d.node_statuses["a"] = Status::unschedulable("Insufficient cpu");
  d.node_statuses["b"] = Status::unschedulable("Insufficient cpu");
  d.node_statuses["c"] = Status::unschedulable("Insufficient cpu");
  d.node_statuses["d"] = Status::unresolvable(
      "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }");
  d.node_statuses["e"] = Status::unresolvable(
      "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }");
  EXPECT_EQ(fitErrorMessage(5, d),
            "0/5 nodes are available: 2 node(s) had untolerated taint "
            "{node-role.kubernetes.io/control-plane: }, 3 Insufficient cpu.");
  d.post_filter_msg =
      "preemption: 0/5 nodes are available: 5 Preemption is not helpful for scheduling.";
  EXPECT_EQ(fitErrorMessage(5, d),
            "0/5 nodes are available: 2 node(s) had untolerated taint "
            "{node-role.kubernetes.io/control-plane: }, 3 Insufficient cpu. preemption: 0/5 nodes "
            "are available: 5 Preemption is not helpful for scheduling.");
  // Several reasons of one node count separately.
  Diagnosis multi;
  multi.node_statuses["a"] =
      Status(Code::kUnschedulable, {"Insufficient cpu", "Insufficient memory"});
  EXPECT_EQ(fitErrorMessage(1, multi),
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.");
  Diagnosis pre;
  pre.pre_filter_msg = "invalid pod affinity";
  EXPECT_EQ(fitErrorMessage(3, pre), "0/3 nodes are available: invalid pod affinity.");
}

TEST(NumFeasibleNodesToFind, AdaptiveSampling) {
  struct Case {
    size_t nodes;
    int32_t percentage;
    size_t want;
  };
  const Case cases[] = {
      {10, 0, 10},     {99, 0, 99},       {100, 0, 100},    {1000, 0, 420},
      {5000, 0, 500},  {6000, 0, 300},    {20000, 0, 1000}, {1000, 10, 100},
      {1000, 50, 500}, {1000, 100, 1000}, {300, 1, 100},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(numFeasibleNodesToFind(c.nodes, c.percentage), c.want)
        << c.nodes << " nodes at " << c.percentage << "%";
  }
}

TEST(Parallelizer, RunsEveryIndexOnce) {
  Parallelizer p(3);
  for (size_t n : {0u, 1u, 15u, 16u, 1000u, 5000u}) {
    std::vector<std::atomic<int>> hits(n);
    p.until(n, [&](size_t i) { hits[i].fetch_add(1); });
    for (size_t i = 0; i < n; ++i)
      ASSERT_EQ(hits[i].load(), 1) << n << " " << i;
  }
}

TEST(Framework, PicksAFeasibleNodeAndPrefersTheLeastAllocated) {
  Framework fw(FrameworkOptions{});
  plugins::registerDefaultPlugins(fw);
  Snapshot snap = snapshotOf({
      nodeWith(NodeBuilder("busy").ptr(), {PodBuilder("x").req("3", "6Gi").node("busy").ptr()}),
      nodeWith(NodeBuilder("idle").ptr()),
      nodeWith(NodeBuilder("small").capacity("500m", "1Gi").ptr()),
  });
  auto pod = PodInfo::make(PodBuilder("p").req("1", "1Gi").ptr());
  CycleState state;
  ScheduleResult r = fw.schedulePod(state, *pod, snap);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.node, "idle");
  EXPECT_EQ(r.feasible_nodes, 2u);
  ASSERT_EQ(r.diagnosis.node_statuses.count("small"), 1u);
  EXPECT_EQ(r.diagnosis.node_statuses.at("small").message(), "Insufficient cpu");
}

TEST(Framework, UnschedulableDiagnosisNamesEveryNode) {
  Framework fw(FrameworkOptions{});
  plugins::registerDefaultPlugins(fw);
  Snapshot snap = snapshotOf({
      nodeWith(NodeBuilder("a").capacity("1", "1Gi").ptr()),
      nodeWith(NodeBuilder("b").capacity("1", "1Gi").ptr()),
      nodeWith(NodeBuilder("c").capacity("1", "1Gi").ptr()),
      nodeWith(
          NodeBuilder("cp").taint("node-role.kubernetes.io/control-plane", "", "NoSchedule").ptr()),
      nodeWith(NodeBuilder("off").unschedulable().ptr()),
  });
  auto pod = PodInfo::make(PodBuilder("p").req("2").ptr());
  CycleState state;
  ScheduleResult r = fw.schedulePod(state, *pod, snap);
  ASSERT_TRUE(r.status.isRejected());
  EXPECT_TRUE(r.node.empty());
  PostFilterResult pf;
  Status post = fw.runPostFilter(state, *pod, snap, r.diagnosis.node_statuses, pf);
  EXPECT_FALSE(post.ok());
  r.diagnosis.post_filter_msg = post.message();
  EXPECT_EQ(fitErrorMessage(snap.size(), r.diagnosis),
            "0/5 nodes are available: 1 node(s) had untolerated taint "
            "{node-role.kubernetes.io/control-plane: }, 1 node(s) were unschedulable, 3 "
            "Insufficient cpu. preemption: 0/5 nodes are available: 2 Preemption is not helpful "
            "for scheduling, 3 No preemption victims found for incoming pod.");
  EXPECT_TRUE(r.diagnosis.unschedulable_plugins.contains("NodeResourcesFit"));
  EXPECT_TRUE(r.diagnosis.unschedulable_plugins.contains("TaintToleration"));
}

TEST(Framework, PreemptionNominatesTheNodeWithTheCheapestVictims) {
  Framework fw(FrameworkOptions{});
  plugins::registerDefaultPlugins(fw);
  Snapshot snap = snapshotOf({
      nodeWith(NodeBuilder("a").capacity("2", "4Gi").ptr(),
               {PodBuilder("a1").req("1").priority(100).node("a").ptr(),
                PodBuilder("a2").req("1").priority(5).node("a").ptr()}),
      nodeWith(NodeBuilder("b").capacity("2", "4Gi").ptr(),
               {PodBuilder("b1").req("1").priority(1).node("b").ptr(),
                PodBuilder("b2").req("1").priority(2).node("b").ptr()}),
      nodeWith(NodeBuilder("c").capacity("2", "4Gi").ptr(),
               {PodBuilder("c1").req("2").priority(1000).node("c").ptr()}),
  });
  auto pod = PodInfo::make(PodBuilder("p").req("1").priority(50).ptr());
  CycleState state;
  ScheduleResult r = fw.schedulePod(state, *pod, snap);
  ASSERT_TRUE(r.status.isRejected());
  PostFilterResult pf;
  Status post = fw.runPostFilter(state, *pod, snap, r.diagnosis.node_statuses, pf);
  ASSERT_TRUE(post.ok()) << post.message();
  // a: victim a2 (priority 5); b: one victim suffices, b1 (priority 1, the reprieve keeps b2).
  EXPECT_EQ(pf.nominated_node, "b");
  ASSERT_EQ(pf.victims.size(), 1u);
  EXPECT_EQ(pf.victims[0]->metadata().name(), "b1");

  auto never = PodBuilder("n").req("1").priority(50);
  never.mut().mutable_spec()->set_preemption_policy("Never");
  auto never_info = PodInfo::make(never.ptr());
  CycleState s2;
  ScheduleResult r2 = fw.schedulePod(s2, *never_info, snap);
  PostFilterResult pf2;
  EXPECT_EQ(fw.runPostFilter(s2, *never_info, snap, r2.diagnosis.node_statuses, pf2).message(),
            "not eligible due to preemptionPolicy=Never.");
}

TEST(Framework, NominatedPodsKeepTheirRoomFromLessImportantPods) {
  Framework fw(FrameworkOptions{});
  plugins::registerDefaultPlugins(fw);
  Nominator nominator;
  fw.setPodNominator(&nominator);
  Snapshot snap = snapshotOf({nodeWith(NodeBuilder("a").capacity("2", "4Gi").ptr())});
  // Preemption made room on a for a 2-cpu pod of priority 10 that is not bound yet.
  auto preemptor = PodInfo::make(PodBuilder("preemptor").req("2").priority(10).ptr());
  nominator.nominate(preemptor, "a");

  auto lower = PodInfo::make(PodBuilder("lower").req("1").priority(0).ptr());
  CycleState s1;
  ScheduleResult r1 = fw.schedulePod(s1, *lower, snap);
  ASSERT_TRUE(r1.status.isRejected()) << "a lower-priority pod must not take the room";
  EXPECT_EQ(r1.diagnosis.node_statuses.at("a").message(), "Insufficient cpu");

  auto equal = PodInfo::make(PodBuilder("equal").req("1").priority(10).ptr());
  CycleState s2;
  EXPECT_TRUE(fw.schedulePod(s2, *equal, snap).status.isRejected());

  auto higher = PodInfo::make(PodBuilder("higher").req("1").priority(20).ptr());
  CycleState s3;
  ScheduleResult r3 = fw.schedulePod(s3, *higher, snap);
  ASSERT_TRUE(r3.status.ok()) << r3.status.message();
  EXPECT_EQ(r3.node, "a");

  // The nominated pod itself does not count against itself.
  CycleState s4;
  ScheduleResult r4 = fw.schedulePod(s4, *preemptor, snap);
  ASSERT_TRUE(r4.status.ok()) << r4.status.message();

  // Once it is bound (or deleted) the room is anyone's.
  nominator.remove(preemptor->key);
  CycleState s5;
  EXPECT_TRUE(fw.schedulePod(s5, *lower, snap).status.ok());
}

TEST(Framework, ANominatedPodTriesItsNominatedNodeFirst) {
  Framework fw(FrameworkOptions{});
  plugins::registerDefaultPlugins(fw);
  Snapshot snap = snapshotOf({nodeWith(NodeBuilder("a").ptr()), nodeWith(NodeBuilder("b").ptr()),
                              nodeWith(NodeBuilder("c").ptr())});
  PodBuilder builder("p");
  builder.req("1");
  builder.mut().mutable_status()->set_nominated_node_name("b");
  auto pod = PodInfo::make(builder.ptr());
  for (int i = 0; i < 20; ++i) {
    CycleState state;
    ScheduleResult r = fw.schedulePod(state, *pod, snap);
    ASSERT_TRUE(r.status.ok());
    EXPECT_EQ(r.node, "b");
    EXPECT_EQ(r.evaluated_nodes, 1u);
  }
  // A nominated node that no longer fits: the usual search.
  builder.mut().mutable_status()->set_nominated_node_name("gone");
  auto elsewhere = PodInfo::make(builder.ptr());
  CycleState state;
  ScheduleResult r = fw.schedulePod(state, *elsewhere, snap);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.evaluated_nodes, 3u);
}

TEST(Nominator, StatusNominationsReplaceAndLocalOnesSurviveAStaleStatus) {
  Nominator n;
  auto pod = PodBuilder("p").req("1").priority(5).ptr();
  n.nominate(PodInfo::make(pod), "a");
  n.onPendingPod(pod);  // the informer has not seen the status write yet
  ASSERT_EQ(n.nominatedPods().count("a"), 1u);
  PodBuilder moved("p");
  moved.req("1").priority(5);
  moved.mut().mutable_status()->set_nominated_node_name("b");
  n.onPendingPod(moved.ptr());
  auto all = n.nominatedPods();
  EXPECT_EQ(all.count("a"), 0u);
  ASSERT_EQ(all.count("b"), 1u);
  EXPECT_EQ(all.at("b").size(), 1u);
  // A status nomination is dropped when the status drops it.
  n.onPendingPod(pod);
  EXPECT_TRUE(n.nominatedPods().empty());
  EXPECT_EQ(n.size(), 0u);
}

TEST(Framework, SamplingStopsAfterEnoughFeasibleNodesAndRotates) {
  FrameworkOptions options;
  options.percentage_of_nodes_to_score = 10;
  Framework fw(options);
  plugins::registerDefaultPlugins(fw);
  std::vector<NodeInfo> nodes;
  for (int i = 0; i < 1000; ++i)
    nodes.push_back(nodeWith(NodeBuilder("n" + std::to_string(i)).ptr()));
  Snapshot snap = snapshotOf(std::move(nodes));
  auto pod = PodInfo::make(PodBuilder("p").req("100m").ptr());
  CycleState state;
  ScheduleResult r = fw.schedulePod(state, *pod, snap);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.feasible_nodes, 100u);
  EXPECT_LT(r.evaluated_nodes, 1000u);
}

class RecordingPermit : public PermitPlugin, public ReservePlugin, public BindPlugin {
 public:
  std::string_view name() const override { return "Recording"; }
  Status permit(CycleState&, const PodInfo&, const std::string&,
                std::chrono::milliseconds& timeout) override {
    timeout = std::chrono::milliseconds(2000);
    return Status::wait();
  }
  Status reserve(CycleState&, const PodInfo&, const std::string& node) override {
    reserved = node;
    return {};
  }
  void unreserve(CycleState&, const PodInfo&, const std::string&) override { reserved.clear(); }
  Status bind(CycleState&, const PodInfo&, const std::string& node) override {
    bound = node;
    return {};
  }
  std::string reserved;
  std::string bound;
};

TEST(Framework, ReservePermitWaitAndBind) {
  Framework fw;
  auto plugin = std::make_shared<RecordingPermit>();
  fw.addPlugin(plugin);
  auto pod = PodInfo::make(PodBuilder("p").ptr());
  CycleState state;
  ASSERT_TRUE(fw.runReserve(state, *pod, "n1").ok());
  EXPECT_EQ(plugin->reserved, "n1");
  EXPECT_EQ(fw.runPermit(state, *pod, "n1").code(), Code::kWait);
  std::thread allow([&] {
    while (!fw.allowWaitingPod(pod->key, "Recording"))
      std::this_thread::yield();
  });
  EXPECT_TRUE(fw.waitOnPermit(*pod).ok());
  allow.join();
  EXPECT_TRUE(fw.runBind(state, *pod, "n1").ok());
  EXPECT_EQ(plugin->bound, "n1");

  EXPECT_EQ(fw.runPermit(state, *pod, "n1").code(), Code::kWait);
  EXPECT_TRUE(fw.rejectWaitingPod(pod->key, "gang incomplete"));
  Status rejected = fw.waitOnPermit(*pod);
  EXPECT_TRUE(rejected.isRejected());
  EXPECT_EQ(rejected.message(), "gang incomplete");
  fw.runUnreserve(state, *pod, "n1");
  EXPECT_TRUE(plugin->reserved.empty());
}

}  // namespace
}  // namespace skiff::scheduler

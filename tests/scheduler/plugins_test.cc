// One table per plugin: a pod, a node (with its pods), the expected code and reasons.
#include "scheduler/plugins/plugins.h"

#include <gtest/gtest.h>

#include "tests/scheduler/test_objects.h"

namespace skiff::scheduler::plugins {
namespace {

using testing::NodeBuilder;
using testing::PodBuilder;

struct FilterCase {
  const char* name;
  PodBuilder pod;
  NodeBuilder node;
  std::vector<PodBuilder> existing;
  Code code;
  std::vector<std::string> reasons;
};

NodeInfoPtr nodeInfo(const FilterCase& c) {
  auto info = std::make_shared<NodeInfo>(c.node.ptr());
  for (const PodBuilder& p : c.existing) {
    PodBuilder bound = p;
    bound.node(info->name());
    info->addPod(PodInfo::make(bound.ptr()));
  }
  return info;
}

// Runs PreFilter (over a one-node snapshot, or `others` as well) and Filter.
Status runFilter(Plugin& plugin, const PodInfo& pod, const NodeInfoPtr& node,
                 std::vector<NodeInfoPtr> others = {}) {
  others.push_back(node);
  Snapshot snap = Snapshot::fromNodes(others);
  CycleState state;
  if (auto* pre = dynamic_cast<PreFilterPlugin*>(&plugin)) {
    Status s = pre->preFilter(state, pod, snap);
    if (s.isSkip())
      state.skip_filter.insert(std::string(plugin.name()));
    else if (!s.ok())
      return s;
  }
  if (state.skip_filter.contains(plugin.name())) return {};
  return dynamic_cast<FilterPlugin&>(plugin).filter(state, pod, *node);
}

void runTable(Plugin& plugin, const std::vector<FilterCase>& cases) {
  for (const FilterCase& c : cases) {
    auto pod = PodInfo::make(c.pod.ptr());
    Status s = runFilter(plugin, *pod, nodeInfo(c));
    EXPECT_EQ(s.code(), c.code) << plugin.name() << ": " << c.name << ": " << s.message();
    EXPECT_EQ(s.reasons(), c.reasons) << plugin.name() << ": " << c.name;
  }
}

constexpr Code kOk = Code::kSuccess;
constexpr Code kUnsched = Code::kUnschedulable;
constexpr Code kUnresolvable = Code::kUnschedulableAndUnresolvable;

TEST(NodeUnschedulable, Table) {
  NodeUnschedulable plugin;
  runTable(plugin, {
                       {"schedulable node", PodBuilder("p"), NodeBuilder("n"), {}, kOk, {}},
                       {"cordoned node",
                        PodBuilder("p"),
                        NodeBuilder("n").unschedulable(),
                        {},
                        kUnresolvable,
                        {"node(s) were unschedulable"}},
                       {"pod tolerates the cordon",
                        PodBuilder("p").toleration("node.kubernetes.io/unschedulable", "Exists", "",
                                                   "NoSchedule"),
                        NodeBuilder("n").unschedulable(),
                        {},
                        kOk,
                        {}},
                   });
}

TEST(NodeName, Table) {
  NodeName plugin;
  runTable(plugin, {
                       {"no nodeName", PodBuilder("p"), NodeBuilder("n"), {}, kOk, {}},
                       {"same node", PodBuilder("p").node("n"), NodeBuilder("n"), {}, kOk, {}},
                       {"other node",
                        PodBuilder("p").node("m"),
                        NodeBuilder("n"),
                        {},
                        kUnresolvable,
                        {"node(s) didn't match the requested node name"}},
                   });
}

TEST(NodePorts, Table) {
  NodePorts plugin;
  const std::string reason = "node(s) didn't have free ports for the requested pod ports";
  runTable(plugin, {
                       {"no host ports",
                        PodBuilder("p"),
                        NodeBuilder("n"),
                        {PodBuilder("e").hostPort(80)},
                        kOk,
                        {}},
                       {"free port",
                        PodBuilder("p").hostPort(8080),
                        NodeBuilder("n"),
                        {PodBuilder("e").hostPort(80)},
                        kOk,
                        {}},
                       {"same port and protocol",
                        PodBuilder("p").hostPort(80),
                        NodeBuilder("n"),
                        {PodBuilder("e").hostPort(80)},
                        kUnsched,
                        {reason}},
                       {"other protocol",
                        PodBuilder("p").hostPort(53, "UDP"),
                        NodeBuilder("n"),
                        {PodBuilder("e").hostPort(53, "TCP")},
                        kOk,
                        {}},
                       {"different specific ips",
                        PodBuilder("p").hostPort(80, "TCP", "10.0.0.1"),
                        NodeBuilder("n"),
                        {PodBuilder("e").hostPort(80, "TCP", "10.0.0.2")},
                        kOk,
                        {}},
                       {"specific ip against 0.0.0.0",
                        PodBuilder("p").hostPort(80, "TCP", "10.0.0.1"),
                        NodeBuilder("n"),
                        {PodBuilder("e").hostPort(80)},
                        kUnsched,
                        {reason}},
                   });
}

TEST(NodeResourcesFit, FilterTable) {
  NodeResourcesFit plugin;
  runTable(plugin, {
                       {"fits",
                        PodBuilder("p").req("1", "1Gi"),
                        NodeBuilder("n").capacity("2", "2Gi"),
                        {PodBuilder("e").req("1", "1Gi")},
                        kOk,
                        {}},
                       {"cpu short",
                        PodBuilder("p").req("1500m"),
                        NodeBuilder("n").capacity("2", "2Gi"),
                        {PodBuilder("e").req("1")},
                        kUnsched,
                        {"Insufficient cpu"}},
                       {"cpu and memory short",
                        PodBuilder("p").req("3", "3Gi"),
                        NodeBuilder("n").capacity("2", "2Gi"),
                        {},
                        kUnsched,
                        {"Insufficient cpu", "Insufficient memory"}},
                       {"too many pods",
                        PodBuilder("p"),
                        NodeBuilder("n").capacity("2", "2Gi", "1"),
                        {PodBuilder("e")},
                        kUnsched,
                        {"Too many pods"}},
                       {"init container max rule",
                        PodBuilder("p").req("500m").init("3", "1Mi"),
                        NodeBuilder("n").capacity("2", "2Gi"),
                        {},
                        kUnsched,
                        {"Insufficient cpu"}},
                       {"overhead counts",
                        PodBuilder("p").req("1900m").overhead("200m", "1Mi"),
                        NodeBuilder("n").capacity("2", "2Gi"),
                        {},
                        kUnsched,
                        {"Insufficient cpu"}},
                       {"ephemeral storage",
                        PodBuilder("p").request("ephemeral-storage", "10Gi"),
                        NodeBuilder("n").allocatable("ephemeral-storage", "5Gi"),
                        {},
                        kUnsched,
                        {"Insufficient ephemeral-storage"}},
                       {"extended resource",
                        PodBuilder("p").request("example.com/gpu", "1"),
                        NodeBuilder("n"),
                        {},
                        kUnsched,
                        {"Insufficient example.com/gpu"}},
                       {"extended resource available",
                        PodBuilder("p").request("example.com/gpu", "1"),
                        NodeBuilder("n").allocatable("example.com/gpu", "2"),
                        {PodBuilder("e").request("example.com/gpu", "1")},
                        kOk,
                        {}},
                       {"best effort pod on a full node",
                        PodBuilder("p"),
                        NodeBuilder("n").capacity("1", "1Gi"),
                        {PodBuilder("e").req("1", "1Gi")},
                        kOk,
                        {}},
                   });
}

int64_t scoreOf(const ScorePlugin& plugin, const PodInfo& pod, const NodeInfo& node) {
  CycleState state;
  int64_t score = -1;
  EXPECT_TRUE(plugin.score(state, pod, node, score).ok());
  return score;
}

TEST(NodeResourcesFit, LeastAllocatedScore) {
  NodeResourcesFit plugin;
  NodeInfo node(NodeBuilder("n").capacity("4", "8Gi").ptr());
  node.addPod(PodInfo::make(PodBuilder("e").req("1", "2Gi").node("n").ptr()));
  // cpu: (4000 - 2000) * 100 / 4000 = 50; memory: (8 - 4) * 100 / 8 = 50.
  EXPECT_EQ(scoreOf(plugin, *PodInfo::make(PodBuilder("p").req("1", "2Gi").ptr()), node), 50);
  // No requests count as 100m and 200Mi: cpu (4000-1100)*100/4000 = 72, memory 72 -> 72.
  EXPECT_EQ(scoreOf(plugin, *PodInfo::make(PodBuilder("p").ptr()), node),
            ((4000 - 1100) * 100 / 4000 +
             ((8LL << 30) - (2LL << 30) - (200LL << 20)) * 100 / (8LL << 30)) /
                2);
}

TEST(NodeResourcesBalancedAllocation, Score) {
  NodeResourcesBalancedAllocation plugin;
  NodeInfo node(NodeBuilder("n").capacity("4", "8Gi").ptr());
  // cpu 50%, memory 50%: perfectly balanced.
  EXPECT_EQ(scoreOf(plugin, *PodInfo::make(PodBuilder("p").req("2", "4Gi").ptr()), node), 100);
  // cpu 100%, memory 0%: std 0.5 -> 50.
  EXPECT_EQ(scoreOf(plugin, *PodInfo::make(PodBuilder("p").req("4").ptr()), node), 50);
  // cpu 25%, memory 75%: std 0.25 -> 75.
  EXPECT_EQ(scoreOf(plugin, *PodInfo::make(PodBuilder("p").req("1", "6Gi").ptr()), node), 75);
}

PodBuilder withNodeAffinity(const std::string& key, const std::string& op,
                            std::vector<std::string> values) {
  PodBuilder p("p");
  auto* term = p.mut()
                   .mutable_spec()
                   ->mutable_affinity()
                   ->mutable_node_affinity()
                   ->mutable_required_during_scheduling_ignored_during_execution()
                   ->add_node_selector_terms();
  auto* r = term->add_match_expressions();
  r->set_key(key);
  r->set_operator_(op);
  for (auto& v : values)
    r->add_values(v);
  return p;
}

TEST(NodeAffinity, FilterTable) {
  NodeAffinity plugin;
  const std::string reason = "node(s) didn't match Pod's node affinity/selector";
  const NodeBuilder ssd = NodeBuilder("n").label("disk", "ssd").label("cores", "16");
  runTable(
      plugin,
      {
          {"nothing asked", PodBuilder("p"), ssd, {}, kOk, {}},
          {"nodeSelector matches", PodBuilder("p").nodeSelector("disk", "ssd"), ssd, {}, kOk, {}},
          {"nodeSelector mismatch",
           PodBuilder("p").nodeSelector("disk", "hdd"),
           ssd,
           {},
           kUnresolvable,
           {reason}},
          {"nodeSelector missing label",
           PodBuilder("p").nodeSelector("zone", "a"),
           ssd,
           {},
           kUnresolvable,
           {reason}},
          {"In", withNodeAffinity("disk", "In", {"hdd", "ssd"}), ssd, {}, kOk, {}},
          {"NotIn", withNodeAffinity("disk", "NotIn", {"ssd"}), ssd, {}, kUnresolvable, {reason}},
          {"NotIn absent label", withNodeAffinity("gpu", "NotIn", {"x"}), ssd, {}, kOk, {}},
          {"Exists", withNodeAffinity("disk", "Exists", {}), ssd, {}, kOk, {}},
          {"DoesNotExist",
           withNodeAffinity("disk", "DoesNotExist", {}),
           ssd,
           {},
           kUnresolvable,
           {reason}},
          {"Gt", withNodeAffinity("cores", "Gt", {"8"}), ssd, {}, kOk, {}},
          {"Gt not greater",
           withNodeAffinity("cores", "Gt", {"16"}),
           ssd,
           {},
           kUnresolvable,
           {reason}},
          {"Lt", withNodeAffinity("cores", "Lt", {"32"}), ssd, {}, kOk, {}},
          {"Lt non-integer label",
           withNodeAffinity("disk", "Lt", {"32"}),
           ssd,
           {},
           kUnresolvable,
           {reason}},
      });
}

TEST(NodeAffinity, MatchFieldsAndTermsAreOred) {
  NodeAffinity plugin;
  PodBuilder p = withNodeAffinity("disk", "In", {"hdd"});
  auto* term = p.mut()
                   .mutable_spec()
                   ->mutable_affinity()
                   ->mutable_node_affinity()
                   ->mutable_required_during_scheduling_ignored_during_execution()
                   ->add_node_selector_terms();
  auto* f = term->add_match_fields();
  f->set_key("metadata.name");
  f->set_operator_("In");
  f->add_values("n");
  auto pod = PodInfo::make(p.ptr());
  EXPECT_TRUE(runFilter(plugin, *pod, std::make_shared<NodeInfo>(NodeBuilder("n").ptr())).ok());
  EXPECT_FALSE(runFilter(plugin, *pod, std::make_shared<NodeInfo>(NodeBuilder("m").ptr())).ok());
}

TEST(NodeAffinity, PreferredScoreNormalized) {
  NodeAffinity plugin;
  PodBuilder p("p");
  auto* na = p.mut().mutable_spec()->mutable_affinity()->mutable_node_affinity();
  auto addPref = [&](int32_t weight, const std::string& k, const std::string& v) {
    auto* pref = na->add_preferred_during_scheduling_ignored_during_execution();
    pref->set_weight(weight);
    auto* r = pref->mutable_preference()->add_match_expressions();
    r->set_key(k);
    r->set_operator_("In");
    r->add_values(v);
  };
  addPref(80, "zone", "a");
  addPref(20, "disk", "ssd");
  auto pod = PodInfo::make(p.ptr());
  NodeInfo both(NodeBuilder("1").label("zone", "a").label("disk", "ssd").ptr());
  NodeInfo zone(NodeBuilder("2").label("zone", "a").ptr());
  NodeInfo none(NodeBuilder("3").ptr());
  std::vector<int64_t> scores = {scoreOf(plugin, *pod, both), scoreOf(plugin, *pod, zone),
                                 scoreOf(plugin, *pod, none)};
  EXPECT_EQ(scores, (std::vector<int64_t>{100, 80, 0}));
  CycleState state;
  ASSERT_TRUE(plugin.normalizeScore(state, *pod, scores).ok());
  EXPECT_EQ(scores, (std::vector<int64_t>{100, 80, 0}));
}

TEST(TaintToleration, FilterTable) {
  TaintToleration plugin;
  const NodeBuilder tainted = NodeBuilder("n").taint("dedicated", "gpu", "NoSchedule");
  runTable(plugin, {
                       {"no taints", PodBuilder("p"), NodeBuilder("n"), {}, kOk, {}},
                       {"untolerated",
                        PodBuilder("p"),
                        tainted,
                        {},
                        kUnresolvable,
                        {"node(s) had untolerated taint {dedicated: gpu}"}},
                       {"Equal toleration",
                        PodBuilder("p").toleration("dedicated", "Equal", "gpu", "NoSchedule"),
                        tainted,
                        {},
                        kOk,
                        {}},
                       {"Equal other value",
                        PodBuilder("p").toleration("dedicated", "Equal", "cpu", ""),
                        tainted,
                        {},
                        kUnresolvable,
                        {"node(s) had untolerated taint {dedicated: gpu}"}},
                       {"Exists any effect",
                        PodBuilder("p").toleration("dedicated", "Exists", "", ""),
                        tainted,
                        {},
                        kOk,
                        {}},
                       {"Exists everything",
                        PodBuilder("p").toleration("", "Exists", "", ""),
                        tainted,
                        {},
                        kOk,
                        {}},
                       {"wrong effect",
                        PodBuilder("p").toleration("dedicated", "Exists", "", "NoExecute"),
                        tainted,
                        {},
                        kUnresolvable,
                        {"node(s) had untolerated taint {dedicated: gpu}"}},
                       {"NoExecute",
                        PodBuilder("p"),
                        NodeBuilder("n").taint("x", "", "NoExecute"),
                        {},
                        kUnresolvable,
                        {"node(s) had untolerated taint {x: }"}},
                       {"PreferNoSchedule does not filter",
                        PodBuilder("p"),
                        NodeBuilder("n").taint("x", "", "PreferNoSchedule"),
                        {},
                        kOk,
                        {}},
                   });
}

TEST(TaintToleration, PreferNoScheduleScore) {
  TaintToleration plugin;
  auto pod = PodInfo::make(PodBuilder("p").toleration("a", "Exists", "", "PreferNoSchedule").ptr());
  NodeInfo clean(NodeBuilder("1").ptr());
  NodeInfo tolerated(NodeBuilder("2").taint("a", "", "PreferNoSchedule").ptr());
  NodeInfo two(
      NodeBuilder("3").taint("b", "", "PreferNoSchedule").taint("c", "", "PreferNoSchedule").ptr());
  NodeInfo one(NodeBuilder("4").taint("b", "", "PreferNoSchedule").ptr());
  std::vector<int64_t> scores = {scoreOf(plugin, *pod, clean), scoreOf(plugin, *pod, tolerated),
                                 scoreOf(plugin, *pod, two), scoreOf(plugin, *pod, one)};
  EXPECT_EQ(scores, (std::vector<int64_t>{0, 0, 2, 1}));
  CycleState state;
  ASSERT_TRUE(plugin.normalizeScore(state, *pod, scores).ok());
  EXPECT_EQ(scores, (std::vector<int64_t>{100, 100, 0, 50}));
}

// Nodes in zones with pods labelled app=web.
std::vector<NodeInfoPtr> zonedNodes(
    const std::vector<std::pair<std::string, int>>& zones_and_pods) {
  std::vector<NodeInfoPtr> out;
  int i = 0;
  for (const auto& [zone, pods] : zones_and_pods) {
    const std::string name = "n" + std::to_string(i++);
    auto info = std::make_shared<NodeInfo>(
        NodeBuilder(name).label("topology.kubernetes.io/zone", zone).ptr());
    for (int k = 0; k < pods; ++k) {
      info->addPod(PodInfo::make(
          PodBuilder(name + "-w" + std::to_string(k)).label("app", "web").node(name).ptr()));
    }
    out.push_back(info);
  }
  return out;
}

Status filterOn(Plugin& plugin, const PodInfo& pod, const std::vector<NodeInfoPtr>& nodes,
                size_t target) {
  Snapshot snap = Snapshot::fromNodes(nodes);
  CycleState state;
  Status s = dynamic_cast<PreFilterPlugin&>(plugin).preFilter(state, pod, snap);
  if (s.isSkip()) return {};
  if (!s.ok()) return s;
  return dynamic_cast<FilterPlugin&>(plugin).filter(state, pod, *snap.get(nodes[target]->name()));
}

TEST(PodTopologySpread, FilterTable) {
  PodTopologySpread plugin;
  const std::string zone = "topology.kubernetes.io/zone";
  const std::string reason = "node(s) didn't match pod topology spread constraints";
  struct Case {
    const char* name;
    PodBuilder pod;
    std::vector<std::pair<std::string, int>> nodes;
    size_t target;
    Code code;
    std::vector<std::string> reasons;
  };
  const Case cases[] = {
      {"no constraints", PodBuilder("p").label("app", "web"), {{"a", 3}, {"b", 0}}, 0, kOk, {}},
      {"into the empty zone",
       PodBuilder("p").label("app", "web").spread(1, zone, "DoNotSchedule", "app", "web"),
       {{"a", 1}, {"b", 0}},
       1,
       kOk,
       {}},
      {"into the full zone breaks maxSkew 1",
       PodBuilder("p").label("app", "web").spread(1, zone, "DoNotSchedule", "app", "web"),
       {{"a", 1}, {"b", 0}},
       0,
       kUnsched,
       {reason}},
      {"maxSkew 2 allows it",
       PodBuilder("p").label("app", "web").spread(2, zone, "DoNotSchedule", "app", "web"),
       {{"a", 1}, {"b", 0}},
       0,
       kOk,
       {}},
      {"zones sum over nodes",
       PodBuilder("p").label("app", "web").spread(1, zone, "DoNotSchedule", "app", "web"),
       {{"a", 1}, {"a", 1}, {"b", 1}},
       2,
       kOk,
       {}},
      {"zones sum over nodes (full side)",
       PodBuilder("p").label("app", "web").spread(1, zone, "DoNotSchedule", "app", "web"),
       {{"a", 1}, {"a", 1}, {"b", 1}},
       0,
       kUnsched,
       {reason}},
      {"pod not matching its own selector",
       PodBuilder("p").label("app", "db").spread(1, zone, "DoNotSchedule", "app", "web"),
       {{"a", 1}, {"b", 0}},
       0,
       kOk,
       {}},
      {"ScheduleAnyway does not filter",
       PodBuilder("p").label("app", "web").spread(1, zone, "ScheduleAnyway", "app", "web"),
       {{"a", 5}, {"b", 0}},
       0,
       kOk,
       {}},
      {"node without the key",
       PodBuilder("p").label("app", "web").spread(1, "rack", "DoNotSchedule", "app", "web"),
       {{"a", 0}},
       0,
       kUnresolvable,
       {"node(s) didn't match pod topology spread constraints (missing required label)"}},
  };
  for (const Case& c : cases) {
    auto pod = PodInfo::make(c.pod.ptr());
    Status s = filterOn(plugin, *pod, zonedNodes(c.nodes), c.target);
    EXPECT_EQ(s.code(), c.code) << c.name << ": " << s.message();
    EXPECT_EQ(s.reasons(), c.reasons) << c.name;
  }
}

TEST(PodTopologySpread, MinDomainsAndHostname) {
  PodTopologySpread plugin;
  // minDomains 3 with 2 domains: the global minimum counts as 0.
  PodBuilder p = PodBuilder("p")
                     .label("app", "web")
                     .spread(1, "topology.kubernetes.io/zone", "DoNotSchedule", "app", "web");
  p.mut().mutable_spec()->mutable_topology_spread_constraints(0)->set_min_domains(3);
  auto pod = PodInfo::make(p.ptr());
  EXPECT_FALSE(filterOn(plugin, *pod, zonedNodes({{"a", 1}, {"b", 1}}), 0).ok());
  auto host = PodInfo::make(PodBuilder("p")
                                .label("app", "web")
                                .spread(1, "kubernetes.io/hostname", "DoNotSchedule", "app", "web")
                                .ptr());
  EXPECT_TRUE(filterOn(plugin, *host, zonedNodes({{"a", 1}, {"a", 0}}), 1).ok());
  EXPECT_FALSE(filterOn(plugin, *host, zonedNodes({{"a", 1}, {"a", 0}}), 0).ok());
}

TEST(PodTopologySpread, ScheduleAnywayScoresEmptierDomainsHigher) {
  PodTopologySpread plugin;
  auto pod =
      PodInfo::make(PodBuilder("p")
                        .label("app", "web")
                        .spread(1, "topology.kubernetes.io/zone", "ScheduleAnyway", "app", "web")
                        .ptr());
  auto nodes = zonedNodes({{"a", 3}, {"b", 1}, {"c", 0}});
  Snapshot snap = Snapshot::fromNodes(nodes);
  CycleState state;
  ASSERT_TRUE(plugin.preScore(state, *pod, snap.nodes(), snap).ok());
  std::vector<int64_t> scores;
  for (const auto& n : snap.nodes()) {
    int64_t s = 0;
    ASSERT_TRUE(plugin.score(state, *pod, *n, s).ok());
    scores.push_back(s);
  }
  ASSERT_TRUE(plugin.normalizeScore(state, *pod, scores).ok());
  EXPECT_GT(scores[2], scores[1]);
  EXPECT_GT(scores[1], scores[0]);
  EXPECT_EQ(scores[2], 100);
}

// Per constraint node inclusion policies, an empty selector, AddPod/RemovePod and the minimum.
TEST(PodTopologySpread, InclusionPoliciesAndUpdatesTable) {
  const std::string zone = "topology.kubernetes.io/zone";
  // Zones a (n0: 1 web pod, tainted, disk=ssd), b (n1: no pods, disk=hdd), c (n2: 0 pods,
  // disk=ssd). The pod selects disk=ssd.
  auto nodes = [] {
    std::vector<NodeInfoPtr> out;
    const char* zones[] = {"a", "b", "c"};
    const char* disks[] = {"ssd", "hdd", "ssd"};
    for (int i = 0; i < 3; ++i) {
      const std::string name = "n" + std::to_string(i);
      NodeBuilder b(name);
      b.label("topology.kubernetes.io/zone", zones[i]).label("disk", disks[i]);
      if (i == 0) b.taint("dedicated", "x", "NoSchedule");
      auto info = std::make_shared<NodeInfo>(b.ptr());
      if (i == 0) {
        info->addPod(PodInfo::make(PodBuilder("w0").label("app", "web").node(name).ptr()));
      }
      out.push_back(info);
    }
    return out;
  }();
  auto web = [&](const char* affinity_policy, const char* taints_policy) {
    PodBuilder p =
        PodBuilder("p").label("app", "web").spread(1, zone, "DoNotSchedule", "app", "web");
    auto* c = p.mut().mutable_spec()->mutable_topology_spread_constraints(0);
    if (*affinity_policy) c->set_node_affinity_policy(affinity_policy);
    if (*taints_policy) c->set_node_taints_policy(taints_policy);
    p.nodeSelector("disk", "ssd");
    return PodInfo::make(p.ptr());
  };
  struct Case {
    const char* name;
    PodInfoPtr pod;
    size_t target;
    Code code;
  };
  const Case cases[] = {
      // Honor (default): zone b does not match the nodeSelector, so domains are a (1) and c (0).
      {"affinity honored: a is 1 over c", web("", ""), 0, kUnsched},
      {"affinity honored: c is the minimum", web("", ""), 2, kOk},
      // Ignore: zone b counts too; a stays 1 over the minimum 0.
      {"affinity ignored: a still 1 over", web("Ignore", ""), 0, kUnsched},
      // Taints honored: n0 is tainted and not tolerated, so zone a drops out: domain c alone,
      // minimum 0, and n0 itself (count 0 in the table) fits.
      {"taints honored: a does not count", web("", "Honor"), 0, kOk},
      {"taints ignored (default): a counts", web("", "Ignore"), 0, kUnsched},
  };
  for (const Case& c : cases) {
    PodTopologySpread plugin;
    Status s = filterOn(plugin, *c.pod, nodes, c.target);
    EXPECT_EQ(s.code(), c.code) << c.name << ": " << s.message();
  }

  // An empty labelSelector counts no pods (countPodsMatchSelector), so every zone is at 0.
  {
    PodBuilder p("p");
    p.label("app", "web");
    auto* c = p.mut().mutable_spec()->add_topology_spread_constraints();
    c->set_max_skew(1);
    c->set_topology_key(zone);
    c->set_when_unsatisfiable("DoNotSchedule");
    c->mutable_label_selector();
    PodTopologySpread plugin;
    EXPECT_TRUE(
        filterOn(plugin, *PodInfo::make(p.ptr()), zonedNodes({{"a", 3}, {"b", 0}}), 0).ok());
  }

  // AddPod / RemovePod (preemption's what-ifs): zones a, b, c at 0; a pod added to a makes a 1
  // over the minimum; one added to b too leaves c at 0, the minimum (Kubernetes' two critical
  // paths would both be a and b at 1 here); removing a's pod in a copy lets a fit again there.
  {
    PodTopologySpread plugin;
    auto pod = PodInfo::make(
        PodBuilder("p").label("app", "web").spread(1, zone, "DoNotSchedule", "app", "web").ptr());
    auto zoned = zonedNodes({{"a", 0}, {"b", 0}, {"c", 0}});
    Snapshot snap = Snapshot::fromNodes(zoned);
    CycleState state;
    ASSERT_TRUE(plugin.preFilter(state, *pod, snap).ok());
    auto other = PodInfo::make(PodBuilder("o").label("app", "web").ptr());
    auto stranger = PodInfo::make(PodBuilder("s", "elsewhere").label("app", "web").ptr());
    const NodeInfo& a = *snap.get("n0");
    const NodeInfo& b = *snap.get("n1");
    EXPECT_TRUE(plugin.filter(state, *pod, a).ok());
    ASSERT_TRUE(plugin.addPod(state, *pod, *other, a).ok());
    EXPECT_FALSE(plugin.filter(state, *pod, a).ok()) << "a at 1, b and c at 0: skew 2";
    EXPECT_TRUE(plugin.filter(state, *pod, b).ok());
    ASSERT_TRUE(plugin.addPod(state, *pod, *other, b).ok());
    ASSERT_TRUE(plugin.addPod(state, *pod, *stranger, b).ok());  // another namespace: ignored
    EXPECT_FALSE(plugin.filter(state, *pod, a).ok());
    EXPECT_FALSE(plugin.filter(state, *pod, b).ok());
    EXPECT_TRUE(plugin.filter(state, *pod, *snap.get("n2")).ok());
    CycleState copy = state.clone();
    ASSERT_TRUE(plugin.removePod(copy, *pod, *other, a).ok());
    EXPECT_TRUE(plugin.filter(copy, *pod, a).ok());
    EXPECT_FALSE(plugin.filter(state, *pod, a).ok()) << "the clone is a copy";
  }
}

// The plugin keeps each node's domain and matching count across cycles; as the cache changes
// (pods assumed and forgotten, nodes added, relabelled and removed) one long-lived plugin must
// decide exactly as a fresh one does on every node, for Filter and for Score.
TEST(PodTopologySpread, CountsKeptAcrossCyclesFollowTheCache) {
  Cache cache;
  auto node = [](int i, const std::string& zone) {
    return NodeBuilder("n" + std::to_string(i)).label("topology.kubernetes.io/zone", zone).ptr();
  };
  for (int i = 0; i < 6; ++i)
    cache.addNode(node(i, i % 2 ? "b" : "a"));
  PodTopologySpread kept;
  auto filterPod =
      PodInfo::make(PodBuilder("p")
                        .label("app", "web")
                        .spread(1, "topology.kubernetes.io/zone", "DoNotSchedule", "app", "web")
                        .spread(1, "kubernetes.io/hostname", "DoNotSchedule", "app", "web")
                        .ptr());
  auto scorePod =
      PodInfo::make(PodBuilder("q")
                        .label("app", "web")
                        .spread(1, "topology.kubernetes.io/zone", "ScheduleAnyway", "app", "web")
                        .spread(2, "kubernetes.io/hostname", "ScheduleAnyway", "app", "web")
                        .ptr());
  int step = 0;
  // A new snapshot each time: with the last one gone, the cache changes its NodeInfos in place
  // (same object, new generation).
  auto check = [&](const std::string& what) {
    Snapshot snap;
    cache.updateSnapshot(snap);
    PodTopologySpread fresh;
    CycleState a, b;
    ASSERT_TRUE(kept.preFilter(a, *filterPod, snap).ok()) << what;
    ASSERT_TRUE(fresh.preFilter(b, *filterPod, snap).ok()) << what;
    for (const NodeInfoPtr& n : snap.nodes()) {
      EXPECT_EQ(kept.filter(a, *filterPod, *n).code(), fresh.filter(b, *filterPod, *n).code())
          << what << ": " << n->name();
    }
    CycleState c, d;
    ASSERT_TRUE(kept.preScore(c, *scorePod, snap.nodes(), snap).ok()) << what;
    ASSERT_TRUE(fresh.preScore(d, *scorePod, snap.nodes(), snap).ok()) << what;
    for (const NodeInfoPtr& n : snap.nodes()) {
      int64_t x = 0, y = 0;
      ASSERT_TRUE(kept.score(c, *scorePod, *n, x).ok());
      ASSERT_TRUE(fresh.score(d, *scorePod, *n, y).ok());
      EXPECT_EQ(x, y) << what << ": " << n->name();
    }
    ++step;
  };
  auto assume = [&](const std::string& name, const std::string& on, const std::string& app) {
    auto p = PodBuilder(name).label("app", app).node(on).ptr();
    cache.assumePod(p);
  };
  check("empty");
  assume("w1", "n0", "web");
  check("one pod on n0");
  assume("w2", "n1", "web");
  assume("x1", "n2", "db");
  check("pods on n1 and n2");
  assume("w3", "n3", "web");
  check("pod on n3");
  cache.forgetPod("default/w1");
  check("n0's pod forgotten");
  cache.addNode(node(10, "c"));  // a new position in the middle of the order
  assume("w4", "n10", "web");
  check("node n10 in zone c");
  cache.updateNode(node(3, "c"));  // relabelled: n3 moves to zone c
  check("n3 relabelled");
  cache.removeNode("n1");
  check("n1 removed");
  EXPECT_EQ(step, 8);
}

// A DefaultSpreadSelector that selects app=<the pod's app label>, or nothing in particular.
class AppSelector : public DefaultSpreadSelector {
 public:
  api::labels::Selector selectorFor(const Pod& pod) const override {
    auto it = pod.metadata().labels().find("app");
    if (it == pod.metadata().labels().end()) return {};
    return api::labels::Selector::fromSet(std::map<std::string, std::string>{{"app", it->second}});
  }
};

// PreScore, Score and NormalizeScore over every node; empty when PreScore skips.
std::vector<int64_t> spreadScores(PodTopologySpread& plugin, const PodInfo& pod,
                                  const std::vector<NodeInfoPtr>& nodes) {
  Snapshot snap = Snapshot::fromNodes(nodes);
  CycleState state;
  Status pre = plugin.preScore(state, pod, snap.nodes(), snap);
  if (pre.isSkip()) return {};
  EXPECT_TRUE(pre.ok()) << pre.message();
  std::vector<int64_t> scores;
  for (const auto& n : snap.nodes()) {
    int64_t s = 0;
    EXPECT_TRUE(plugin.score(state, pod, *n, s).ok());
    scores.push_back(s);
  }
  EXPECT_TRUE(plugin.normalizeScore(state, pod, scores).ok());
  return scores;
}

// Nodes with hostname labels only (no zone), each with `pods` app=web pods.
std::vector<NodeInfoPtr> hostNodes(const std::vector<int>& pods) {
  std::vector<NodeInfoPtr> out;
  for (size_t i = 0; i < pods.size(); ++i) {
    const std::string name = "h" + std::to_string(i);
    auto info = std::make_shared<NodeInfo>(NodeBuilder(name).ptr());
    for (int k = 0; k < pods[i]; ++k) {
      info->addPod(PodInfo::make(
          PodBuilder(name + "-w" + std::to_string(k)).label("app", "web").node(name).ptr()));
    }
    out.push_back(info);
  }
  return out;
}

TEST(PodTopologySpread, SystemDefaultsSpreadByHostnameWithoutZoneLabels) {
  PodTopologySpread plugin(SpreadDefaults{.selector = std::make_shared<AppSelector>()});
  auto web = PodInfo::make(PodBuilder("p").label("app", "web").ptr());
  // hostname maxSkew 3: 3 web pods on h0, 1 on h1, none on h2; no node has a zone label, yet
  // hostname spreading applies (requireAllTopologies is false for system defaults).
  std::vector<int64_t> scores = spreadScores(plugin, *web, hostNodes({3, 1, 0}));
  ASSERT_EQ(scores.size(), 3u);
  EXPECT_EQ(scores[2], 100);
  EXPECT_GT(scores[1], scores[0]);
  EXPECT_GT(scores[2], scores[1]);
  // Other pods' labels do not count: a db pod scores every node alike.
  auto db = PodInfo::make(PodBuilder("p").label("app", "db").ptr());
  EXPECT_EQ(spreadScores(plugin, *db, hostNodes({3, 1, 0})), (std::vector<int64_t>{100, 100, 100}));
  // Nothing to select by: no default constraints.
  auto plain = PodInfo::make(PodBuilder("p").ptr());
  EXPECT_TRUE(spreadScores(plugin, *plain, hostNodes({3, 1, 0})).empty());
}

TEST(PodTopologySpread, DefaultsNeedASelectorSourceAndGiveWayToOwnConstraints) {
  auto web = PodInfo::make(PodBuilder("p").label("app", "web").ptr());
  PodTopologySpread without;  // no DefaultSpreadSelector: no defaults
  EXPECT_TRUE(spreadScores(without, *web, hostNodes({3, 0})).empty());

  PodTopologySpread plugin(SpreadDefaults{.selector = std::make_shared<AppSelector>()});
  // A pod with a constraint of its own (even DoNotSchedule only) gets no default ones.
  auto own =
      PodInfo::make(PodBuilder("p")
                        .label("app", "web")
                        .spread(1, "topology.kubernetes.io/zone", "DoNotSchedule", "app", "web")
                        .ptr());
  EXPECT_TRUE(spreadScores(plugin, *own, hostNodes({3, 0})).empty());
  // The defaults are ScheduleAnyway: they never filter.
  EXPECT_TRUE(filterOn(plugin, *web, hostNodes({9, 0}), 0).ok());
}

TEST(PodTopologySpread, SystemDefaultsKeepNodesMissingAKeyListedDefaultsIgnoreThem) {
  // n0 in zone a, n1 without a zone label; no pods anywhere.
  auto nodes = [] {
    std::vector<NodeInfoPtr> out;
    out.push_back(std::make_shared<NodeInfo>(
        NodeBuilder("n0").label("topology.kubernetes.io/zone", "a").ptr()));
    out.push_back(std::make_shared<NodeInfo>(NodeBuilder("n1").ptr()));
    return out;
  };
  auto web = PodInfo::make(PodBuilder("p").label("app", "web").ptr());
  PodTopologySpread system(SpreadDefaults{.selector = std::make_shared<AppSelector>()});
  // n1 scores on hostname alone (0 pods + maxSkew 3 - 1 = 2), n0 on both keys (2 + 5 - 1 = 6):
  // kube-scheduler's raw scores, normalized 100 * (6 + 2 - s) / 6.
  EXPECT_EQ(spreadScores(system, *web, nodes()), (std::vector<int64_t>{33, 100}));
  // The same constraints as defaultingType List behave as the pod's own: n1 is ignored.
  PodTopologySpread listed(
      SpreadDefaults{.system = false, .selector = std::make_shared<AppSelector>()});
  EXPECT_EQ(spreadScores(listed, *web, nodes()), (std::vector<int64_t>{100, 0}));
}

TEST(InterPodAffinity, FilterTable) {
  InterPodAffinity plugin;
  const std::string zone = "topology.kubernetes.io/zone";
  struct Case {
    const char* name;
    PodBuilder pod;
    std::vector<std::pair<std::string, int>> nodes;  // web pods per node
    size_t target;
    Code code;
    std::vector<std::string> reasons;
  };
  const Case cases[] = {
      {"anti-affinity on hostname: empty node",
       PodBuilder("p").antiAffinity("app", "web"),
       {{"a", 1}, {"a", 0}},
       1,
       kOk,
       {}},
      {"anti-affinity on hostname: occupied node",
       PodBuilder("p").antiAffinity("app", "web"),
       {{"a", 1}, {"a", 0}},
       0,
       kUnsched,
       {"node(s) didn't match pod anti-affinity rules"}},
      {"anti-affinity on zone covers the zone's other node",
       PodBuilder("p").antiAffinity("app", "web", zone),
       {{"a", 1}, {"a", 0}, {"b", 0}},
       1,
       kUnsched,
       {"node(s) didn't match pod anti-affinity rules"}},
      {"anti-affinity on zone: other zone",
       PodBuilder("p").antiAffinity("app", "web", zone),
       {{"a", 1}, {"a", 0}, {"b", 0}},
       2,
       kOk,
       {}},
      {"affinity: with a web pod",
       PodBuilder("p").affinity("app", "web"),
       {{"a", 1}, {"a", 0}},
       0,
       kOk,
       {}},
      {"affinity: without",
       PodBuilder("p").affinity("app", "web"),
       {{"a", 1}, {"a", 0}},
       1,
       kUnresolvable,
       {"node(s) didn't match pod affinity rules"}},
      {"affinity in zone",
       PodBuilder("p").affinity("app", "web", zone),
       {{"a", 1}, {"a", 0}, {"b", 0}},
       1,
       kOk,
       {}},
      {"first pod of a self-selecting group goes anywhere",
       PodBuilder("p").label("app", "db").affinity("app", "db"),
       {{"a", 1}, {"a", 0}},
       1,
       kOk,
       {}},
      {"no matching pod and not self-selecting",
       PodBuilder("p").affinity("app", "db"),
       {{"a", 1}, {"a", 0}},
       1,
       kUnresolvable,
       {"node(s) didn't match pod affinity rules"}},
  };
  for (const Case& c : cases) {
    auto pod = PodInfo::make(c.pod.ptr());
    Status s = filterOn(plugin, *pod, zonedNodes(c.nodes), c.target);
    EXPECT_EQ(s.code(), c.code) << c.name << ": " << s.message();
    EXPECT_EQ(s.reasons(), c.reasons) << c.name;
  }
}

TEST(InterPodAffinity, ExistingPodsAntiAffinityIsSymmetric) {
  InterPodAffinity plugin;
  auto guarded = std::make_shared<NodeInfo>(NodeBuilder("g").ptr());
  guarded->addPod(PodInfo::make(
      PodBuilder("loner").label("app", "db").antiAffinity("app", "web").node("g").ptr()));
  auto free = std::make_shared<NodeInfo>(NodeBuilder("f").ptr());
  auto web = PodInfo::make(PodBuilder("p").label("app", "web").ptr());
  auto other = PodInfo::make(PodBuilder("q").label("app", "cache").ptr());
  Snapshot snap = Snapshot::fromNodes({guarded, free});
  CycleState state;
  ASSERT_TRUE(plugin.preFilter(state, *web, snap).ok());
  Status s = plugin.filter(state, *web, *snap.get("g"));
  EXPECT_EQ(s.code(), kUnsched);
  EXPECT_EQ(s.message(), "node(s) didn't satisfy existing pods anti-affinity rules");
  EXPECT_TRUE(plugin.filter(state, *web, *snap.get("f")).ok());
  CycleState state2;
  ASSERT_TRUE(plugin.preFilter(state2, *other, snap).ok());
  EXPECT_TRUE(plugin.filter(state2, *other, *snap.get("g")).ok());
}

}  // namespace
}  // namespace skiff::scheduler::plugins

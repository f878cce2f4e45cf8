#include "control/controllers/daemonset.h"

#include <gtest/gtest.h>

#include <functional>

#include "tests/control/controllers/builders.h"
#include "tests/control/controllers/workload_test_util.h"

namespace skiff::controllers {
namespace {

using namespace testing;  // NOLINT
using api::apps::v1::DaemonSet;
using api::core::v1::Node;
using api::core::v1::Pod;

DaemonSet makeDaemonSet() {
  return fromYaml<DaemonSet>(R"(
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default, uid: ds-uid, generation: 2}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: c, image: agent:1}]}
)");
}

Node makeNode(const std::string& name, std::map<std::string, std::string> labels = {},
              std::vector<std::pair<std::string, std::string>> taints = {}) {
  Node node;
  node.mutable_metadata()->set_name(name);
  for (const auto& [k, v] : labels)
    (*node.mutable_metadata()->mutable_labels())[k] = v;
  for (const auto& [key, effect] : taints) {
    auto* t = node.mutable_spec()->add_taints();
    t->set_key(key);
    t->set_effect(effect);
  }
  return node;
}

std::string currentHash() {
  return computeTemplateHash(makeDaemonSet().spec().template_(), std::nullopt);
}

std::string newHash() {
  DaemonSet ds = makeDaemonSet();
  ds.mutable_spec()->mutable_template_()->mutable_spec()->mutable_containers(0)->set_image(
      "agent:2");
  return computeTemplateHash(ds.spec().template_(), std::nullopt);
}

Pod daemonPod(const std::string& name, const std::string& node, std::string hash = "",
              bool ready = true, std::string phase = "Running", int64_t created = 200) {
  Pod pod = makePod({.name = name,
                     .labels = {{"app", "agent"}},
                     .owner_uid = "ds-uid",
                     .owner_name = "agent",
                     .phase = std::move(phase),
                     .node = node,
                     .ready = ready,
                     .created = created});
  (*pod.mutable_metadata()->mutable_labels())[std::string(kControllerRevisionHashLabel)] =
      hash.empty() ? currentHash() : hash;
  return pod;
}

struct Case {
  std::string name;
  std::function<void(DaemonSet&)> edit;
  std::vector<Node> nodes;
  std::vector<Pod> pods;
  std::vector<std::string> create_on;  // nodes, in order
  std::vector<std::string> deletes;
  int desired = 0, current = 0, misscheduled = 0, ready = 0, updated = 0;
};

class DaemonSetTable : public ::testing::TestWithParam<Case> {};

TEST_P(DaemonSetTable, Reconciles) {
  const Case& c = GetParam();
  DaemonSet ds = makeDaemonSet();
  if (c.edit) c.edit(ds);
  DaemonSetInput in;
  in.ds = &ds;
  for (const auto& n : c.nodes)
    in.nodes.push_back(&n);
  for (const auto& p : c.pods)
    in.pods.push_back(&p);
  in.now = kNow;
  auto result = reconcileDaemonSet(in);
  ASSERT_TRUE(result.warning.empty()) << result.warning;
  auto s = split(result);
  std::vector<std::string> create_on;
  for (const Pod* p : s.creates) {
    create_on.push_back(targetNodeOf(*p));
    EXPECT_TRUE(p->spec().node_name().empty());  // the scheduler binds it
    EXPECT_EQ(p->metadata().generate_name(), "agent-");
    EXPECT_EQ(controllerOf(p->metadata())->kind(), "DaemonSet");
  }
  EXPECT_EQ(create_on, c.create_on);
  // No ControllerRevision in the cache: the current template's is made.
  EXPECT_EQ(s.other_creates,
            std::vector<std::string>{"ControllerRevision/agent-" +
                                     computeTemplateHash(ds.spec().template_(), std::nullopt)});
  EXPECT_EQ(s.deletes, c.deletes);
  ASSERT_NE(s.status, nullptr);
  const auto& st = static_cast<const DaemonSet*>(s.status)->status();
  EXPECT_EQ(st.desired_number_scheduled(), c.desired);
  EXPECT_EQ(st.current_number_scheduled(), c.current);
  EXPECT_EQ(st.number_misscheduled(), c.misscheduled);
  EXPECT_EQ(st.number_ready(), c.ready);
  EXPECT_EQ(st.number_available(), c.ready);
  EXPECT_EQ(st.number_unavailable(), c.desired - c.ready);
  EXPECT_EQ(st.updated_number_scheduled(), c.updated);
  EXPECT_EQ(st.observed_generation(), 2);
}

void newImage(DaemonSet& ds) {
  ds.mutable_spec()->mutable_template_()->mutable_spec()->mutable_containers(0)->set_image(
      "agent:2");
}

// The new template, rolled out with maxSurge `surge` (an int).
std::function<void(DaemonSet&)> surge(int n) {
  return [n](DaemonSet& ds) {
    newImage(ds);
    auto* ru = ds.mutable_spec()->mutable_update_strategy()->mutable_rolling_update();
    ru->mutable_max_surge()->set_type(api::runtime::IntOrString::INT);
    ru->mutable_max_surge()->set_int_val(n);
  };
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DaemonSetTable,
    ::testing::Values(
        Case{.name = "OnePodPerNode",
             .nodes = {makeNode("n1"), makeNode("n2"), makeNode("n3")},
             .create_on = {"n1", "n2", "n3"},
             .desired = 3},
        Case{.name = "TaintedNodeExcluded",
             .nodes = {makeNode("n1"), makeNode("n2", {}, {{"dedicated", "NoSchedule"}})},
             .create_on = {"n1"},
             .desired = 1},
        Case{.name = "TolerationAdmitsTaintedNode",
             .edit =
                 [](DaemonSet& ds) {
                   auto* tol =
                       ds.mutable_spec()->mutable_template_()->mutable_spec()->add_tolerations();
                   tol->set_key("dedicated");
                   tol->set_operator_("Exists");
                 },
             .nodes = {makeNode("n1", {}, {{"dedicated", "NoSchedule"}})},
             .create_on = {"n1"},
             .desired = 1},
        Case{.name = "DefaultTolerationsCoverNotReadyAndPressure",
             .nodes = {makeNode("n1", {}, {{"node.kubernetes.io/not-ready", "NoExecute"}}),
                       makeNode("n2", {}, {{"node.kubernetes.io/disk-pressure", "NoSchedule"}}),
                       makeNode("n3", {}, {{"node.kubernetes.io/unschedulable", "NoSchedule"}}),
                       makeNode("n4", {},
                                {{"node-role.kubernetes.io/control-plane", "NoSchedule"}})},
             .create_on = {"n1", "n2", "n3"},
             .desired = 3},
        Case{.name = "NodeSelector",
             .edit =
                 [](DaemonSet& ds) {
                   (*ds.mutable_spec()
                         ->mutable_template_()
                         ->mutable_spec()
                         ->mutable_node_selector())["disk"] = "ssd";
                 },
             .nodes = {makeNode("n1", {{"disk", "ssd"}}), makeNode("n2", {{"disk", "hdd"}})},
             .create_on = {"n1"},
             .desired = 1},
        Case{.name = "RequiredNodeAffinity",
             .edit =
                 [](DaemonSet& ds) {
                   auto* term = ds.mutable_spec()
                                    ->mutable_template_()
                                    ->mutable_spec()
                                    ->mutable_affinity()
                                    ->mutable_node_affinity()
                                    ->mutable_required_during_scheduling_ignored_during_execution()
                                    ->add_node_selector_terms();
                   auto* r = term->add_match_expressions();
                   r->set_key("zone");
                   r->set_operator_("NotIn");
                   r->add_values("b");
                 },
             .nodes = {makeNode("n1", {{"zone", "a"}}), makeNode("n2", {{"zone", "b"}}),
                       makeNode("n3")},
             .create_on = {"n1", "n3"},
             .desired = 2},
        Case{.name = "SteadyStateDoesNothing",
             .nodes = {makeNode("n1"), makeNode("n2")},
             .pods = {daemonPod("a", "n1"), daemonPod("b", "n2")},
             .desired = 2,
             .current = 2,
             .ready = 2,
             .updated = 2},
        Case{.name = "ExtraPodOnANodeGoesNewestFirst",
             .nodes = {makeNode("n1")},
             .pods = {daemonPod("new", "n1", "", true, "Running", 10), daemonPod("old", "n1")},
             .deletes = {"new"},
             .desired = 1,
             .current = 1,
             .ready = 1,
             .updated = 1},
        Case{.name = "FailedPodIsDeletedAndReplaced",
             .nodes = {makeNode("n1")},
             .pods = {daemonPod("a", "n1", "", false, "Failed")},
             .create_on = {"n1"},
             .deletes = {"a"},
             .desired = 1,
             .current = 1},
        Case{.name = "NoExecuteTaintEvictsNoScheduleKeeps",
             .nodes = {makeNode("n1", {}, {{"gpu", "NoExecute"}}),
                       makeNode("n2", {}, {{"gpu", "NoSchedule"}})},
             .pods = {daemonPod("a", "n1"), daemonPod("b", "n2")},
             .deletes = {"a"},
             .misscheduled = 2},
        Case{.name = "PodOfAVanishedNodeGoes",
             .nodes = {makeNode("n1")},
             .pods = {daemonPod("a", "n1"), daemonPod("b", "gone")},
             .deletes = {"b"},
             .desired = 1,
             .current = 1,
             .ready = 1,
             .updated = 1},
        Case{.name = "RollingUpdateOneAtATime",
             .edit = newImage,
             .nodes = {makeNode("n1"), makeNode("n2"), makeNode("n3")},
             .pods = {daemonPod("a", "n1"), daemonPod("b", "n2"), daemonPod("c", "n3")},
             .deletes = {"a"},
             .desired = 3,
             .current = 3,
             .ready = 3},
        Case{.name = "RollingUpdateWaitsForTheNewPod",
             .edit = newImage,
             .nodes = {makeNode("n1"), makeNode("n2")},
             .pods = {daemonPod("a", "n1", newHash(), false), daemonPod("b", "n2")},
             .desired = 2,
             .current = 2,
             .ready = 1,
             .updated = 1},
        Case{.name = "RollingUpdateReplacesUnavailableOldPodsFreely",
             .edit =
                 [](DaemonSet& ds) {
                   newImage(ds);
                   auto* ru =
                       ds.mutable_spec()->mutable_update_strategy()->mutable_rolling_update();
                   ru->mutable_max_unavailable()->set_type(api::runtime::IntOrString::STRING);
                   ru->mutable_max_unavailable()->set_str_val("50%");
                 },
             .nodes = {makeNode("n1"), makeNode("n2"), makeNode("n3"), makeNode("n4")},
             .pods = {daemonPod("a", "n1", "old", false), daemonPod("b", "n2", "old"),
                      daemonPod("c", "n3", "old"), daemonPod("d", "n4", "old")},
             .deletes = {"a", "b"},
             .desired = 4,
             .current = 4,
             .ready = 3},
        Case{.name = "SurgeStartsNewPodsNextToOldOnesWithinMaxSurge",
             .edit = surge(2),
             .nodes = {makeNode("n1"), makeNode("n2"), makeNode("n3")},
             .pods = {daemonPod("a", "n1"), daemonPod("b", "n2"), daemonPod("c", "n3")},
             .create_on = {"n1", "n2"},
             .desired = 3,
             .current = 3,
             .ready = 3},
        Case{.name = "SurgeKeepsTheOldPodUntilTheNewOneIsAvailable",
             .edit = surge(1),
             .nodes = {makeNode("n1"), makeNode("n2")},
             .pods = {daemonPod("a", "n1"), daemonPod("a2", "n1", newHash(), false),
                      daemonPod("b", "n2")},
             .desired = 2,
             .current = 2,
             .ready = 2,  // n1 still counts its old pod
             .updated = 1},
        Case{.name = "SurgeDeletesTheOldPodOnceTheNewOneIsAvailable",
             .edit = surge(1),
             .nodes = {makeNode("n1"), makeNode("n2")},
             .pods = {daemonPod("a", "n1"), daemonPod("a2", "n1", newHash(), true, "Running", 10),
                      daemonPod("b", "n2")},
             .create_on = {"n2"},  // n1's surge is over: the budget moves on
             .deletes = {"a"},
             .desired = 2,
             .current = 2,
             .ready = 2,
             .updated = 1},
        Case{.name = "SurgeReplacesAnUnavailableOldPodAtOnce",
             .edit = surge(1),
             .nodes = {makeNode("n1"), makeNode("n2"), makeNode("n3")},
             .pods = {daemonPod("a", "n1", "", false), daemonPod("b", "n2"), daemonPod("c", "n3")},
             .create_on = {"n1", "n2"},  // n1 outside the budget, n2 within it
             .desired = 3,
             .current = 3,
             .ready = 2},
        Case{.name = "SurgeKeepsOnePodOfEachTemplatePerNode",
             .edit = surge(1),
             .nodes = {makeNode("n1")},
             .pods = {daemonPod("a", "n1"), daemonPod("a-extra", "n1", "", true, "Running", 50),
                      daemonPod("n-old", "n1", newHash(), false, "Running", 100),
                      daemonPod("n-new", "n1", newHash(), false, "Running", 20)},
             .deletes = {"a-extra", "n-new"},
             .desired = 1,
             .current = 1,
             .ready = 1,
             .updated = 1},
        Case{.name = "OnDeleteLeavesOldPods",
             .edit =
                 [](DaemonSet& ds) {
                   newImage(ds);
                   ds.mutable_spec()->mutable_update_strategy()->set_type("OnDelete");
                 },
             .nodes = {makeNode("n1")},
             .pods = {daemonPod("a", "n1")},
             .desired = 1,
             .current = 1,
             .ready = 1}),
    [](const ::testing::TestParamInfo<Case>& case_info) { return case_info.param.name; });

TEST(DaemonSet, PodsGetNodeAffinityAndDaemonTolerations) {
  DaemonSet ds = makeDaemonSet();
  auto* keep = ds.mutable_spec()->mutable_template_()->mutable_spec()->add_tolerations();
  keep->set_key("dedicated");
  keep->set_operator_("Exists");
  Pod pod = daemonPodFor(ds, "h1", "n7");
  EXPECT_EQ(pod.metadata().labels().at("controller-revision-hash"), "h1");
  const auto& terms =
      pod.spec().affinity().node_affinity().required_during_scheduling_ignored_during_execution();
  ASSERT_EQ(terms.node_selector_terms_size(), 1);
  ASSERT_EQ(terms.node_selector_terms(0).match_fields_size(), 1);
  EXPECT_EQ(terms.node_selector_terms(0).match_fields(0).key(), "metadata.name");
  EXPECT_EQ(terms.node_selector_terms(0).match_fields(0).values(0), "n7");
  std::set<std::string> keys;
  for (const auto& t : pod.spec().tolerations())
    keys.insert(t.key() + ":" + t.effect());
  EXPECT_EQ(keys, (std::set<std::string>{"dedicated:", "node.kubernetes.io/not-ready:NoExecute",
                                         "node.kubernetes.io/unreachable:NoExecute",
                                         "node.kubernetes.io/disk-pressure:NoSchedule",
                                         "node.kubernetes.io/memory-pressure:NoSchedule",
                                         "node.kubernetes.io/pid-pressure:NoSchedule",
                                         "node.kubernetes.io/unschedulable:NoSchedule"}));
}

TEST(DaemonSet, HistoryKeepsWhatPodsUseAndTheLimit) {
  DaemonSet ds = makeDaemonSet();
  newImage(ds);
  ds.mutable_spec()->set_revision_history_limit(0);
  ds.mutable_spec()->mutable_update_strategy()->set_type("OnDelete");
  auto used = makeRevision(ds.metadata(), typeOf<DaemonSet>(), makeDaemonSet().spec().template_(),
                           currentHash(), 1);
  auto current =
      makeRevision(ds.metadata(), typeOf<DaemonSet>(), ds.spec().template_(), newHash(), 3);
  DaemonSet other = makeDaemonSet();
  other.mutable_spec()->mutable_template_()->mutable_spec()->mutable_containers(0)->set_image(
      "agent:0");
  auto unused = makeRevision(ds.metadata(), typeOf<DaemonSet>(), other.spec().template_(),
                             computeTemplateHash(other.spec().template_(), std::nullopt), 2);
  Node n = makeNode("n1");
  Pod pod = daemonPod("a", "n1");  // at the first template
  auto result = reconcileDaemonSet({.ds = &ds,
                                    .nodes = {&n},
                                    .pods = {&pod},
                                    .revisions = {&used, &current, &unused},
                                    .now = kNow});
  auto s = split(result);
  EXPECT_TRUE(s.other_creates.empty());
  EXPECT_EQ(s.other_deletes,
            std::vector<std::string>{"ControllerRevision/" + unused.metadata().name()});
}

TEST(DaemonSet, SelectorNotMatchingTheTemplateIsReported) {
  DaemonSet ds = makeDaemonSet();
  (*ds.mutable_spec()->mutable_selector()->mutable_match_labels())["app"] = "other";
  Node n = makeNode("n1");
  auto r = reconcileDaemonSet({.ds = &ds, .nodes = {&n}, .now = kNow});
  EXPECT_EQ(r.warning_reason, "InvalidSelector");
  EXPECT_TRUE(r.actions.empty());
}

TEST(DaemonSet, ExpectationsUnmetOnlyStatus) {
  DaemonSet ds = makeDaemonSet();
  Node n = makeNode("n1");
  auto result =
      reconcileDaemonSet({.ds = &ds, .nodes = {&n}, .now = kNow, .expectations_satisfied = false});
  auto s = split(result);
  EXPECT_TRUE(s.creates.empty());
  EXPECT_NE(s.status, nullptr);
}

}  // namespace
}  // namespace skiff::controllers

#include "control/controllers/statefulset.h"

#include <gtest/gtest.h>

#include <functional>

#include "tests/control/controllers/builders.h"
#include "tests/control/controllers/workload_test_util.h"

namespace skiff::controllers {
namespace {

using namespace testing;  // NOLINT
using api::apps::v1::StatefulSet;
using api::core::v1::Pod;

StatefulSet makeSet(int replicas) {
  auto set = fromYaml<StatefulSet>(R"(
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: default, uid: sts-uid, generation: 4}
spec:
  serviceName: web-headless
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx:1}]}
)");
  set.mutable_spec()->set_replicas(replicas);
  return set;
}

StatefulSet withNewImage(StatefulSet set) {
  set.mutable_spec()->mutable_template_()->mutable_spec()->mutable_containers(0)->set_image(
      "nginx:2");
  return set;
}

const std::string& oldRevision() {
  static const std::string kRev = statefulSetRevision(makeSet(1));
  return kRev;
}
const std::string& newRevision() {
  static const std::string kRev = statefulSetRevision(withNewImage(makeSet(1)));
  return kRev;
}

enum class State { kHealthy, kPending, kFailed, kTerminating };

Pod setPod(int ordinal, State state = State::kHealthy, bool updated = false) {
  Pod pod = makePod({.name = "web-" + std::to_string(ordinal),
                     .owner_uid = "sts-uid",
                     .owner_name = "web",
                     .phase = state == State::kPending  ? "Pending"
                              : state == State::kFailed ? "Failed"
                                                        : "Running",
                     .ready = state == State::kHealthy || state == State::kTerminating,
                     .deleting = state == State::kTerminating});
  (*pod.mutable_metadata()->mutable_labels())["controller-revision-hash"] =
      updated ? newRevision() : oldRevision();
  return pod;
}

struct Case {
  std::string name;
  std::function<StatefulSet()> set;
  std::vector<Pod> pods;
  std::vector<std::string> creates;
  std::vector<std::string> deletes;
  int replicas = 0, ready = 0, current = 0, updated = 0;
  bool rollout_done = true;  // currentRevision == updateRevision afterwards
};

class StatefulSetTable : public ::testing::TestWithParam<Case> {};

TEST_P(StatefulSetTable, Reconciles) {
  const Case& c = GetParam();
  StatefulSet set = c.set();
  StatefulSetInput in;
  in.set = &set;
  for (const auto& p : c.pods)
    in.pods.push_back(&p);
  in.now = kNow;
  // The set was at the old revision (a no-op for sets that were not changed).
  set.mutable_status()->set_current_revision(oldRevision());
  auto result = reconcileStatefulSet(in);
  ASSERT_TRUE(result.warning.empty()) << result.warning;
  auto s = split(result);
  std::vector<std::string> creates;
  for (const Pod* p : s.creates) {
    const std::string& name = p->metadata().name();
    creates.push_back(name);
    EXPECT_EQ(p->spec().hostname(), name);
    EXPECT_EQ(p->spec().subdomain(), "web-headless");
    EXPECT_EQ(p->metadata().labels().at(std::string(kStatefulSetPodNameLabel)), name);
    EXPECT_EQ(p->metadata().labels().at(std::string(kPodIndexLabel)),
              std::to_string(ordinalOf("web", name)));
    EXPECT_EQ(p->metadata().labels().at("controller-revision-hash"), statefulSetRevision(set));
    EXPECT_EQ(controllerOf(p->metadata())->kind(), "StatefulSet");
  }
  EXPECT_EQ(creates, c.creates);
  // No ControllerRevision in the cache: the update revision's is made.
  EXPECT_EQ(s.other_creates,
            std::vector<std::string>{"ControllerRevision/" + statefulSetRevision(set)});
  EXPECT_EQ(s.deletes, c.deletes);
  const auto& st =
      s.status != nullptr ? static_cast<const StatefulSet*>(s.status)->status() : set.status();
  EXPECT_EQ(st.replicas(), c.replicas);
  EXPECT_EQ(st.ready_replicas(), c.ready);
  EXPECT_EQ(st.available_replicas(), c.ready);
  EXPECT_EQ(st.current_replicas(), c.current);
  EXPECT_EQ(st.updated_replicas(), c.updated);
  EXPECT_EQ(st.update_revision(), statefulSetRevision(set));
  EXPECT_EQ(st.current_revision() == st.update_revision(), c.rollout_done);
  EXPECT_EQ(st.observed_generation(), 4);
}

auto sized(int n) {
  return [n] { return makeSet(n); };
}
auto parallel(int n) {
  return [n] {
    auto s = makeSet(n);
    s.mutable_spec()->set_pod_management_policy("Parallel");
    return s;
  };
}
auto updatedTo(int n, int partition = 0) {
  return [n, partition] {
    auto s = withNewImage(makeSet(n));
    if (partition > 0) {
      s.mutable_spec()->mutable_update_strategy()->mutable_rolling_update()->set_partition(
          partition);
    }
    return s;
  };
}

INSTANTIATE_TEST_SUITE_P(
    Cases, StatefulSetTable,
    ::testing::Values(
        Case{.name = "OrderedReadyStartsWithPodZero", .set = sized(3), .creates = {"web-0"}},
        Case{.name = "NextOrdinalOnceThePreviousIsReady",
             .set = sized(3),
             .pods = {setPod(0)},
             .creates = {"web-1"},
             .replicas = 1,
             .ready = 1,
             .current = 1,
             .updated = 1},
        Case{.name = "WaitsWhilePodZeroIsPending",
             .set = sized(3),
             .pods = {setPod(0, State::kPending)},
             .replicas = 1,
             .current = 1,
             .updated = 1},
        Case{.name = "ParallelCreatesAll",
             .set = parallel(3),
             .creates = {"web-0", "web-1", "web-2"}},
        Case{.name = "ParallelDoesNotWaitForReadiness",
             .set = parallel(3),
             .pods = {setPod(0, State::kPending)},
             .creates = {"web-1", "web-2"},
             .replicas = 1,
             .current = 1,
             .updated = 1},
        Case{.name = "ScaleDownRemovesTheHighestOrdinalFirst",
             .set = sized(1),
             .pods = {setPod(0), setPod(1), setPod(2)},
             .deletes = {"web-2"},
             .replicas = 3,
             .ready = 3,
             .current = 3,
             .updated = 3},
        Case{.name = "ScaleDownWaitsForTheTerminatingPod",
             .set = sized(1),
             .pods = {setPod(0), setPod(1), setPod(2, State::kTerminating)},
             .replicas = 3,
             .ready = 2,
             .current = 2,
             .updated = 2},
        Case{.name = "ParallelScaleDownRemovesAllCondemned",
             .set = parallel(1),
             .pods = {setPod(0), setPod(1), setPod(2)},
             .deletes = {"web-2", "web-1"},
             .replicas = 3,
             .ready = 3,
             .current = 3,
             .updated = 3},
        Case{.name = "FailedPodIsDeletedToBeRecreated",
             .set = sized(3),
             .pods = {setPod(0), setPod(1, State::kFailed), setPod(2)},
             .deletes = {"web-1"},
             .replicas = 3,
             .ready = 2,
             .current = 3,
             .updated = 3},
        Case{.name = "RollingUpdateStartsAtTheHighestOrdinal",
             .set = updatedTo(3),
             .pods = {setPod(0), setPod(1), setPod(2)},
             .deletes = {"web-2"},
             .replicas = 3,
             .ready = 3,
             .current = 3,
             .updated = 0,
             .rollout_done = false},
        Case{.name = "RollingUpdateContinuesDownwards",
             .set = updatedTo(3),
             .pods = {setPod(0), setPod(1), setPod(2, State::kHealthy, true)},
             .deletes = {"web-1"},
             .replicas = 3,
             .ready = 3,
             .current = 2,
             .updated = 1,
             .rollout_done = false},
        Case{.name = "RollingUpdateWaitsForTheUpdatedPodToBeReady",
             .set = updatedTo(3),
             .pods = {setPod(0), setPod(1), setPod(2, State::kPending, true)},
             .replicas = 3,
             .ready = 2,
             .current = 2,
             .updated = 1,
             .rollout_done = false},
        Case{.name = "PartitionStopsTheRollingUpdate",
             .set = updatedTo(3, 2),
             .pods = {setPod(0), setPod(1), setPod(2, State::kHealthy, true)},
             .replicas = 3,
             .ready = 3,
             .current = 2,
             .updated = 1,
             .rollout_done = false},
        Case{.name = "EveryPodUpdatedCompletesTheRollout",
             .set = updatedTo(2),
             .pods = {setPod(0, State::kHealthy, true), setPod(1, State::kHealthy, true)},
             .replicas = 2,
             .ready = 2,
             .current = 2,
             .updated = 2,
             .rollout_done = true}),
    [](const ::testing::TestParamInfo<Case>& case_info) { return case_info.param.name; });

using api::apps::v1::ControllerRevision;

TEST(StatefulSet, RevisionHoldsTheTemplate) {
  auto set = withNewImage(makeSet(3));
  ControllerRevision cr = revisionFor(set, 4);
  EXPECT_EQ(cr.metadata().name(), newRevision());
  EXPECT_EQ(cr.revision(), 4);
  ASSERT_NE(controllerOf(cr.metadata()), nullptr);
  EXPECT_EQ(controllerOf(cr.metadata())->uid(), "sts-uid");
  EXPECT_NE(cr.data().raw().find("\"$patch\":\"replace\""), std::string::npos);
  api::core::v1::PodTemplateSpec tmpl;
  ASSERT_TRUE(templateOfRevision(cr, tmpl));
  EXPECT_EQ(tmpl.spec().containers(0).image(), "nginx:2");
  cr.mutable_data()->set_raw("not json");
  EXPECT_FALSE(templateOfRevision(cr, tmpl));
}

TEST(StatefulSet, PodBelowThePartitionComesBackAtTheCurrentRevision) {
  auto set = updatedTo(3, 2)();
  set.mutable_status()->set_current_revision(oldRevision());
  ControllerRevision old_cr = revisionFor(makeSet(3), 1);
  ControllerRevision new_cr = revisionFor(set, 2);
  Pod p1 = setPod(1);
  Pod p2 = setPod(2, State::kHealthy, true);
  auto result = reconcileStatefulSet(
      {.set = &set, .pods = {&p1, &p2}, .revisions = {&old_cr, &new_cr}, .now = kNow});
  auto s = split(result);
  EXPECT_TRUE(s.other_creates.empty());
  ASSERT_EQ(s.creates.size(), 1u);
  EXPECT_EQ(s.creates[0]->metadata().name(), "web-0");
  EXPECT_EQ(s.creates[0]->metadata().labels().at("controller-revision-hash"), oldRevision());
  EXPECT_EQ(s.creates[0]->spec().containers(0).image(), "nginx:1");
}

TEST(StatefulSet, AnEarlierTemplateBackBecomesTheNewestRevision) {
  auto set = makeSet(1);
  set.mutable_status()->set_current_revision(newRevision());
  ControllerRevision old_cr = revisionFor(makeSet(1), 1);
  ControllerRevision new_cr = revisionFor(withNewImage(makeSet(1)), 2);
  auto result = reconcileStatefulSet({.set = &set, .revisions = {&old_cr, &new_cr}, .now = kNow});
  auto s = split(result);
  EXPECT_TRUE(s.other_creates.empty());
  ASSERT_EQ(s.updates.size(), 1u);
  const auto& bumped = *static_cast<const ControllerRevision*>(s.updates[0]);
  EXPECT_EQ(bumped.metadata().name(), oldRevision());
  EXPECT_EQ(bumped.revision(), 3);
}

TEST(StatefulSet, HistoryBeyondTheLimitIsDeletedOldestFirst) {
  auto set = makeSet(1);
  set.mutable_spec()->set_revision_history_limit(1);
  std::vector<ControllerRevision> crs;
  for (int i = 1; i <= 4; ++i) {
    auto variant = makeSet(1);
    variant.mutable_spec()->mutable_template_()->mutable_spec()->mutable_containers(0)->set_image(
        "nginx:old" + std::to_string(i));
    crs.push_back(revisionFor(variant, i));
    crs.back().mutable_metadata()->set_uid("cr-" + std::to_string(i));
  }
  crs.push_back(revisionFor(set, 5));  // the current and update revision
  Pod p0 = setPod(0);
  StatefulSetInput in{.set = &set, .pods = {&p0}, .now = kNow};
  for (const auto& cr : crs)
    in.revisions.push_back(&cr);
  auto result = reconcileStatefulSet(in);
  auto s = split(result);
  EXPECT_EQ(s.other_deletes,
            (std::vector<std::string>{"ControllerRevision/" + crs[0].metadata().name(),
                                      "ControllerRevision/" + crs[1].metadata().name(),
                                      "ControllerRevision/" + crs[2].metadata().name()}));
}

TEST(StatefulSet, Ordinals) {
  EXPECT_EQ(ordinalOf("web", "web-0"), 0);
  EXPECT_EQ(ordinalOf("web", "web-12"), 12);
  EXPECT_EQ(ordinalOf("web", "web-01"), -1);
  EXPECT_EQ(ordinalOf("web", "web-x"), -1);
  EXPECT_EQ(ordinalOf("web", "webs-1"), -1);
  EXPECT_EQ(ordinalOf("web", "web-"), -1);
}

TEST(StatefulSet, OrdinalsStartShiftsNames) {
  auto set = makeSet(2);
  set.mutable_spec()->mutable_ordinals()->set_start(5);
  set.mutable_spec()->set_pod_management_policy("Parallel");
  auto result = reconcileStatefulSet({.set = &set, .now = kNow});
  auto s = split(result);
  ASSERT_EQ(s.creates.size(), 2u);
  EXPECT_EQ(s.creates[0]->metadata().name(), "web-5");
  EXPECT_EQ(s.creates[1]->metadata().name(), "web-6");
}

TEST(StatefulSet, SelectorNotMatchingTheTemplateIsReported) {
  auto set = makeSet(1);
  (*set.mutable_spec()->mutable_selector()->mutable_match_labels())["app"] = "db";
  auto r = reconcileStatefulSet({.set = &set, .now = kNow});
  EXPECT_EQ(r.warning_reason, "InvalidSelector");
  EXPECT_TRUE(r.actions.empty());
}

// ------------------------------------------------------------ volumeClaimTemplates

StatefulSet withClaims(int replicas) {
  auto set = makeSet(replicas);
  set.mutable_spec()->set_pod_management_policy("Parallel");
  auto* tmpl = set.mutable_spec()->add_volume_claim_templates();
  tmpl->mutable_metadata()->set_name("www");
  (*tmpl->mutable_metadata()->mutable_labels())["disk"] = "ssd";
  tmpl->mutable_spec()->add_access_modes("ReadWriteOnce");
  (*tmpl->mutable_spec()->mutable_resources()->mutable_requests())["storage"].set_string("1Gi");
  // The template's own volume of the same name is replaced by the claim.
  auto* v = set.mutable_spec()->mutable_template_()->mutable_spec()->add_volumes();
  v->set_name("www");
  v->mutable_empty_dir();
  return set;
}

api::core::v1::PersistentVolumeClaim claimNamed(const std::string& name) {
  api::core::v1::PersistentVolumeClaim c;
  c.mutable_metadata()->set_name(name);
  c.mutable_metadata()->set_namespace_("default");
  c.mutable_metadata()->set_uid("uid-" + name);
  return c;
}

TEST(StatefulSetClaims, ClaimsAreCreatedBeforeTheirPodsAndMounted) {
  auto set = withClaims(2);
  auto result = reconcileStatefulSet({.set = &set, .now = kNow});
  std::vector<std::string> order;
  for (const auto& a : result.actions) {
    if (a.verb == Action::Verb::kCreate && a.type->kind != "ControllerRevision")
      order.push_back(a.type->kind + "/" + a.name);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"PersistentVolumeClaim/www-web-0", "Pod/web-0",
                                             "PersistentVolumeClaim/www-web-1", "Pod/web-1"}));
  for (const auto& a : result.actions) {
    if (a.verb != Action::Verb::kCreate) continue;
    if (a.type->kind == "PersistentVolumeClaim") {
      const auto& c = static_cast<const api::core::v1::PersistentVolumeClaim&>(*a.object);
      EXPECT_EQ(c.metadata().namespace_(), "default");
      EXPECT_EQ(c.metadata().labels().at("app"), "web");  // the set's selector
      EXPECT_EQ(c.metadata().labels().at("disk"), "ssd");
      EXPECT_EQ(c.spec().resources().requests().at("storage").string(), "1Gi");
      EXPECT_EQ(c.metadata().owner_references_size(), 0);  // whenDeleted Retain (default)
    } else if (a.type->kind == "Pod") {
      const auto& p = static_cast<const Pod&>(*a.object);
      ASSERT_EQ(p.spec().volumes_size(), 1);
      EXPECT_EQ(p.spec().volumes(0).name(), "www");
      EXPECT_FALSE(p.spec().volumes(0).has_empty_dir());
      EXPECT_EQ(p.spec().volumes(0).persistent_volume_claim().claim_name(),
                "www-" + p.metadata().name());
    }
  }
}

TEST(StatefulSetClaims, ExistingClaimsAreKeptAndReused) {
  auto set = withClaims(2);
  auto c0 = claimNamed("www-web-0");
  auto c1 = claimNamed("www-web-1");
  Pod pod1 = setPod(1);
  StatefulSetInput in{.set = &set, .pods = {&pod1}, .claims = {&c0, &c1}, .now = kNow};
  auto result = reconcileStatefulSet(in);
  auto s = split(result);
  ASSERT_EQ(s.creates.size(), 1u);  // web-0, with its claim already there
  EXPECT_EQ(s.creates[0]->spec().volumes(0).persistent_volume_claim().claim_name(), "www-web-0");
  for (const auto& name : s.other_creates)
    EXPECT_EQ(name.rfind("PersistentVolumeClaim/", 0), std::string::npos) << name;
  // A pod whose claim went missing gets it again; scaling down keeps the claims.
  in.claims = {&c0};
  s = split(reconcileStatefulSet(in));
  EXPECT_NE(
      std::find(s.other_creates.begin(), s.other_creates.end(), "PersistentVolumeClaim/www-web-1"),
      s.other_creates.end());
  set.mutable_spec()->set_replicas(1);
  Pod pod0 = setPod(0);
  in.pods = {&pod0, &pod1};
  in.claims = {&c0, &c1};
  s = split(reconcileStatefulSet(in));
  EXPECT_EQ(s.deletes, std::vector<std::string>{"web-1"});
  EXPECT_TRUE(s.other_deletes.empty());
  EXPECT_TRUE(s.updates.empty());
}

TEST(StatefulSetClaims, RetentionPolicyDeleteSetsOwnerReferences) {
  auto set = withClaims(1);
  auto* retention = set.mutable_spec()->mutable_persistent_volume_claim_retention_policy();
  retention->set_when_deleted("Delete");
  retention->set_when_scaled("Delete");
  // New claims are owned by the set.
  auto created = reconcileStatefulSet({.set = &set, .now = kNow});
  bool owned = false;
  for (const auto& a : created.actions) {
    if (a.verb == Action::Verb::kCreate && a.type->kind == "PersistentVolumeClaim") {
      const auto& c = static_cast<const api::core::v1::PersistentVolumeClaim&>(*a.object);
      ASSERT_EQ(c.metadata().owner_references_size(), 1);
      EXPECT_EQ(c.metadata().owner_references(0).uid(), "sts-uid");
      EXPECT_EQ(c.metadata().owner_references(0).kind(), "StatefulSet");
      EXPECT_FALSE(c.metadata().owner_references(0).controller());
      owned = true;
    }
  }
  EXPECT_TRUE(owned);
  // Existing claims get the set's reference; the condemned pod's claim also gets the pod's,
  // written before the pod is deleted.
  auto c0 = claimNamed("www-web-0");
  auto c1 = claimNamed("www-web-1");
  Pod pod0 = setPod(0);
  Pod pod1 = setPod(1);
  StatefulSetInput in{.set = &set, .pods = {&pod0, &pod1}, .claims = {&c0, &c1}, .now = kNow};
  auto result = reconcileStatefulSet(in);
  std::vector<std::string> order;
  for (const auto& a : result.actions) {
    if (a.verb == Action::Verb::kUpdate || a.verb == Action::Verb::kDelete)
      order.push_back(std::string(toString(a.verb)) + " " + a.type->kind + "/" + a.name);
  }
  EXPECT_EQ(order,
            (std::vector<std::string>{
                "update PersistentVolumeClaim/www-web-0", "update PersistentVolumeClaim/www-web-1",
                "update PersistentVolumeClaim/www-web-1", "delete Pod/web-1"}));
  const google::protobuf::Message* last_update = nullptr;
  for (const auto& a : result.actions) {
    if (a.verb == Action::Verb::kUpdate) last_update = a.object.get();
  }
  ASSERT_NE(last_update, nullptr);
  const auto& last = static_cast<const api::core::v1::PersistentVolumeClaim&>(*last_update);
  ASSERT_EQ(last.metadata().owner_references_size(), 2);  // the set's, kept, and the pod's
  EXPECT_EQ(last.metadata().owner_references(0).uid(), "sts-uid");
  EXPECT_EQ(last.metadata().owner_references(1).kind(), "Pod");
  EXPECT_EQ(last.metadata().owner_references(1).uid(), "uid-web-1");
}

TEST(StatefulSetClaims, ScalingBackUpTakesTheCondemnedPodsReferenceOff) {
  auto set = withClaims(1);
  set.mutable_spec()->mutable_persistent_volume_claim_retention_policy()->set_when_scaled("Delete");
  // web-0's claim still names the pod it had when the set was scaled to 0.
  auto c0 = claimNamed("www-web-0");
  auto* ref = c0.mutable_metadata()->add_owner_references();
  ref->set_api_version("v1");
  ref->set_kind("Pod");
  ref->set_name("web-0");
  ref->set_uid("uid-old-web-0");
  auto result = reconcileStatefulSet({.set = &set, .claims = {&c0}, .now = kNow});
  std::vector<std::string> order;
  const google::protobuf::Message* update = nullptr;
  for (const auto& a : result.actions) {
    if (a.type->kind == "ControllerRevision" || a.verb == Action::Verb::kUpdateStatus) continue;
    order.push_back(std::string(toString(a.verb)) + " " + a.type->kind + "/" + a.name);
    if (a.verb == Action::Verb::kUpdate) update = a.object.get();
  }
  // The reference goes before the pod is created, so the claim is not collected with the old pod.
  EXPECT_EQ(order, (std::vector<std::string>{"update PersistentVolumeClaim/www-web-0",
                                             "create Pod/web-0"}));
  ASSERT_NE(update, nullptr);
  EXPECT_EQ(static_cast<const api::core::v1::PersistentVolumeClaim&>(*update)
                .metadata()
                .owner_references_size(),
            0);
}

}  // namespace
}  // namespace skiff::controllers

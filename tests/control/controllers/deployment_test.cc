#include "control/controllers/deployment.h"

#include <gtest/gtest.h>

#include "tests/control/controllers/builders.h"

namespace skiff::controllers {
namespace {

using namespace testing;  // NOLINT
using api::apps::v1::Deployment;
using api::apps::v1::ReplicaSet;
using api::core::v1::Pod;

Deployment makeDeployment(int replicas, const std::string& strategy_yaml = "{}") {
  auto d = fromYaml<Deployment>(R"(
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  uid: d-uid
  generation: 1
  annotations:
    kubernetes.io/change-cause: "kubectl apply --record"
    kubectl.kubernetes.io/last-applied-configuration: "{}"
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "nginx:1"}]}
  strategy: )" + strategy_yaml + "\n");
  d.mutable_spec()->set_replicas(replicas);
  return d;
}

void setImage(Deployment& d, const std::string& image) {
  d.mutable_spec()->mutable_template_()->mutable_spec()->mutable_containers(0)->set_image(image);
  d.mutable_metadata()->set_generation(d.metadata().generation() + 1);
}

// A ReplicaSet the controller would have made for `d`'s current template.
ReplicaSet rsFor(const Deployment& d, int replicas, int available, int revision,
                 int64_t created_ago) {
  std::string hash = computeTemplateHash(d.spec().template_(), std::nullopt);
  ReplicaSet rs;
  auto* m = rs.mutable_metadata();
  m->set_name(d.metadata().name() + "-" + hash);
  m->set_namespace_("default");
  m->set_uid("rs-" + std::to_string(revision));
  setTime(*m->mutable_creation_timestamp(), ago(created_ago));
  *m->add_owner_references() = makeControllerRef(d.metadata(), typeOf<Deployment>());
  (*m->mutable_labels())["app"] = "web";
  (*m->mutable_labels())["pod-template-hash"] = hash;
  (*m->mutable_annotations())[std::string(kRevisionAnnotation)] = std::to_string(revision);
  for (const auto& [k, v] : d.metadata().annotations()) {
    if (k == "kubernetes.io/change-cause") (*m->mutable_annotations())[k] = v;
  }
  (*m->mutable_annotations())[std::string(kDesiredReplicasAnnotation)] =
      std::to_string(d.spec().replicas());
  (*m->mutable_annotations())[std::string(kMaxReplicasAnnotation)] =
      std::to_string(d.spec().replicas() + maxSurge(d));
  rs.mutable_spec()->set_replicas(replicas);
  *rs.mutable_spec()->mutable_selector() = d.spec().selector();
  (*rs.mutable_spec()->mutable_selector()->mutable_match_labels())["pod-template-hash"] = hash;
  *rs.mutable_spec()->mutable_template_() = d.spec().template_();
  (*rs.mutable_spec()
        ->mutable_template_()
        ->mutable_metadata()
        ->mutable_labels())["pod-template-hash"] = hash;
  rs.mutable_status()->set_replicas(replicas);
  rs.mutable_status()->set_ready_replicas(available);
  rs.mutable_status()->set_available_replicas(available);
  return rs;
}

struct Run {
  ReconcileResult result;
  std::vector<const ReplicaSet*> created, updated;
  std::vector<std::string> deleted;
  const Deployment* status = nullptr;
  const Deployment* meta = nullptr;

  const ReplicaSet* updatedNamed(const std::string& name) const {
    for (const auto* rs : updated) {
      if (rs->metadata().name() == name) return rs;
    }
    return nullptr;
  }
  const api::apps::v1::DeploymentCondition* cond(const std::string& type) const {
    if (status == nullptr) return nullptr;
    for (const auto& c : status->status().conditions()) {
      if (c.type() == type) return &c;
    }
    return nullptr;
  }
};

Run run(const Deployment& d, const std::vector<ReplicaSet>& rss, const std::vector<Pod>& pods = {},
        api::Timestamp now = kNow) {
  DeploymentInput in;
  in.deployment = &d;
  for (const auto& rs : rss)
    in.replica_sets.push_back(&rs);
  for (const auto& p : pods)
    in.pods.push_back(&p);
  in.now = now;
  Run r;
  r.result = reconcileDeployment(in);
  for (const auto& a : r.result.actions) {
    if (a.type->kind == "ReplicaSet") {
      if (a.verb == Action::Verb::kCreate)
        r.created.push_back(static_cast<ReplicaSet*>(a.object.get()));
      if (a.verb == Action::Verb::kUpdate)
        r.updated.push_back(static_cast<ReplicaSet*>(a.object.get()));
      if (a.verb == Action::Verb::kDelete) r.deleted.push_back(a.name);
    } else if (a.type->kind == "Deployment") {
      if (a.verb == Action::Verb::kUpdateStatus)
        r.status = static_cast<Deployment*>(a.object.get());
      if (a.verb == Action::Verb::kUpdate) r.meta = static_cast<Deployment*>(a.object.get());
    }
  }
  return r;
}

TEST(TemplateHash, SafeEncodedFnv32aOfTheTemplate) {
  // FNV-32a's published test vectors.
  EXPECT_EQ(fnv32a(""), 0x811c9dc5u);
  EXPECT_EQ(fnv32a("a"), 0xe40c292cu);
  EXPECT_EQ(fnv32a("foobar"), 0xbf9cf968u);
  // rand.SafeEncodeString maps each byte into the alphabet without vowels.
  EXPECT_EQ(safeEncodeString("0123456789"), "456789bcdf");
  auto d = makeDeployment(3);
  std::string h = computeTemplateHash(d.spec().template_(), std::nullopt);
  EXPECT_GE(h.size(), 1u);
  EXPECT_LE(h.size(), 10u);
  EXPECT_EQ(h.find_first_not_of("bcdfghjklmnpqrstvwxz2456789"), std::string::npos);
  EXPECT_EQ(h, computeTemplateHash(d.spec().template_(), std::nullopt));
  EXPECT_NE(h, computeTemplateHash(d.spec().template_(), 1));
  auto d2 = d;
  setImage(d2, "nginx:2");
  EXPECT_NE(h, computeTemplateHash(d2.spec().template_(), std::nullopt));
}

TEST(Fenceposts, IntsAndPercentagesWithKubernetesRounding) {
  struct Case {
    int replicas;
    std::string strategy;
    int surge, unavailable;
  };
  const Case cases[] = {
      {10, "{}", 3, 2},  // 25% each: surge rounds up, unavailable down
      {4, "{}", 1, 1},
      {1, "{}", 1, 0},
      {3, "{rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}", 1, 0},
      {3, "{rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}", 0, 1},
      {10, "{rollingUpdate: {maxSurge: \"50%\", maxUnavailable: \"33%\"}}", 5, 3},
      {3, "{rollingUpdate: {maxSurge: \"10%\", maxUnavailable: \"10%\"}}", 1, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.strategy);
    auto d = makeDeployment(c.replicas, c.strategy);
    auto [surge, unavailable] = resolveFenceposts(d);
    EXPECT_EQ(surge, c.surge);
    EXPECT_EQ(unavailable, c.unavailable);
  }
  auto bad = makeDeployment(3, "{rollingUpdate: {maxSurge: \"abc\"}}");
  EXPECT_THROW(resolveFenceposts(bad), std::invalid_argument);
  auto r = run(bad, {});
  EXPECT_TRUE(r.result.actions.empty());
  EXPECT_EQ(r.result.warning_reason, "InvalidStrategy");
  // Recreate has neither.
  auto rec = makeDeployment(3, "{type: Recreate}");
  EXPECT_EQ(maxSurge(rec), 0);
  EXPECT_EQ(maxUnavailable(rec), 0);
}

TEST(DeploymentReconcile, NewDeploymentCreatesItsReplicaSet) {
  auto d = makeDeployment(3);
  auto r = run(d, {});
  ASSERT_EQ(r.created.size(), 1u);
  const ReplicaSet& rs = *r.created[0];
  std::string hash = computeTemplateHash(d.spec().template_(), std::nullopt);
  EXPECT_EQ(rs.metadata().name(), "web-" + hash);
  EXPECT_EQ(rs.spec().replicas(), 3);
  EXPECT_EQ(rs.metadata().labels().at("pod-template-hash"), hash);
  EXPECT_EQ(rs.spec().template_().metadata().labels().at("pod-template-hash"), hash);
  EXPECT_EQ(rs.spec().selector().match_labels().at("pod-template-hash"), hash);
  EXPECT_EQ(rs.spec().selector().match_labels().at("app"), "web");
  const auto& a = rs.metadata().annotations();
  EXPECT_EQ(a.at("deployment.kubernetes.io/revision"), "1");
  EXPECT_EQ(a.at("deployment.kubernetes.io/desired-replicas"), "3");
  EXPECT_EQ(a.at("deployment.kubernetes.io/max-replicas"), "4");
  EXPECT_EQ(a.at("kubernetes.io/change-cause"), "kubectl apply --record");
  EXPECT_EQ(a.count("kubectl.kubernetes.io/last-applied-configuration"), 0u);
  ASSERT_EQ(rs.metadata().owner_references_size(), 1);
  EXPECT_EQ(rs.metadata().owner_references(0).uid(), "d-uid");
  EXPECT_EQ(rs.metadata().owner_references(0).kind(), "Deployment");

  ASSERT_NE(r.meta, nullptr);
  EXPECT_EQ(r.meta->metadata().annotations().at("deployment.kubernetes.io/revision"), "1");
  ASSERT_NE(r.status, nullptr);
  EXPECT_EQ(r.status->status().observed_generation(), 1);
  ASSERT_NE(r.cond("Progressing"), nullptr);
  EXPECT_EQ(r.cond("Progressing")->reason(), "NewReplicaSetCreated");
  EXPECT_EQ(r.cond("Progressing")->status(), "True");
  EXPECT_EQ(r.cond("Progressing")->message(), "Created new replica set \"web-" + hash + "\"");
  ASSERT_NE(r.cond("Available"), nullptr);
  EXPECT_EQ(r.cond("Available")->status(), "False");
  EXPECT_EQ(r.cond("Available")->reason(), "MinimumReplicasUnavailable");
}

TEST(DeploymentReconcile, CompleteRolloutReportsNewReplicaSetAvailable) {
  auto d = makeDeployment(3);
  auto rs = rsFor(d, 3, 3, 1, 100);
  auto r = run(d, {rs});
  ASSERT_NE(r.status, nullptr);
  const auto& s = r.status->status();
  EXPECT_EQ(s.replicas(), 3);
  EXPECT_EQ(s.updated_replicas(), 3);
  EXPECT_EQ(s.available_replicas(), 3);
  EXPECT_EQ(s.ready_replicas(), 3);
  EXPECT_EQ(s.unavailable_replicas(), 0);
  ASSERT_NE(r.cond("Progressing"), nullptr);
  EXPECT_EQ(r.cond("Progressing")->reason(), "NewReplicaSetAvailable");
  EXPECT_EQ(r.cond("Progressing")->message(),
            "ReplicaSet \"" + rs.metadata().name() + "\" has successfully progressed.");
  EXPECT_EQ(r.cond("Available")->reason(), "MinimumReplicasAvailable");
  EXPECT_EQ(r.cond("Available")->message(), "Deployment has minimum availability.");
  EXPECT_FALSE(r.result.requeue_after.has_value());
  EXPECT_TRUE(r.created.empty());
  EXPECT_TRUE(r.updated.empty());

  // Steady state: nothing more to write.
  Deployment d2 = *r.status;
  ASSERT_NE(r.meta, nullptr);
  *d2.mutable_metadata() = r.meta->metadata();
  auto r2 = run(d2, {rs});
  EXPECT_TRUE(r2.result.actions.empty());
}

TEST(DeploymentReconcile, RollingUpdateRespectsMaxSurgeAndMaxUnavailable) {
  auto d = makeDeployment(3, "{rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}");
  auto old_rs = rsFor(d, 3, 3, 1, 500);
  setImage(d, "nginx:2");
  // Step 1: the new ReplicaSet gets one pod (3 + 1 surge), the old keeps all 3.
  auto r = run(d, {old_rs});
  ASSERT_EQ(r.created.size(), 1u);
  EXPECT_EQ(r.created[0]->spec().replicas(), 1);
  EXPECT_EQ(r.created[0]->metadata().annotations().at("deployment.kubernetes.io/revision"), "2");
  EXPECT_EQ(r.updatedNamed(old_rs.metadata().name()), nullptr);
  ASSERT_NE(r.meta, nullptr);
  EXPECT_EQ(r.meta->metadata().annotations().at("deployment.kubernetes.io/revision"), "2");

  // Step 2: new pod not available yet: nothing may go.
  auto new_rs = rsFor(d, 1, 0, 2, 10);
  auto r2 = run(d, {old_rs, new_rs});
  EXPECT_TRUE(r2.updated.empty());
  EXPECT_TRUE(r2.created.empty());

  // Step 3: it is available: one old pod goes.
  new_rs = rsFor(d, 1, 1, 2, 10);
  auto r3 = run(d, {old_rs, new_rs});
  const auto* scaled = r3.updatedNamed(old_rs.metadata().name());
  ASSERT_NE(scaled, nullptr);
  EXPECT_EQ(scaled->spec().replicas(), 2);
  EXPECT_EQ(r3.updatedNamed(new_rs.metadata().name()), nullptr);

  // Step 4: old at 2: the new one grows to 2.
  old_rs =
      rsFor(makeDeployment(3, "{rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}"), 2, 2, 1, 500);
  auto r4 = run(d, {old_rs, new_rs});
  const auto* grown = r4.updatedNamed(new_rs.metadata().name());
  ASSERT_NE(grown, nullptr);
  EXPECT_EQ(grown->spec().replicas(), 2);
  ASSERT_NE(r4.cond("Progressing"), nullptr);
}

TEST(DeploymentReconcile, RollingUpdateWithUnavailableBudgetScalesOldDownAtOnce) {
  auto d = makeDeployment(4, "{rollingUpdate: {maxSurge: 0, maxUnavailable: \"50%\"}}");
  auto old_rs = rsFor(d, 4, 4, 1, 500);
  setImage(d, "nginx:2");
  auto r = run(d, {old_rs});
  ASSERT_EQ(r.created.size(), 1u);
  EXPECT_EQ(r.created[0]->spec().replicas(), 0);  // no surge
  const auto* scaled = r.updatedNamed(old_rs.metadata().name());
  ASSERT_NE(scaled, nullptr);
  EXPECT_EQ(scaled->spec().replicas(), 2);  // 2 of 4 may be unavailable
}

TEST(DeploymentReconcile, RollingUpdateCleansUpUnhealthyOldReplicasFirst) {
  auto d = makeDeployment(3, "{rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}");
  auto old_rs = rsFor(d, 3, 1, 1, 500);  // two of its pods are not available
  setImage(d, "nginx:2");
  auto new_rs = rsFor(d, 1, 0, 2, 10);
  auto r = run(d, {old_rs, new_rs});
  const auto* scaled = r.updatedNamed(old_rs.metadata().name());
  ASSERT_NE(scaled, nullptr);
  // all 4 - minAvailable 2 - new unavailable 1 = 1 may go, taken from the unhealthy ones.
  EXPECT_EQ(scaled->spec().replicas(), 2);
}

TEST(DeploymentReconcile, RecreateScalesOldToZeroAndWaitsForItsPods) {
  auto d = makeDeployment(3, "{type: Recreate}");
  auto old_rs = rsFor(d, 3, 3, 1, 500);
  setImage(d, "nginx:2");
  auto r = run(d, {old_rs});
  EXPECT_TRUE(r.created.empty());
  const auto* scaled = r.updatedNamed(old_rs.metadata().name());
  ASSERT_NE(scaled, nullptr);
  EXPECT_EQ(scaled->spec().replicas(), 0);

  // Scaled to 0 but one pod still running: wait.
  auto zero = rsFor(makeDeployment(3, "{type: Recreate}"), 0, 0, 1, 500);
  Pod pod = makePod({.name = "old-pod", .owner_uid = zero.metadata().uid()});
  auto r2 = run(d, {zero}, {pod});
  EXPECT_TRUE(r2.created.empty());

  // Gone: the new ReplicaSet is made at full size.
  auto r3 = run(d, {zero});
  ASSERT_EQ(r3.created.size(), 1u);
  EXPECT_EQ(r3.created[0]->spec().replicas(), 3);
  EXPECT_EQ(r3.created[0]->metadata().annotations().at("deployment.kubernetes.io/max-replicas"),
            "3");
}

TEST(DeploymentReconcile, ScalingTheOnlyActiveReplicaSet) {
  auto d = makeDeployment(3);
  auto rs = rsFor(d, 3, 3, 1, 100);
  d.mutable_spec()->set_replicas(5);
  auto r = run(d, {rs});
  const auto* scaled = r.updatedNamed(rs.metadata().name());
  ASSERT_NE(scaled, nullptr);
  EXPECT_EQ(scaled->spec().replicas(), 5);
  EXPECT_EQ(scaled->metadata().annotations().at("deployment.kubernetes.io/desired-replicas"), "5");
  EXPECT_EQ(scaled->metadata().annotations().at("deployment.kubernetes.io/max-replicas"), "7");
}

TEST(DeploymentReconcile, ProportionalScalingDuringARollout) {
  // A rollout of 5 replicas (surge 2: max-replicas 7) is scaled to 10 midway.
  auto d5 = makeDeployment(5);
  auto old_rs = rsFor(d5, 2, 2, 1, 500);
  auto d = d5;
  setImage(d, "nginx:2");
  auto new_rs = rsFor(d, 3, 0, 2, 10);
  (*new_rs.mutable_metadata()->mutable_annotations())["deployment.kubernetes.io/desired-replicas"] =
      "5";
  (*new_rs.mutable_metadata()->mutable_annotations())["deployment.kubernetes.io/max-replicas"] =
      "7";
  d.mutable_spec()->set_replicas(10);  // surge 3: 13 allowed, 8 to add
  auto r = run(d, {old_rs, new_rs});
  const auto* n = r.updatedNamed(new_rs.metadata().name());
  const auto* o = r.updatedNamed(old_rs.metadata().name());
  ASSERT_NE(n, nullptr);
  ASSERT_NE(o, nullptr);
  // round(3*13/7)=6 and round(2*13/7)=4; the leftover 3 goes to the biggest.
  EXPECT_EQ(n->spec().replicas(), 9);
  EXPECT_EQ(o->spec().replicas(), 4);
}

TEST(DeploymentReconcile, PausedNeitherRollsOutNorCreates) {
  auto d = makeDeployment(3);
  auto rs = rsFor(d, 3, 3, 1, 100);
  setImage(d, "nginx:2");
  d.mutable_spec()->set_paused(true);
  auto r = run(d, {rs});
  EXPECT_TRUE(r.created.empty());
  ASSERT_NE(r.cond("Progressing"), nullptr);
  EXPECT_EQ(r.cond("Progressing")->status(), "Unknown");
  EXPECT_EQ(r.cond("Progressing")->reason(), "DeploymentPaused");
  EXPECT_EQ(r.cond("Progressing")->message(), "Deployment is paused");

  Deployment resumed = *r.status;
  resumed.mutable_spec()->set_paused(false);
  auto r2 = run(resumed, {rs});
  ASSERT_EQ(r2.created.size(), 1u);
  // DeploymentResumed, then NewReplicaSetCreated in the same sync (as Kubernetes' two writes).
  ASSERT_NE(r2.cond("Progressing"), nullptr);
  EXPECT_EQ(r2.cond("Progressing")->reason(), "NewReplicaSetCreated");
}

TEST(DeploymentReconcile, ProgressDeadlineExceeded) {
  auto d = makeDeployment(3);
  d.mutable_spec()->set_progress_deadline_seconds(60);
  auto rs = rsFor(d, 3, 1, 1, 100);
  auto* c = d.mutable_status()->add_conditions();
  c->set_type("Progressing");
  c->set_status("True");
  c->set_reason("ReplicaSetUpdated");
  setTime(*c->mutable_last_update_time(), ago(61));
  setTime(*c->mutable_last_transition_time(), ago(200));
  d.mutable_status()->set_observed_generation(1);
  d.mutable_status()->set_replicas(3);
  d.mutable_status()->set_updated_replicas(3);
  d.mutable_status()->set_ready_replicas(1);
  d.mutable_status()->set_available_replicas(1);
  auto r = run(d, {rs});
  ASSERT_NE(r.cond("Progressing"), nullptr);
  EXPECT_EQ(r.cond("Progressing")->status(), "False");
  EXPECT_EQ(r.cond("Progressing")->reason(), "ProgressDeadlineExceeded");
  EXPECT_EQ(r.cond("Progressing")->message(),
            "ReplicaSet \"" + rs.metadata().name() + "\" has timed out progressing.");

  // Before the deadline: no timeout, but a requeue for when it would pass.
  setTime(*d.mutable_status()->mutable_conditions(0)->mutable_last_update_time(), ago(30));
  auto r2 = run(d, {rs});
  ASSERT_NE(r2.cond("Progressing"), nullptr);
  EXPECT_EQ(r2.cond("Progressing")->reason(), "ReplicaSetUpdated");
  EXPECT_EQ(r2.cond("Progressing")->last_update_time().seconds(), ago(30).seconds);
  ASSERT_TRUE(r2.result.requeue_after.has_value());
  EXPECT_EQ(r2.result.requeue_after->count(), 30001);
}

TEST(DeploymentReconcile, ProgressKeepsTheTransitionTime) {
  auto d = makeDeployment(3);
  auto rs = rsFor(d, 3, 2, 1, 100);
  auto* c = d.mutable_status()->add_conditions();
  c->set_type("Progressing");
  c->set_status("True");
  c->set_reason("NewReplicaSetCreated");
  setTime(*c->mutable_last_update_time(), ago(50));
  setTime(*c->mutable_last_transition_time(), ago(50));
  d.mutable_status()->set_available_replicas(1);
  auto r = run(d, {rs});
  ASSERT_NE(r.cond("Progressing"), nullptr);
  EXPECT_EQ(r.cond("Progressing")->reason(), "ReplicaSetUpdated");
  EXPECT_EQ(r.cond("Progressing")->last_update_time().seconds(), kNow.seconds);
  EXPECT_EQ(r.cond("Progressing")->last_transition_time().seconds(), ago(50).seconds);
}

TEST(DeploymentReconcile, RevisionHistoryLimitDeletesTheOldestScaledDown) {
  auto d = makeDeployment(3);
  d.mutable_spec()->set_revision_history_limit(1);
  auto d1 = d, d2 = d, d3 = d;
  setImage(d1, "nginx:a");
  setImage(d2, "nginx:b");
  setImage(d3, "nginx:c");
  auto r1 = rsFor(d1, 0, 0, 1, 400);
  auto r2 = rsFor(d2, 0, 0, 2, 300);
  auto r3 = rsFor(d3, 0, 0, 3, 200);
  auto cur = rsFor(d, 3, 3, 4, 100);
  d.mutable_status()->set_observed_generation(1);
  d.mutable_status()->set_replicas(3);
  d.mutable_status()->set_updated_replicas(3);
  d.mutable_status()->set_available_replicas(3);
  auto r = run(d, {r3, r1, cur, r2});
  ASSERT_EQ(r.deleted.size(), 2u);
  EXPECT_EQ(r.deleted[0], r1.metadata().name());
  EXPECT_EQ(r.deleted[1], r2.metadata().name());

  // One still has replicas: it stays, and counts against the limit.
  r1.mutable_status()->set_replicas(1);
  auto rb = run(d, {r3, r1, cur, r2});
  ASSERT_EQ(rb.deleted.size(), 1u);
  EXPECT_EQ(rb.deleted[0], r2.metadata().name());
}

TEST(DeploymentReconcile, RollbackMakesTheOldReplicaSetNewWithHistory) {
  auto d = makeDeployment(3);
  auto v1 = rsFor(d, 0, 0, 1, 300);
  auto d2 = d;
  setImage(d2, "nginx:2");
  auto v2 = rsFor(d2, 3, 3, 2, 100);
  // `kubectl rollout undo`: the Deployment gets v1's template back.
  Deployment undo = d2;
  *undo.mutable_spec()->mutable_template_() = d.spec().template_();
  (*undo.mutable_metadata()->mutable_annotations())["deployment.kubernetes.io/revision"] = "2";
  auto r = run(undo, {v1, v2});
  EXPECT_TRUE(r.created.empty());
  const auto* back = r.updatedNamed(v1.metadata().name());
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->metadata().annotations().at("deployment.kubernetes.io/revision"), "3");
  EXPECT_EQ(back->metadata().annotations().at("deployment.kubernetes.io/revision-history"), "1");
  EXPECT_EQ(back->spec().replicas(), 1);  // surge 1
  ASSERT_NE(r.meta, nullptr);
  EXPECT_EQ(r.meta->metadata().annotations().at("deployment.kubernetes.io/revision"), "3");

  // Rolled back again later: the history grows.
  ReplicaSet again = *back;
  (*again.mutable_metadata()->mutable_annotations())["deployment.kubernetes.io/revision"] = "3";
  auto v4 = rsFor(d2, 3, 3, 4, 50);
  auto r2 = run(undo, {again, v4});
  const auto* back2 = r2.updatedNamed(v1.metadata().name());
  ASSERT_NE(back2, nullptr);
  EXPECT_EQ(back2->metadata().annotations().at("deployment.kubernetes.io/revision"), "5");
  EXPECT_EQ(back2->metadata().annotations().at("deployment.kubernetes.io/revision-history"), "1,3");
}

TEST(DeploymentReconcile, AdoptsMatchingOrphansAndLeavesOthersAlone) {
  auto d = makeDeployment(3);
  auto mine = rsFor(d, 3, 3, 1, 100);
  mine.mutable_metadata()->clear_owner_references();
  auto other = rsFor(d, 1, 1, 7, 50);
  other.mutable_metadata()->set_name("someone-else");
  other.mutable_metadata()->mutable_owner_references(0)->set_uid("other");
  auto r = run(d, {mine, other});
  const auto* adopted = r.updatedNamed(mine.metadata().name());
  ASSERT_NE(adopted, nullptr);
  ASSERT_EQ(adopted->metadata().owner_references_size(), 1);
  EXPECT_EQ(adopted->metadata().owner_references(0).uid(), "d-uid");
  EXPECT_EQ(r.updatedNamed("someone-else"), nullptr);
  EXPECT_TRUE(r.created.empty());
  ASSERT_NE(r.status, nullptr);
  EXPECT_EQ(r.status->status().replicas(), 3);  // the other controller's RS is not counted
}

TEST(DeploymentReconcile, HashCollisionBumpsCollisionCount) {
  auto d = makeDeployment(3);
  std::string hash = computeTemplateHash(d.spec().template_(), std::nullopt);
  auto squatter = rsFor(d, 1, 1, 1, 100);
  squatter.mutable_metadata()->clear_owner_references();
  (*squatter.mutable_metadata()->mutable_labels())["app"] = "other";
  squatter.mutable_spec()->mutable_template_()->mutable_spec()->mutable_containers(0)->set_image(
      "other");
  ASSERT_EQ(squatter.metadata().name(), "web-" + hash);
  auto r = run(d, {squatter});
  EXPECT_TRUE(r.created.empty());
  ASSERT_NE(r.status, nullptr);
  EXPECT_EQ(r.status->status().collision_count(), 1);
  // With the count, the next name differs.
  Deployment d2 = *r.status;
  auto r2 = run(d2, {squatter});
  ASSERT_EQ(r2.created.size(), 1u);
  EXPECT_EQ(r2.created[0]->metadata().name(),
            "web-" + computeTemplateHash(d.spec().template_(), 1));
}

TEST(DeploymentReconcile, EmptySelectorIsReported) {
  auto d = makeDeployment(3);
  d.mutable_spec()->mutable_selector()->Clear();
  d.mutable_metadata()->set_generation(4);
  auto r = run(d, {});
  EXPECT_EQ(r.result.warning_reason, "SelectingAll");
  EXPECT_TRUE(r.created.empty());
  ASSERT_NE(r.status, nullptr);
  EXPECT_EQ(r.status->status().observed_generation(), 4);
}

}  // namespace
}  // namespace skiff::controllers

#include "control/controllers/job.h"

#include <gtest/gtest.h>

#include <functional>

#include "tests/control/controllers/builders.h"
#include "tests/control/controllers/workload_test_util.h"

namespace skiff::controllers {
namespace {

using namespace testing;  // NOLINT
using api::batch::v1::Job;
using api::core::v1::Pod;

Job makeJob(int completions, int parallelism) {
  auto job = fromYaml<Job>(R"(
apiVersion: batch/v1
kind: Job
metadata: {name: pi, namespace: default, uid: job-uid, generation: 1}
spec:
  backoffLimit: 2
  template:
    metadata: {labels: {app: pi}}
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
)");
  if (completions > 0) job.mutable_spec()->set_completions(completions);
  job.mutable_spec()->set_parallelism(parallelism);
  return job;
}

Pod jobPod(const std::string& name, const std::string& phase, int index = -1, bool ready = false,
           int restarts = 0) {
  Pod pod = makePod({.name = name,
                     .labels = {{"app", "pi"}},
                     .owner_uid = "job-uid",
                     .owner_name = "pi",
                     .phase = phase,
                     .ready = ready,
                     .restarts = restarts});
  if (index >= 0) {
    (*pod.mutable_metadata()->mutable_annotations())[std::string(kJobCompletionIndex)] =
        std::to_string(index);
  }
  return pod;
}

// A Failed pod whose container `container` exited with `code`, and with the condition `condition`
// (True) when not empty.
Pod failedPod(const std::string& name, int code, const std::string& condition = "",
              const std::string& container = "c") {
  Pod pod = jobPod(name, "Failed");
  auto* cs = pod.mutable_status()->add_container_statuses();
  cs->set_name(container);
  cs->mutable_state()->mutable_terminated()->set_exit_code(code);
  if (!condition.empty()) {
    auto* c = pod.mutable_status()->add_conditions();
    c->set_type(condition);
    c->set_status("True");
  }
  return pod;
}

// `pod` as a pod of `index` that carries `failures` earlier counted failures of its index.
Pod ofIndex(Pod pod, int index, int failures = 0) {
  auto& annotations = *pod.mutable_metadata()->mutable_annotations();
  annotations[std::string(kJobCompletionIndex)] = std::to_string(index);
  annotations[std::string(kJobIndexFailureCount)] = std::to_string(failures);
  return pod;
}

// An Indexed Job of 3 completions, all in parallel, with backoffLimitPerIndex `limit`.
void perIndex(Job& job, int limit) {
  job.mutable_spec()->set_completion_mode("Indexed");
  job.mutable_spec()->set_parallelism(3);
  job.mutable_spec()->clear_backoff_limit();  // defaulted to no limit
  job.mutable_spec()->set_backoff_limit_per_index(limit);
}

void setPolicy(Job& job, const std::string& yaml) {
  *job.mutable_spec()->mutable_pod_failure_policy() =
      fromYaml<api::batch::v1::PodFailurePolicy>(yaml);
}

struct Case {
  std::string name;
  std::function<void(Job&)> edit;
  std::vector<Pod> pods;
  bool satisfied = true;
  // Expected:
  int creates = 0;
  std::vector<std::string> deletes;
  std::string condition;  // "Complete", "Failed", "Suspended" or "" (none True)
  std::string reason;
  int active = 0;
  int succeeded = 0;
  int failed = 0;
  std::vector<int> created_indexes = {};
  std::vector<std::string> other_deletes = {};
  std::string failed_indexes = {};  // status.failedIndexes
};

class JobTable : public ::testing::TestWithParam<Case> {};

TEST_P(JobTable, Reconciles) {
  const Case& c = GetParam();
  Job job = makeJob(3, 2);
  if (c.edit) c.edit(job);
  JobInput in;
  in.job = &job;
  for (const auto& p : c.pods)
    in.pods.push_back(&p);
  in.now = kNow;
  in.expectations_satisfied = c.satisfied;
  auto result = reconcileJob(in);
  ASSERT_TRUE(result.warning.empty()) << result.warning;
  auto s = split(result);
  EXPECT_EQ(static_cast<int>(s.creates.size()), c.creates);
  EXPECT_EQ(result.creates, c.creates);
  EXPECT_EQ(s.deletes, c.deletes);
  EXPECT_EQ(s.other_deletes, c.other_deletes);
  std::vector<int> indexes;
  for (const Pod* p : s.creates) {
    const auto& labels = p->metadata().labels();
    EXPECT_EQ(labels.at(std::string(kJobControllerUidLabel)), "job-uid");
    EXPECT_EQ(labels.at(std::string(kJobNameLabel)), "pi");
    EXPECT_EQ(labels.at("job-name"), "pi");
    EXPECT_EQ(labels.at("app"), "pi");
    ASSERT_NE(controllerOf(p->metadata()), nullptr);
    EXPECT_EQ(controllerOf(p->metadata())->kind(), "Job");
    EXPECT_EQ(controllerOf(p->metadata())->uid(), "job-uid");
    int index = completionIndexOf(*p);
    if (index >= 0) {
      indexes.push_back(index);
      EXPECT_EQ(p->spec().hostname(), "pi-" + std::to_string(index));
      EXPECT_EQ(p->metadata().generate_name(), "pi-" + std::to_string(index) + "-");
      EXPECT_EQ(p->spec().containers(0).env(0).name(), "JOB_COMPLETION_INDEX");
    }
  }
  EXPECT_EQ(indexes, c.created_indexes);
  if (!c.other_deletes.empty()) return;  // the Job itself goes
  ASSERT_NE(s.status, nullptr);
  const auto& status = static_cast<const Job*>(s.status)->status();
  EXPECT_EQ(status.active(), c.active);
  EXPECT_EQ(status.succeeded(), c.succeeded);
  EXPECT_EQ(status.failed(), c.failed);
  EXPECT_EQ(status.has_start_time(), c.condition != "Suspended");  // not started while suspended
  std::string condition, reason;
  for (const auto& cond : status.conditions()) {
    if (cond.status() == "True") {
      condition = cond.type();
      reason = cond.reason();
    }
  }
  EXPECT_EQ(condition, c.condition);
  EXPECT_EQ(reason, c.reason);
  EXPECT_EQ(status.has_completion_time(), c.condition == "Complete");
  EXPECT_EQ(status.failed_indexes(), c.failed_indexes);
  EXPECT_EQ(status.has_failed_indexes(), job.spec().has_backoff_limit_per_index());
}

void finished(Job& job, const std::string& type, int64_t seconds_ago) {
  auto* cond = job.mutable_status()->add_conditions();
  cond->set_type(type);
  cond->set_status("True");
  setTime(*cond->mutable_last_transition_time(), ago(seconds_ago));
  setTime(*job.mutable_status()->mutable_start_time(), ago(seconds_ago + 10));
  if (type == "Complete") {
    setTime(*job.mutable_status()->mutable_completion_time(), ago(seconds_ago));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, JobTable,
    ::testing::Values(
        Case{.name = "NewJobStartsParallelismPods", .creates = 2, .active = 2},
        Case{.name = "ExpectationsUnmetCreateNothing", .satisfied = false, .active = 0},
        Case{.name = "ExpectationsUnmetKeepTheActiveCountWritten",
             .edit = [](Job& j) { j.mutable_status()->set_active(2); },
             .pods = {jobPod("a", "Running")},
             .satisfied = false,
             .active = 2},
        Case{.name = "OneSucceededTwoRunningWaits",
             .pods = {jobPod("a", "Succeeded"), jobPod("b", "Running", -1, true),
                      jobPod("c", "Running")},
             .active = 2,
             .succeeded = 1},
        Case{.name = "TwoSucceededOneMoreToGo",
             .pods = {jobPod("a", "Succeeded"), jobPod("b", "Succeeded")},
             .creates = 1,
             .active = 1,
             .succeeded = 2},
        Case{.name = "ThreeSucceededCompletes",
             .pods = {jobPod("a", "Succeeded"), jobPod("b", "Succeeded"), jobPod("c", "Succeeded")},
             .condition = "Complete",
             .succeeded = 3},
        Case{.name = "FailuresUpToBackoffLimitAreReplaced",
             .pods = {jobPod("a", "Failed"), jobPod("b", "Failed")},
             .creates = 2,
             .active = 2,
             .failed = 2},
        Case{.name = "FailuresPastBackoffLimitFailTheJob",
             .pods = {jobPod("a", "Failed"), jobPod("b", "Failed"), jobPod("c", "Failed"),
                      jobPod("d", "Running")},
             .deletes = {"d"},
             .condition = "Failed",
             .reason = "BackoffLimitExceeded",
             .failed = 3},
        Case{.name = "OnFailureRestartsCountAsFailures",
             .edit =
                 [](Job& j) {
                   j.mutable_spec()->mutable_template_()->mutable_spec()->set_restart_policy(
                       "OnFailure");
                 },
             .pods = {jobPod("a", "Running", -1, false, 3)},
             .deletes = {"a"},
             .condition = "Failed",
             .reason = "BackoffLimitExceeded"},
        Case{.name = "ActiveDeadlineExceeded",
             .edit =
                 [](Job& j) {
                   j.mutable_spec()->set_active_deadline_seconds(30);
                   setTime(*j.mutable_status()->mutable_start_time(), ago(31));
                 },
             .pods = {jobPod("a", "Running")},
             .deletes = {"a"},
             .condition = "Failed",
             .reason = "DeadlineExceeded"},
        Case{.name = "ParallelismLoweredDeletesSurplus",
             .edit = [](Job& j) { j.mutable_spec()->set_parallelism(1); },
             .pods = {jobPod("a", "Running", -1, true), jobPod("b", "Pending")},
             .deletes = {"b"},
             .active = 1},
        Case{.name = "NoCompletionsFinishesAfterFirstSuccessOnceOthersStop",
             .edit = [](Job& j) { j.mutable_spec()->clear_completions(); },
             .pods = {jobPod("a", "Succeeded"), jobPod("b", "Succeeded")},
             .condition = "Complete",
             .succeeded = 2},
        Case{.name = "NoCompletionsNoNewPodsAfterASuccess",
             .edit = [](Job& j) { j.mutable_spec()->clear_completions(); },
             .pods = {jobPod("a", "Succeeded"), jobPod("b", "Running")},
             .active = 1,
             .succeeded = 1},
        Case{.name = "SuspendDeletesActivePods",
             .edit = [](Job& j) { j.mutable_spec()->set_suspend(true); },
             .pods = {jobPod("a", "Running"), jobPod("b", "Running")},
             .deletes = {"a", "b"},
             .condition = "Suspended",
             .reason = "JobSuspended"},
        Case{.name = "IndexedCreatesMissingIndexes",
             .edit =
                 [](Job& j) {
                   j.mutable_spec()->set_completion_mode("Indexed");
                   j.mutable_spec()->set_parallelism(3);
                 },
             .pods = {jobPod("a", "Succeeded", 1), jobPod("b", "Running", 0)},
             .creates = 1,
             .active = 2,
             .succeeded = 1,
             .created_indexes = {2}},
        Case{.name = "IndexedDuplicateAndOutOfRangeGo",
             .edit =
                 [](Job& j) {
                   j.mutable_spec()->set_completion_mode("Indexed");
                   j.mutable_spec()->set_parallelism(3);
                 },
             .pods = {jobPod("a", "Running", 0, true), jobPod("b", "Pending", 0),
                      jobPod("c", "Running", 7)},
             .creates = 2,
             .deletes = {"c", "b"},
             .active = 3,
             .created_indexes = {1, 2}},
        Case{.name = "IndexedCompletesWhenEveryIndexSucceeded",
             .edit = [](Job& j) { j.mutable_spec()->set_completion_mode("Indexed"); },
             .pods = {jobPod("a", "Succeeded", 0), jobPod("b", "Succeeded", 1),
                      jobPod("c", "Failed", 1), jobPod("d", "Succeeded", 2)},
             .condition = "Complete",
             .succeeded = 3,
             .failed = 1},
        Case{.name = "TtlAfterFinishedDeletesTheJob",
             .edit =
                 [](Job& j) {
                   j.mutable_spec()->set_ttl_seconds_after_finished(5);
                   finished(j, "Complete", 6);
                   j.mutable_status()->set_succeeded(3);
                 },
             .other_deletes = {"Job/pi"}},
        Case{.name = "TtlNotYetLeavesItAlone",
             .edit =
                 [](Job& j) {
                   j.mutable_spec()->set_ttl_seconds_after_finished(60);
                   finished(j, "Complete", 6);
                   j.mutable_status()->set_succeeded(3);
                 },
             .condition = "Complete",
             .succeeded = 3},
        Case{.name = "PodFailurePolicyFailJobOnAnExitCode",
             .edit =
                 [](Job& j) {
                   setPolicy(j, R"(rules:
- {action: FailJob, onExitCodes: {containerName: c, operator: In, values: [42]}})");
                 },
             .pods = {failedPod("a", 42), jobPod("b", "Running", -1, true)},
             .deletes = {"b"},
             .condition = "Failed",
             .reason = "PodFailurePolicy",
             .failed = 1},
        Case{.name = "PodFailurePolicyOtherExitCodesCountAsUsual",
             .edit =
                 [](Job& j) {
                   setPolicy(j, R"(rules:
- {action: FailJob, onExitCodes: {operator: In, values: [42]}})");
                 },
             .pods = {failedPod("a", 1)},
             .creates = 2,
             .active = 2,
             .failed = 1},
        Case{.name = "PodFailurePolicyIgnoreKeepsDisruptionsOutOfTheBackoffLimit",
             .edit =
                 [](Job& j) {
                   setPolicy(j, R"(rules:
- {action: Ignore, onPodConditions: [{type: DisruptionTarget}]})");
                 },
             // backoffLimit 2: three counted failures would fail the Job.
             .pods = {failedPod("a", 137, "DisruptionTarget"),
                      failedPod("b", 137, "DisruptionTarget"),
                      failedPod("c", 137, "DisruptionTarget")},
             .creates = 2,
             .active = 2,
             .failed = 0},
        Case{.name = "PodFailurePolicyCountStillCounts",
             .edit =
                 [](Job& j) {
                   setPolicy(j, R"(rules:
- {action: Count, onExitCodes: {operator: NotIn, values: [42]}})");
                 },
             .pods = {failedPod("a", 1), failedPod("b", 2), failedPod("c", 3)},
             .condition = "Failed",
             .reason = "BackoffLimitExceeded",
             .failed = 3},
        Case{.name = "PodFailurePolicyFailIndexWithoutPerIndexLimitCounts",
             .edit =
                 [](Job& j) {
                   setPolicy(j, R"(rules:
- {action: FailIndex, onExitCodes: {operator: In, values: [42]}})");
                 },
             .pods = {failedPod("a", 42), failedPod("b", 42), failedPod("c", 42)},
             .condition = "Failed",
             .reason = "BackoffLimitExceeded",
             .failed = 3},
        Case{.name = "PerIndexFailureBelowTheLimitIsRetried",
             .edit = [](Job& j) { perIndex(j, 1); },
             .pods = {ofIndex(jobPod("a", "Failed"), 0), ofIndex(jobPod("b", "Running"), 1),
                      ofIndex(jobPod("c", "Succeeded"), 2)},
             .creates = 1,
             .active = 2,
             .succeeded = 1,
             .failed = 1,
             .created_indexes = {0}},
        Case{.name = "PerIndexLimitReachedFailsOnlyThatIndex",
             // Many failures in all: backoffLimit does not apply (defaulted to no limit).
             .edit = [](Job& j) { perIndex(j, 1); },
             .pods = {ofIndex(jobPod("a", "Failed"), 0), ofIndex(jobPod("b", "Failed"), 0, 1),
                      ofIndex(jobPod("c", "Failed"), 1), ofIndex(jobPod("d", "Running"), 1),
                      ofIndex(jobPod("e", "Failed"), 2), ofIndex(jobPod("f", "Failed"), 2)},
             .creates = 1,
             .active = 2,
             .failed = 5,
             .created_indexes = {2},
             .failed_indexes = "0"},
        Case{.name = "PerIndexActivePodOfAFailedIndexGoes",
             .edit =
                 [](Job& j) {
                   perIndex(j, 0);
                   j.mutable_status()->set_failed_indexes("1");
                 },
             .pods = {ofIndex(jobPod("a", "Running"), 0), ofIndex(jobPod("b", "Running"), 1)},
             .creates = 1,
             .deletes = {"b"},
             .active = 2,
             .created_indexes = {2},
             .failed_indexes = "1"},
        Case{.name = "PerIndexFailedIndexesFailTheJobOnceTheOthersSucceeded",
             .edit = [](Job& j) { perIndex(j, 0); },
             .pods = {ofIndex(jobPod("a", "Failed"), 0), ofIndex(jobPod("b", "Succeeded"), 1),
                      ofIndex(jobPod("c", "Succeeded"), 2)},
             .condition = "Failed",
             .reason = "FailedIndexes",
             .succeeded = 2,
             .failed = 1,
             .failed_indexes = "0"},
        Case{.name = "PerIndexMaxFailedIndexesExceeded",
             .edit =
                 [](Job& j) {
                   perIndex(j, 0);
                   j.mutable_spec()->set_max_failed_indexes(1);
                 },
             .pods = {ofIndex(jobPod("a", "Failed"), 0), ofIndex(jobPod("b", "Failed"), 2),
                      ofIndex(jobPod("c", "Running"), 1)},
             .deletes = {"c"},
             .condition = "Failed",
             .reason = "MaxFailedIndexesExceeded",
             .failed = 2,
             .failed_indexes = "0,2"},
        Case{.name = "PerIndexMaxFailedIndexesNotYetExceeded",
             .edit =
                 [](Job& j) {
                   perIndex(j, 0);
                   j.mutable_spec()->set_max_failed_indexes(1);
                 },
             .pods = {ofIndex(jobPod("a", "Failed"), 0), ofIndex(jobPod("c", "Running"), 1)},
             .creates = 1,
             .active = 2,
             .failed = 1,
             .created_indexes = {2},
             .failed_indexes = "0"},
        Case{.name = "PerIndexGlobalBackoffLimitStillApplies",
             .edit =
                 [](Job& j) {
                   perIndex(j, 5);
                   j.mutable_spec()->set_backoff_limit(1);
                 },
             .pods = {ofIndex(jobPod("a", "Failed"), 0), ofIndex(jobPod("b", "Failed"), 1),
                      ofIndex(jobPod("c", "Running"), 2)},
             .deletes = {"c"},
             .condition = "Failed",
             .reason = "BackoffLimitExceeded",
             .failed = 2},
        Case{.name = "PerIndexFailIndexRuleFailsTheIndexAtOnce",
             .edit =
                 [](Job& j) {
                   perIndex(j, 3);
                   setPolicy(j, R"(rules:
- {action: FailIndex, onExitCodes: {operator: In, values: [42]}})");
                 },
             .pods = {ofIndex(failedPod("a", 42), 0), ofIndex(failedPod("b", 1), 1),
                      ofIndex(jobPod("c", "Running"), 2)},
             .creates = 1,
             .active = 2,
             .failed = 2,
             .created_indexes = {1},
             .failed_indexes = "0"},
        Case{.name = "PerIndexIgnoredFailuresDoNotFailTheIndex",
             .edit =
                 [](Job& j) {
                   perIndex(j, 0);
                   setPolicy(j, R"(rules:
- {action: Ignore, onPodConditions: [{type: DisruptionTarget}]})");
                 },
             .pods = {ofIndex(failedPod("a", 137, "DisruptionTarget"), 0),
                      ofIndex(jobPod("b", "Running"), 1), ofIndex(jobPod("c", "Running"), 2)},
             .creates = 1,
             .active = 3,
             .created_indexes = {0}}),
    [](const ::testing::TestParamInfo<Case>& case_info) { return case_info.param.name; });

TEST(Job, PodFailurePolicyFirstMatchingRuleDecides) {
  const auto policy = fromYaml<api::batch::v1::PodFailurePolicy>(R"(rules:
- {action: Ignore, onPodConditions: [{type: DisruptionTarget}]}
- {action: FailJob, onExitCodes: {containerName: main, operator: In, values: [42]}}
- {action: Count, onExitCodes: {operator: NotIn, values: [0]}}
)");
  // Kubernetes' message for a FailJob match on an exit code.
  Pod main42 = failedPod("p", 42, "", "main");
  PodFailureVerdict v = matchPodFailurePolicy(policy, main42);
  EXPECT_TRUE(v.fail_job);
  EXPECT_TRUE(v.counts);
  EXPECT_EQ(v.rule, 1);
  EXPECT_EQ(v.message,
            "Container main for pod default/p failed with exit code 42 matching FailJob rule at "
            "index 1");
  // A disruption wins over the exit code: rule 0 comes first.
  Pod disrupted = failedPod("q", 42, "DisruptionTarget", "main");
  v = matchPodFailurePolicy(policy, disrupted);
  EXPECT_FALSE(v.fail_job);
  EXPECT_FALSE(v.counts);
  EXPECT_EQ(v.rule, 0);
  // 42 from another container: not rule 1 (containerName), rule 2 counts it.
  Pod side42 = failedPod("r", 42, "", "side");
  v = matchPodFailurePolicy(policy, side42);
  EXPECT_FALSE(v.fail_job);
  EXPECT_TRUE(v.counts);
  EXPECT_EQ(v.rule, 2);
  // An init container's exit code is matched too; a container still running has none.
  Pod init = jobPod("s", "Failed");
  auto* ics = init.mutable_status()->add_init_container_statuses();
  ics->set_name("main");
  ics->mutable_state()->mutable_terminated()->set_exit_code(42);
  init.mutable_status()->add_container_statuses()->set_name("main");  // never started
  EXPECT_TRUE(matchPodFailurePolicy(policy, init).fail_job);
  // Exit code 0 never matches an onExitCodes rule (NotIn [0] notwithstanding); no rule: counts.
  Pod clean = failedPod("t", 0, "", "main");
  v = matchPodFailurePolicy(policy, clean);
  EXPECT_EQ(v.rule, -1);
  EXPECT_TRUE(v.counts);
  EXPECT_FALSE(v.fail_job);
  // A FailJob on a pod condition names the condition.
  const auto by_condition = fromYaml<api::batch::v1::PodFailurePolicy>(R"(rules:
- {action: FailJob, onPodConditions: [{type: ConfigIssue, status: "True"}]})");
  Pod config = failedPod("u", 1, "ConfigIssue");
  EXPECT_EQ(matchPodFailurePolicy(by_condition, config).message,
            "Pod default/u has condition ConfigIssue matching FailJob rule at index 0");
}

// The pod created for `index`, if any.
const Pod* createdFor(const PodOwnerResult& result, int index) {
  for (const Pod* p : split(result).creates) {
    if (completionIndexOf(*p) == index) return p;
  }
  return nullptr;
}

std::string annotation(const Pod& pod, std::string_view key) {
  auto it = pod.metadata().annotations().find(std::string(key));
  return it == pod.metadata().annotations().end() ? "<none>" : it->second;
}

TEST(Job, PerIndexNewPodsCarryTheirIndexFailureCounts) {
  Job job = makeJob(3, 3);
  perIndex(job, 2);
  setPolicy(job, R"(rules:
- {action: Ignore, onPodConditions: [{type: DisruptionTarget}]})");
  // Index 0 never failed; index 1 failed once before, and now again; index 2's pod was disrupted
  // (ignored) after one counted failure.
  Pod a = ofIndex(failedPod("a", 1), 1, 0);
  Pod b = ofIndex(failedPod("b", 1), 1, 1);
  Pod c = ofIndex(failedPod("c", 137, "DisruptionTarget"), 2, 1);
  auto result = reconcileJob({.job = &job, .pods = {&a, &b, &c}, .now = kNow});
  const Pod* p0 = createdFor(result, 0);
  const Pod* p1 = createdFor(result, 1);
  const Pod* p2 = createdFor(result, 2);
  ASSERT_NE(p0, nullptr);
  ASSERT_NE(p1, nullptr);
  ASSERT_NE(p2, nullptr);
  EXPECT_EQ(annotation(*p0, kJobIndexFailureCount), "0");
  EXPECT_EQ(annotation(*p0, kJobIndexIgnoredFailureCount), "<none>");
  EXPECT_EQ(annotation(*p1, kJobIndexFailureCount), "2");
  EXPECT_EQ(annotation(*p1, kJobIndexIgnoredFailureCount), "<none>");
  EXPECT_EQ(annotation(*p2, kJobIndexFailureCount), "1");
  EXPECT_EQ(annotation(*p2, kJobIndexIgnoredFailureCount), "1");
  // Without backoffLimitPerIndex no count is written.
  Job plain = makeJob(3, 3);
  plain.mutable_spec()->set_completion_mode("Indexed");
  // Kept: createdFor points into the result.
  const PodOwnerResult plain_result = reconcileJob({.job = &plain, .now = kNow});
  const Pod* q = createdFor(plain_result, 0);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(annotation(*q, kJobIndexFailureCount), "<none>");

  // The next failure of index 1 (its pod carries 2) reaches the limit: failed for good.
  Pod d = ofIndex(failedPod("d", 1), 1, 2);
  result = reconcileJob({.job = &job, .pods = {&a, &b, &d}, .now = kNow});
  EXPECT_EQ(createdFor(result, 1), nullptr);
  ASSERT_NE(createdFor(result, 0), nullptr);
  const auto* written = static_cast<const Job*>(split(result).status);
  ASSERT_NE(written, nullptr);
  EXPECT_EQ(written->status().failed_indexes(), "1");
  EXPECT_EQ(written->status().failed(), 3);
}

TEST(Job, StatusWriteOnlyWhenSomethingChanged) {
  Job job = makeJob(3, 2);
  Pod a = jobPod("a", "Running", -1, true);
  Pod b = jobPod("b", "Running");
  JobInput in{.job = &job, .pods = {&a, &b}, .now = kNow};
  auto result = reconcileJob(in);
  auto s = split(result);
  ASSERT_NE(s.status, nullptr);
  Job written = *static_cast<const Job*>(s.status);
  EXPECT_EQ(written.status().ready(), 1);
  in.job = &written;
  EXPECT_TRUE(reconcileJob(in).actions.empty());
}

TEST(Job, RequeuesAtTheDeadline) {
  Job job = makeJob(3, 2);
  job.mutable_spec()->set_active_deadline_seconds(30);
  setTime(*job.mutable_status()->mutable_start_time(), ago(10));
  Pod a = jobPod("a", "Running");
  Pod b = jobPod("b", "Running");
  auto r = reconcileJob({.job = &job, .pods = {&a, &b}, .now = kNow});
  ASSERT_TRUE(r.requeue_after.has_value());
  EXPECT_EQ(r.requeue_after->count(), 20000);
}

TEST(Job, IndexedWithoutCompletionsIsReported) {
  Job job = makeJob(0, 2);
  job.mutable_spec()->set_completion_mode("Indexed");
  auto r = reconcileJob({.job = &job, .now = kNow});
  EXPECT_EQ(r.warning_reason, "InvalidSpec");
  EXPECT_NE(r.warning.find("spec.completions"), std::string::npos);
  EXPECT_TRUE(r.actions.empty());
}

TEST(Job, RestartPolicyAlwaysIsReported) {
  for (const char* policy : {"", "Always"}) {
    Job job = makeJob(1, 1);
    job.mutable_spec()->mutable_template_()->mutable_spec()->set_restart_policy(policy);
    auto r = reconcileJob({.job = &job, .now = kNow});
    EXPECT_EQ(r.warning_reason, "InvalidSpec") << policy;
    EXPECT_NE(r.warning.find("spec.template.spec.restartPolicy"), std::string::npos) << r.warning;
    EXPECT_TRUE(r.actions.empty());
  }
}

TEST(Job, IndexFormatting) {
  EXPECT_EQ(formatIndexes({}), "");
  EXPECT_EQ(formatIndexes({0, 1, 2, 4, 6, 7}), "0-2,4,6-7");
}

}  // namespace
}  // namespace skiff::controllers

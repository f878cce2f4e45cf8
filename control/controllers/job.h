#pragma once

#include <set>
#include <string>
#include <vector>

#include "control/controllers/pod_owner_controller.h"
#include "skiff/api/batch_v1.pb.h"

// The Job reconciler (pkg/controller/job), as a pure function: from a Job and the pods of its
// namespace to the pod creates and deletes and the status write.
//
// - Pods are the ones whose controllerRef is the Job (no adoption of orphans). They carry the
//   labels batch.kubernetes.io/controller-uid, controller-uid, batch.kubernetes.io/job-name and
//   job-name; Indexed Jobs' pods also the batch.kubernetes.io/job-completion-index annotation and
//   label, the JOB_COMPLETION_INDEX variable and hostname <job>-<index>.
// - Active pods follow parallelism (default 1) and completions (NonIndexed: the count still to
//   succeed; unset: until the first success; Indexed: one pod per index not yet succeeded).
// - Failures: Failed pods, plus container restarts of active pods with restartPolicy OnFailure;
//   more than backoffLimit (default 6) fails the Job (BackoffLimitExceeded); running longer than
//   activeDeadlineSeconds too (DeadlineExceeded). Active pods of a finished Job are deleted.
// - A template whose restartPolicy is not Never or OnFailure is reported (InvalidSpec), not run.
// - suspend deletes the active pods (condition Suspended); resuming resets startTime.
// - ttlSecondsAfterFinished deletes the finished Job (background propagation) once it passed.
//
// - backoffLimitPerIndex (Indexed Jobs, Kubernetes 1.29+): each pod carries its index's failures
//   so far (annotation batch.kubernetes.io/job-index-failure-count, and the Ignored ones in
//   job-index-ignored-failure-count); a Failed pod whose count reached the limit, or that matched
//   a FailIndex rule, fails its index (status.failedIndexes, "1,3-5"), which is not run again;
//   other failed indexes get a new pod with the count plus one. More failed indexes than
//   maxFailedIndexes fails the Job (MaxFailedIndexesExceeded) and removes its active pods; once
//   every index succeeded or failed with some failed, the Job fails (FailedIndexes). backoffLimit
//   (unset: no limit, as Kubernetes defaults it) still counts every failure.
//
// Differences from Kubernetes: counts come from the pods that exist (the legacy tracking without
// the batch.kubernetes.io/job-tracking finalizer), kept from going down when finished pods are
// deleted; failed pods are replaced at once (no exponential backoff between retries, per index
// neither); successPolicy is not implemented. FailIndex without backoffLimitPerIndex is refused
// by the apiserver's validation (control/apiserver/job_validation.h); should such a Job reach the
// controller, FailIndex counts like Count.
// - podFailurePolicy: each Failed pod goes through the rules in order (onExitCodes: a terminated
//   container, init containers first, with a non-zero exit code In or NotIn the values, of
//   containerName if set; onPodConditions: a condition of that type and status, default True);
//   the first rule that matches decides: FailJob fails the Job (reason PodFailurePolicy, the
//   message Kubernetes writes), Ignore keeps the pod out of the failed count, Count counts it,
//   FailIndex counts it and fails its index (with backoffLimitPerIndex).

namespace skiff::controllers {

inline constexpr std::string_view kJobControllerUidLabel = "batch.kubernetes.io/controller-uid";
inline constexpr std::string_view kJobNameLabel = "batch.kubernetes.io/job-name";
inline constexpr std::string_view kLegacyControllerUidLabel = "controller-uid";
inline constexpr std::string_view kLegacyJobNameLabel = "job-name";
inline constexpr std::string_view kJobCompletionIndex = "batch.kubernetes.io/job-completion-index";
inline constexpr std::string_view kJobIndexFailureCount =
    "batch.kubernetes.io/job-index-failure-count";
inline constexpr std::string_view kJobIndexIgnoredFailureCount =
    "batch.kubernetes.io/job-index-ignored-failure-count";

struct JobInput {
  const api::batch::v1::Job* job = nullptr;
  std::vector<const api::core::v1::Pod*> pods;  // every cached pod of the job's namespace
  api::Timestamp now;
  bool expectations_satisfied = true;
  int burst_pods = 500;
};

PodOwnerResult reconcileJob(const JobInput& input);

// What spec.podFailurePolicy says about one Failed pod (job.matchPodFailurePolicy).
struct PodFailureVerdict {
  bool counts = true;       // against backoffLimit (false: an Ignore rule matched)
  bool fail_job = false;    // a FailJob rule matched
  bool fail_index = false;  // a FailIndex rule matched (counts too)
  int rule = -1;            // the index of the rule that matched, -1 for none
  std::string message;      // fail_job: "Container c for pod ns/p failed with exit code 42 ..."
};
PodFailureVerdict matchPodFailurePolicy(const api::batch::v1::PodFailurePolicy& policy,
                                        const api::core::v1::Pod& pod);

// The pod a Job creates; `index` < 0 for NonIndexed Jobs.
api::core::v1::Pod jobPodFromTemplate(const api::batch::v1::Job& job, int index);

// The completion index of a pod (annotation, then label); -1 when absent or invalid.
int completionIndexOf(const api::core::v1::Pod& pod);

// status.completedIndexes' form: "1,3-5,7".
std::string formatIndexes(const std::set<int>& indexes);
// Parses that form back (malformed entries are skipped).
std::set<int> parseIndexes(const std::string& text);

}  // namespace skiff::controllers

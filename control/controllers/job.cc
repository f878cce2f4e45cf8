#include "control/controllers/job.h"

#include <algorithm>
#include <cstdint>
#include <map>

#include <google/protobuf/util/message_differencer.h>

#include "control/api/selector.h"
#include "control/controllers/replicaset.h"

namespace skiff::controllers {

using api::Timestamp;
using api::batch::v1::Job;
using api::batch::v1::JobCondition;
using api::batch::v1::JobStatus;
using api::core::v1::Pod;

namespace {

JobCondition* findCondition(JobStatus& status, std::string_view type) {
  for (auto& c : *status.mutable_conditions()) {
    if (c.type() == type) return &c;
  }
  return nullptr;
}

bool conditionTrue(const JobStatus& status, std::string_view type) {
  for (const auto& c : status.conditions()) {
    if (c.type() == type && c.status() == "True") return true;
  }
  return false;
}

// Sets a condition, keeping its transition time when its status stays the same.
void setCondition(JobStatus& status, const std::string& type, const std::string& value,
                  const std::string& reason, const std::string& message, const Timestamp& now) {
  JobCondition* c = findCondition(status, type);
  if (c == nullptr) {
    c = status.add_conditions();
    c->set_type(type);
  }
  if (c->status() != value) setTime(*c->mutable_last_transition_time(), now);
  c->set_status(value);
  c->set_reason(reason);
  c->set_message(message);
  setTime(*c->mutable_last_probe_time(), now);
}

// A non-negative count annotation of `pod` (the job-index failure counts); 0 when absent or
// invalid.
int countAnnotation(const Pod& pod, std::string_view key) {
  const auto& annotations = pod.metadata().annotations();
  auto it = annotations.find(std::string(key));
  if (it == annotations.end()) return 0;
  const std::string& text = it->second;
  if (text.empty() || text.size() > 9 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return 0;
  }
  return std::stoi(text);
}

int restartsOf(const Pod& pod) {
  int n = 0;
  for (const auto& c : pod.status().container_statuses())
    n += c.restart_count();
  for (const auto& c : pod.status().init_container_statuses())
    n += c.restart_count();
  return n;
}

const api::core::v1::ContainerStatus* exitCodeMatch(
    const google::protobuf::RepeatedPtrField<api::core::v1::ContainerStatus>& statuses,
    const api::batch::v1::PodFailurePolicyOnExitCodesRequirement& req) {
  for (const auto& cs : statuses) {
    if (!cs.state().has_terminated()) continue;  // still running: no exit code to match
    if (req.has_container_name() && req.container_name() != cs.name()) continue;
    const int32_t code = cs.state().terminated().exit_code();
    if (code == 0) continue;
    const bool listed =
        std::find(req.values().begin(), req.values().end(), code) != req.values().end();
    if ((req.operator_() == "In" && listed) || (req.operator_() == "NotIn" && !listed)) return &cs;
  }
  return nullptr;
}

}  // namespace

PodFailureVerdict matchPodFailurePolicy(const api::batch::v1::PodFailurePolicy& policy,
                                        const Pod& pod) {
  PodFailureVerdict verdict;
  for (int index = 0; index < policy.rules_size(); ++index) {
    const auto& rule = policy.rules(index);
    std::string matched;
    if (rule.has_on_exit_codes()) {
      const auto* cs = exitCodeMatch(pod.status().init_container_statuses(), rule.on_exit_codes());
      if (cs == nullptr)
        cs = exitCodeMatch(pod.status().container_statuses(), rule.on_exit_codes());
      if (cs == nullptr) continue;
      matched = "Container " + cs->name() + " for pod " + pod.metadata().namespace_() + "/" +
                pod.metadata().name() + " failed with exit code " +
                std::to_string(cs->state().terminated().exit_code());
    } else if (rule.on_pod_conditions_size() > 0) {
      const api::core::v1::PodCondition* hit = nullptr;
      for (const auto& c : pod.status().conditions()) {
        for (const auto& pattern : rule.on_pod_conditions()) {
          const std::string& want = pattern.status().empty() ? "True" : pattern.status();
          if (c.type() == pattern.type() && c.status() == want) hit = &c;
        }
        if (hit != nullptr) break;
      }
      if (hit == nullptr) continue;
      matched = "Pod " + pod.metadata().namespace_() + "/" + pod.metadata().name() +
                " has condition " + hit->type();
    } else {
      continue;
    }
    const std::string& action = rule.action();
    if (action == "Ignore") {
      verdict.counts = false;
    } else if (action == "FailJob") {
      verdict.fail_job = true;
      verdict.message = matched + " matching FailJob rule at index " + std::to_string(index);
    } else if (action == "FailIndex") {
      verdict.fail_index = true;  // counted too; fails the index with backoffLimitPerIndex
    }
    // Count and FailIndex: counted against backoffLimit.
    verdict.rule = index;
    return verdict;
  }
  return verdict;
}

std::set<int> parseIndexes(const std::string& text) {
  std::set<int> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t comma = text.find(',', start);
    std::string part = text.substr(start, comma == std::string::npos ? comma : comma - start);
    start = comma == std::string::npos ? text.size() : comma + 1;
    size_t dash = part.find('-');
    try {
      int lo = std::stoi(part.substr(0, dash));
      int hi = dash == std::string::npos ? lo : std::stoi(part.substr(dash + 1));
      for (int i = lo; i <= hi && i - lo < 1000000; ++i)
        out.insert(i);
    } catch (const std::exception&) {
      // A malformed entry is skipped: the pods recount it.
    }
  }
  return out;
}

int completionIndexOf(const Pod& pod) {
  const auto& m = pod.metadata();
  std::string text;
  auto annotation = m.annotations().find(std::string(kJobCompletionIndex));
  auto label = m.labels().find(std::string(kJobCompletionIndex));
  if (annotation != m.annotations().end()) {
    text = annotation->second;
  } else if (label != m.labels().end()) {
    text = label->second;
  } else {
    return -1;
  }
  if (text.empty() || text.size() > 9 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  return std::stoi(text);
}

std::string formatIndexes(const std::set<int>& indexes) {
  std::string out;
  auto it = indexes.begin();
  while (it != indexes.end()) {
    int lo = *it;
    int hi = lo;
    ++it;
    while (it != indexes.end() && *it == hi + 1) {
      hi = *it;
      ++it;
    }
    if (!out.empty()) out += ",";
    out += std::to_string(lo);
    if (hi != lo) out += "-" + std::to_string(hi);
  }
  return out;
}

Pod jobPodFromTemplate(const Job& job, int index) {
  Pod pod;
  const auto& jm = job.metadata();
  const auto& tmeta = job.spec().template_().metadata();
  auto* m = pod.mutable_metadata();
  *m->mutable_labels() = tmeta.labels();
  *m->mutable_annotations() = tmeta.annotations();
  *m->mutable_finalizers() = tmeta.finalizers();
  auto& labels = *m->mutable_labels();
  labels[std::string(kJobControllerUidLabel)] = jm.uid();
  labels[std::string(kLegacyControllerUidLabel)] = jm.uid();
  labels[std::string(kJobNameLabel)] = jm.name();
  labels[std::string(kLegacyJobNameLabel)] = jm.name();
  m->set_namespace_(jm.namespace_());
  *m->add_owner_references() = makeControllerRef(jm, typeOf<Job>());
  *pod.mutable_spec() = job.spec().template_().spec();
  if (index < 0) {
    m->set_generate_name(jm.name() + "-");
    return pod;
  }
  std::string text = std::to_string(index);
  m->set_generate_name(jm.name() + "-" + text + "-");
  (*m->mutable_annotations())[std::string(kJobCompletionIndex)] = text;
  labels[std::string(kJobCompletionIndex)] = text;
  if (pod.spec().hostname().empty()) pod.mutable_spec()->set_hostname(jm.name() + "-" + text);
  auto addIndexEnv = [&](api::core::v1::Container& c) {
    for (const auto& e : c.env()) {
      if (e.name() == "JOB_COMPLETION_INDEX") return;
    }
    auto* env = c.add_env();
    env->set_name("JOB_COMPLETION_INDEX");
    env->mutable_value_from()->mutable_field_ref()->set_field_path(
        "metadata.annotations['" + std::string(kJobCompletionIndex) + "']");
  };
  for (auto& c : *pod.mutable_spec()->mutable_init_containers())
    addIndexEnv(c);
  for (auto& c : *pod.mutable_spec()->mutable_containers())
    addIndexEnv(c);
  return pod;
}

PodOwnerResult reconcileJob(const JobInput& input) {
  PodOwnerResult result;
  const Job& job = *input.job;
  const auto& meta = job.metadata();
  const auto& spec = job.spec();
  const std::string key = meta.namespace_() + "/" + meta.name();
  const Timestamp& now = input.now;
  const bool indexed = spec.completion_mode() == "Indexed";
  if (indexed && !spec.has_completions()) {
    result.warning_reason = "InvalidSpec";
    result.warning =
        "Job " + key + ": spec.completions: Required value: when completion mode is Indexed";
    return result;
  }
  if (!spec.completion_mode().empty() && spec.completion_mode() != "NonIndexed" && !indexed) {
    result.warning_reason = "InvalidSpec";
    result.warning = "Job " + key + ": spec.completionMode: Unsupported value: \"" +
                     spec.completion_mode() + "\": supported values: \"NonIndexed\", \"Indexed\"";
    return result;
  }
  const std::string& restart_policy = spec.template_().spec().restart_policy();
  if (restart_policy != "Never" && restart_policy != "OnFailure") {
    // Kubernetes' validation: a Job's pods must end (the PodSpec default, Always, never does).
    result.warning_reason = "InvalidSpec";
    result.warning = "Job " + key + ": spec.template.spec.restartPolicy: " +
                     (restart_policy.empty() ? std::string("Required value")
                                             : "Unsupported value: \"" + restart_policy + "\"") +
                     ": supported values: \"OnFailure\", \"Never\"";
    return result;
  }
  if (meta.has_deletion_timestamp()) return result;  // the garbage collector takes the pods
  const int32_t parallelism = spec.has_parallelism() ? std::max(0, spec.parallelism()) : 1;
  // With backoffLimitPerIndex, Kubernetes defaults backoffLimit to no limit.
  const bool per_index = indexed && spec.has_backoff_limit_per_index();
  const int32_t backoff_limit =
      spec.has_backoff_limit() ? spec.backoff_limit() : (per_index ? INT32_MAX : 6);
  const bool on_failure = spec.template_().spec().restart_policy() == "OnFailure";

  std::vector<const Pod*> active;
  int32_t succeeded_pods = 0, failed_pods = 0, restarts = 0;
  std::string policy_failure;  // the first Failed pod a FailJob rule matched
  std::set<int> completed = parseIndexes(job.status().completed_indexes());
  // backoffLimitPerIndex: the indexes that failed for good, and the failure counts a new pod of
  // each index that failed so far carries (its last pod's plus this failure).
  std::set<int> failed_indexes;
  if (per_index) failed_indexes = parseIndexes(job.status().failed_indexes());
  struct IndexFailures {
    int counted = 0;
    int ignored = 0;
  };
  std::map<int, IndexFailures> index_failures;
  for (const Pod* pod : input.pods) {
    const auto* ref = controllerOf(pod->metadata());
    if (ref == nullptr || ref->uid() != meta.uid()) continue;
    const std::string& phase = pod->status().phase();
    if (phase == "Succeeded") {
      ++succeeded_pods;
      int index = completionIndexOf(*pod);
      if (indexed && index >= 0 && index < spec.completions()) completed.insert(index);
    } else if (phase == "Failed") {
      PodFailureVerdict verdict;  // no policy: counts
      if (spec.has_pod_failure_policy()) {
        verdict = matchPodFailurePolicy(spec.pod_failure_policy(), *pod);
      }
      if (verdict.counts) ++failed_pods;
      if (verdict.fail_job && policy_failure.empty()) policy_failure = verdict.message;
      const int index = per_index ? completionIndexOf(*pod) : -1;
      if (index < 0 || index >= spec.completions()) continue;
      // Kubernetes' isIndexFailed and getNewIndexFailureCounts.
      const int counted = countAnnotation(*pod, kJobIndexFailureCount);
      const int ignored = countAnnotation(*pod, kJobIndexIgnoredFailureCount);
      if (verdict.fail_index || (verdict.counts && counted >= spec.backoff_limit_per_index())) {
        failed_indexes.insert(index);
      }
      IndexFailures& next = index_failures[index];
      next.counted = std::max(next.counted, counted + (verdict.counts ? 1 : 0));
      next.ignored = std::max(next.ignored, ignored + (verdict.counts ? 0 : 1));
    } else if (!pod->metadata().has_deletion_timestamp()) {
      active.push_back(pod);
      if (on_failure) restarts += restartsOf(*pod);
    }
  }
  std::stable_sort(active.begin(), active.end(),
                   [](const Pod* a, const Pod* b) { return deletePodBefore(*a, *b); });

  JobStatus status = job.status();
  const int32_t succeeded = indexed ? static_cast<int32_t>(completed.size())
                                    : std::max(status.succeeded(), succeeded_pods);
  const int32_t failed = std::max(status.failed(), failed_pods);
  status.set_succeeded(succeeded);
  status.set_failed(failed);
  if (indexed) status.set_completed_indexes(formatIndexes(completed));
  for (int index : completed)
    failed_indexes.erase(index);  // a later pod of it succeeded
  if (per_index) status.set_failed_indexes(formatIndexes(failed_indexes));

  std::set<const Pod*> deleting;
  auto remove = [&](const Pod* pod) {
    if (!input.expectations_satisfied || deleting.count(pod) != 0) return;
    deleting.insert(pod);
    addPodDelete(result, *pod);
  };
  int creates = 0;

  const bool finished = conditionTrue(status, "Complete") || conditionTrue(status, "Failed");
  if (finished) {
    for (const Pod* pod : active)
      remove(pod);
    if (spec.has_ttl_seconds_after_finished()) {
      Timestamp finished_at = now;
      if (status.has_completion_time()) {
        finished_at = toTimestamp(status.completion_time());
      } else {
        for (const auto& c : status.conditions()) {
          if ((c.type() == "Complete" || c.type() == "Failed") && c.status() == "True") {
            finished_at = toTimestamp(c.last_transition_time());
          }
        }
      }
      Timestamp expires = addSeconds(finished_at, spec.ttl_seconds_after_finished());
      int64_t left = millisBetween(now, expires);
      if (left <= 0) {
        Action a;
        a.verb = Action::Verb::kDelete;
        a.type = &typeOf<Job>();
        a.ns = meta.namespace_();
        a.name = meta.name();
        a.propagation_policy = "Background";
        a.precondition_uid = meta.uid();
        result.actions.push_back(std::move(a));
        return result;
      }
      result.requeueAfter(std::chrono::milliseconds(left));
    }
  } else if (spec.suspend()) {
    for (const Pod* pod : active)
      remove(pod);
    if (!conditionTrue(status, "Suspended")) {
      setCondition(status, "Suspended", "True", "JobSuspended", "Job suspended", now);
      result.event("Normal", "Suspended", "Job suspended");
    }
  } else {
    if (conditionTrue(status, "Suspended")) {
      // Resuming starts the clock of activeDeadlineSeconds again.
      setCondition(status, "Suspended", "False", "JobResumed", "Job resumed", now);
      setTime(*status.mutable_start_time(), now);
      result.event("Normal", "Resumed", "Job resumed");
    }
    if (!status.has_start_time()) setTime(*status.mutable_start_time(), now);

    std::string fail_reason, fail_message;
    if (!policy_failure.empty()) {
      fail_reason = "PodFailurePolicy";
      fail_message = policy_failure;
    } else if (failed + restarts > backoff_limit) {
      fail_reason = "BackoffLimitExceeded";
      fail_message = "Job has reached the specified backoff limit";
    } else if (spec.has_active_deadline_seconds()) {
      Timestamp deadline =
          addSeconds(toTimestamp(status.start_time()), spec.active_deadline_seconds());
      int64_t left = millisBetween(now, deadline);
      if (left <= 0) {
        fail_reason = "DeadlineExceeded";
        fail_message = "Job was active longer than specified deadline";
      } else {
        result.requeueAfter(std::chrono::milliseconds(left));
      }
    }
    if (fail_reason.empty() && !failed_indexes.empty()) {
      const auto failed_count = static_cast<int64_t>(failed_indexes.size());
      if (spec.has_max_failed_indexes() && failed_count > spec.max_failed_indexes()) {
        fail_reason = "MaxFailedIndexesExceeded";
        fail_message = "Job has exceeded the specified maximal number of failed indexes";
      } else if (failed_count + static_cast<int64_t>(completed.size()) >= spec.completions()) {
        fail_reason = "FailedIndexes";
        fail_message = "Job has failed indexes";
      }
    }
    bool complete = false;
    if (fail_reason.empty()) {
      if (indexed || spec.has_completions()) {
        complete = succeeded >= spec.completions();
      } else {
        complete = succeeded > 0 && active.empty();
      }
    }
    if (!fail_reason.empty()) {
      for (const Pod* pod : active)
        remove(pod);
      if (fail_reason == "PodFailurePolicy") {
        // Kubernetes marks the Job FailureTarget first, then Failed once its pods are gone.
        setCondition(status, "FailureTarget", "True", fail_reason, fail_message, now);
      }
      setCondition(status, "Failed", "True", fail_reason, fail_message, now);
      result.event("Warning", fail_reason, fail_message);
      result.requeue_after.reset();
      if (spec.has_ttl_seconds_after_finished()) {
        result.requeueAfter(std::chrono::seconds(spec.ttl_seconds_after_finished()));
      }
    } else if (complete) {
      for (const Pod* pod : active)
        remove(pod);
      setCondition(status, "Complete", "True", "", "", now);
      setTime(*status.mutable_completion_time(), now);
      result.event("Normal", "Completed", "Job completed");
      result.requeue_after.reset();
      if (spec.has_ttl_seconds_after_finished()) {
        result.requeueAfter(std::chrono::seconds(spec.ttl_seconds_after_finished()));
      }
    } else if (input.expectations_satisfied) {
      if (!indexed) {
        int32_t want = parallelism;
        if (spec.has_completions()) {
          want = std::min(parallelism, std::max(0, spec.completions() - succeeded));
        } else if (succeeded > 0) {
          want = static_cast<int32_t>(active.size());  // the rest finish on their own
        }
        int have = static_cast<int>(active.size());
        for (int i = 0; i < have - want; ++i)
          remove(active[i]);
        if (have < want) {
          Pod pod = jobPodFromTemplate(job, -1);
          int n = std::min(want - have, input.burst_pods);
          for (int i = 0; i < n; ++i)
            addPodCreate(result, pod, slowStartBatch(i));
          creates = n;
        }
      } else {
        // One active pod per index still to succeed, within parallelism.
        std::map<int, const Pod*> by_index;
        for (auto it = active.rbegin(); it != active.rend(); ++it) {  // best pods first
          const Pod* pod = *it;
          int index = completionIndexOf(*pod);
          if (index < 0 || index >= spec.completions() || completed.count(index) != 0 ||
              failed_indexes.count(index) != 0 || by_index.count(index) != 0) {
            remove(pod);
            continue;
          }
          by_index[index] = pod;
        }
        int kept = static_cast<int>(by_index.size());
        for (const Pod* pod : active) {  // over parallelism: worst pods go
          if (kept <= parallelism) break;
          if (deleting.count(pod) != 0) continue;
          remove(pod);
          --kept;
        }
        for (int index = 0; index < spec.completions() && kept + creates < parallelism &&
                            creates < input.burst_pods;
             ++index) {
          if (completed.count(index) != 0 || failed_indexes.count(index) != 0 ||
              by_index.count(index) != 0) {
            continue;
          }
          Pod pod = jobPodFromTemplate(job, index);
          if (per_index) {
            // Kubernetes' addIndexFailureCountAnnotation.
            auto& annotations = *pod.mutable_metadata()->mutable_annotations();
            auto it = index_failures.find(index);
            const IndexFailures failures =
                it == index_failures.end() ? IndexFailures{} : it->second;
            annotations[std::string(kJobIndexFailureCount)] = std::to_string(failures.counted);
            if (failures.ignored > 0) {
              annotations[std::string(kJobIndexIgnoredFailureCount)] =
                  std::to_string(failures.ignored);
            }
          }
          addPodCreate(result, pod, slowStartBatch(creates));
          ++creates;
        }
      }
    }
  }

  int32_t ready = 0;
  for (const Pod* pod : active) {
    if (deleting.count(pod) == 0 && isPodReady(*pod)) ++ready;
  }
  if (input.expectations_satisfied) {
    status.set_active(static_cast<int32_t>(active.size() - deleting.size()) + creates);
  } else if (!status.has_active()) {
    // Until the cache has caught up with the last writes, the count written then stands.
    status.set_active(static_cast<int32_t>(active.size()));
  }
  status.set_ready(ready);
  if (!google::protobuf::util::MessageDifferencer::Equals(status, job.status())) {
    auto copy = std::make_shared<Job>(job);
    *copy->mutable_status() = std::move(status);
    addStatusUpdate(result, std::move(copy));
  }
  return result;
}

}  // namespace skiff::controllers

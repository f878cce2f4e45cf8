#include "control/apiserver/job_validation.h"

#include <string>

namespace skiff::apiserver {
namespace {

// Kubernetes' limits (pkg/apis/batch/validation/validation.go).
constexpr int64_t kMaxPodFailurePolicyRules = 20;
constexpr int64_t kMaxFailedIndexesLimit = 100000;
constexpr int64_t kCompletionsSoftLimit = 100000;

void nonNegative(std::vector<FieldCause>& causes, const std::string& field, int64_t value) {
  if (value < 0) {
    causes.push_back(
        {"FieldValueInvalid", field,
         "Invalid value: " + std::to_string(value) + ": must be greater than or equal to 0"});
  }
}

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

}  // namespace

std::vector<FieldCause> jobValidationCauses(const api::batch::v1::Job& job) {
  std::vector<FieldCause> causes;
  const auto& spec = job.spec();
  if (spec.has_parallelism()) nonNegative(causes, "spec.parallelism", spec.parallelism());
  if (spec.has_completions()) nonNegative(causes, "spec.completions", spec.completions());
  if (spec.has_active_deadline_seconds()) {
    nonNegative(causes, "spec.activeDeadlineSeconds", spec.active_deadline_seconds());
  }
  if (spec.has_backoff_limit()) nonNegative(causes, "spec.backoffLimit", spec.backoff_limit());
  if (spec.has_ttl_seconds_after_finished()) {
    nonNegative(causes, "spec.ttlSecondsAfterFinished", spec.ttl_seconds_after_finished());
  }
  if (spec.has_backoff_limit_per_index()) {
    nonNegative(causes, "spec.backoffLimitPerIndex", spec.backoff_limit_per_index());
  }
  if (spec.has_max_failed_indexes()) {
    nonNegative(causes, "spec.maxFailedIndexes", spec.max_failed_indexes());
    if (!spec.has_backoff_limit_per_index()) {
      causes.push_back({"FieldValueRequired", "spec.backoffLimitPerIndex",
                        "Required value: when maxFailedIndexes is specified"});
    }
  }
  const bool indexed = spec.completion_mode() == "Indexed";
  if (indexed && spec.has_completions()) {
    if (spec.has_max_failed_indexes() && spec.max_failed_indexes() > spec.completions()) {
      causes.push_back({"FieldValueInvalid", "spec.maxFailedIndexes",
                        "Invalid value: " + std::to_string(spec.max_failed_indexes()) +
                            ": must be less than or equal to completions"});
    }
    if (spec.has_max_failed_indexes() && spec.max_failed_indexes() > kMaxFailedIndexesLimit) {
      causes.push_back({"FieldValueInvalid", "spec.maxFailedIndexes",
                        "Invalid value: " + std::to_string(spec.max_failed_indexes()) +
                            ": must be less than or equal to " +
                            std::to_string(kMaxFailedIndexesLimit)});
    }
    if (spec.completions() > kCompletionsSoftLimit && spec.has_backoff_limit_per_index() &&
        !spec.has_max_failed_indexes()) {
      causes.push_back({"FieldValueRequired", "spec.maxFailedIndexes",
                        "Required value: must be specified when completions is above " +
                            std::to_string(kCompletionsSoftLimit)});
    }
  }
  if (!indexed) {
    if (spec.has_backoff_limit_per_index()) {
      causes.push_back({"FieldValueInvalid", "spec.backoffLimitPerIndex",
                        "Invalid value: " + std::to_string(spec.backoff_limit_per_index()) +
                            ": requires indexed completion mode"});
    }
    if (spec.has_max_failed_indexes()) {
      causes.push_back({"FieldValueInvalid", "spec.maxFailedIndexes",
                        "Invalid value: " + std::to_string(spec.max_failed_indexes()) +
                            ": requires indexed completion mode"});
    }
  }
  if (spec.has_pod_failure_policy()) {
    const auto& rules = spec.pod_failure_policy().rules();
    if (rules.size() > kMaxPodFailurePolicyRules) {
      causes.push_back({"FieldValueTooMany", "spec.podFailurePolicy.rules",
                        "Too many: " + std::to_string(rules.size()) + ": must have at most " +
                            std::to_string(kMaxPodFailurePolicyRules) + " items"});
    }
    for (int i = 0; i < rules.size(); ++i) {
      const std::string path = "spec.podFailurePolicy.rules[" + std::to_string(i) + "].action";
      const std::string& action = rules[i].action();
      if (action.empty()) {
        causes.push_back(
            {"FieldValueRequired", path,
             R"(Required value: valid values: ["Count" "FailIndex" "FailJob" "Ignore"])"});
      } else if (action == "FailIndex") {
        if (!spec.has_backoff_limit_per_index()) {
          causes.push_back({"FieldValueInvalid", path,
                            "Invalid value: " + quoted(action) +
                                ": requires the backoffLimitPerIndex to be set"});
        }
      } else if (action != "Count" && action != "FailJob" && action != "Ignore") {
        causes.push_back({"FieldValueNotSupported", path,
                          "Unsupported value: " + quoted(action) +
                              R"(: supported values: "Count", "FailIndex", "FailJob", "Ignore")"});
      }
    }
  }
  return causes;
}

void validateJob(const api::batch::v1::Job& job) {
  std::vector<FieldCause> causes = jobValidationCauses(job);
  if (!causes.empty()) throw invalid("Job", "batch", job.metadata().name(), causes);
}

}  // namespace skiff::apiserver

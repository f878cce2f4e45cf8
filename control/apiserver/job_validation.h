#pragma once

#include <vector>

#include "control/apiserver/errors.h"
#include "skiff/api/batch_v1.pb.h"

// Part of Kubernetes' Job validation (pkg/apis/batch/validation ValidateJobSpec and
// validatePodFailurePolicy), with its field paths and messages: the non-negative counts,
// backoffLimitPerIndex and maxFailedIndexes (Indexed Jobs only; maxFailedIndexes needs
// backoffLimitPerIndex and is at most completions and 100,000; above 100,000 completions
// backoffLimitPerIndex needs maxFailedIndexes), and the podFailurePolicy rule actions (FailIndex
// only with backoffLimitPerIndex). The rest of a Job's spec the Job controller reports itself
// (InvalidSpec Events).

namespace skiff::apiserver {

// The problems of `job`, in Kubernetes' order; empty when it is valid.
std::vector<FieldCause> jobValidationCauses(const api::batch::v1::Job& job);

// Throws the 422 Invalid ApiError Kubernetes answers for an invalid Job.
void validateJob(const api::batch::v1::Job& job);

}  // namespace skiff::apiserver

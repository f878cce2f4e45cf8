#pragma once

#include <vector>

#include "control/apiserver/errors.h"
#include "skiff/api/core_v1.pb.h"

// Part of Kubernetes' ValidatePodUpdate (pkg/apis/core/validation): on an update of a pod's main
// resource only the containers' and init containers' images, activeDeadlineSeconds (set, or
// lowered), tolerations (additions only) and terminationGracePeriodSeconds (to 1 when it was
// negative) may change. Status and binding subresources keep their own rules. Kubernetes appends a
// diff of the specs to the message; Skiff does not (yet).

namespace skiff::apiserver {

std::vector<FieldCause> podUpdateCauses(const api::core::v1::Pod& old,
                                        const api::core::v1::Pod& next);

// Throws the 422 Invalid ApiError Kubernetes answers for a forbidden pod update.
void validatePodUpdate(const api::core::v1::Pod& old, const api::core::v1::Pod& next);

}  // namespace skiff::apiserver

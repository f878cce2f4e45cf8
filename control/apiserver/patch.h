#pragma once

#include <google/protobuf/descriptor.h>

#include "control/api/value.h"

namespace skiff::apiserver {

// The three PATCH forms Kubernetes serves, applied to an object's JSON form. Each throws ApiError
// (400, or 422 for a failed JSON-patch `test`) naming what in the patch is wrong.

// RFC 7386 JSON merge patch (application/merge-patch+json).
api::Value applyMergePatch(const api::Value& target, const api::Value& patch);

// RFC 6902 JSON patch (application/json-patch+json): add, remove, replace, move, copy, test.
api::Value applyJsonPatch(const api::Value& target, const api::Value& patch);

// Kubernetes' strategic merge patch (application/strategic-merge-patch+json): a merge patch in
// which lists whose field has patchStrategy "merge" are merged element by element on their
// patchMergeKey, read from the message descriptor's (skiff.api.patch_strategy) and
// (skiff.api.patch_merge_key) options; with the directives kubectl emits: `$patch: delete`,
// `$patch: replace`, `$setElementOrder/<list>`, `$retainKeys` and
// `$deleteFromPrimitiveList/<list>`.
api::Value applyStrategicMergePatch(const api::Value& target, const api::Value& patch,
                                    const google::protobuf::Descriptor* type);

}  // namespace skiff::apiserver

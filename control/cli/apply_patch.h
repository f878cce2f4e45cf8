#pragma once

#include <string>

#include <google/protobuf/descriptor.h>

#include "control/api/value.h"

// Client-side apply as kubectl does it: the last-applied-configuration annotation and the three-way
// strategic merge patch between it, the new manifest and the live object. Pure functions, so that
// `skiff apply` and `kubectl apply` of the same manifest send the same patch.

namespace skiff::cli {

inline constexpr const char* kLastAppliedAnnotation =
    "kubectl.kubernetes.io/last-applied-configuration";

// JSON as Go's encoding/json writes an unstructured object: compact, object keys sorted, `<`, `>`
// and `&` escaped as \u003c, \u003e, \u0026, whole floats without a fraction.
std::string goJson(const api::Value& value);

// kubectl's GetModifiedConfiguration: `manifest` with metadata.annotations set to its annotations
// minus the last-applied one (an empty map when it had none) plus the last-applied annotation,
// whose text is goJson of that object and a newline. This is what `apply` creates, and the
// "modified" side of the patch.
api::Value withLastApplied(const api::Value& manifest);

// The last-applied-configuration of a live object, parsed; null when absent or unreadable.
api::Value lastApplied(const api::Value& live);

// kubectl's strategicpatch.CreateThreeWayMergePatch(original, modified, current) with overwrite:
// additions and changes from current to modified, deletions from original to modified, list
// merges by the patchMergeKey read from `type`'s descriptor options, with `$patch: delete`,
// `$setElementOrder/`, `$deleteFromPrimitiveList/` and `$retainKeys` directives. An empty object
// means nothing to change. `original` may be null (no last-applied configuration).
api::Value threeWayMergePatch(const api::Value& original, const api::Value& modified,
                              const api::Value& current, const google::protobuf::Descriptor* type);

}  // namespace skiff::cli

#pragma once

#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver {

// Kubernetes' DefaultTolerationSeconds admission: a pod gets NoExecute tolerations of the
// node.kubernetes.io/not-ready and node.kubernetes.io/unreachable taints for 300 s, unless it
// tolerates them already, so the node lifecycle controller evicts it 5 minutes after its node
// goes away rather than at once.
void addDefaultTolerationSeconds(api::core::v1::Pod& pod, int64_t seconds = 300);

// What a pods/binding does to the pod besides spec.nodeName, as Kubernetes' binding storage: the
// binding's annotations are copied and the PodScheduled condition set to True.
void markScheduled(api::core::v1::Pod& pod, const api::core::v1::Binding& binding,
                   int64_t now_seconds);

}  // namespace skiff::apiserver

#pragma once

#include <google/protobuf/message.h>

namespace skiff::apiserver {

// Kubernetes' API defaults (the SetDefaults_* functions of pkg/apis/{core,apps,batch,discovery}/v1
// and the +default markers of k8s.io/api), applied to an object as Kubernetes applies them when
// it decodes a request: on create and on every update, filling only what the object leaves
// unset. Kinds without defaults are left alone.
void applyDefaults(google::protobuf::Message& object);

// What Kubernetes' registry strategies do in PrepareForCreate beyond defaulting, once the object
// has its name and uid: a Pod starts in phase Pending with its QoS class (and priority 0 and
// preemptionPolicy PreemptLowerPriority, as Kubernetes' Priority admission gives it); a Job without
// spec.manualSelector gets the selector batch.kubernetes.io/controller-uid=<uid> and the matching
// labels on its pod template (pkg/registry/batch/job/strategy.go generateSelector).
void prepareForCreate(google::protobuf::Message& object);

}  // namespace skiff::apiserver

#pragma once

#include <string>
#include <vector>

#include "control/controllers/history.h"
#include "control/controllers/pod_owner_controller.h"

// The StatefulSet reconciler (pkg/controller/statefulset), as a pure function: from a StatefulSet
// and the pods of its namespace to the next pod creates and deletes and the status write.
//
// - Pods have stable names <set>-<ordinal> (ordinals from spec.ordinals.start), hostname = name,
//   subdomain = spec.serviceName, and the labels statefulset.kubernetes.io/pod-name,
//   apps.kubernetes.io/pod-index and controller-revision-hash (<set>-<template hash>).
// - OrderedReady (default): pod N+1 is created only once pods 0..N are Running and Ready; scale
//   down removes the highest ordinal first, one at a time, only while the others are healthy.
//   Parallel: every missing pod is created and every condemned pod deleted at once.
// - Failed or Succeeded pods are deleted and recreated under the same name.
// - RollingUpdate (default): from the highest ordinal down to spec.updateStrategy.rollingUpdate
//   .partition, one pod at a time, a pod not at updateRevision is deleted once every pod is
//   healthy (it comes back at updateRevision). OnDelete: only pods deleted by hand are replaced.
// - Revisions are ControllerRevisions named <set>-<template hash> (owned by the set; data is
//   {"spec":{"template":...,"$patch":"replace"}}, revision numbers increasing, an old template
//   coming back gets the next number). A pod below the partition (or, without rollingUpdate, below
//   currentReplicas) is recreated from currentRevision's template. Revisions beyond
//   revisionHistoryLimit (default 10) that no pod uses are deleted, oldest first.
// - Status: replicas, readyReplicas, availableReplicas (minReadySeconds), currentReplicas,
//   updatedReplicas, currentRevision (becomes updateRevision once every pod is updated),
//   updateRevision, observedGeneration.
//
// - volumeClaimTemplates: before a pod is created (and for a pod whose claims went missing), each
//   template's claim <template>-<set>-<ordinal> is created when the cache lacks it, with the
//   template's labels and the set's selector matchLabels; the pod's volume of the template's name
//   points at it. Claims are kept when pods go. persistentVolumeClaimRetentionPolicy, through
//   ownerReferences as Kubernetes does: whenDeleted Delete makes the set an owner of its claims
//   (the garbage collector deletes them with the set); whenScaled Delete makes a condemned pod an
//   owner of its claims before it is deleted (they go with it); whenDeleted Retain takes the set's
//   reference off again, and a claim of an ordinal the set keeps (scaled back up) loses its pod's.
//
// Differences from Kubernetes: maxUnavailable for rolling updates is not implemented (one pod at a
// time); hash collisions with a revision the set does not own are reported, not resolved by
// collisionCount.

namespace skiff::controllers {

inline constexpr std::string_view kStatefulSetPodNameLabel = "statefulset.kubernetes.io/pod-name";
inline constexpr std::string_view kPodIndexLabel = "apps.kubernetes.io/pod-index";

struct StatefulSetInput {
  const api::apps::v1::StatefulSet* set = nullptr;
  std::vector<const api::core::v1::Pod*> pods;  // every cached pod of the set's namespace
  // Every cached ControllerRevision of the set's namespace.
  std::vector<const api::apps::v1::ControllerRevision*> revisions;
  // Every cached PersistentVolumeClaim of the set's namespace.
  std::vector<const api::core::v1::PersistentVolumeClaim*> claims;
  api::Timestamp now;
  bool expectations_satisfied = true;
};

PodOwnerResult reconcileStatefulSet(const StatefulSetInput& input);

// "<set>-<hash of the template>".
std::string statefulSetRevision(const api::apps::v1::StatefulSet& set);
// The pod with ordinal `ordinal` from `tmpl` at `revision`.
api::core::v1::Pod statefulPodFor(const api::apps::v1::StatefulSet& set, int ordinal,
                                  const std::string& revision,
                                  const api::core::v1::PodTemplateSpec& tmpl);
// The claim of template `tmpl` for ordinal `ordinal` ("<template>-<set>-<ordinal>").
std::string statefulClaimName(const api::apps::v1::StatefulSet& set,
                              const api::core::v1::PersistentVolumeClaim& tmpl, int ordinal);
api::core::v1::PersistentVolumeClaim statefulClaimFor(
    const api::apps::v1::StatefulSet& set, const api::core::v1::PersistentVolumeClaim& tmpl,
    int ordinal);
// The ControllerRevision of the set's current template, numbered `number`.
api::apps::v1::ControllerRevision revisionFor(const api::apps::v1::StatefulSet& set,
                                              int64_t number);

// The ordinal in "<set>-<ordinal>", or -1 when `pod_name` is not one of the set's names.
int ordinalOf(const std::string& set_name, const std::string& pod_name);

}  // namespace skiff::controllers

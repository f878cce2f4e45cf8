#pragma once

#include <string>
#include <vector>

#include "control/controllers/pod_owner_controller.h"

// The ReplicaSet reconciler (pkg/controller/replicaset), as a pure function: from a ReplicaSet and
// the pods of its namespace (the informer cache) to the writes that bring the pods to
// spec.replicas and the status up to date.
//
// - Claims pods as ControllerRefManager does: adopts orphans its selector matches (adds a
//   controller ownerReference), releases owned pods it no longer matches, ignores pods another
//   controller owns; nothing is adopted while the ReplicaSet is being deleted.
// - Creates missing pods from the template in slow-start batches of 1, 2, 4, ... (at most
//   `burst_replicas` per sync); deletes surplus pods unscheduled first, then pending before
//   unknown before running, unready before ready, ready for less time first, more restarts first,
//   newer first.
// - Does neither while the controller's expectations of its earlier writes are unmet.
// - Status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (Ready for
//   minReadySeconds), observedGeneration, and the ReplicaFailure condition for the last sync's
//   failed writes.

namespace skiff::controllers {

struct ReplicaSetInput {
  const api::apps::v1::ReplicaSet* rs = nullptr;
  std::vector<const api::core::v1::Pod*> pods;  // every cached pod of rs's namespace
  api::Timestamp now;
  bool expectations_satisfied = true;
  int burst_replicas = 500;
  // The last sync's failed create or delete ("" = none): reason FailedCreate / FailedDelete.
  std::string manage_error_reason;
  std::string manage_error;
};

// creates: pods asked for (the shell expects that many adds); deleted_pod_keys: "ns/name" of
// the pods asked to be deleted.
using ReplicaSetResult = PodOwnerResult;

ReplicaSetResult reconcileReplicaSet(const ReplicaSetInput& input);

// The order in which surplus pods go (controller.ActivePods): true when `a` goes before `b`.
bool deletePodBefore(const api::core::v1::Pod& a, const api::core::v1::Pod& b);

// The pod a ReplicaSet creates from its template (controller.GetPodFromTemplate).
api::core::v1::Pod podFromTemplate(const api::apps::v1::ReplicaSet& rs);

}  // namespace skiff::controllers

#pragma once

#include <string>
#include <vector>

#include "control/controllers/controller_utils.h"

// The Deployment reconciler (pkg/controller/deployment), as a pure function: from a Deployment, the
// ReplicaSets and pods of its namespace and the time, to the writes of one sync.
//
// - ReplicaSets are claimed by selector and controller ownerReference like pods by a ReplicaSet;
//   the new one is named <deployment>-<pod-template-hash>, its template and selector carry the
//   pod-template-hash label, and a hash collision bumps status.collisionCount.
// - RollingUpdate scales the new ReplicaSet up within replicas + maxSurge and old ones down while
//   at least replicas - maxUnavailable pods stay available (ints or percentages: surge rounds up,
//   unavailable down, both zero means one unavailable); Recreate scales old ones to zero and waits
//   for their pods to be gone before it scales the new one up.
// - A change of spec.replicas alone (or any change while paused) scales proportionally.
// - Annotations: deployment.kubernetes.io/revision (max of the old ones + 1, also on the
//   Deployment), revision-history on a ReplicaSet that comes back by a rollback,
//   desired-replicas and max-replicas, and the Deployment's own annotations (such as
//   kubernetes.io/change-cause) copied onto the new ReplicaSet.
// - Old ReplicaSets beyond revisionHistoryLimit (default 10) are deleted once scaled to zero.
// - Status: replicas, updatedReplicas, readyReplicas, availableReplicas, unavailableReplicas,
//   observedGeneration, and the conditions `kubectl rollout status` reads: Available
//   (MinimumReplicasAvailable / MinimumReplicasUnavailable) and Progressing (NewReplicaSetCreated,
//   FoundNewReplicaSet, ReplicaSetUpdated, NewReplicaSetAvailable, ProgressDeadlineExceeded,
//   DeploymentPaused, DeploymentResumed).
// Rollback is `kubectl rollout undo`'s client-side copy of an old ReplicaSet's template into the
// Deployment: the reconciler then finds that ReplicaSet as the new one and gives it a new revision.

namespace skiff::controllers {

struct DeploymentInput {
  const api::apps::v1::Deployment* deployment = nullptr;
  std::vector<const api::apps::v1::ReplicaSet*> replica_sets;  // every cached RS of the namespace
  std::vector<const api::core::v1::Pod*> pods;  // the namespace's pods (Recreate waits on them)
  api::Timestamp now;
};

ReconcileResult reconcileDeployment(const DeploymentInput& input);

// deploymentutil.ResolveFenceposts: {maxSurge, maxUnavailable} for `replicas`.
std::pair<int32_t, int32_t> resolveFenceposts(const api::apps::v1::Deployment& d);
int32_t maxUnavailable(const api::apps::v1::Deployment& d);
int32_t maxSurge(const api::apps::v1::Deployment& d);

inline constexpr std::string_view kRevisionAnnotation = "deployment.kubernetes.io/revision";
inline constexpr std::string_view kRevisionHistoryAnnotation =
    "deployment.kubernetes.io/revision-history";
inline constexpr std::string_view kDesiredReplicasAnnotation =
    "deployment.kubernetes.io/desired-replicas";
inline constexpr std::string_view kMaxReplicasAnnotation = "deployment.kubernetes.io/max-replicas";

}  // namespace skiff::controllers

#pragma once

#include <string>
#include <vector>

#include "control/controllers/history.h"
#include "control/controllers/pod_owner_controller.h"

// The DaemonSet reconciler (pkg/controller/daemon), as a pure function: from a DaemonSet, the
// Nodes and the pods of its namespace to one pod per eligible node.
//
// - A node is eligible when the template's nodeSelector and required node affinity match it and
//   its NoSchedule/NoExecute taints are tolerated, counting the tolerations every daemon pod gets
//   (node.kubernetes.io/not-ready and unreachable NoExecute; disk-pressure, memory-pressure,
//   pid-pressure and unschedulable NoSchedule; network-unavailable for hostNetwork pods). A pod
//   already there keeps running while only a NoSchedule taint is not tolerated.
// - Pods are created unbound, with the required node affinity replaced by matchFields
//   metadata.name In [node] (as Kubernetes does since 1.12): the scheduler binds them.
// - Failed pods are deleted (and replaced the next sync); extra pods on a node deleted; pods on
//   nodes that are not eligible any more deleted.
// - Revisions: the template hash in the pods' controller-revision-hash label, and a
//   ControllerRevision <set>-<hash> per template (history.h; revisionHistoryLimit, default 10,
//   of those no pod uses are kept). RollingUpdate deletes old pods so that at most maxUnavailable
//   (default 1, a percentage of desiredNumberScheduled rounded up) nodes are without an available
//   pod. With maxSurge (a number, or a percentage rounded up) the update surges instead: a node
//   with only an old pod gets a new one next to it, on at most maxSurge nodes at once (at once
//   where the old pod is unavailable), and the old pod goes when the new one is available.
//   OnDelete replaces only pods deleted by hand.
// - Status: desired/current/updatedNumberScheduled, numberMisscheduled, numberReady,
//   numberAvailable (minReadySeconds), numberUnavailable, observedGeneration.

namespace skiff::controllers {

inline constexpr std::string_view kControllerRevisionHashLabel = "controller-revision-hash";

struct DaemonSetInput {
  const api::apps::v1::DaemonSet* ds = nullptr;
  std::vector<const api::core::v1::Node*> nodes;
  std::vector<const api::core::v1::Pod*> pods;  // every cached pod of the set's namespace
  // Every cached ControllerRevision of the set's namespace.
  std::vector<const api::apps::v1::ControllerRevision*> revisions;
  api::Timestamp now;
  bool expectations_satisfied = true;
  int burst_pods = 500;
};

PodOwnerResult reconcileDaemonSet(const DaemonSetInput& input);

// The pod the DaemonSet runs on `node_name`, with its tolerations and node affinity.
api::core::v1::Pod daemonPodFor(const api::apps::v1::DaemonSet& ds, const std::string& hash,
                                const std::string& node_name);

// nodeSelector and required node affinity terms (matchExpressions on labels, matchFields on
// metadata.name) against a node.
bool podMatchesNode(const api::core::v1::PodSpec& spec, const api::core::v1::Node& node);
// The node a daemon pod is for: spec.nodeName, else its matchFields metadata.name term.
std::string targetNodeOf(const api::core::v1::Pod& pod);

}  // namespace skiff::controllers

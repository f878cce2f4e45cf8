#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "skiff/api/core_v1.pb.h"

// The seam between the kubelet's pod workers (kubelet/agent/) and what runs a pod: the real syncer
// on runc, images and pod networking (kubelet/pods/runtime_pod_syncer.h) and the hollow one used
// for scale tests (kubelet/agent/hollow_pod_syncer.h). Unit tests mock it.
//
// Threading: the agent calls sync()/terminate() for one pod from one worker at a time, but for
// different pods from different threads at once; knownPodUids()/cleanupOrphan() may run beside
// them for other pods.

namespace skiff::kubelet {

// An Event the agent records against the pod (core/v1 Event, source component "kubelet").
struct PodEvent {
  std::string type;        // "Normal" or "Warning"
  std::string reason;      // Pulling, Pulled, Created, Started, Killing, BackOff, Failed, ...
  std::string message;     // human text, e.g. `Started container web`
  std::string field_path;  // "spec.containers{web}", empty for the pod itself
};

struct PodSyncResult {
  // The status as the kubelet posts it: phase, conditions (PodScheduled is the scheduler's;
  // Initialized, ContainersReady, Ready, PodReadyToStartContainers), hostIP(s), podIP(s),
  // startTime, initContainerStatuses and containerStatuses (state, lastState, ready, started,
  // restartCount, image, imageID, containerID "skiff://<id>"), reason/message on failure.
  api::core::v1::PodStatus status;
  // Sync this pod again after this long at the latest (a back-off expiring, a probe period);
  // empty: only when the pod changes or a container exits.
  std::optional<std::chrono::milliseconds> resync_after;
  std::vector<PodEvent> events;
};

class PodSyncer {
 public:
  virtual ~PodSyncer() = default;

  // Drives the pod one step toward its spec: sandbox (netns, IP, cgroup), images per
  // imagePullPolicy, init containers in order, containers started and restarted per
  // restartPolicy with Kubernetes' back-off, probes. Returns the observed status. A fault of the
  // pod's own (missing image, bad command) goes into the status and events, never an exception.
  virtual PodSyncResult sync(const api::core::v1::Pod& pod) = 0;

  // Stops every container (preStop, SIGTERM, up to `grace`, SIGKILL) and releases the sandbox
  // (network namespace, veth, IP, cgroups, mounts). Idempotent. Returns the final status.
  virtual PodSyncResult terminate(const api::core::v1::Pod& pod,
                                  std::chrono::milliseconds grace) = 0;

  // UIDs of the pods that have local state (running or not): after a restart the agent adopts
  // those still bound to the node and cleans up the others.
  virtual std::vector<std::string> knownPodUids() = 0;

  // Releases everything of a pod known only by its UID (its API object is gone). Idempotent.
  virtual void cleanupOrphan(const std::string& pod_uid) = 0;
};

using PodSyncerPtr = std::unique_ptr<PodSyncer>;

}  // namespace skiff::kubelet

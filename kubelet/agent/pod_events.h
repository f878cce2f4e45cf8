#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "control/client/client.h"
#include "control/client/event_recorder.h"
#include "kubelet/pods/pod_syncer.h"
#include "skiff/api/core_v1.pb.h"

// Records the PodSyncer's PodEvents as core/v1 Events about the pod (source.component "kubelet",
// source.host the node), off the pod worker's thread, through the shared client::EventRecorder:
// best effort (a full queue or a refused create drops the event rather than holding a pod back),
// and a container that keeps failing counts into one Event ("BackOff x12") instead of writing
// one per restart.

namespace skiff::kubelet {

class PodEventRecorder {
 public:
  PodEventRecorder(client::Client& client, std::string node_name, size_t max_queued = 1000);
  PodEventRecorder(const PodEventRecorder&) = delete;
  PodEventRecorder& operator=(const PodEventRecorder&) = delete;

  void record(const api::core::v1::Pod& pod, const PodEvent& event);
  // An Event about this node (involvedObject: kind Node, name and uid the node's name, as the
  // kubelet's nodeRef; namespace default), e.g. the graceful shutdown's "Shutdown".
  void recordNode(const std::string& type, const std::string& reason, const std::string& message);
  // Waits until every queued event was sent (tests, shutdown).
  void flush();
  uint64_t dropped() const;

 private:
  const std::string node_name_;
  client::EventRecorder recorder_;
};

}  // namespace skiff::kubelet

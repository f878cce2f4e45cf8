#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "control/client/client.h"
#include "kubelet/pods/pod_syncer.h"
#include "skiff/api/core_v1.pb.h"

// Records the PodSyncer's PodEvents as core/v1 Events about the pod (source.component "kubelet",
// source.host the node), off the pod worker's thread. Best effort, as client-go's broadcaster: a
// full queue or a refused create drops the event rather than holding a pod back.

namespace skiff::kubelet {

class PodEventRecorder {
 public:
  PodEventRecorder(client::Client& client, std::string node_name, size_t max_queued = 1000);
  ~PodEventRecorder();
  PodEventRecorder(const PodEventRecorder&) = delete;
  PodEventRecorder& operator=(const PodEventRecorder&) = delete;

  void record(const api::core::v1::Pod& pod, const PodEvent& event);
  // Waits until every queued event was sent (tests, shutdown).
  void flush();
  uint64_t dropped() const;

 private:
  void loop();

  client::Client& client_;
  const std::string node_name_;
  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<api::core::v1::Event> queue_;
  bool stopping_ = false;
  int in_flight_ = 0;
  uint64_t dropped_ = 0;
  std::thread thread_;
};

}  // namespace skiff::kubelet

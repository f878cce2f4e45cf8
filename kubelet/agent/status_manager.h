#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "control/client/client.h"
#include "skiff/api/core_v1.pb.h"

// The kubelet's pod status manager (pkg/kubelet/status): merges what a PodSyncer observed into the
// pod's status as the apiserver has it and posts it through the pods/status subresource, only when
// it changed.
//
// Merge rules, as the kubelet's:
// - conditions the kubelet owns (Initialized, ContainersReady, Ready, PodReadyToStartContainers)
//   come from the syncer; others (PodScheduled, DisruptionTarget, readiness gates) are kept, and
//   PodScheduled True is added when nobody set it (the pod is bound here);
// - a condition whose status did not change keeps its lastTransitionTime; startTime is kept;
// - a terminal phase (Succeeded, Failed) is never left for another one.
//
// Threading: any thread; calls for one pod come from that pod's worker, one at a time.

namespace skiff::kubelet {

// `old_status` merged with `observed` by the rules above (pure; for tests).
api::core::v1::PodStatus mergePodStatus(const api::core::v1::PodStatus& old_status,
                                        const api::core::v1::PodStatus& observed);

bool isTerminalPhase(const std::string& phase);

class PodStatusManager {
 public:
  explicit PodStatusManager(client::Client& client) : client_(client) {}

  // Posts `observed` merged into `pod`'s status unless that is what the apiserver already has
  // (as last posted, or as `pod` shows). True when it posted; false when nothing changed or the
  // pod is gone. Throws client::ApiError when the apiserver refused.
  bool setPodStatus(const api::core::v1::Pod& pod, const api::core::v1::PodStatus& observed);
  // The status last posted for the pod with this UID.
  std::optional<api::core::v1::PodStatus> lastPosted(const std::string& uid) const;
  void forget(const std::string& uid);
  uint64_t posts() const;

 private:
  client::Client& client_;
  mutable std::mutex mu_;
  std::map<std::string, api::core::v1::PodStatus> posted_;  // by pod UID
  uint64_t posts_ = 0;
};

}  // namespace skiff::kubelet

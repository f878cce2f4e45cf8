#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "control/api/time.h"
#include "kubelet/pods/pod_syncer.h"

// The hollow PodSyncer for scale tests (kubemark's hollow kubelet): no containers run. A pod
// becomes Running and Ready at its first sync, with an IP from the node's podCIDR (never two pods
// at once on one address) and every container reported running; init containers as completed.
// terminate() reports the containers as having exited 0 (the pod Succeeded, as a deleted pod's
// phase becomes terminal in Kubernetes) and frees the IP. State lives in memory only: a restarted
// hollow agent knows no pods, and adopts its pods by syncing them again.

namespace skiff::kubelet {

// A v4 CIDR's usable pod addresses: network+2 .. broadcast-1 (network+1 is the bridge's).
class HollowIpPool {
 public:
  // Throws std::invalid_argument for anything but "a.b.c.d/n" with 8 <= n <= 30.
  explicit HollowIpPool(const std::string& cidr);
  // Empty when every address is in use.
  std::string take();
  void give(const std::string& ip);
  size_t inUse() const { return used_.size(); }
  const std::string& cidr() const { return cidr_; }

 private:
  std::string cidr_;
  uint32_t first_ = 0;  // host order
  uint32_t count_ = 0;
  uint32_t cursor_ = 0;
  std::set<uint32_t> used_;
};

struct HollowPodSyncerOptions {
  // The node's podCIDR, read when the first pod needs an address (the Node spec's, known once
  // the agent registered).
  std::function<std::string()> pod_cidr;
  std::function<std::string()> host_ip;
};

class HollowPodSyncer final : public PodSyncer {
 public:
  explicit HollowPodSyncer(HollowPodSyncerOptions options);

  PodSyncResult sync(const api::core::v1::Pod& pod) override;
  PodSyncResult terminate(const api::core::v1::Pod& pod, std::chrono::milliseconds grace) override;
  std::vector<std::string> knownPodUids() override;
  void cleanupOrphan(const std::string& pod_uid) override;

  size_t runningPods() const;

 private:
  struct HollowPod {
    std::string ip;
    api::Timestamp started{};
  };

  void releaseLocked(const std::string& uid);

  HollowPodSyncerOptions options_;
  mutable std::mutex mu_;
  std::unique_ptr<HollowIpPool> pool_;
  std::map<std::string, HollowPod> pods_;  // by UID
};

}  // namespace skiff::kubelet

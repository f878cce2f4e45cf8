#pragma once

#include <functional>
#include <mutex>

#include "kubelet/pods/pod_syncer.h"

// A PodSyncer built on first use: the real syncer's pod network needs the node's podCIDR, known
// only once the agent registered the Node, while the Agent takes its PodSyncer when constructed.
// Agent::start() registers before it calls the syncer, so the factory runs after registration.
// The factory's exception (say, runc missing) reaches the caller and the next call tries again.

namespace skiff::kubelet {

class LazyPodSyncer final : public PodSyncer {
 public:
  explicit LazyPodSyncer(std::function<PodSyncerPtr()> factory) : factory_(std::move(factory)) {}

  PodSyncResult sync(const api::core::v1::Pod& pod) override { return get().sync(pod); }
  PodSyncResult terminate(const api::core::v1::Pod& pod, std::chrono::milliseconds grace) override {
    return get().terminate(pod, grace);
  }
  std::vector<std::string> knownPodUids() override { return get().knownPodUids(); }
  void cleanupOrphan(const std::string& pod_uid) override { get().cleanupOrphan(pod_uid); }

 private:
  PodSyncer& get() {
    std::lock_guard lock(mu_);
    if (!syncer_) syncer_ = factory_();
    return *syncer_;
  }

  std::function<PodSyncerPtr()> factory_;
  std::mutex mu_;
  PodSyncerPtr syncer_;
};

}  // namespace skiff::kubelet

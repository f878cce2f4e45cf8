#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "scheduler/framework.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/storage_v1.pb.h"

// kube-scheduler's VolumeBinding plugin, its essential part: a pod's persistentVolumeClaim
// volumes decide where it fits.
// - PreFilter: a claim that does not exist, is being deleted, or is bound to a volume that does
//   not exist makes the pod unschedulable; so does an unbound claim whose class binds Immediately
//   ("pod has unbound immediate PersistentVolumeClaims"), until the binder binds it. An unbound
//   claim of a WaitForFirstConsumer class does not restrict the pod: once it is scheduled, the
//   PersistentVolume controller sets volume.kubernetes.io/selected-node from its node, and the
//   binder or the provisioner answer the claim for that node (Skiff's split; kube-scheduler picks
//   the volumes itself and writes the annotation in PreBind).
// - Filter: every bound volume's required nodeAffinity must admit the node ("node(s) had volume
//   node affinity conflict").
// The lookups read the scheduler's informer caches.

namespace skiff::client {
class SharedInformerFactory;
}  // namespace skiff::client

namespace skiff::scheduler {
class Scheduler;
}  // namespace skiff::scheduler

namespace skiff::scheduler::plugins {

struct VolumeLookups {
  // nullptr when not cached.
  std::function<std::shared_ptr<const api::core::v1::PersistentVolumeClaim>(std::string_view ns,
                                                                            std::string_view name)>
      claim;
  std::function<std::shared_ptr<const api::core::v1::PersistentVolume>(std::string_view name)>
      volume;
  std::function<std::shared_ptr<const api::storage::v1::StorageClass>(std::string_view name)>
      storage_class;
};

class VolumeBinding : public PreFilterPlugin, public FilterPlugin {
 public:
  static constexpr std::string_view kName = "VolumeBinding";
  static constexpr std::string_view kReasonNodeConflict =
      "node(s) had volume node affinity conflict";
  static constexpr std::string_view kReasonUnboundImmediate =
      "pod has unbound immediate PersistentVolumeClaims";

  explicit VolumeBinding(VolumeLookups lookups) : lookups_(std::move(lookups)) {}
  std::string_view name() const override { return kName; }
  Status preFilter(CycleState& state, const PodInfo& pod, const Snapshot& snapshot) override;
  Status filter(const CycleState& state, const PodInfo& pod, const NodeInfo& node) const override;

 private:
  VolumeLookups lookups_;
};

// Whether `node` matches a NodeSelector (any of its terms), as NodeAffinity evaluates terms.
bool matchesNodeSelector(const api::core::v1::NodeSelector& selector, const NodeInfo& node);

// Adds VolumeBinding to the scheduler's framework on the factory's PersistentVolumeClaim,
// PersistentVolume and StorageClass informers, and moves waiting pods back to the active queue
// when a claim gets bound or a volume appears (call before the factory's start()).
void attachVolumeBinding(Scheduler& scheduler, client::SharedInformerFactory& factory);

}  // namespace skiff::scheduler::plugins

#include "scheduler/plugins/volume_binding.h"

#include "control/client/informer.h"
#include "scheduler/scheduler.h"

namespace skiff::scheduler::plugins {
namespace {

using api::core::v1::NodeSelector;
using api::core::v1::PersistentVolume;
using api::core::v1::PersistentVolumeClaim;
using api::storage::v1::StorageClass;

const std::string kStateKey = "PreFilter/VolumeBinding";

// The required nodeAffinity of the pod's bound volumes.
struct VolumeState : StateData {
  std::vector<NodeSelector> affinities;
  std::unique_ptr<StateData> clone() const override { return std::make_unique<VolumeState>(*this); }
};

}  // namespace

Status VolumeBinding::preFilter(CycleState& state, const PodInfo& pod, const Snapshot&) {
  const auto& spec = pod.pod->spec();
  const std::string& ns = pod.pod->metadata().namespace_();
  auto out = std::make_unique<VolumeState>();
  bool any = false;
  for (const auto& v : spec.volumes()) {
    if (!v.has_persistent_volume_claim()) continue;
    any = true;
    const std::string& name = v.persistent_volume_claim().claim_name();
    auto claim = lookups_.claim ? lookups_.claim(ns, name) : nullptr;
    if (claim == nullptr) {
      return Status::unresolvable("persistentvolumeclaim \"" + name + "\" not found");
    }
    if (claim->metadata().has_deletion_timestamp()) {
      return Status::unresolvable("persistentvolumeclaim \"" + name + "\" is being deleted");
    }
    const std::string& volume_name = claim->spec().volume_name();
    if (volume_name.empty()) {
      const std::string& class_name = claim->spec().storage_class_name();
      auto sc = class_name.empty() || !lookups_.storage_class ? nullptr
                                                              : lookups_.storage_class(class_name);
      if (sc == nullptr || sc->volume_binding_mode() != "WaitForFirstConsumer") {
        return Status::unresolvable(std::string(kReasonUnboundImmediate));
      }
      continue;  // bound for the node the pod lands on
    }
    auto volume = lookups_.volume ? lookups_.volume(volume_name) : nullptr;
    if (volume == nullptr) {
      return Status::unresolvable("pvc(s) bound to non-existent pv(s)");
    }
    if (volume->spec().node_affinity().has_required()) {
      out->affinities.push_back(volume->spec().node_affinity().required());
    }
  }
  if (!any) return Status::skip();
  state.write(kStateKey, std::move(out));
  return {};
}

Status VolumeBinding::filter(const CycleState& state, const PodInfo&, const NodeInfo& node) const {
  static const Status kConflict = Status::unresolvable(std::string(kReasonNodeConflict));
  const auto* s = state.read<VolumeState>(kStateKey);
  if (s == nullptr) return {};
  for (const auto& selector : s->affinities) {
    if (!matchesNodeSelector(selector, node)) return kConflict;
  }
  return {};
}

void attachVolumeBinding(Scheduler& scheduler, client::SharedInformerFactory& factory) {
  auto& claims = factory.informerFor<PersistentVolumeClaim>();
  auto& volumes = factory.informerFor<PersistentVolume>();
  auto& classes = factory.informerFor<StorageClass>();
  VolumeLookups lookups;
  lookups.claim = [&claims](std::string_view ns, std::string_view name) {
    return std::static_pointer_cast<const PersistentVolumeClaim>(claims.cache().get(ns, name));
  };
  lookups.volume = [&volumes](std::string_view name) {
    return std::static_pointer_cast<const PersistentVolume>(volumes.cache().get(name));
  };
  lookups.storage_class = [&classes](std::string_view name) {
    return std::static_pointer_cast<const StorageClass>(classes.cache().get(name));
  };
  scheduler.framework().addPlugin(std::make_shared<VolumeBinding>(std::move(lookups)));
  // What may make a waiting pod fit: a claim that appears or gets bound, a volume that appears.
  SchedulingQueue& queue = scheduler.queue();
  claims.addEventHandler({
      .on_add = [&queue](const client::ObjectPtr&) { queue.onEvent(ClusterEvent::kForceActivate); },
      .on_update =
          [&queue](const client::ObjectPtr& a, const client::ObjectPtr& b) {
            const auto& old_claim = client::as<PersistentVolumeClaim>(a);
            const auto& claim = client::as<PersistentVolumeClaim>(b);
            if (old_claim.spec().volume_name() != claim.spec().volume_name())
              queue.onEvent(ClusterEvent::kForceActivate);
          },
      .on_delete = nullptr,
  });
  volumes.addEventHandler({
      .on_add = [&queue](const client::ObjectPtr&) { queue.onEvent(ClusterEvent::kForceActivate); },
      .on_update = nullptr,
      .on_delete = nullptr,
  });
  classes.addEventHandler({
      .on_add = [&queue](const client::ObjectPtr&) { queue.onEvent(ClusterEvent::kForceActivate); },
      .on_update = nullptr,
      .on_delete = nullptr,
  });
}

}  // namespace skiff::scheduler::plugins

#include "control/controllers/persistent_volume_controller.h"

#include "control/client/typed.h"

namespace skiff::controllers {

using api::core::v1::Node;
using api::core::v1::PersistentVolume;
using api::core::v1::PersistentVolumeClaim;
using api::core::v1::Pod;
using api::storage::v1::StorageClass;

PersistentVolumeController::PersistentVolumeController(
    client::Client& client, client::SharedInformer& volumes, client::SharedInformer& claims,
    client::SharedInformer& classes, client::SharedInformer& nodes, client::SharedInformer& pods,
    client::EventRecorder* events)
    : QueueController("persistentvolume-binder"),
      client_(client),
      volumes_(volumes),
      claims_(claims),
      classes_(classes),
      nodes_(nodes),
      pods_(pods),
      events_(events) {
  auto onVolume = [this](const client::ObjectPtr& o) {
    const auto& pv = client::as<PersistentVolume>(o);
    enqueueVolume(pv.metadata().name());
    if (pv.spec().has_claim_ref())
      enqueueClaim(pv.spec().claim_ref().namespace_(), pv.spec().claim_ref().name());
    // A volume that is free (again) may be what a pending claim waits for.
    if (!pv.spec().has_claim_ref()) enqueueUnboundClaims();
  };
  volumes_.addEventHandler({
      .on_add = onVolume,
      .on_update = [onVolume](const client::ObjectPtr&,
                              const client::ObjectPtr& o) { onVolume(o); },
      .on_delete = onVolume,
  });
  auto onClaim = [this](const client::ObjectPtr& o) {
    const auto& pvc = client::as<PersistentVolumeClaim>(o);
    enqueueClaim(pvc.metadata().namespace_(), pvc.metadata().name());
    if (!pvc.spec().volume_name().empty()) enqueueVolume(pvc.spec().volume_name());
  };
  claims_.addEventHandler({
      .on_add = onClaim,
      .on_update = [onClaim](const client::ObjectPtr&, const client::ObjectPtr& o) { onClaim(o); },
      .on_delete =
          [this, onClaim](const client::ObjectPtr& o) {
            onClaim(o);
            // The volumes that pointed at it are Released now.
            const auto& pvc = client::as<PersistentVolumeClaim>(o);
            for (const auto& v : volumes_.cache().list()) {
              const auto& ref = client::as<PersistentVolume>(v).spec().claim_ref();
              if (ref.uid() == pvc.metadata().uid()) {
                enqueueVolume(client::as<PersistentVolume>(v).metadata().name());
              }
            }
          },
  });
  auto onClass = [this](const client::ObjectPtr&) { enqueueUnboundClaims(); };
  classes_.addEventHandler({
      .on_add = onClass,
      .on_update = [onClass](const client::ObjectPtr&, const client::ObjectPtr& o) { onClass(o); },
      .on_delete = nullptr,
  });
  auto onPod = [this](const client::ObjectPtr& o) { enqueuePodClaims(client::as<Pod>(o)); };
  pods_.addEventHandler({
      .on_add = onPod,
      .on_update =
          [this](const client::ObjectPtr& a, const client::ObjectPtr& b) {
            const auto& old_pod = client::as<Pod>(a);
            const auto& pod = client::as<Pod>(b);
            // Scheduled (selected-node) or finished (protection).
            if (old_pod.spec().node_name() != pod.spec().node_name() ||
                isPodTerminal(old_pod) != isPodTerminal(pod)) {
              enqueuePodClaims(pod);
            }
          },
      .on_delete = onPod,
  });
}

PersistentVolumeController::~PersistentVolumeController() {
  stop();
}

void PersistentVolumeController::enqueueClaim(const std::string& ns, const std::string& name) {
  enqueue(std::string(kClaimPrefix) + ns + "/" + name);
}

void PersistentVolumeController::enqueueVolume(const std::string& name) {
  enqueue(std::string(kVolumePrefix) + name);
}

void PersistentVolumeController::enqueueUnboundClaims() {
  for (const auto& o : claims_.cache().list()) {
    const auto& pvc = client::as<PersistentVolumeClaim>(o);
    if (pvc.status().phase() != "Bound")
      enqueueClaim(pvc.metadata().namespace_(), pvc.metadata().name());
  }
}

void PersistentVolumeController::enqueuePodClaims(const Pod& pod) {
  for (const auto& v : pod.spec().volumes()) {
    if (v.has_persistent_volume_claim())
      enqueueClaim(pod.metadata().namespace_(), v.persistent_volume_claim().claim_name());
  }
}

VolumeWorld PersistentVolumeController::world(const std::string& ns) const {
  VolumeWorld w;
  // The lambdas hold the cached objects the world points at (volumes, and whatever they looked
  // up) for as long as the world lives.
  auto keep = std::make_shared<std::vector<client::ObjectPtr>>(volumes_.cache().list());
  for (const auto& v : *keep)
    w.volumes.push_back(&client::as<PersistentVolume>(v));
  auto held = std::make_shared<std::vector<client::ObjectPtr>>();
  w.claim = [this, keep, held](std::string_view cns,
                               std::string_view name) -> const PersistentVolumeClaim* {
    auto o = claims_.cache().get(cns, name);
    if (!o) return nullptr;
    held->push_back(o);
    return &client::as<PersistentVolumeClaim>(o);
  };
  w.storage_class = [this, held](std::string_view name) -> const StorageClass* {
    auto o = classes_.cache().get(name);
    if (!o) return nullptr;
    held->push_back(o);
    return &client::as<StorageClass>(o);
  };
  w.node = [this, held](std::string_view name) -> const Node* {
    auto o = nodes_.cache().get(name);
    if (!o) return nullptr;
    held->push_back(o);
    return &client::as<Node>(o);
  };
  if (!ns.empty()) {
    auto pods = std::make_shared<std::vector<client::ObjectPtr>>(
        pods_.cache().byIndex(client::kIndexNamespace, ns));
    for (const auto& p : *pods)
      w.pods.push_back(&client::as<Pod>(p));
    held->insert(held->end(), pods->begin(), pods->end());
  }
  return w;
}

void PersistentVolumeController::run(const VolumeSyncResult& result, const PersistentVolume* volume,
                                     const PersistentVolumeClaim* claim) {
  ActionRunner runner(client_, nullptr);
  for (const auto& a : result.actions) {
    try {
      runner.run(a);
    } catch (const client::ApiError& e) {
      // A newer version (or the object's deletion) brings the key back through the informer.
      if (e.isConflict() || e.isNotFound()) return;
      throw;
    }
  }
  if (events_ == nullptr) return;
  for (const auto& e : result.events) {
    if (e.about_claim && claim != nullptr) {
      events_->record(typeOf<PersistentVolumeClaim>(), *claim, e.type, e.reason, e.message);
    } else if (!e.about_claim && volume != nullptr) {
      events_->record(typeOf<PersistentVolume>(), *volume, e.type, e.reason, e.message);
    }
  }
}

std::optional<std::chrono::milliseconds> PersistentVolumeController::sync(const std::string& key) {
  if (key.starts_with(kClaimPrefix)) {
    auto [ns, name] = client::splitObjectKey(std::string_view(key).substr(kClaimPrefix.size()));
    auto o = claims_.cache().get(ns, name);
    if (!o) return std::nullopt;
    const auto& claim = client::as<PersistentVolumeClaim>(o);
    VolumeWorld w = world(ns);
    std::vector<Pod> live;
    if (claim.metadata().has_deletion_timestamp()) {
      // pvc-protection asks the apiserver before it lets a claim go: the pod cache may not have
      // the pod that was created a moment ago (Kubernetes' askAPIServer).
      VolumeSyncResult cached = syncClaim(claim, w);
      if (cached.actions.empty()) return std::nullopt;
      live = client::list<Pod>(client_, ns);
      w.pods.clear();
      for (const auto& p : live)
        w.pods.push_back(&p);
    }
    run(syncClaim(claim, w), nullptr, &claim);
    return std::nullopt;
  }
  if (key.starts_with(kVolumePrefix)) {
    auto o = volumes_.cache().get(std::string_view(key).substr(kVolumePrefix.size()));
    if (!o) return std::nullopt;
    const auto& volume = client::as<PersistentVolume>(o);
    VolumeWorld w = world("");
    run(syncVolume(volume, w), &volume, nullptr);
  }
  return std::nullopt;
}

}  // namespace skiff::controllers

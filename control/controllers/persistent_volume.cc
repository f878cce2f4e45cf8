#include "control/controllers/persistent_volume.h"

#include <algorithm>

#include "control/api/selector.h"

namespace skiff::controllers {

using api::core::v1::Node;
using api::core::v1::PersistentVolume;
using api::core::v1::PersistentVolumeClaim;
using api::core::v1::Pod;
using api::storage::v1::StorageClass;

namespace {

bool hasAnnotation(const api::meta::v1::ObjectMeta& meta, std::string_view key) {
  return meta.annotations().contains(std::string(key));
}

bool hasFinalizer(const api::meta::v1::ObjectMeta& meta, std::string_view finalizer) {
  return std::find(meta.finalizers().begin(), meta.finalizers().end(), finalizer) !=
         meta.finalizers().end();
}

void removeFinalizer(api::meta::v1::ObjectMeta& meta, std::string_view finalizer) {
  auto* list = meta.mutable_finalizers();
  for (int i = list->size() - 1; i >= 0; --i) {
    if (list->Get(i) == finalizer) list->DeleteSubrange(i, 1);
  }
}

api::Quantity storageOf(const google::protobuf::Map<std::string, api::runtime::Quantity>& map) {
  auto it = map.find("storage");
  if (it == map.end()) return api::Quantity();
  try {
    return api::Quantity::fromProto(it->second);
  } catch (const api::QuantityError&) {
    return api::Quantity();
  }
}

std::string volumeModeOf(const std::string& mode) {
  return mode.empty() ? "Filesystem" : mode;
}

Action makeAction(Action::Verb verb, std::shared_ptr<google::protobuf::Message> object,
                  const api::ResourceType& type, const api::meta::v1::ObjectMeta& meta) {
  Action a;
  a.verb = verb;
  a.type = &type;
  a.object = std::move(object);
  a.ns = meta.namespace_();
  a.name = meta.name();
  return a;
}

void updateVolume(VolumeSyncResult& r, const PersistentVolume& v) {
  r.actions.push_back(makeAction(Action::Verb::kUpdate, std::make_shared<PersistentVolume>(v),
                                 typeOf<PersistentVolume>(), v.metadata()));
}
void updateVolumeStatus(VolumeSyncResult& r, const PersistentVolume& v) {
  r.actions.push_back(makeAction(Action::Verb::kUpdateStatus, std::make_shared<PersistentVolume>(v),
                                 typeOf<PersistentVolume>(), v.metadata()));
}
void updateClaim(VolumeSyncResult& r, const PersistentVolumeClaim& c) {
  r.actions.push_back(makeAction(Action::Verb::kUpdate, std::make_shared<PersistentVolumeClaim>(c),
                                 typeOf<PersistentVolumeClaim>(), c.metadata()));
}
void updateClaimStatus(VolumeSyncResult& r, const PersistentVolumeClaim& c) {
  r.actions.push_back(makeAction(Action::Verb::kUpdateStatus,
                                 std::make_shared<PersistentVolumeClaim>(c),
                                 typeOf<PersistentVolumeClaim>(), c.metadata()));
}

void setVolumePhase(VolumeSyncResult& r, const PersistentVolume& v, const std::string& phase,
                    const std::string& message = "", const std::string& reason = "") {
  if (v.status().phase() == phase && v.status().message() == message &&
      v.status().reason() == reason) {
    return;
  }
  PersistentVolume copy = v;
  copy.mutable_status()->set_phase(phase);
  if (message.empty()) {
    copy.mutable_status()->clear_message();
  } else {
    copy.mutable_status()->set_message(message);
  }
  if (reason.empty()) {
    copy.mutable_status()->clear_reason();
  } else {
    copy.mutable_status()->set_reason(reason);
  }
  setTime(*copy.mutable_status()->mutable_last_phase_transition_time(), api::now());
  updateVolumeStatus(r, copy);
}

void setClaimPhase(VolumeSyncResult& r, const PersistentVolumeClaim& c, const std::string& phase) {
  if (c.status().phase() == phase) return;
  PersistentVolumeClaim copy = c;
  copy.mutable_status()->set_phase(phase);
  if (phase != "Bound") {
    copy.mutable_status()->clear_capacity();
    copy.mutable_status()->clear_access_modes();
  }
  updateClaimStatus(r, copy);
}

// bind(): every side of the binding that is not there yet. `by_controller`: the controller chose
// the volume (the claim did not name it).
void bind(VolumeSyncResult& r, const PersistentVolume& volume, const PersistentVolumeClaim& claim,
          bool by_controller) {
  const auto& cm = claim.metadata();
  // 1. The volume's claimRef (bindVolumeToClaim).
  const auto& ref = volume.spec().claim_ref();
  const bool ref_done = volume.spec().has_claim_ref() && ref.uid() == cm.uid() &&
                        ref.name() == cm.name() && ref.namespace_() == cm.namespace_();
  if (!ref_done) {
    PersistentVolume copy = volume;
    auto* out = copy.mutable_spec()->mutable_claim_ref();
    const bool was_empty = !volume.spec().has_claim_ref();
    out->Clear();
    out->set_kind("PersistentVolumeClaim");
    out->set_api_version("v1");
    out->set_namespace_(cm.namespace_());
    out->set_name(cm.name());
    out->set_uid(cm.uid());
    out->set_resource_version(cm.resource_version());
    if (was_empty) {
      (*copy.mutable_metadata()->mutable_annotations())[std::string(kAnnBoundByController)] = "yes";
    }
    updateVolume(r, copy);
    // The status write follows with the version the update returned (ActionRunner).
    if (copy.status().phase() != "Bound") {
      copy.mutable_status()->set_phase("Bound");
      copy.mutable_status()->clear_message();
      copy.mutable_status()->clear_reason();
      setTime(*copy.mutable_status()->mutable_last_phase_transition_time(), api::now());
      updateVolumeStatus(r, copy);
    }
  } else {
    setVolumePhase(r, volume, "Bound");
  }
  // 2. The claim (bindClaimToVolume).
  const auto& annotations = cm.annotations();
  auto annotated = [&](std::string_view key) {
    auto it = annotations.find(std::string(key));
    return it != annotations.end() && it->second == "yes";
  };
  const bool set_by_controller = by_controller && !annotated(kAnnBoundByController);
  if (claim.spec().volume_name() != volume.metadata().name() || !annotated(kAnnBindCompleted) ||
      set_by_controller) {
    PersistentVolumeClaim copy = claim;
    copy.mutable_spec()->set_volume_name(volume.metadata().name());
    auto& out = *copy.mutable_metadata()->mutable_annotations();
    out[std::string(kAnnBindCompleted)] = "yes";
    if (set_by_controller) out[std::string(kAnnBoundByController)] = "yes";
    updateClaim(r, copy);
  }
  // 3. The claim's status.
  const auto& status = claim.status();
  bool same_capacity = status.capacity_size() == volume.spec().capacity_size();
  for (const auto& [name, q] : volume.spec().capacity()) {
    auto it = status.capacity().find(name);
    if (it == status.capacity().end() || it->second.string() != q.string()) same_capacity = false;
  }
  const bool status_done =
      status.phase() == "Bound" && same_capacity &&
      std::equal(status.access_modes().begin(), status.access_modes().end(),
                 volume.spec().access_modes().begin(), volume.spec().access_modes().end());
  if (!status_done) {
    PersistentVolumeClaim copy = claim;
    copy.mutable_spec()->set_volume_name(volume.metadata().name());
    auto* s = copy.mutable_status();
    s->set_phase("Bound");
    *s->mutable_access_modes() = volume.spec().access_modes();
    *s->mutable_capacity() = volume.spec().capacity();
    updateClaimStatus(r, copy);
  }
}

}  // namespace

api::Quantity requestedStorage(const PersistentVolumeClaim& claim) {
  return storageOf(claim.spec().resources().requests());
}

api::Quantity volumeCapacity(const PersistentVolume& volume) {
  return storageOf(volume.spec().capacity());
}

bool isDelayBinding(const PersistentVolumeClaim& claim, const StorageClass* storage_class) {
  if (claim.spec().storage_class_name().empty() || storage_class == nullptr) return false;
  return storage_class->volume_binding_mode() == "WaitForFirstConsumer";
}

bool claimRefMatches(const api::core::v1::ObjectReference& ref,
                     const PersistentVolumeClaim& claim) {
  if (ref.name() != claim.metadata().name() || ref.namespace_() != claim.metadata().namespace_())
    return false;
  return ref.uid().empty() || ref.uid() == claim.metadata().uid();
}

std::string volumeMismatch(const PersistentVolume& volume, const PersistentVolumeClaim& claim,
                           const Node* node) {
  if (volume.spec().storage_class_name() != claim.spec().storage_class_name()) {
    return "storageClassName \"" + volume.spec().storage_class_name() + "\" is not the claim's \"" +
           claim.spec().storage_class_name() + "\"";
  }
  if (volumeModeOf(volume.spec().volume_mode()) != volumeModeOf(claim.spec().volume_mode())) {
    return "volumeMode " + volumeModeOf(volume.spec().volume_mode()) + " is not the claim's " +
           volumeModeOf(claim.spec().volume_mode());
  }
  for (const auto& mode : claim.spec().access_modes()) {
    const auto& have = volume.spec().access_modes();
    if (std::find(have.begin(), have.end(), mode) == have.end()) {
      return "access mode " + mode + " is not offered";
    }
  }
  if (volumeCapacity(volume).cmp(requestedStorage(claim)) < 0) {
    return "capacity " + volumeCapacity(volume).toString() + " is less than the requested " +
           requestedStorage(claim).toString();
  }
  if (claim.spec().has_selector()) {
    std::string error;
    auto selector =
        api::labels::Selector::tryFromProto(&claim.spec().selector(), &error, "spec.selector");
    if (!selector) return error;
    if (!selector->matches(volume.metadata().labels())) return "labels do not match the selector";
  }
  if (node != nullptr && volume.spec().has_node_affinity() &&
      volume.spec().node_affinity().has_required() &&
      !nodeMatchesNodeSelector(volume.spec().node_affinity().required(), *node)) {
    return "node affinity does not admit node " + node->metadata().name();
  }
  return "";
}

const PersistentVolume* findMatchingVolume(const PersistentVolumeClaim& claim,
                                           const std::vector<const PersistentVolume*>& volumes,
                                           const Node* node, bool delay_binding) {
  const PersistentVolume* best = nullptr;
  for (const PersistentVolume* v : volumes) {
    if (v->metadata().has_deletion_timestamp()) continue;
    const bool pre_bound =
        v->spec().has_claim_ref() && claimRefMatches(v->spec().claim_ref(), claim);
    if (pre_bound) {
      // A volume pre-bound to the claim wins if it is big enough and of the claim's mode.
      if (volumeModeOf(v->spec().volume_mode()) != volumeModeOf(claim.spec().volume_mode()))
        continue;
      if (volumeCapacity(*v).cmp(requestedStorage(claim)) < 0) continue;
      if (node != nullptr && v->spec().has_node_affinity() &&
          v->spec().node_affinity().has_required() &&
          !nodeMatchesNodeSelector(v->spec().node_affinity().required(), *node)) {
        continue;
      }
      return v;
    }
    if (v->spec().has_claim_ref()) continue;  // someone else's
    if (v->status().phase() != "Available") continue;
    if (node == nullptr && delay_binding) continue;  // bound once a node is chosen
    if (!volumeMismatch(*v, claim, node).empty()) continue;
    if (best == nullptr || volumeCapacity(*v).cmp(volumeCapacity(*best)) < 0 ||
        (volumeCapacity(*v).cmp(volumeCapacity(*best)) == 0 &&
         v->metadata().name() < best->metadata().name())) {
      best = v;
    }
  }
  return best;
}

bool podUsesClaim(const Pod& pod, std::string_view name) {
  if (isPodTerminal(pod)) return false;
  for (const auto& v : pod.spec().volumes()) {
    if (v.has_persistent_volume_claim() && v.persistent_volume_claim().claim_name() == name)
      return true;
  }
  return false;
}

VolumeSyncResult syncClaim(const PersistentVolumeClaim& claim, const VolumeWorld& world) {
  VolumeSyncResult r;
  const auto& meta = claim.metadata();
  if (meta.has_deletion_timestamp()) {
    // pvcprotection: the finalizer goes once no pod uses the claim.
    if (!hasFinalizer(meta, kPvcProtectionFinalizer)) return r;
    for (const Pod* pod : world.pods) {
      if (pod->metadata().namespace_() == meta.namespace_() && podUsesClaim(*pod, meta.name()))
        return r;
    }
    PersistentVolumeClaim copy = claim;
    removeFinalizer(*copy.mutable_metadata(), kPvcProtectionFinalizer);
    updateClaim(r, copy);
    return r;
  }
  auto findVolume = [&](const std::string& name) -> const PersistentVolume* {
    for (const PersistentVolume* v : world.volumes) {
      if (v->metadata().name() == name) return v;
    }
    return nullptr;
  };
  const StorageClass* sc = nullptr;
  if (!claim.spec().storage_class_name().empty() && world.storage_class)
    sc = world.storage_class(claim.spec().storage_class_name());

  if (hasAnnotation(meta, kAnnBindCompleted)) {
    // syncBoundClaim.
    if (claim.spec().volume_name().empty()) {
      if (claim.status().phase() != "Lost") {
        r.event(true, "Warning", "ClaimLost",
                "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!");
      }
      setClaimPhase(r, claim, "Lost");
      return r;
    }
    const PersistentVolume* volume = findVolume(claim.spec().volume_name());
    if (volume == nullptr) {
      if (claim.status().phase() != "Lost") {
        r.event(true, "Warning", "ClaimLost",
                "Bound claim has lost its PersistentVolume. Data on the volume is lost!");
      }
      setClaimPhase(r, claim, "Lost");
      return r;
    }
    if (!volume->spec().has_claim_ref() || volume->spec().claim_ref().uid() == meta.uid()) {
      bind(r, *volume, claim, false);
      return r;
    }
    if (claim.status().phase() != "Lost") {
      r.event(true, "Warning", "ClaimMisbound",
              "Two claims are bound to the same volume, this one is bound incorrectly");
    }
    setClaimPhase(r, claim, "Lost");
    return r;
  }

  // syncUnboundClaim.
  setClaimPhase(r, claim, "Pending");
  if (!claim.spec().volume_name().empty()) {
    const PersistentVolume* volume = findVolume(claim.spec().volume_name());
    if (volume == nullptr) {
      r.event(true, "Normal", "FailedBinding",
              "volume \"" + claim.spec().volume_name() + "\" not found");
      return r;
    }
    if (volume->spec().has_claim_ref() && !claimRefMatches(volume->spec().claim_ref(), claim)) {
      r.event(true, "Warning", "FailedBinding",
              "volume \"" + claim.spec().volume_name() + "\" already bound to a different claim.");
      return r;
    }
    if (std::string why = volumeMismatch(*volume, claim, nullptr);
        !why.empty() && !volume->spec().has_claim_ref()) {
      r.event(true, "Warning", "VolumeMismatch",
              "Cannot bind to requested volume \"" + volume->metadata().name() + "\": " + why);
      return r;
    }
    r.actions.clear();  // bind() writes the status
    bind(r, *volume, claim, false);
    return r;
  }
  const bool delay = isDelayBinding(claim, sc);
  const Node* node = nullptr;
  Node named;  // a node the cache does not hold yet: its name and hostname label
  if (delay) {
    auto it = meta.annotations().find(std::string(kAnnSelectedNode));
    if (it == meta.annotations().end() || it->second.empty()) {
      // The first scheduled pod that mounts the claim chooses its node.
      const Pod* consumer = nullptr;
      for (const Pod* pod : world.pods) {
        if (pod->metadata().namespace_() != meta.namespace_() || pod->spec().node_name().empty() ||
            !podUsesClaim(*pod, meta.name())) {
          continue;
        }
        if (consumer == nullptr || olderThan(pod->metadata(), consumer->metadata())) consumer = pod;
      }
      if (consumer == nullptr) {
        r.event(true, "Normal", "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding");
        return r;
      }
      PersistentVolumeClaim copy = claim;
      (*copy.mutable_metadata()->mutable_annotations())[std::string(kAnnSelectedNode)] =
          consumer->spec().node_name();
      updateClaim(r, copy);
      return r;  // the update brings the claim back
    }
    node = world.node ? world.node(it->second) : nullptr;
    if (node == nullptr) {
      named.mutable_metadata()->set_name(it->second);
      (*named.mutable_metadata()->mutable_labels())["kubernetes.io/hostname"] = it->second;
      node = &named;
    }
  }
  if (const PersistentVolume* match = findMatchingVolume(claim, world.volumes, node, delay)) {
    r.actions.clear();
    bind(r, *match, claim, true);
    return r;
  }
  if (sc != nullptr && !sc->provisioner().empty() && sc->provisioner() != kNoProvisioner) {
    auto it = meta.annotations().find(std::string(kAnnStorageProvisioner));
    if (it == meta.annotations().end() || it->second != sc->provisioner()) {
      PersistentVolumeClaim copy = claim;
      auto& out = *copy.mutable_metadata()->mutable_annotations();
      out[std::string(kAnnStorageProvisioner)] = sc->provisioner();
      out[std::string(kAnnBetaStorageProvisioner)] = sc->provisioner();
      updateClaim(r, copy);
    }
    r.event(true, "Normal", "ExternalProvisioning",
            "Waiting for a volume to be created either by the external provisioner '" +
                sc->provisioner() +
                "' or manually by the system administrator. If volume creation is delayed, "
                "please verify that the provisioner is running and correctly registered.");
    return r;
  }
  if (claim.spec().storage_class_name().empty()) {
    r.event(true, "Normal", "FailedBinding",
            "no persistent volumes available for this claim and no storage class is set");
  } else if (sc == nullptr) {
    r.event(true, "Warning", "ProvisioningFailed",
            "storageclass.storage.k8s.io \"" + claim.spec().storage_class_name() + "\" not found");
  } else {
    r.event(true, "Normal", "FailedBinding",
            "no persistent volumes available for this claim and storage class \"" +
                sc->metadata().name() + "\" has no provisioner");
  }
  return r;
}

VolumeSyncResult syncVolume(const PersistentVolume& volume, const VolumeWorld& world) {
  VolumeSyncResult r;
  const auto& meta = volume.metadata();
  if (meta.has_deletion_timestamp() && hasFinalizer(meta, kPvProtectionFinalizer) &&
      volume.status().phase() != "Bound") {
    // pvprotection: the finalizer goes once the volume is not Bound. A Bound volume being
    // deleted is synced on (to Released once its claim goes).
    PersistentVolume copy = volume;
    removeFinalizer(*copy.mutable_metadata(), kPvProtectionFinalizer);
    updateVolume(r, copy);
    return r;
  }
  if (!volume.spec().has_claim_ref() || volume.spec().claim_ref().uid().empty()) {
    // Unused, or pre-bound by hand to a claim that syncClaim binds.
    if (volume.status().phase() != "Released" && volume.status().phase() != "Failed")
      setVolumePhase(r, volume, "Available");
    return r;
  }
  const auto& ref = volume.spec().claim_ref();
  const PersistentVolumeClaim* claim =
      world.claim ? world.claim(ref.namespace_(), ref.name()) : nullptr;
  if (claim != nullptr && claim->metadata().uid() != ref.uid()) claim = nullptr;
  if (claim == nullptr) {
    // The claim is gone: Released, then the reclaim policy.
    const std::string& policy = volume.spec().persistent_volume_reclaim_policy();
    if (volume.status().phase() == "Failed") return r;
    if (policy == "Delete") {
      auto it = meta.annotations().find(std::string(kAnnProvisionedBy));
      if (it != meta.annotations().end() && !it->second.empty()) {
        setVolumePhase(r, volume, "Released");
        if (volume.status().phase() != "Released") {
          r.event(false, "Normal", "ExternalDeleting",
                  "waiting for a volume to be deleted by the external provisioner '" + it->second +
                      "'");
        }
        return r;
      }
      const std::string message = "error getting deleter volume plugin for volume \"" +
                                  meta.name() + "\": no deletable volume plugin matched";
      if (volume.status().phase() != "Failed")
        r.event(false, "Warning", "VolumeFailedDelete", message);
      setVolumePhase(r, volume, "Failed", message);
      return r;
    }
    if (policy == "Recycle") {
      const std::string message = "No recycler plugin found for the volume!";
      if (volume.status().phase() != "Failed")
        r.event(false, "Warning", "VolumeFailedRecycle", message);
      setVolumePhase(r, volume, "Failed", message);
      return r;
    }
    setVolumePhase(r, volume, "Released");  // Retain: kept for its owner to reclaim by hand
    return r;
  }
  if (claim->spec().volume_name().empty()) return r;  // syncClaim is binding it
  if (claim->spec().volume_name() == meta.name()) {
    setVolumePhase(r, volume, "Bound");
    return r;
  }
  // The claim got another volume.
  if (hasAnnotation(meta, kAnnBoundByController)) {
    PersistentVolume copy = volume;
    copy.mutable_spec()->clear_claim_ref();
    copy.mutable_metadata()->mutable_annotations()->erase(std::string(kAnnBoundByController));
    updateVolume(r, copy);
    copy.mutable_status()->set_phase("Available");
    setTime(*copy.mutable_status()->mutable_last_phase_transition_time(), api::now());
    updateVolumeStatus(r, copy);
  }
  return r;
}

}  // namespace skiff::controllers

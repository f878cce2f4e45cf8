#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "control/api/quantity.h"
#include "control/controllers/controller_utils.h"
#include "skiff/api/storage_v1.pb.h"

// The PersistentVolume controller (pkg/controller/volume/persistentvolume, "the binder") and the
// protection controllers (pkg/controller/volume/pvcprotection, pvprotection), as pure functions
// from one claim or one volume and the cached objects around it to the writes that move them on.
//
// Claims (syncClaim):
// - Being deleted: the kubernetes.io/pvc-protection finalizer is removed once no pod that is not
//   Succeeded or Failed mounts the claim.
// - Unbound, spec.volumeName empty: the best Available volume is bound (findMatchingVolume: a
//   volume pre-bound to this claim by claimRef first, else the smallest that has the claim's
//   class, volumeMode, every access mode, the requested storage and matches spec.selector). A
//   claim of a WaitForFirstConsumer class waits for volume.kubernetes.io/selected-node and then
//   only takes volumes whose nodeAffinity admits that node; Skiff sets that annotation here, from
//   the first scheduled pod that mounts the claim (see README: kube-scheduler does it in its
//   VolumeBinding PreBind). Without a match, a class with a provisioner gets the claim annotated
//   volume.kubernetes.io/storage-provisioner (and the beta key) for it; otherwise FailedBinding.
// - Unbound with spec.volumeName: that volume is bound if it is free or pre-bound to the claim.
// - Binding writes the volume (claimRef with the claim's uid, bound-by-controller when the
//   controller chose it), its status (Bound), the claim (volumeName, bind-completed, and
//   bound-by-controller when the controller chose the volume) and its status (Bound, the volume's
//   capacity and access modes), each only when it differs.
// - Bound (pv.kubernetes.io/bind-completed): Lost when its volume vanished or belongs to another.
// Volumes (syncVolume):
// - Being deleted: the kubernetes.io/pv-protection finalizer is removed once it is not Bound
//   (until then it is synced as below).
// - No claimRef, or a claimRef without uid (pre-bound by hand): Available.
// - The claim of its claimRef is gone (or has another uid): Released, then its reclaim policy:
//   Retain keeps it; Delete deletes it, except that a volume provisioned by an external
//   provisioner (pv.kubernetes.io/provisioned-by) is left to that provisioner; Delete of a static
//   volume and Recycle fail the volume (Failed, an event), as Kubernetes has no plugin for them
//   here.
// - The claim is bound to this volume: Bound. Bound by the controller to a claim that got another
//   volume: unbound (claimRef cleared, Available).

namespace skiff::controllers {

inline constexpr std::string_view kAnnBindCompleted = "pv.kubernetes.io/bind-completed";
inline constexpr std::string_view kAnnBoundByController = "pv.kubernetes.io/bound-by-controller";
inline constexpr std::string_view kAnnProvisionedBy = "pv.kubernetes.io/provisioned-by";
inline constexpr std::string_view kAnnStorageProvisioner =
    "volume.kubernetes.io/storage-provisioner";
inline constexpr std::string_view kAnnBetaStorageProvisioner =
    "volume.beta.kubernetes.io/storage-provisioner";
inline constexpr std::string_view kAnnSelectedNode = "volume.kubernetes.io/selected-node";
inline constexpr std::string_view kPvcProtectionFinalizer = "kubernetes.io/pvc-protection";
inline constexpr std::string_view kPvProtectionFinalizer = "kubernetes.io/pv-protection";
inline constexpr std::string_view kNoProvisioner = "kubernetes.io/no-provisioner";

// What a binder sync returns: writes, and events to record about the claim or the volume.
struct VolumeSyncResult : ReconcileResult {
  struct Event {
    bool about_claim = true;  // else about the volume
    std::string type;         // Normal, Warning
    std::string reason;
    std::string message;
  };
  std::vector<Event> events;
  void event(bool about_claim, std::string type, std::string reason, std::string message) {
    events.push_back({about_claim, std::move(type), std::move(reason), std::move(message)});
  }
};

// The cluster around one claim or volume, read from the caches.
struct VolumeWorld {
  std::vector<const api::core::v1::PersistentVolume*> volumes;
  // Claim by namespace/name, StorageClass by name, Node by name: null when not cached.
  std::function<const api::core::v1::PersistentVolumeClaim*(std::string_view ns,
                                                            std::string_view name)>
      claim;
  std::function<const api::storage::v1::StorageClass*(std::string_view name)> storage_class;
  std::function<const api::core::v1::Node*(std::string_view name)> node;
  // The pods of the claim's namespace (claims) that mount it.
  std::vector<const api::core::v1::Pod*> pods;
};

// The storage request of a claim (spec.resources.requests["storage"], zero when unset).
api::Quantity requestedStorage(const api::core::v1::PersistentVolumeClaim& claim);
// The capacity of a volume (spec.capacity["storage"], zero when unset).
api::Quantity volumeCapacity(const api::core::v1::PersistentVolume& volume);

// Whether the claim's class binds late (its StorageClass says WaitForFirstConsumer).
bool isDelayBinding(const api::core::v1::PersistentVolumeClaim& claim,
                    const api::storage::v1::StorageClass* storage_class);

// Why `volume` cannot serve `claim` ("" when it can): class, volumeMode, access modes, size,
// selector, and with `node` the volume's nodeAffinity. Phase and claimRef are not looked at.
std::string volumeMismatch(const api::core::v1::PersistentVolume& volume,
                           const api::core::v1::PersistentVolumeClaim& claim,
                           const api::core::v1::Node* node);

// The volume findMatchingVolume picks for `claim`, or null. `delay_binding` without `node`
// takes only a volume pre-bound to the claim.
const api::core::v1::PersistentVolume* findMatchingVolume(
    const api::core::v1::PersistentVolumeClaim& claim,
    const std::vector<const api::core::v1::PersistentVolume*>& volumes,
    const api::core::v1::Node* node, bool delay_binding);

// Whether a volume's claimRef points at this claim (namespace and name, and uid when set).
bool claimRefMatches(const api::core::v1::ObjectReference& ref,
                     const api::core::v1::PersistentVolumeClaim& claim);

// Whether a pod that is not finished mounts claim `name` (the pvc-protection rule).
bool podUsesClaim(const api::core::v1::Pod& pod, std::string_view name);

VolumeSyncResult syncClaim(const api::core::v1::PersistentVolumeClaim& claim,
                           const VolumeWorld& world);
VolumeSyncResult syncVolume(const api::core::v1::PersistentVolume& volume,
                            const VolumeWorld& world);

}  // namespace skiff::controllers

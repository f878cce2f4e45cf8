#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "control/controllers/controller.h"
#include "control/controllers/persistent_volume.h"

// Skiff's local-path provisioner, in the shape of k3s's rancher.io/local-path: a dynamic
// provisioner (it answers claims the binder annotated volume.kubernetes.io/storage-provisioner:
// skiff.io/local-path) that makes a PersistentVolume with spec.local.path
// <node's storage dir>/<pv>_<namespace>_<claim> and a required nodeAffinity to the node the claim
// was selected for (volume.kubernetes.io/selected-node, kubernetes.io/hostname). The directory is
// made by the kubelet when it mounts the volume. The node's storage dir is what its agent
// announces in the Node annotation skiff.io/local-storage-dir (`skiff agent --local-storage-dir`,
// default /var/lib/skiff/storage).
//
// Like an external provisioner it names the volume pvc-<claim uid>, pre-binds it (claimRef with
// the claim's uid) and marks it pv.kubernetes.io/provisioned-by; the reclaim policy is the
// class's. A claim of a class with volumeBindingMode Immediate has no node to provision on: it
// gets a ProvisioningFailed event (k3s's local-path refuses it the same way). A Released volume
// of its own with policy Delete is deleted; its finalizer skiff.io/local-path-data holds it until
// the kubelet of its node removed the directory (kubelet/volumes/local_path_cleaner.h; k3s runs a
// helper pod for that). A volume of a node that is gone for good keeps the finalizer until an
// administrator removes it.
//
// On start it creates the StorageClass local-path (WaitForFirstConsumer, reclaim Delete, the
// default class) unless a class of that name exists.

namespace skiff::controllers {

inline constexpr std::string_view kLocalPathProvisionerName = "skiff.io/local-path";
inline constexpr std::string_view kLocalPathClassName = "local-path";
inline constexpr std::string_view kLocalStorageDirAnnotation = "skiff.io/local-storage-dir";
inline constexpr std::string_view kDefaultLocalStorageDir = "/var/lib/skiff/storage";
// On the volumes it makes, until the node's kubelet removed their data after their deletion.
inline constexpr std::string_view kLocalPathDataFinalizer = "skiff.io/local-path-data";

// The StorageClass local-path the server creates.
api::storage::v1::StorageClass localPathStorageClass();

struct Provisioning {
  std::optional<api::core::v1::PersistentVolume> volume;  // the volume to create
  std::string event_type;                                 // else, why not (an event on the claim)
  std::string event_reason;
  std::string event_message;
};

// What to do about `claim`: nothing (an empty result) when it is not this provisioner's to answer
// or is answered already (`existing`: the volume pvc-<uid> is there).
Provisioning provisionLocalPath(const api::core::v1::PersistentVolumeClaim& claim,
                                const api::storage::v1::StorageClass* storage_class,
                                const api::core::v1::Node* node, bool existing);

// Whether the provisioner deletes `volume` (its own, Released, reclaim policy Delete).
bool deletesLocalPathVolume(const api::core::v1::PersistentVolume& volume);

class LocalPathProvisioner : public QueueController {
 public:
  LocalPathProvisioner(client::Client& client, client::SharedInformer& claims,
                       client::SharedInformer& volumes, client::SharedInformer& classes,
                       client::SharedInformer& nodes, client::EventRecorder* events = nullptr,
                       bool create_default_class = true);
  ~LocalPathProvisioner() override;

 protected:
  std::optional<std::chrono::milliseconds> sync(const std::string& key) override;

 private:
  client::Client& client_;
  client::SharedInformer& claims_;
  client::SharedInformer& volumes_;
  client::SharedInformer& classes_;
  client::SharedInformer& nodes_;
  client::EventRecorder* events_;
};

}  // namespace skiff::controllers

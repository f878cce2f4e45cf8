#pragma once

#include "control/controllers/controller.h"
#include "control/controllers/persistent_volume.h"

// The shell of the PersistentVolume binder and the pvc-protection and pv-protection controllers
// (persistent_volume.h): one work queue of "claim:<ns>/<name>" and "volume:<name>" keys, fed by
// the PersistentVolume, PersistentVolumeClaim, StorageClass, Node and Pod informers. A claim is
// looked at again when a volume appears or changes (it may now match), when a pod that mounts it
// comes, is scheduled or goes (selected-node, protection), and when its class changes.

namespace skiff::controllers {

class PersistentVolumeController : public QueueController {
 public:
  // The key prefixes of the queue.
  static constexpr std::string_view kClaimPrefix = "claim:";
  static constexpr std::string_view kVolumePrefix = "volume:";

  PersistentVolumeController(client::Client& client, client::SharedInformer& volumes,
                             client::SharedInformer& claims, client::SharedInformer& classes,
                             client::SharedInformer& nodes, client::SharedInformer& pods,
                             client::EventRecorder* events = nullptr);
  ~PersistentVolumeController() override;

 protected:
  std::optional<std::chrono::milliseconds> sync(const std::string& key) override;

 private:
  void enqueueClaim(const std::string& ns, const std::string& name);
  void enqueueVolume(const std::string& name);
  void enqueueUnboundClaims();
  void enqueuePodClaims(const api::core::v1::Pod& pod);
  VolumeWorld world(const std::string& ns) const;
  // Runs the writes; a 409 leaves the object to the informer's newer version.
  void run(const VolumeSyncResult& result, const api::core::v1::PersistentVolume* volume,
           const api::core::v1::PersistentVolumeClaim* claim);

  client::Client& client_;
  client::SharedInformer& volumes_;
  client::SharedInformer& claims_;
  client::SharedInformer& classes_;
  client::SharedInformer& nodes_;
  client::SharedInformer& pods_;
  client::EventRecorder* events_;
};

}  // namespace skiff::controllers

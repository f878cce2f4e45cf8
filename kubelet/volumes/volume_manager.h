#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "kubelet/runtime/runtime.h"
#include "kubelet/volumes/token_manager.h"
#include "kubelet/volumes/volume_source.h"
#include "skiff/api/core_v1.pb.h"

// A pod's volumes on the node, as Kubernetes' volume plugins lay them out:
//
//   POD_DIR/volumes/<name>/           emptyDir (a tmpfs for medium: Memory), configMap, secret,
//                                     downwardAPI, projected
//   POD_DIR/volumes/<name>/..data     -> ..<generation>/, swapped atomically when content changes;
//   POD_DIR/volumes/<name>/<key>      -> ..data/<key> (Kubernetes' AtomicWriter layout)
//
// hostPath volumes are the host's path itself (checked against `type`). persistentVolumeClaim
// volumes are the path of the PersistentVolume the claim is bound to (hostPath or local; a
// local-path provisioned volume's directory is made here, mode 0777 as k3s makes it, other local
// volumes must exist); until the claim is Bound to a volume that names it back, setUp fails (the
// pod waits in ContainerCreating with a FailedMount event). A claim resolved once is kept until
// tearDown, as a binding does not change under a running pod. Containers get bind
// mounts at their volumeMounts (readOnly, subPath). Secrets, downwardAPI and projected volumes
// live on a tmpfs so they never reach the disk.
//
// A projected volume joins secret, configMap, downwardAPI and serviceAccountToken sources in one
// directory, as Kubernetes' projected plugin: files get their item's mode or the volume's
// defaultMode (0644); a token is requested for the pod's ServiceAccount, bound to the pod, and
// kept fresh by the TokenManager (each setUp rewrites the file once the token was renewed). With
// every container running as one runAsUser, the token file is that user's with mode 0600; with
// an fsGroup, every file gets that group and group read (SetVolumeOwnership of a read-only
// volume), the token 0640.

namespace skiff::kubelet::volumes {

// A volume that cannot be set up, or a volumeMount that cannot be made; the message names the
// volume ("volume \"config\": configmap \"web\" not found").
class VolumeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct VolumeManagerOptions {
  // Secrets and medium: Memory emptyDirs on tmpfs (needs root; tests without it turn this off
  // and get plain directories).
  bool use_tmpfs = true;
  // Unix seconds for the TokenManager's refresh decisions; default: the system clock.
  std::function<int64_t()> now;
};

struct PodVolume {
  std::string host_path;
  bool read_only = false;  // configMap, secret, downwardAPI, projected: always read-only
};

// One file of a projected volume: a relative path, its bytes, mode and owner (-1: as written,
// root's).
struct ProjectedFile {
  std::string content;
  int mode = 0644;
  int64_t uid = -1;
  int64_t gid = -1;
};

class VolumeManager {
 public:
  VolumeManager(VolumeSourceFetcher* fetcher, VolumeManagerOptions options = {})
      : fetcher_(fetcher), options_(options), tokens_(options_.now) {}

  // Makes (or refreshes: configMap, secret, downwardAPI and projected contents, tokens due for
  // renewal) every volume of `pod` under `pod_dir`. Throws VolumeError naming the volume.
  std::map<std::string, PodVolume> setUp(const api::core::v1::Pod& pod, const std::string& pod_dir);
  // Unmounts and removes POD_DIR/volumes, and forgets the tokens of the pod whose uid is
  // POD_DIR's name. Idempotent.
  void tearDown(const std::string& pod_dir);

  // The bind mounts of `container`'s volumeMounts; `field` is its path in errors
  // ("spec.containers[0]"). Creates missing subPath directories.
  static std::vector<MountSpec> containerMounts(const api::core::v1::Container& container,
                                                const std::map<std::string, PodVolume>& volumes,
                                                const std::string& field);

 private:
  std::map<std::string, ProjectedFile> projectedFiles(
      const api::core::v1::Pod& pod, const api::core::v1::ProjectedVolumeSource& source,
      const std::string& what);

  PodVolume claimVolume(const api::core::v1::Pod& pod, const api::core::v1::Volume& volume,
                        const std::string& what);

  VolumeSourceFetcher* fetcher_;
  VolumeManagerOptions options_;
  TokenManager tokens_;
  std::mutex claims_mu_;
  // Pod uid -> volume name -> its resolved claim volume.
  std::map<std::string, std::map<std::string, PodVolume>> claims_;
};

// Writes `files` (relative paths, no "..") into `dir` the way Kubernetes' AtomicWriter does, so a
// reader sees the old set or the new, never a mix. Rewrites nothing when the content is the same.
// Throws VolumeError.
void writeAtomically(const std::string& dir, const std::map<std::string, ProjectedFile>& files);

}  // namespace skiff::kubelet::volumes

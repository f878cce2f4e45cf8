#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kubelet/images/digest.h"
#include "kubelet/images/oci.h"

// Layer tarballs to directories, and directories to container root filesystems.
//
// A layer is unpacked once into its own directory in overlayfs' format: an OCI whiteout
// `.wh.NAME` becomes a 0/0 character device NAME, and an opaque marker `.wh..wh..opq` becomes the
// `trusted.overlay.opaque=y` xattr on its directory. Such directories are overlayfs lower layers
// as they are, and applyLayerDir() replays them onto a plain directory where overlayfs cannot be
// used. Both need root (mknod, trusted xattrs, file owners), which the kubelet has.

namespace skiff::kubelet::images {

struct UnpackResult {
  Digest diff_id;  // sha256 of the uncompressed tar stream
  uint64_t compressed_bytes = 0;
  uint64_t entries = 0;
};

// Unpacks the layer blob at `blob_path` into `dest` (an existing, empty directory). Paths that
// leave the layer (`..`, through symlinks) are refused. Throws std::runtime_error naming the
// entry that could not be written or the reason the tar stream is bad.
UnpackResult unpackLayer(const std::string& blob_path, Compression compression,
                         const std::string& dest);

// Replays an unpacked layer directory onto `target`: whiteouts delete, opaque directories drop
// what lower layers put there, everything else is copied (owner, mode, times, xattrs). Symlinks in
// `target` are never followed.
void applyLayerDir(const std::string& layer_dir, const std::string& target);

enum class RootfsMode {
  kAuto,     // overlayfs, or a copy when the kernel refuses the mount
  kOverlay,  // overlayfs or fail
  kCopy,     // always a private copy of the layers
};

struct MountedRootfs {
  std::string path;  // container_dir/rootfs
  bool overlay = false;
};

// Makes `container_dir`/rootfs from layer directories (bottom first): an overlay mount with
// `container_dir`/upper and /work, or a copy. `container_dir` must exist.
MountedRootfs mountRootfs(const std::vector<std::string>& layers_bottom_first,
                          const std::string& container_dir, RootfsMode mode);
// Unmounts (when mounted) and deletes what mountRootfs() made in `container_dir`. Idempotent.
void unmountRootfs(const std::string& container_dir);

// Removes a directory tree without following symlinks; missing is fine. Throws on failure.
void removeTree(const std::string& path);

}  // namespace skiff::kubelet::images

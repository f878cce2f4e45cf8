#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kubelet/images/digest.h"
#include "kubelet/images/layer.h"
#include "kubelet/images/oci.h"
#include "kubelet/images/reference.h"

// The node's image store: content-addressed blobs, image names, and layers unpacked once per
// diffID and shared by every container.
//
//   ROOT/blobs/sha256/<hex>      manifests, configs and layer blobs, as they came (verified)
//   ROOT/layers/<diffID hex>/    one unpacked layer, in overlayfs' whiteout format
//   ROOT/images.json             name -> manifest digest
//   ROOT/leases/<id>             an image a container uses (kept by garbage collection)
//   ROOT/tmp/                    partial downloads and imports
//
// Several processes may share one root (the kubelet and `skiff image`): changes to images.json
// hold an flock on ROOT/lock. All methods may be called from any thread.

namespace skiff::kubelet::images {

struct ImageRecord {
  std::string name;      // normalized reference, "docker.io/library/busybox:latest"
  Digest manifest;       // the platform manifest this name resolves to
  Digest config;         // the image ID
  int64_t size = 0;      // config + layer blobs, as stored
  std::string imported;  // RFC 3339, when the name was last set
};

struct Image {
  ImageRecord record;
  Manifest manifest;
  ImageConfig config;
};

class ImageStore {
 public:
  explicit ImageStore(std::string root);

  const std::string& root() const { return root_; }

  // --- blobs
  std::string blobPath(const Digest& digest) const;
  bool hasBlob(const Digest& digest) const;
  std::string readBlob(const Digest& digest) const;
  // Stores `data`; when `expected` is given its digest (and size) must match.
  Digest putBlob(std::string_view data, const Descriptor* expected = nullptr);
  // Copies a file in, verifying it against `expected` (digest and size) when given.
  Digest putBlobFile(const std::string& path, const Descriptor* expected = nullptr);
  // A temporary file under ROOT/tmp for a blob being written; commitBlob() moves it in after
  // checking its digest and size, or throws (and deletes it).
  std::string tempPath(std::string_view prefix) const;
  Digest commitBlob(const std::string& temp_path, const Descriptor& expected);

  // --- names
  std::vector<ImageRecord> list() const;
  // By name ("busybox", normalized), by "name@digest", by manifest digest, or by image ID (a
  // unique prefix of the config digest, 12 digits or more). nullopt when not present.
  std::optional<Image> find(std::string_view ref) const;
  // Points `name` at a stored manifest (all its blobs must be present).
  ImageRecord tag(const Reference& name, const Digest& manifest);
  // Drops a name; returns false when no image had it. Content goes at the next garbageCollect().
  bool untag(std::string_view ref);
  // Deletes blobs and unpacked layers no name or lease refers to; returns how many went.
  size_t garbageCollect();

  // --- import
  // Imports an OCI image layout (directory or tar), or a `docker save` tar (plain or gzip).
  // `name` overrides the names the archive carries. Returns the names set. Nothing is named
  // unless every blob is present and verified.
  std::vector<ImageRecord> importPath(const std::string& path, const std::string& name = {});

  // --- layers and root filesystems
  // Unpacks every layer of `image` not yet unpacked (verifying diffIDs) and returns the layer
  // directories, bottom first.
  std::vector<std::string> unpack(const Image& image);
  // Unpacks `image` and makes `container_dir`/rootfs (overlay or copy) for container `id`;
  // leases the image until releaseRootfs().
  MountedRootfs prepareRootfs(const Image& image, const std::string& id,
                              const std::string& container_dir,
                              RootfsMode mode = RootfsMode::kAuto);
  void releaseRootfs(const std::string& id, const std::string& container_dir);

  std::string layerPath(const Digest& diff_id) const { return root_ + "/layers/" + diff_id.hex; }

 private:
  struct Names;
  Names loadNames() const;
  void saveNames(const Names& names) const;
  Image loadImage(const ImageRecord& record) const;
  // Resolves a manifest descriptor (an index is narrowed to this platform), checking every blob
  // it needs is stored. Returns the platform manifest's digest.
  Digest resolveStored(const Descriptor& descriptor) const;

  std::vector<ImageRecord> importLayout(const std::string& dir, const std::string& name);
  std::vector<ImageRecord> importDockerSave(const std::string& dir, const std::string& name);
  // Copies a manifest (or index) and everything it refers to from an OCI layout's blobs.
  Digest copyFromLayout(const std::string& dir, const Descriptor& descriptor);

  std::string root_;
  mutable std::mutex mu_;
};

// imagePullPolicy as Kubernetes applies it: "Always", "IfNotPresent", "Never", or "" (Always
// for :latest or an untagged name, IfNotPresent otherwise).
enum class PullPolicy { kAlways, kIfNotPresent, kNever };
// Throws std::invalid_argument for a value Kubernetes does not know.
PullPolicy parsePullPolicy(std::string_view value, const Reference& image);
enum class PullDecision { kUsePresent, kPull, kNeverPullMissing };
PullDecision decidePull(PullPolicy policy, bool present);

}  // namespace skiff::kubelet::images

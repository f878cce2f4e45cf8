#pragma once

#include <optional>
#include <string>

#include "kubelet/images/image_store.h"
#include "kubelet/images/registry.h"

// What the pod syncer needs of images: look one up, pull one, and make and release a container's
// root filesystem. StoreImageManager implements it on the ImageStore and a RegistryClient; unit
// tests fake it. Every method may be called from any thread at once.

namespace skiff::kubelet::images {

struct ImageInfo {
  std::string name;      // normalized reference, "docker.io/library/busybox:latest"
  std::string image_id;  // the config digest, "sha256:..."
  // imageID as Kubernetes reports it: "docker.io/library/busybox@sha256:<manifest>".
  std::string repo_digest;
  ImageConfig config;
};

class ImageManager {
 public:
  virtual ~ImageManager() = default;

  // The stored image `ref` names (normalized as Docker does), or nullopt. Throws
  // std::invalid_argument when `ref` is not an image reference.
  virtual std::optional<ImageInfo> find(const std::string& ref) = 0;
  // Pulls `ref` from its registry; throws std::runtime_error (PullError) saying what failed.
  virtual ImageInfo pull(const std::string& ref) = 0;
  // Makes `container_dir`/rootfs for container `container_id` and returns its path.
  virtual std::string prepareRootfs(const ImageInfo& image, const std::string& container_id,
                                    const std::string& container_dir) = 0;
  // Undoes prepareRootfs(). Idempotent.
  virtual void releaseRootfs(const std::string& container_id, const std::string& container_dir) = 0;
};

class StoreImageManager final : public ImageManager {
 public:
  explicit StoreImageManager(ImageStore& store, RegistryOptions registry = {})
      : store_(store), registry_(std::move(registry)) {}

  std::optional<ImageInfo> find(const std::string& ref) override;
  ImageInfo pull(const std::string& ref) override;
  std::string prepareRootfs(const ImageInfo& image, const std::string& container_id,
                            const std::string& container_dir) override;
  void releaseRootfs(const std::string& container_id, const std::string& container_dir) override;

 private:
  ImageStore& store_;
  RegistryClient registry_;
};

}  // namespace skiff::kubelet::images

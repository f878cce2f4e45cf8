#include "kubelet/images/image_manager.h"

#include <stdexcept>

namespace skiff::kubelet::images {
namespace {

ImageInfo infoOf(const Image& image) {
  ImageInfo info;
  info.name = image.record.name;
  info.image_id = image.record.config.str();
  std::string name = image.record.name;
  try {
    name = Reference::parse(image.record.name).name();
  } catch (const std::invalid_argument&) {
    // A name the store holds is always a reference; keep it as it is otherwise.
  }
  info.repo_digest = name + "@" + image.record.manifest.str();
  info.config = image.config;
  return info;
}

}  // namespace

std::optional<ImageInfo> StoreImageManager::find(const std::string& ref) {
  const Reference parsed = Reference::parse(ref);
  std::optional<Image> image = store_.find(parsed.str());
  if (!image) return std::nullopt;
  return infoOf(*image);
}

ImageInfo StoreImageManager::pull(const std::string& ref) {
  const Reference parsed = Reference::parse(ref);
  const ImageRecord record = registry_.pull(store_, parsed);
  std::optional<Image> image = store_.find(record.name);
  if (!image) throw std::runtime_error("pulled " + record.name + " but the store lost it");
  return infoOf(*image);
}

std::string StoreImageManager::prepareRootfs(const ImageInfo& image,
                                             const std::string& container_id,
                                             const std::string& container_dir) {
  std::optional<Image> stored = store_.find(image.image_id);
  if (!stored) stored = store_.find(image.name);
  if (!stored) throw std::runtime_error("image " + image.name + " is no longer stored");
  return store_.prepareRootfs(*stored, container_id, container_dir).path;
}

void StoreImageManager::releaseRootfs(const std::string& container_id,
                                      const std::string& container_dir) {
  store_.releaseRootfs(container_id, container_dir);
}

}  // namespace skiff::kubelet::images

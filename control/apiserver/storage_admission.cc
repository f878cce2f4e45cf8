#include "control/apiserver/storage_admission.h"

namespace skiff::apiserver {

bool isDefaultStorageClass(const api::storage::v1::StorageClass& sc) {
  const auto& annotations = sc.metadata().annotations();
  for (const char* key : {kIsDefaultClassAnnotation, kBetaIsDefaultClassAnnotation}) {
    auto it = annotations.find(key);
    if (it != annotations.end() && it->second == "true") return true;
  }
  return false;
}

const api::storage::v1::StorageClass* defaultStorageClass(
    const std::vector<const api::storage::v1::StorageClass*>& classes) {
  const api::storage::v1::StorageClass* best = nullptr;
  for (const auto* sc : classes) {
    if (sc == nullptr || !isDefaultStorageClass(*sc)) continue;
    if (best == nullptr) {
      best = sc;
      continue;
    }
    const auto& a = sc->metadata().creation_timestamp();
    const auto& b = best->metadata().creation_timestamp();
    if (a.seconds() > b.seconds() ||
        (a.seconds() == b.seconds() && sc->metadata().name() < best->metadata().name())) {
      best = sc;
    }
  }
  return best;
}

void admitDefaultStorageClass(api::core::v1::PersistentVolumeClaim& pvc,
                              const std::vector<const api::storage::v1::StorageClass*>& classes) {
  if (pvc.spec().has_storage_class_name()) return;
  if (const auto* sc = defaultStorageClass(classes))
    pvc.mutable_spec()->set_storage_class_name(sc->metadata().name());
}

}  // namespace skiff::apiserver

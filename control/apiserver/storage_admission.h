#pragma once

#include <vector>

#include "skiff/api/core_v1.pb.h"
#include "skiff/api/storage_v1.pb.h"

// Kubernetes' DefaultStorageClass admission plugin (plugin/pkg/admission/storage/
// storageclass/setdefault): a PersistentVolumeClaim created without spec.storageClassName gets the
// default StorageClass, the one annotated storageclass.kubernetes.io/is-default-class=true (or the
// beta annotation); with several, the newest (then the first by name), as Kubernetes 1.28+ picks.
// A claim that names a class, or asks for none with storageClassName "", is left alone; without a
// default class the field stays unset.

namespace skiff::apiserver {

inline constexpr const char* kIsDefaultClassAnnotation =
    "storageclass.kubernetes.io/is-default-class";
inline constexpr const char* kBetaIsDefaultClassAnnotation =
    "storageclass.beta.kubernetes.io/is-default-class";

bool isDefaultStorageClass(const api::storage::v1::StorageClass& sc);

// The default class among `classes`, or null.
const api::storage::v1::StorageClass* defaultStorageClass(
    const std::vector<const api::storage::v1::StorageClass*>& classes);

void admitDefaultStorageClass(api::core::v1::PersistentVolumeClaim& pvc,
                              const std::vector<const api::storage::v1::StorageClass*>& classes);

}  // namespace skiff::apiserver

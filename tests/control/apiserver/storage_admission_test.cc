// DefaultStorageClass admission, the storage kinds' defaults and protection finalizers, and the
// kubectl get tables of PersistentVolumes, claims and StorageClasses.
#include "control/apiserver/storage_admission.h"

#include <gtest/gtest.h>

#include "control/api/codec.h"
#include "control/api/registry.h"
#include "control/apiserver/defaults.h"
#include "control/apiserver/table.h"

namespace skiff::apiserver {
namespace {

using api::core::v1::PersistentVolume;
using api::core::v1::PersistentVolumeClaim;
using api::storage::v1::StorageClass;

StorageClass storageClass(const std::string& name, bool is_default, int64_t created) {
  StorageClass sc;
  sc.mutable_metadata()->set_name(name);
  sc.mutable_metadata()->mutable_creation_timestamp()->set_seconds(created);
  if (is_default)
    (*sc.mutable_metadata()->mutable_annotations())[kIsDefaultClassAnnotation] = "true";
  return sc;
}

TEST(DefaultStorageClass, NewestDefaultClassForClaimsWithoutOne) {
  StorageClass old_default = storageClass("old", true, 100);
  StorageClass new_default = storageClass("new", true, 200);
  StorageClass plain = storageClass("plain", false, 300);
  PersistentVolumeClaim pvc;
  admitDefaultStorageClass(pvc, {&old_default, &plain});
  EXPECT_EQ(pvc.spec().storage_class_name(), "old");
  pvc.Clear();
  admitDefaultStorageClass(pvc, {&old_default, &new_default, &plain});
  EXPECT_EQ(pvc.spec().storage_class_name(), "new");
  // The beta annotation counts too; "false" does not.
  StorageClass beta = storageClass("beta", false, 400);
  (*beta.mutable_metadata()->mutable_annotations())[kBetaIsDefaultClassAnnotation] = "true";
  StorageClass off = storageClass("off", false, 500);
  (*off.mutable_metadata()->mutable_annotations())[kIsDefaultClassAnnotation] = "false";
  pvc.Clear();
  admitDefaultStorageClass(pvc, {&new_default, &beta, &off});
  EXPECT_EQ(pvc.spec().storage_class_name(), "beta");
  // A claim that names a class, or asks for none with "", is left alone.
  pvc.Clear();
  pvc.mutable_spec()->set_storage_class_name("");
  admitDefaultStorageClass(pvc, {&new_default});
  EXPECT_TRUE(pvc.spec().has_storage_class_name());
  EXPECT_EQ(pvc.spec().storage_class_name(), "");
  pvc.mutable_spec()->set_storage_class_name("gold");
  admitDefaultStorageClass(pvc, {&new_default});
  EXPECT_EQ(pvc.spec().storage_class_name(), "gold");
  // No default class: the field stays unset.
  pvc.Clear();
  admitDefaultStorageClass(pvc, {&plain});
  EXPECT_FALSE(pvc.spec().has_storage_class_name());
}

TEST(StorageDefaults, VolumesClassesAndTheirFinalizers) {
  PersistentVolume pv;
  applyDefaults(pv);
  EXPECT_EQ(pv.spec().persistent_volume_reclaim_policy(), "Retain");
  EXPECT_EQ(pv.spec().volume_mode(), "Filesystem");
  prepareForCreate(pv);
  EXPECT_EQ(pv.status().phase(), "Pending");
  ASSERT_EQ(pv.metadata().finalizers_size(), 1);
  EXPECT_EQ(pv.metadata().finalizers(0), "kubernetes.io/pv-protection");
  prepareForCreate(pv);  // not twice
  EXPECT_EQ(pv.metadata().finalizers_size(), 1);
  StorageClass sc;
  applyDefaults(sc);
  EXPECT_EQ(sc.reclaim_policy(), "Delete");
  EXPECT_EQ(sc.volume_binding_mode(), "Immediate");
  PersistentVolumeClaim pvc;
  prepareForCreate(pvc);
  ASSERT_EQ(pvc.metadata().finalizers_size(), 1);
  EXPECT_EQ(pvc.metadata().finalizers(0), "kubernetes.io/pvc-protection");
}

std::vector<std::string> row(const google::protobuf::Message& object, const char* api_version,
                             const char* kind, std::vector<std::string>* names = nullptr) {
  const auto* type = api::Registry::builtin().byKind(api_version, kind);
  EXPECT_NE(type, nullptr) << kind;
  api::Value table = makeTable(*type, {&object}, TableObjects::kNone, "", "", 1795168800 + 60);
  if (names != nullptr) {
    for (const auto& c : table.find("columnDefinitions")->items())
      names->push_back(c.find("name")->text());
  }
  std::vector<std::string> out;
  for (const auto& cell : table.find("rows")->items()[0].find("cells")->items())
    out.push_back(cell.text());
  return out;
}

TEST(StorageTables, AsKubectlPrintsThem) {
  PersistentVolume pv;
  api::decodeYaml(R"(
metadata: {name: pv-1, creationTimestamp: "2026-11-20T10:00:00Z"}
spec:
  capacity: {storage: 5Gi}
  accessModes: [ReadWriteMany, ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  storageClassName: local-path
  claimRef: {namespace: default, name: data}
  volumeMode: Filesystem
status: {phase: Bound}
)",
                  pv);
  std::vector<std::string> names;
  EXPECT_EQ(row(pv, "v1", "PersistentVolume", &names),
            (std::vector<std::string>{"pv-1", "5Gi", "RWO,RWX", "Delete", "Bound", "default/data",
                                      "local-path", "<unset>", "", "60s", "Filesystem"}));
  EXPECT_EQ(names, (std::vector<std::string>{
                       "Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim",
                       "StorageClass", "VolumeAttributesClass", "Reason", "Age", "VolumeMode"}));
  PersistentVolumeClaim pvc;
  api::decodeYaml(R"(
metadata: {name: data, namespace: default, creationTimestamp: "2026-11-20T10:00:00Z"}
spec: {volumeName: pv-1, storageClassName: local-path, volumeMode: Filesystem}
status: {phase: Bound, capacity: {storage: 5Gi}, accessModes: [ReadWriteOnce]}
)",
                  pvc);
  EXPECT_EQ(row(pvc, "v1", "PersistentVolumeClaim"),
            (std::vector<std::string>{"data", "Bound", "pv-1", "5Gi", "RWO", "local-path",
                                      "<unset>", "60s", "Filesystem"}));
  StorageClass sc;
  api::decodeYaml(R"(
metadata:
  name: local-path
  creationTimestamp: "2026-11-20T10:00:00Z"
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: skiff.io/local-path
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
)",
                  sc);
  EXPECT_EQ(row(sc, "storage.k8s.io/v1", "StorageClass"),
            (std::vector<std::string>{"local-path (default)", "skiff.io/local-path", "Delete",
                                      "WaitForFirstConsumer", "false", "60s"}));
  // The short names kubectl uses.
  EXPECT_EQ(api::Registry::builtin().resolve("pv")->kind, "PersistentVolume");
  EXPECT_EQ(api::Registry::builtin().resolve("pvc")->kind, "PersistentVolumeClaim");
  EXPECT_EQ(api::Registry::builtin().resolve("sc")->kind, "StorageClass");
}

}  // namespace
}  // namespace skiff::apiserver

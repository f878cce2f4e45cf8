// The kubelet's half of local-path Delete: against a real in-process apiserver, only the data of
// this node's local-path volumes that are being deleted goes, then their finalizer.
#include "kubelet/volumes/local_path_cleaner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "control/api/codec.h"
#include "control/client/typed.h"
#include "tests/control/client/test_server.h"

namespace skiff::kubelet::volumes {
namespace {

namespace fs = std::filesystem;
using api::core::v1::PersistentVolume;

class LocalPathCleanerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client_ = server_.client();
    dir_ = fs::temp_directory_path() / ("skiff-local-path-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A provisioned volume of `node` with data on disk; `deleted`: its deletion was asked for.
  std::string volume(const std::string& name, const std::string& node, bool deleted) {
    const std::string path = (dir_ / (name + "_default_data")).string();
    fs::create_directories(path);
    std::ofstream(path + "/file") << "data";
    PersistentVolume pv;
    api::decodeYaml(R"(
metadata:
  name: )" + name + R"(
  finalizers: [skiff.io/local-path-data]
  annotations: {pv.kubernetes.io/provisioned-by: skiff.io/local-path,
                local.path.provisioner/selected-node: )" +
                        node + R"(}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  local: {path: )" + path +
                        R"(}
)",
                    pv);
    client::create(*client_, pv);
    if (deleted) client::remove<PersistentVolume>(*client_, "", name);
    return path;
  }

  std::vector<std::string> finalizers(const std::string& name) {
    auto pv = client::get<PersistentVolume>(*client_, "", name);
    return {pv.metadata().finalizers().begin(), pv.metadata().finalizers().end()};
  }

  client::testing::TestApiServer server_{client::testing::ServerMode::kPlain};
  client::ClientPtr client_;
  fs::path dir_;
};

TEST_F(LocalPathCleanerTest, RemovesOnlyTheDataOfThisNodesDeletedVolumes) {
  const std::string gone = volume("pvc-gone", "node-1", true);
  const std::string kept = volume("pvc-kept", "node-1", false);
  const std::string other = volume("pvc-other", "node-2", true);
  const std::string unknown = (dir_ / "pvc-unknown_default_x").string();  // no such volume
  fs::create_directories(unknown);
  fs::create_directories(dir_ / "not-a-volume");
  LocalPathCleaner cleaner(*client_, "node-1", dir_.string());
  EXPECT_EQ(cleaner.cleanOnce(), 1);
  EXPECT_FALSE(fs::exists(gone));
  // Its finalizer went; the apiserver's pv-protection (no controller here) still holds it.
  EXPECT_EQ(finalizers("pvc-gone"), std::vector<std::string>{"kubernetes.io/pv-protection"});
  EXPECT_TRUE(fs::exists(kept + "/file"));
  EXPECT_TRUE(fs::exists(other + "/file"));
  EXPECT_TRUE(fs::exists(unknown));
  EXPECT_TRUE(fs::exists(dir_ / "not-a-volume"));
  EXPECT_EQ(cleaner.cleanOnce(), 0);
}

}  // namespace
}  // namespace skiff::kubelet::volumes

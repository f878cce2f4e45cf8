// VolumeManager on plain directories (tmpfs off, so it runs unprivileged): emptyDir, hostPath
// types, configMap and secret projections with items and modes, atomic updates, optional and
// missing sources, and the bind mounts of volumeMounts with readOnly and subPath.

#include "kubelet/volumes/volume_manager.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "control/api/codec.h"

namespace skiff::kubelet::volumes {
namespace {
namespace fs = std::filesystem;
namespace core = api::core::v1;

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int modeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<int>(st.st_mode & 07777);
}

class Sources final : public VolumeSourceFetcher {
 public:
  std::optional<core::ConfigMap> getConfigMap(const std::string& ns,
                                              const std::string& name) override {
    if (unreachable) throw std::runtime_error("connection refused");
    auto it = config_maps.find(ns + "/" + name);
    if (it == config_maps.end()) return std::nullopt;
    return it->second;
  }
  std::optional<core::Secret> getSecret(const std::string& ns, const std::string& name) override {
    auto it = secrets.find(ns + "/" + name);
    if (it == secrets.end()) return std::nullopt;
    return it->second;
  }
  std::map<std::string, core::ConfigMap> config_maps;
  std::map<std::string, core::Secret> secrets;
  bool unreachable = false;
};

class VolumeManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-volumes-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    pod_dir_ = dir_ + "/pod";
    core::ConfigMap cm;
    (*cm.mutable_data())["app.conf"] = "port=8080\n";
    (*cm.mutable_data())["level"] = "debug";
    sources_.config_maps["default/web"] = cm;
    core::Secret secret;
    (*secret.mutable_data())["password"] = std::string("s3cr\0t", 6);
    sources_.secrets["default/db"] = secret;
  }
  void TearDown() override { fs::remove_all(dir_); }

  core::Pod pod(const std::string& volumes_yaml) {
    core::Pod p;
    api::decodeYaml("metadata: {name: web, namespace: default, uid: u1}\nspec:\n  volumes:\n" +
                        volumes_yaml + "  containers: [{name: c, image: busybox}]\n",
                    p);
    return p;
  }

  std::string dir_, pod_dir_;
  Sources sources_;
  VolumeManager manager_{&sources_, {.use_tmpfs = false}};
};

TEST_F(VolumeManagerTest, EmptyDirConfigMapSecretAndHostPath) {
  fs::create_directories(dir_ + "/host");
  const auto volumes = manager_.setUp(pod(R"(  - {name: scratch, emptyDir: {}}
  - {name: config, configMap: {name: web}}
  - {name: some, configMap: {name: web, items: [{key: level, path: sub/level.txt, mode: 0600}], defaultMode: 0444}}
  - {name: creds, secret: {secretName: db, defaultMode: 0400}}
  - {name: host, hostPath: {path: )" + dir_ +
                                          R"(/host, type: Directory}}
  - {name: made, hostPath: {path: )" + dir_ +
                                          R"(/made/here, type: DirectoryOrCreate}}
)"),
                                      pod_dir_);
  ASSERT_EQ(volumes.size(), 6u);
  EXPECT_EQ(volumes.at("scratch").host_path, pod_dir_ + "/volumes/scratch");
  EXPECT_EQ(modeOf(pod_dir_ + "/volumes/scratch"), 0777);
  EXPECT_FALSE(volumes.at("scratch").read_only);
  EXPECT_TRUE(volumes.at("config").read_only);
  EXPECT_EQ(readFile(pod_dir_ + "/volumes/config/app.conf"), "port=8080\n");
  EXPECT_EQ(readFile(pod_dir_ + "/volumes/config/level"), "debug");
  EXPECT_EQ(modeOf(pod_dir_ + "/volumes/config/level"), 0644);
  EXPECT_TRUE(fs::is_symlink(pod_dir_ + "/volumes/config/level"));  // through ..data
  EXPECT_TRUE(fs::is_symlink(pod_dir_ + "/volumes/config/..data"));
  EXPECT_EQ(readFile(pod_dir_ + "/volumes/some/sub/level.txt"), "debug");
  EXPECT_EQ(modeOf(pod_dir_ + "/volumes/some/sub/level.txt"), 0600);
  EXPECT_FALSE(fs::exists(pod_dir_ + "/volumes/some/app.conf"));  // only the items
  EXPECT_EQ(readFile(pod_dir_ + "/volumes/creds/password"), std::string("s3cr\0t", 6));
  EXPECT_EQ(modeOf(pod_dir_ + "/volumes/creds/password"), 0400);
  EXPECT_EQ(volumes.at("host").host_path, dir_ + "/host");
  EXPECT_TRUE(fs::is_directory(dir_ + "/made/here"));

  manager_.tearDown(pod_dir_);
  EXPECT_FALSE(fs::exists(pod_dir_ + "/volumes"));
  EXPECT_TRUE(fs::exists(dir_ + "/host"));  // a hostPath is the host's, never removed
  manager_.tearDown(pod_dir_);              // idempotent
}

TEST_F(VolumeManagerTest, ConfigMapChangesSwapAtomically) {
  const core::Pod p = pod("  - {name: config, configMap: {name: web}}\n");
  manager_.setUp(p, pod_dir_);
  const std::string first = fs::read_symlink(pod_dir_ + "/volumes/config/..data").string();
  manager_.setUp(p, pod_dir_);  // unchanged: not rewritten
  EXPECT_EQ(fs::read_symlink(pod_dir_ + "/volumes/config/..data").string(), first);

  auto& data = *sources_.config_maps["default/web"].mutable_data();
  data.erase("level");
  data["new"] = "value";
  manager_.setUp(p, pod_dir_);
  EXPECT_NE(fs::read_symlink(pod_dir_ + "/volumes/config/..data").string(), first);
  EXPECT_FALSE(fs::exists(pod_dir_ + "/volumes/config/" + first));
  EXPECT_FALSE(fs::exists(pod_dir_ + "/volumes/config/level"));
  EXPECT_EQ(readFile(pod_dir_ + "/volumes/config/new"), "value");
}

TEST_F(VolumeManagerTest, MissingSourcesAndBadInputNameTheVolume) {
  auto failure = [&](const std::string& volumes) {
    try {
      manager_.setUp(pod(volumes), pod_dir_);
    } catch (const VolumeError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(failure("  - {name: c, configMap: {name: nope}}\n"),
            "volume \"c\": configmap \"nope\" not found");
  EXPECT_EQ(failure("  - {name: s, secret: {secretName: nope}}\n"),
            "volume \"s\": secret \"nope\" not found");
  EXPECT_NE(failure("  - {name: c, configMap: {name: web, items: [{key: x, path: x}]}}\n")
                .find("key \"x\" not found"),
            std::string::npos);
  EXPECT_NE(failure("  - {name: c, configMap: {name: web, items: [{key: level, path: ../x}]}}\n")
                .find("must not contain \"..\""),
            std::string::npos);
  EXPECT_NE(failure("  - {name: h, hostPath: {path: /does/not/exist, type: Directory}}\n")
                .find("is not a directory"),
            std::string::npos);
  EXPECT_NE(failure("  - {name: m, emptyDir: {medium: HugePages}}\n").find("not supported"),
            std::string::npos);
  sources_.unreachable = true;
  EXPECT_NE(failure("  - {name: c, configMap: {name: web}}\n").find("connection refused"),
            std::string::npos);
  sources_.unreachable = false;
  // Optional sources that are missing are empty volumes.
  EXPECT_EQ(failure("  - {name: c, configMap: {name: nope, optional: true}}\n"), "no error");
  VolumeManager no_api(nullptr, {.use_tmpfs = false});
  EXPECT_THROW(no_api.setUp(pod("  - {name: c, configMap: {name: web}}\n"), pod_dir_), VolumeError);
}

TEST_F(VolumeManagerTest, ContainerMountsWithReadOnlyAndSubPath) {
  const auto volumes = manager_.setUp(pod(R"(  - {name: scratch, emptyDir: {}}
  - {name: config, configMap: {name: web}}
)"),
                                      pod_dir_);
  core::Container c;
  api::decodeYaml(R"(
name: c
volumeMounts:
- {name: scratch, mountPath: /data}
- {name: scratch, mountPath: /logs, subPath: logs/app, readOnly: true}
- {name: config, mountPath: /etc/app}
)",
                  c);
  const auto mounts = VolumeManager::containerMounts(c, volumes, "spec.containers[0]");
  ASSERT_EQ(mounts.size(), 3u);
  EXPECT_EQ(mounts[0].destination, "/data");
  EXPECT_EQ(mounts[0].source, pod_dir_ + "/volumes/scratch");
  EXPECT_EQ(mounts[0].type, "bind");
  EXPECT_EQ(mounts[0].options, (std::vector<std::string>{"rbind", "rw"}));
  EXPECT_EQ(mounts[1].source, pod_dir_ + "/volumes/scratch/logs/app");
  EXPECT_TRUE(fs::is_directory(mounts[1].source));  // subPath made
  EXPECT_EQ(mounts[1].options, (std::vector<std::string>{"rbind", "ro"}));
  EXPECT_EQ(mounts[2].options, (std::vector<std::string>{"rbind", "ro"}));  // configMap

  core::Container bad;
  api::decodeYaml("name: c\nvolumeMounts: [{name: nope, mountPath: /x}]\n", bad);
  try {
    VolumeManager::containerMounts(bad, volumes, "spec.containers[1]");
    FAIL();
  } catch (const VolumeError& e) {
    EXPECT_STREQ(e.what(), "spec.containers[1].volumeMounts[0]: no volume named \"nope\"");
  }
  api::decodeYaml("name: c\nvolumeMounts: [{name: scratch, mountPath: /x, subPath: ../../etc}]\n",
                  bad);
  EXPECT_THROW(VolumeManager::containerMounts(bad, volumes, "spec.containers[1]"), VolumeError);
}

}  // namespace
}  // namespace skiff::kubelet::volumes

// VolumeManager on plain directories (tmpfs off, so it runs unprivileged): emptyDir, hostPath
// types, configMap and secret projections with items and modes, atomic updates, optional and
// missing sources, and the bind mounts of volumeMounts with readOnly and subPath; downwardAPI
// and projected volumes (the kube-api-access-* one admission adds) with a fake TokenRequest
// source and clock: the bound request, refresh at 80% of the lifetime, a failed refresh, owners;
// the TokenManager's refresh rules.

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
  api::authentication::v1::TokenRequest requestServiceAccountToken(
      const std::string& ns, const std::string& name,
      const api::authentication::v1::TokenRequest& request) override {
    if (tokens_fail) throw std::runtime_error("connection refused");
    requests.push_back({ns + "/" + name, request});
    api::authentication::v1::TokenRequest out = request;
    out.mutable_status()->set_token("token-" + std::to_string(requests.size()));
    out.mutable_status()->mutable_expiration_timestamp()->set_seconds(
        now + request.spec().expiration_seconds());
    return out;
  }
  std::map<std::string, core::ConfigMap> config_maps;
  std::map<std::string, core::Secret> secrets;
  bool unreachable = false;
  bool tokens_fail = false;
  int64_t now = 1'700'000'000;  // unix seconds, the tests' clock
  std::vector<std::pair<std::string, api::authentication::v1::TokenRequest>> requests;
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
  VolumeManager manager_{&sources_, {.use_tmpfs = false, .now = [this] { return sources_.now; }}};
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

// What admission adds (serviceAccountTokenVolumeSource), plus a secret and labels.
constexpr const char* kProjected = R"(  - name: kube-api-access-x7b2k
    projected:
      defaultMode: 420
      sources:
      - serviceAccountToken: {expirationSeconds: 3607, path: token}
      - configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}
      - downwardAPI: {items: [{path: namespace, fieldRef: {apiVersion: v1, fieldPath: metadata.namespace}}]}
      - secret: {name: db, items: [{key: password, path: db/password, mode: 0400}]}
      - downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
)";

TEST_F(VolumeManagerTest, ProjectedServiceAccountVolumeIsBoundToThePodAndRefreshed) {
  core::ConfigMap ca;
  (*ca.mutable_data())["ca.crt"] = "-----BEGIN CERTIFICATE-----\n";
  sources_.config_maps["default/kube-root-ca.crt"] = ca;
  core::Pod p = pod(kProjected);
  (*p.mutable_metadata()->mutable_labels())["app"] = "web";
  (*p.mutable_metadata()->mutable_labels())["quote"] = "a\"b\n";
  p.mutable_spec()->set_service_account_name("builder");
  const std::string pod_dir = dir_ + "/pods/u1";  // the kubelet's POD_DIR ends in the uid
  const std::string vol = pod_dir + "/volumes/kube-api-access-x7b2k";

  const auto volumes = manager_.setUp(p, pod_dir);
  EXPECT_TRUE(volumes.at("kube-api-access-x7b2k").read_only);
  ASSERT_EQ(sources_.requests.size(), 1u);
  EXPECT_EQ(sources_.requests[0].first, "default/builder");
  EXPECT_EQ(
      api::encodeJson(sources_.requests[0].second, api::JsonStyle::kCompact, {.type_meta = false}),
      R"({"spec":{"expirationSeconds":3607,"boundObjectRef":{"kind":"Pod",)"
      R"("apiVersion":"v1","name":"web","uid":"u1"}}})");  // no audiences: the apiserver's
  EXPECT_EQ(readFile(vol + "/token"), "token-1");
  EXPECT_EQ(modeOf(vol + "/token"), 0644);  // defaultMode, as Kubernetes without fsUser/fsGroup
  EXPECT_EQ(readFile(vol + "/ca.crt"), "-----BEGIN CERTIFICATE-----\n");
  EXPECT_EQ(readFile(vol + "/namespace"), "default");
  EXPECT_EQ(readFile(vol + "/db/password"), std::string("s3cr\0t", 6));
  EXPECT_EQ(modeOf(vol + "/db/password"), 0400);
  EXPECT_EQ(readFile(vol + "/labels"), "app=\"web\"\nquote=\"a\\\"b\\n\"");
  EXPECT_TRUE(fs::is_symlink(vol + "/token"));
  const std::string first = fs::read_symlink(vol + "/..data").string();

  // Well within the lifetime: the cached token, nothing rewritten.
  sources_.now += 2800;
  manager_.setUp(p, pod_dir);
  EXPECT_EQ(sources_.requests.size(), 1u);
  EXPECT_EQ(fs::read_symlink(vol + "/..data").string(), first);
  // Past 80% (3607 - 721 s): a new token, swapped in atomically.
  sources_.now += 90;
  manager_.setUp(p, pod_dir);
  ASSERT_EQ(sources_.requests.size(), 2u);
  EXPECT_EQ(readFile(vol + "/token"), "token-2");
  EXPECT_NE(fs::read_symlink(vol + "/..data").string(), first);

  // A failed refresh keeps the token while it lasts, then fails the volume.
  sources_.now += 2900;
  sources_.tokens_fail = true;
  EXPECT_NO_THROW(manager_.setUp(p, pod_dir));
  EXPECT_EQ(readFile(vol + "/token"), "token-2");
  sources_.now += 800;  // expired
  try {
    manager_.setUp(p, pod_dir);
    FAIL() << "an expired token was kept";
  } catch (const VolumeError& e) {
    EXPECT_NE(std::string(e.what()).find("volume \"kube-api-access-x7b2k\": serviceaccount "
                                         "\"builder\": token default/builder expired and "
                                         "refresh failed: connection refused"),
              std::string::npos)
        << e.what();
  }
  sources_.tokens_fail = false;
  manager_.setUp(p, pod_dir);
  EXPECT_EQ(readFile(vol + "/token"), "token-3");

  // The pod is gone: its tokens are forgotten (a pod of the same uid would ask again).
  manager_.tearDown(pod_dir);
  manager_.setUp(p, pod_dir);
  EXPECT_EQ(sources_.requests.size(), 4u);

  // No kube-root-ca.crt: the volume cannot be made, and says why.
  sources_.config_maps.erase("default/kube-root-ca.crt");
  try {
    manager_.setUp(p, pod_dir);
    FAIL();
  } catch (const VolumeError& e) {
    EXPECT_STREQ(e.what(),
                 "volume \"kube-api-access-x7b2k\": configmap \"kube-root-ca.crt\" not found");
  }
}

TEST_F(VolumeManagerTest, ProjectedTokenOwnersFollowRunAsUserAndFsGroup) {
  if (::geteuid() != 0) GTEST_SKIP() << "chown needs root";
  core::ConfigMap ca;
  (*ca.mutable_data())["ca.crt"] = "CA";
  sources_.config_maps["default/kube-root-ca.crt"] = ca;
  core::Pod p = pod(kProjected);
  p.mutable_spec()->mutable_security_context()->set_run_as_user(1000);
  const std::string vol = dir_ + "/pods/u1/volumes/kube-api-access-x7b2k";
  manager_.setUp(p, dir_ + "/pods/u1");
  struct stat st {};
  ASSERT_EQ(::stat((vol + "/token").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);  // every container runs as 1000: the token is theirs
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(modeOf(vol + "/ca.crt"), 0644);

  p.mutable_spec()->mutable_security_context()->set_fs_group(2000);
  p.mutable_spec()->mutable_containers(0)->mutable_security_context()->set_run_as_user(0);
  manager_.setUp(p, dir_ + "/pods/u1");
  ASSERT_EQ(::stat((vol + "/token").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);  // the users differ: no fsUser
  EXPECT_EQ(st.st_gid, 2000u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);  // 0600 and group read
  ASSERT_EQ(::stat((vol + "/db/password").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 2000u);
  EXPECT_EQ(st.st_mode & 07777, 0440u);
}

TEST_F(VolumeManagerTest, DownwardApiVolumeAndUnsupportedFields) {
  core::Pod p = pod(R"(  - name: info
    downwardAPI:
      defaultMode: 0640
      items:
      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: app, fieldRef: {fieldPath: "metadata.labels['app']"}, mode: 0600}
      - {path: annotations, fieldRef: {fieldPath: metadata.annotations}}
)");
  (*p.mutable_metadata()->mutable_labels())["app"] = "web";
  (*p.mutable_metadata()->mutable_annotations())["b"] = "2";
  (*p.mutable_metadata()->mutable_annotations())["a"] = "1";
  const auto volumes = manager_.setUp(p, pod_dir_);
  EXPECT_TRUE(volumes.at("info").read_only);
  EXPECT_EQ(readFile(pod_dir_ + "/volumes/info/name"), "web");
  EXPECT_EQ(modeOf(pod_dir_ + "/volumes/info/name"), 0640);
  EXPECT_EQ(readFile(pod_dir_ + "/volumes/info/app"), "web");
  EXPECT_EQ(modeOf(pod_dir_ + "/volumes/info/app"), 0600);
  EXPECT_EQ(readFile(pod_dir_ + "/volumes/info/annotations"), "a=\"1\"\nb=\"2\"");
  try {
    manager_.setUp(pod("  - {name: d, downwardAPI: {items: [{path: n, fieldRef: {fieldPath: "
                       "spec.nodeName}}]}}\n"),
                   pod_dir_);
    FAIL();
  } catch (const VolumeError& e) {
    EXPECT_STREQ(e.what(),
                 "volume \"d\": fieldRef.fieldPath \"spec.nodeName\" is not "
                 "supported in a downwardAPI volume");
  }
  VolumeManager no_api(nullptr, {.use_tmpfs = false});
  EXPECT_THROW(no_api.setUp(pod(kProjected), dir_ + "/other"), VolumeError);
}

TEST(TokenManagerTest, RefreshAtEightyPercentOrAfterADayLessTheJitter) {
  int64_t now = 1000;
  int64_t jitter = 0;
  TokenManager tokens([&] { return now; }, [&] { return jitter; });
  struct Source final : VolumeSourceFetcher {
    std::optional<core::ConfigMap> getConfigMap(const std::string&, const std::string&) override {
      return std::nullopt;
    }
    std::optional<core::Secret> getSecret(const std::string&, const std::string&) override {
      return std::nullopt;
    }
    api::authentication::v1::TokenRequest requestServiceAccountToken(
        const std::string&, const std::string&,
        const api::authentication::v1::TokenRequest& r) override {
      api::authentication::v1::TokenRequest out;  // what an apiserver answers: spec and status
      *out.mutable_spec() = r.spec();
      out.mutable_status()->set_token("t" + std::to_string(++count));
      out.mutable_status()->mutable_expiration_timestamp()->set_seconds(
          *now + r.spec().expiration_seconds());
      return out;
    }
    int count = 0;
    int64_t* now = nullptr;
  } source;
  source.now = &now;
  auto request = [](int64_t seconds, const std::string& uid) {
    api::authentication::v1::TokenRequest r;
    r.mutable_spec()->set_expiration_seconds(seconds);
    r.mutable_spec()->mutable_bound_object_ref()->set_uid(uid);
    return r;
  };
  auto token = [&](int64_t seconds, const std::string& uid = "u1") {
    return tokens.token(source, "ns", "sa", request(seconds, uid)).status().token();
  };
  EXPECT_EQ(token(3600), "t1");
  now = 1000 + 2880;  // exactly 80%: not yet
  EXPECT_EQ(token(3600), "t1");
  now += 1;
  EXPECT_EQ(token(3600), "t2");
  jitter = 9;  // the jitter makes it sooner
  now += 2880 - 9;
  EXPECT_EQ(token(3600), "t2");
  now += 1;
  EXPECT_EQ(token(3600), "t3");

  // Another lifetime or pod is another token.
  jitter = 0;
  now = 7000;
  EXPECT_EQ(token(48 * 3600), "t4");
  EXPECT_EQ(token(48 * 3600, "u2"), "t5");
  EXPECT_EQ(tokens.size(), 3u);
  now += 24 * 3600;  // a day, though far from 80% of two
  EXPECT_EQ(token(48 * 3600), "t4");
  EXPECT_EQ(tokens.size(), 2u);  // the one-hour token expired meanwhile: dropped
  now += 1;
  EXPECT_EQ(token(48 * 3600), "t6");
  tokens.forgetPod("u2");
  EXPECT_EQ(tokens.size(), 1u);
}

}  // namespace
}  // namespace skiff::kubelet::volumes

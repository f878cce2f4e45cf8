// RuntimePodSyncer on the real things: runc with skiff-shim, the busybox fixture image in an
// ImageStore, pod sandboxes on a bridge inside a "node" network namespace the test makes (the
// machine's interfaces are never touched), volumes on tmpfs. Cgroups go below
// /skiff/test-<pid>. Root only; skipped otherwise.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "control/api/codec.h"
#include "kubelet/images/image_store.h"
#include "kubelet/network/netns.h"
#include "kubelet/network/pod_network.h"
#include "kubelet/pods/runtime_pod_syncer.h"
#include "kubelet/runtime/runc_runtime.h"
#include "tests/kubelet/pods/runc_pod_fixture.h"

namespace skiff::kubelet {
namespace {
namespace fs = std::filesystem;
namespace core = api::core::v1;
using namespace std::chrono_literals;

using runc_fixture::readFile;

template <class T>
T fromYaml(const std::string& yaml) {
  T out;
  api::decodeYaml(yaml, out);
  return out;
}

const core::ContainerStatus* statusOf(const PodSyncResult& r, const std::string& name) {
  for (const auto& c : r.status.container_statuses())
    if (c.name() == name) return &c;
  return nullptr;
}

std::string condition(const PodSyncResult& r, const std::string& type) {
  for (const auto& c : r.status.conditions())
    if (c.type() == type) return c.status();
  return "absent";
}

class ConfigMaps final : public volumes::VolumeSourceFetcher {
 public:
  std::optional<core::ConfigMap> getConfigMap(const std::string&,
                                              const std::string& name) override {
    if (name != "web-config") return std::nullopt;
    core::ConfigMap cm;
    (*cm.mutable_data())["greeting"] = "hello from a configmap";
    return cm;
  }
  std::optional<core::Secret> getSecret(const std::string&, const std::string&) override {
    return std::nullopt;
  }
  // One claim, "data", and its volume when the test has bound it.
  std::optional<core::PersistentVolumeClaim> getPersistentVolumeClaim(
      const std::string&, const std::string& name) override {
    std::lock_guard lock(mu);
    if (name != "data") return std::nullopt;
    return claim;
  }
  std::optional<core::PersistentVolume> getPersistentVolume(const std::string& name) override {
    std::lock_guard lock(mu);
    if (!volume || volume->metadata().name() != name) return std::nullopt;
    return volume;
  }
  std::mutex mu;
  core::PersistentVolumeClaim claim;
  std::optional<core::PersistentVolume> volume;
};

class RuntimePodSyncerRuncTest : public runc_fixture::RuncPodTest {
 protected:
  static void SetUpTestSuite() {
    setUpSuite("runc, network namespaces, mounts", "/tmp/skiff-podsyncer-runc-XXXXXX");
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    setUpNode("10.252.9.0/24");
    // A parent of its own at the top, so that removing it leaves nothing of the test behind.
    cgroup_parent_ = "/skiff-test-" + std::to_string(::getpid());
    makeSyncer();
  }

  void makeSyncer() {
    RuntimePodSyncerOptions o = newRuntime("10.252.9.1");
    o.backoff_base = 1s;
    o.default_grace = 2s;
    syncer_ = std::make_unique<RuntimePodSyncer>(o, *store_, *runtime_, *network_, &config_maps_);
  }

  void TearDown() override {
    if (!skip_.empty()) return;
    terminatePods();
    runc_fixture::removeCgroupParent(cgroup_parent_);
    EXPECT_EQ(readFile("/proc/self/mountinfo").find(test_dir_), std::string::npos);
    fs::remove_all(test_dir_);
  }

  // Syncs every 100 ms until `done` holds for the result or `limit` passes; returns the last.
  PodSyncResult syncUntil(const core::Pod& p, const std::function<bool(const PodSyncResult&)>& done,
                          std::chrono::milliseconds limit = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    PodSyncResult r;
    while (true) {
      r = syncer_->sync(p);
      for (const auto& e : r.events)
        seen_events_.push_back(e.reason + ": " + e.message);
      if (done(r) || std::chrono::steady_clock::now() >= deadline) return r;
      std::this_thread::sleep_for(100ms);
    }
  }

  std::string logOf(const core::Pod& p, const std::string& container, int restart = 0) {
    return readFile(test_dir_ + "/logs/default_" + p.metadata().name() + "_" + p.metadata().uid() +
                    "/" + container + "/" + std::to_string(restart) + ".log");
  }

  ConfigMaps config_maps_;
  std::vector<std::string> seen_events_;
};

TEST_F(RuntimePodSyncerRuncTest, TwoContainersTalkOverLocalhostAndSeeTheirVolumes) {
  const core::Pod p = pod("talk", R"(
  restartPolicy: Never
  volumes:
  - {name: shared, emptyDir: {medium: Memory}}
  - {name: config, configMap: {name: web-config}}
  containers:
  - name: server
    image: example.com/test/busybox:v1
    command: [/bin/sh, -c, "cat /config/greeting | nc -l -p 8080"]
    volumeMounts: [{name: config, mountPath: /config}]
  - name: client
    image: example.com/test/busybox:v1
    command: [/bin/sh, -c, "until nc 127.0.0.1 8080 > /shared/got; do sleep 0.1; done; cat /shared/got; echo; hostname"]
    volumeMounts: [{name: shared, mountPath: /shared}]
)");
  PodSyncResult r = syncer_->sync(p);
  // Both may be done by the end of the first sync already.
  ASSERT_TRUE(r.status.phase() == "Running" || r.status.phase() == "Succeeded")
      << r.status.DebugString();
  EXPECT_TRUE(r.status.pod_ip().starts_with("10.252.9."));
  r = syncUntil(p, [](const PodSyncResult& x) { return x.status.phase() != "Running"; });
  ASSERT_EQ(r.status.phase(), "Succeeded") << r.status.DebugString();
  EXPECT_EQ(statusOf(r, "client")->state().terminated().reason(), "Completed");
  const std::string log = logOf(p, "client");
  EXPECT_NE(log.find("stdout F hello from a configmap"), std::string::npos) << log;
  EXPECT_NE(log.find("stdout F talk"), std::string::npos) << log;  // the pod's hostname
  // The emptyDir is a tmpfs the kubelet mounted; the configMap is read-only in the container.
  EXPECT_EQ(readFile(syncer_->podDir("uid-talk") + "/volumes/shared/got"),
            "hello from a configmap");
}

TEST_F(RuntimePodSyncerRuncTest, AClaimsDataOutlivesThePodThatWroteIt) {
  // The claim is Pending: the pod waits in ContainerCreating with a FailedMount event.
  config_maps_.claim = fromYaml<core::PersistentVolumeClaim>(R"(
metadata: {name: data, namespace: default, uid: uid-claim}
spec: {accessModes: [ReadWriteOnce], storageClassName: local-path}
status: {phase: Pending}
)");
  const std::string spec = R"(
  restartPolicy: Never
  volumes: [{name: store, persistentVolumeClaim: {claimName: data}}]
  containers:
  - name: c
    image: example.com/test/busybox:v1
    volumeMounts: [{name: store, mountPath: /data}]
)";
  const core::Pod writer =
      pod("writer", spec + R"(    command: [/bin/sh, -c, "echo kept > /data/file"]
)");
  PodSyncResult r = syncer_->sync(writer);
  EXPECT_EQ(r.status.phase(), "Pending");
  ASSERT_NE(statusOf(r, "c"), nullptr);
  EXPECT_EQ(statusOf(r, "c")->state().waiting().reason(), "ContainerCreating");
  bool failed_mount = false;
  for (const auto& e : r.events) {
    if (e.reason == "FailedMount" && e.message.find("is not bound") != std::string::npos)
      failed_mount = true;
  }
  EXPECT_TRUE(failed_mount);
  // Bound to a local-path volume whose directory does not exist yet: the kubelet makes it.
  const std::string dir = test_dir_ + "/storage/pvc-uid-claim_default_data";
  {
    std::lock_guard lock(config_maps_.mu);
    config_maps_.claim.mutable_spec()->set_volume_name("pvc-uid-claim");
    config_maps_.claim.mutable_status()->set_phase("Bound");
    config_maps_.volume = fromYaml<core::PersistentVolume>(R"(
metadata:
  name: pvc-uid-claim
  annotations: {pv.kubernetes.io/provisioned-by: skiff.io/local-path}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  claimRef: {kind: PersistentVolumeClaim, namespace: default, name: data, uid: uid-claim}
  local: {path: )" + dir + R"(}
)");
  }
  r = syncUntil(writer, [](const PodSyncResult& x) { return x.status.phase() == "Succeeded"; });
  ASSERT_EQ(r.status.phase(), "Succeeded") << r.status.DebugString();
  EXPECT_EQ(readFile(dir + "/file"), "kept\n");
  syncer_->terminate(writer, 1s);
  pods_.clear();
  EXPECT_EQ(readFile(dir + "/file"), "kept\n");  // the pod went, the data stayed
  // A new pod on the same claim reads it back.
  const core::Pod reader = pod("reader", spec + R"(    command: [/bin/sh, -c, "cat /data/file"]
)");
  r = syncUntil(reader, [](const PodSyncResult& x) { return x.status.phase() == "Succeeded"; });
  ASSERT_EQ(r.status.phase(), "Succeeded") << r.status.DebugString();
  EXPECT_NE(logOf(reader, "c").find("stdout F kept"), std::string::npos) << logOf(reader, "c");
}

TEST_F(RuntimePodSyncerRuncTest, ACrashingContainerBacksOffWithRisingRestarts) {
  const core::Pod p = pod("crash", R"(
  containers:
  - {name: crash, image: example.com/test/busybox:v1, command: [/bin/sh, -c, "echo dying; exit 3"]}
)");
  bool saw_backoff = false;
  PodSyncResult r = syncUntil(
      p,
      [&](const PodSyncResult& x) {
        const auto* c = statusOf(x, "crash");
        saw_backoff = saw_backoff || (c && c->state().waiting().reason() == "CrashLoopBackOff");
        return c && c->restart_count() >= 3 && saw_backoff;
      },
      20s);
  const auto* c = statusOf(r, "crash");
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(saw_backoff);
  EXPECT_GE(c->restart_count(), 3);  // 0 s, then 1 s and 2 s of back-off
  EXPECT_EQ(c->last_state().terminated().exit_code(), 3);
  EXPECT_EQ(r.status.phase(), "Running");
  // Ready only in the moments the restarted container runs (it has no readiness probe).
  EXPECT_EQ(condition(r, "Ready"), c->state().has_running() ? "True" : "False");
  // The previous attempt's log is kept (kubectl logs --previous).
  EXPECT_NE(logOf(p, "crash", c->restart_count() - 1).find("stdout F dying"), std::string::npos);
  // Only the current container exists in runc; dead ones went at each restart.
  EXPECT_LE(runtime_->list().size(), 1u);
}

TEST_F(RuntimePodSyncerRuncTest, ReadinessProbesFlipReady) {
  const core::Pod p = pod("ready", R"(
  containers:
  - name: web
    image: example.com/test/busybox:v1
    command: [/bin/sh, -c, "mkdir -p /www && echo ok > /www/index.html && sleep 2 && exec /bin/busybox httpd -f -p 8080 -h /www"]
    readinessProbe: {httpGet: {path: /index.html, port: 8080}, periodSeconds: 1}
    livenessProbe: {tcpSocket: {port: 8080}, initialDelaySeconds: 4, periodSeconds: 1}
  - name: flag
    image: example.com/test/busybox:v1
    command: [/bin/sh, -c, "sleep 1000"]
    readinessProbe: {exec: {command: [test, -f, /tmp/ready]}, periodSeconds: 1, failureThreshold: 1}
)");
  PodSyncResult r = syncer_->sync(p);
  EXPECT_EQ(condition(r, "Ready"), "False");
  r = syncUntil(
      p, [](const PodSyncResult& x) { return statusOf(x, "web")->ready(); }, 10s);
  EXPECT_TRUE(statusOf(r, "web")->ready());
  EXPECT_FALSE(statusOf(r, "flag")->ready());
  EXPECT_EQ(condition(r, "Ready"), "False");
  ASSERT_TRUE(r.resync_after);
  EXPECT_LE(*r.resync_after, 1001ms);

  ASSERT_EQ(
      runtime_->exec(statusOf(r, "flag")->container_id().substr(8), {"touch", "/tmp/ready"}, 5s)
          .exit_code,
      0);
  r = syncUntil(
      p, [](const PodSyncResult& x) { return condition(x, "Ready") == "True"; }, 5s);
  EXPECT_EQ(condition(r, "Ready"), "True");
  EXPECT_EQ(condition(r, "ContainersReady"), "True");
  // The liveness probe passed all along: no restarts.
  r = syncUntil(
      p, [](const PodSyncResult&) { return false; }, 1500ms);
  EXPECT_EQ(statusOf(r, "web")->restart_count(), 0);
  EXPECT_EQ(condition(r, "Ready"), "True");

  ASSERT_EQ(runtime_->exec(statusOf(r, "flag")->container_id().substr(8), {"rm", "/tmp/ready"}, 5s)
                .exit_code,
            0);
  r = syncUntil(
      p, [](const PodSyncResult& x) { return condition(x, "Ready") == "False"; }, 5s);
  EXPECT_EQ(condition(r, "Ready"), "False");
}

TEST_F(RuntimePodSyncerRuncTest, TerminateLeavesNothingBehind) {
  const core::Pod p = pod("bye", R"(
  terminationGracePeriodSeconds: 2
  volumes: [{name: scratch, emptyDir: {medium: Memory}}]
  containers:
  - name: polite
    image: example.com/test/busybox:v1
    command: [/bin/sh, -c, "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
    lifecycle: {preStop: {exec: {command: [/bin/sh, -c, "echo stopping > /scratch/prestop"]}}}
  - {name: stubborn, image: example.com/test/busybox:v1, command: [/bin/busybox, sleep, "1000"]}
)");
  PodSyncResult r = syncer_->sync(p);
  ASSERT_EQ(r.status.phase(), "Running") << r.status.DebugString();
  const std::string netns = network_->netnsPath("uid-bye");
  const std::string veth = network::PodNetworkManager::hostVethName("uid-bye");
  const std::string cgroup = "/sys/fs/cgroup/memory" + cgroup_parent_ + "/poduid-bye";
  ASSERT_TRUE(fs::exists(netns));
  ASSERT_TRUE(fs::exists(cgroup));
  EXPECT_NE(network::runInNetns(node_, {"ip", "link", "show"}).out.find(veth), std::string::npos);
  EXPECT_EQ(network_->allocator().list().size(), 1u);

  const auto t0 = std::chrono::steady_clock::now();
  r = syncer_->terminate(p, 2s);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 6s);
  EXPECT_GE(took, 2s);  // the stubborn one waited for its grace period, then SIGKILL
  EXPECT_EQ(statusOf(r, "polite")->state().terminated().exit_code(), 0);
  EXPECT_EQ(statusOf(r, "stubborn")->state().terminated().exit_code(), 137);
  EXPECT_EQ(r.status.phase(), "Failed");
  EXPECT_FALSE(fs::exists(netns));
  EXPECT_FALSE(fs::exists(cgroup));
  EXPECT_FALSE(fs::exists("/sys/fs/cgroup/unified" + cgroup_parent_ + "/poduid-bye"));
  EXPECT_EQ(network::runInNetns(node_, {"ip", "link", "show"}).out.find(veth), std::string::npos);
  EXPECT_TRUE(network_->allocator().list().empty());
  EXPECT_TRUE(runtime_->list().empty());
  EXPECT_FALSE(fs::exists(syncer_->podDir("uid-bye")));
  EXPECT_EQ(readFile("/proc/self/mountinfo").find(test_dir_ + "/root"), std::string::npos);
  EXPECT_TRUE(syncer_->knownPodUids().empty());
}

// Node shutdown (skiff up's exit, skiff cleanup): the agent is gone and the pods are known only by
// their state, yet each container's preStop hook runs before its SIGTERM, with the grace period.
TEST_F(RuntimePodSyncerRuncTest, NodeShutdownRunsPreStopHooksFromTheState) {
  const std::string host = test_dir_ + "/host";
  fs::create_directories(host);
  const core::Pod p = pod("shutdown", R"(
  terminationGracePeriodSeconds: 5
  volumes: [{name: host, hostPath: {path: )" +
                                          host + R"(}}]
  containers:
  - name: app
    image: example.com/test/busybox:v1
    command: [/bin/sh, -c, "trap 'echo term >> /host/order; exit 0' TERM; while :; do sleep 0.1; done"]
    volumeMounts: [{name: host, mountPath: /host}]
    lifecycle: {preStop: {exec: {command: [/bin/sh, -c, "echo prestop >> /host/order"]}}}
  - {name: plain, image: example.com/test/busybox:v1, command: [/bin/busybox, sleep, "1000"]}
)");
  PodSyncResult r = syncer_->sync(p);
  ASSERT_EQ(r.status.phase(), "Running") << r.status.DebugString();

  makeSyncer();  // the agent stopped: a syncer with nothing but the state on disk
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(syncer_->shutdown(3s, 4), std::vector<std::string>{});
  const auto took = std::chrono::steady_clock::now() - t0;
  pods_.clear();
  EXPECT_EQ(readFile(host + "/order"), "prestop\nterm\n") << "the hook ran, then SIGTERM";
  EXPECT_LT(took, 8s);
  EXPECT_GE(took, 2s) << "the container without a hook waited for SIGKILL";
  EXPECT_TRUE(runtime_->list().empty());
  EXPECT_TRUE(syncer_->knownPodUids().empty());
}

TEST_F(RuntimePodSyncerRuncTest, ANewSyncerAdoptsARunningPodWithoutRestartingIt) {
  const core::Pod p = pod("adopt", R"(
  containers:
  - {name: app, image: example.com/test/busybox:v1, command: [/bin/busybox, sleep, "1000"]}
)");
  PodSyncResult r = syncer_->sync(p);
  ASSERT_TRUE(statusOf(r, "app")->state().has_running()) << r.status.DebugString();
  const std::string id = statusOf(r, "app")->container_id();
  const int64_t started = statusOf(r, "app")->state().running().started_at().seconds();
  const std::string ip = r.status.pod_ip();

  makeSyncer();  // a restarted kubelet: new runtime, new syncer, same directories
  EXPECT_EQ(syncer_->knownPodUids(), std::vector<std::string>{"uid-adopt"});
  r = syncer_->sync(p);
  EXPECT_EQ(statusOf(r, "app")->container_id(), id);
  EXPECT_EQ(statusOf(r, "app")->state().running().started_at().seconds(), started);
  EXPECT_EQ(statusOf(r, "app")->restart_count(), 0);
  EXPECT_EQ(r.status.pod_ip(), ip);
  EXPECT_EQ(r.status.phase(), "Running");
  for (const auto& e : r.events)
    EXPECT_NE(e.reason, "Started") << e.message;

  // A pod deleted while the kubelet was down: cleaned up by UID.
  syncer_->cleanupOrphan("uid-adopt");
  pods_.clear();
  EXPECT_TRUE(runtime_->list().empty());
  EXPECT_TRUE(network_->allocator().list().empty());
  EXPECT_TRUE(syncer_->knownPodUids().empty());
}

TEST_F(RuntimePodSyncerRuncTest, BadCommandsAndImagesAreReasons) {
  const core::Pod p = pod("bad", R"(
  containers:
  - {name: nocmd, image: example.com/test/busybox:v1, command: [/bin/does-not-exist]}
  - {name: noimage, image: "127.0.0.1:1/missing:v1"}
)");
  const PodSyncResult r = syncer_->sync(p);
  EXPECT_EQ(r.status.phase(), "Pending");
  EXPECT_EQ(statusOf(r, "nocmd")->state().waiting().reason(), "CreateContainerError");
  EXPECT_NE(statusOf(r, "nocmd")->state().waiting().message().find("does-not-exist"),
            std::string::npos);
  EXPECT_EQ(statusOf(r, "noimage")->state().waiting().reason(), "ErrImagePull");
  EXPECT_TRUE(runtime_->list().empty());
}

}  // namespace
}  // namespace skiff::kubelet

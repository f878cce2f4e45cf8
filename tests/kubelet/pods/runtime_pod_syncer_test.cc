// RuntimePodSyncer's state machine against in-memory fakes (fakes.h): sandbox and containers,
// init containers in order, restart policies with Kubernetes' back-off on an injected clock,
// image and create errors as container reasons, probes, status and conditions, adoption by a new
// syncer over the same root, terminate and orphan cleanup.

#include "kubelet/pods/runtime_pod_syncer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "control/api/codec.h"
#include "tests/kubelet/pods/fakes.h"

namespace skiff::kubelet {
namespace {
namespace fs = std::filesystem;
namespace core = api::core::v1;
using namespace std::chrono_literals;
using testing::FakeClock;
using testing::FakeImages;
using testing::FakeNetwork;
using testing::FakeProber;
using testing::FakeRuntime;

core::Pod podFromYaml(const std::string& yaml) {
  core::Pod pod;
  api::decodeYaml(yaml, pod);
  return pod;
}

const core::ContainerStatus& statusOf(const PodSyncResult& r, const std::string& name) {
  for (const auto& c : r.status.container_statuses())
    if (c.name() == name) return c;
  for (const auto& c : r.status.init_container_statuses())
    if (c.name() == name) return c;
  throw std::logic_error("no status for " + name);
}

std::string condition(const PodSyncResult& r, const std::string& type) {
  for (const auto& c : r.status.conditions())
    if (c.type() == type) return c.status();
  return "absent";
}

bool hasEvent(const PodSyncResult& r, const std::string& reason, const std::string& part = {}) {
  for (const auto& e : r.events)
    if (e.reason == reason && e.message.find(part) != std::string::npos) return true;
  return false;
}

class RuntimePodSyncerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-podsyncer-unit-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    images_.store("busybox:1.36");
    syncer_ = makeSyncer();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<RuntimePodSyncer> makeSyncer() {
    RuntimePodSyncerOptions o;
    o.node_name = "node-1";
    o.host_ip = "192.168.0.10";
    o.root_dir = dir_ + "/root";
    o.log_dir = dir_ + "/logs";
    o.cgroup_root = dir_ + "/cgroup";
    o.volumes.use_tmpfs = false;
    o.default_grace = 1s;
    o.clock = [this] { return clock_.now(); };
    return std::make_unique<RuntimePodSyncer>(o, images_, runtime_, network_, nullptr, &prober_);
  }

  core::Pod pod(const std::string& restart_policy, const std::string& containers,
                const std::string& extra = {}) {
    return podFromYaml(R"(
metadata: {name: web, namespace: default, uid: 0b9e5a4c-1111-2222-3333-444455556666}
spec:
  restartPolicy: )" + restart_policy +
                       "\n  containers:\n" + containers + extra);
  }

  std::string dir_;
  FakeClock clock_;
  FakeRuntime runtime_{clock_};
  FakeImages images_;
  FakeNetwork network_;
  FakeProber prober_;
  std::unique_ptr<RuntimePodSyncer> syncer_;
};

const char* kTwoContainers = R"(  - {name: web, image: "busybox:1.36", command: [httpd, -f]}
  - {name: side, image: "busybox:1.36", command: [sleep, "1000"]}
)";

TEST_F(RuntimePodSyncerTest, StartsEveryContainerAndReportsRunningAndReady) {
  const core::Pod p = pod("Always", kTwoContainers);
  const PodSyncResult r = syncer_->sync(p);
  EXPECT_EQ(r.status.phase(), "Running");
  EXPECT_EQ(r.status.pod_ip(), "10.244.0.2");
  ASSERT_EQ(r.status.pod_ips_size(), 1);
  EXPECT_EQ(r.status.host_ip(), "192.168.0.10");
  EXPECT_EQ(r.status.start_time().seconds(), clock_.ns() / 1000000000);
  EXPECT_EQ(condition(r, "PodReadyToStartContainers"), "True");
  EXPECT_EQ(condition(r, "Initialized"), "True");
  EXPECT_EQ(condition(r, "ContainersReady"), "True");
  EXPECT_EQ(condition(r, "Ready"), "True");
  ASSERT_EQ(r.status.container_statuses_size(), 2);
  const auto& web = statusOf(r, "web");
  EXPECT_TRUE(web.state().has_running());
  EXPECT_TRUE(web.ready());
  EXPECT_TRUE(web.started());
  EXPECT_EQ(web.restart_count(), 0);
  EXPECT_EQ(web.image(), "docker.io/library/busybox:1.36");
  EXPECT_EQ(web.image_id(), "docker.io/library/busybox@sha256:" + std::string(64, 'a'));
  EXPECT_EQ(web.container_id(), "skiff://0b9e5a4c-1111-2222-3333-444455556666_web_0");
  EXPECT_TRUE(hasEvent(r, "Pulled", "already present"));
  EXPECT_TRUE(hasEvent(r, "Created", "Created container: web"));
  EXPECT_TRUE(hasEvent(r, "Started", "Started container side"));
  // What runs: the command, the pod's network namespace, a cgroup below the pod's, a log file.
  const ContainerConfig c = runtime_.config("0b9e5a4c-1111-2222-3333-444455556666_web_0");
  EXPECT_EQ(c.args, (std::vector<std::string>{"httpd", "-f"}));
  EXPECT_EQ(c.cgroups_path, "/skiff/pod0b9e5a4c-1111-2222-3333-444455556666/" + c.id);
  EXPECT_EQ(c.hostname, "web");
  EXPECT_EQ(c.log_path, dir_ + "/logs/default_web_0b9e5a4c-1111-2222-3333-444455556666/web/0.log");
  EXPECT_EQ(syncer_->knownPodUids(),
            std::vector<std::string>{"0b9e5a4c-1111-2222-3333-444455556666"});
  // A second sync changes nothing.
  const PodSyncResult again = syncer_->sync(p);
  EXPECT_EQ(runtime_.created().size(), 2u);
  EXPECT_TRUE(again.events.empty());
  EXPECT_TRUE(again.resync_after.has_value());  // relisting while the pod runs
}

TEST_F(RuntimePodSyncerTest, InitContainersRunOneAtATimeInOrder) {
  const core::Pod p = pod("Always", "  - {name: app, image: \"busybox:1.36\"}\n",
                          R"(  initContainers:
  - {name: first, image: "busybox:1.36"}
  - {name: second, image: "busybox:1.36"}
)");
  PodSyncResult r = syncer_->sync(p);
  EXPECT_EQ(r.status.phase(), "Pending");
  EXPECT_EQ(condition(r, "Initialized"), "False");
  EXPECT_FALSE(runtime_.running("first").empty());
  EXPECT_TRUE(runtime_.running("second").empty());
  EXPECT_EQ(statusOf(r, "app").state().waiting().reason(), "PodInitializing");
  syncer_->sync(p);
  EXPECT_TRUE(runtime_.running("second").empty());  // still waiting for the first

  runtime_.exitContainer("first", 0);
  r = syncer_->sync(p);
  EXPECT_FALSE(runtime_.running("second").empty());
  EXPECT_TRUE(runtime_.running("app").empty());
  EXPECT_EQ(statusOf(r, "first").state().terminated().reason(), "Completed");

  runtime_.exitContainer("second", 0);
  r = syncer_->sync(p);
  EXPECT_FALSE(runtime_.running("app").empty());
  EXPECT_EQ(condition(r, "Initialized"), "True");
  EXPECT_EQ(r.status.phase(), "Running");
}

TEST_F(RuntimePodSyncerTest, AFailedInitContainerFailsANeverPodAndBacksOffOtherwise) {
  const std::string init = R"(  initContainers:
  - {name: setup, image: "busybox:1.36"}
)";
  core::Pod never = pod("Never", "  - {name: app, image: \"busybox:1.36\"}\n", init);
  syncer_->sync(never);
  runtime_.exitContainer("setup", 2);
  PodSyncResult r = syncer_->sync(never);
  EXPECT_EQ(r.status.phase(), "Failed");
  EXPECT_EQ(statusOf(r, "setup").state().terminated().exit_code(), 2);
  EXPECT_TRUE(runtime_.running("app").empty());
  // Terminal: nothing starts any more.
  r = syncer_->sync(never);
  EXPECT_EQ(r.status.phase(), "Failed");
  EXPECT_EQ(runtime_.created().size(), 1u);

  core::Pod always = pod("Always", "  - {name: app, image: \"busybox:1.36\"}\n", init);
  always.mutable_metadata()->set_uid("uid-2");
  syncer_->sync(always);
  runtime_.exitContainer("setup", 2);
  r = syncer_->sync(always);  // the first restart is immediate
  EXPECT_EQ(statusOf(r, "setup").restart_count(), 1);
  runtime_.exitContainer("setup", 2);
  r = syncer_->sync(always);
  EXPECT_EQ(r.status.phase(), "Pending");
  EXPECT_EQ(statusOf(r, "setup").state().waiting().reason(), "CrashLoopBackOff");
}

TEST_F(RuntimePodSyncerTest, CrashLoopBackOffDoublesFromTenSecondsToFiveMinutes) {
  const core::Pod p = pod("Always", "  - {name: crash, image: \"busybox:1.36\"}\n");
  syncer_->sync(p);
  // The first exit restarts at once.
  runtime_.exitContainer("crash", 1);
  PodSyncResult r = syncer_->sync(p);
  EXPECT_EQ(statusOf(r, "crash").restart_count(), 1);
  EXPECT_TRUE(statusOf(r, "crash").state().has_running());
  EXPECT_EQ(statusOf(r, "crash").last_state().terminated().exit_code(), 1);

  for (int restart = 2; restart <= 8; ++restart) {
    runtime_.exitContainer("crash", 1);
    clock_.advance(1s);
    r = syncer_->sync(p);
    const auto& cs = statusOf(r, "crash");
    ASSERT_EQ(cs.state().waiting().reason(), "CrashLoopBackOff") << restart;
    EXPECT_EQ(cs.last_state().terminated().exit_code(), 1);
    EXPECT_EQ(cs.restart_count(), restart - 1);
    EXPECT_EQ(r.status.phase(), "Running");
    EXPECT_EQ(condition(r, "Ready"), "False");
    EXPECT_TRUE(hasEvent(r, "BackOff", "Back-off restarting failed container crash"));
    ASSERT_TRUE(r.resync_after);
    // Not before the back-off is over.
    const std::string msg = cs.state().waiting().message();
    const int64_t backoff_s = std::min<int64_t>(10LL << (restart - 2), 300);
    EXPECT_NE(msg.find(backoff_s < 60 ? "back-off " + std::to_string(backoff_s) + "s"
                                      : "back-off " + std::to_string(backoff_s / 60) + "m"),
              std::string::npos)
        << msg;
    clock_.advance(std::chrono::seconds(backoff_s - 2));
    r = syncer_->sync(p);
    ASSERT_EQ(statusOf(r, "crash").state().waiting().reason(), "CrashLoopBackOff");
    clock_.advance(1s);
    r = syncer_->sync(p);
    ASSERT_TRUE(statusOf(r, "crash").state().has_running()) << restart;
    EXPECT_EQ(statusOf(r, "crash").restart_count(), restart);
  }
  // After ten minutes of running, the back-off is forgotten: the next restart is immediate.
  clock_.advance(601s);
  runtime_.exitContainer("crash", 1);
  r = syncer_->sync(p);
  EXPECT_TRUE(statusOf(r, "crash").state().has_running());
  EXPECT_EQ(statusOf(r, "crash").restart_count(), 9);
  // ... and the one after waits the base again.
  runtime_.exitContainer("crash", 1);
  r = syncer_->sync(p);
  EXPECT_EQ(statusOf(r, "crash").state().waiting().reason(), "CrashLoopBackOff");
  ASSERT_TRUE(r.resync_after);
  EXPECT_LE(*r.resync_after, 10001ms);
}

TEST_F(RuntimePodSyncerTest, BackOffExpiryIsTheResyncTime) {
  const core::Pod p = pod("Always", "  - {name: crash, image: \"busybox:1.36\"}\n");
  syncer_->sync(p);
  runtime_.exitContainer("crash", 1);
  syncer_->sync(p);
  for (const auto backoff : {10s, 20s, 40s}) {
    runtime_.exitContainer("crash", 1);
    const auto t0 = clock_.now();
    PodSyncResult r = syncer_->sync(p);
    // Waking up at each resync_after (the relist period or the back-off's end, whichever comes
    // first) restarts the container right when the back-off ends.
    while (!statusOf(r, "crash").state().has_running()) {
      ASSERT_TRUE(r.resync_after);
      EXPECT_LE(*r.resync_after, 2000ms);
      clock_.advance(*r.resync_after);
      r = syncer_->sync(p);
    }
    const auto waited = clock_.now() - t0;
    EXPECT_GE(waited, backoff);
    EXPECT_LE(waited, backoff + 10ms);
  }
  EXPECT_EQ(statusOf(syncer_->sync(p), "crash").restart_count(), 4);
}

TEST_F(RuntimePodSyncerTest, RestartPolicies) {
  // Never: an exit is final; all zero is Succeeded.
  core::Pod never = pod("Never", "  - {name: job, image: \"busybox:1.36\"}\n");
  syncer_->sync(never);
  runtime_.exitContainer("job", 0);
  PodSyncResult r = syncer_->sync(never);
  EXPECT_EQ(r.status.phase(), "Succeeded");
  EXPECT_EQ(condition(r, "Ready"), "False");
  EXPECT_EQ(statusOf(r, "job").state().terminated().reason(), "Completed");
  EXPECT_FALSE(r.resync_after);

  core::Pod never_fails = pod("Never", "  - {name: job, image: \"busybox:1.36\"}\n");
  never_fails.mutable_metadata()->set_uid("uid-never-fails");
  syncer_->sync(never_fails);
  runtime_.exitContainer("job", 3);
  r = syncer_->sync(never_fails);
  EXPECT_EQ(r.status.phase(), "Failed");
  EXPECT_EQ(statusOf(r, "job").state().terminated().exit_code(), 3);
  EXPECT_EQ(statusOf(r, "job").restart_count(), 0);

  // OnFailure: a failure restarts, success ends it.
  core::Pod on_failure = pod("OnFailure", "  - {name: job, image: \"busybox:1.36\"}\n");
  on_failure.mutable_metadata()->set_uid("uid-on-failure");
  syncer_->sync(on_failure);
  runtime_.exitContainer("job", 1);
  r = syncer_->sync(on_failure);
  EXPECT_EQ(statusOf(r, "job").restart_count(), 1);
  EXPECT_EQ(r.status.phase(), "Running");
  runtime_.exitContainer("job", 0);
  r = syncer_->sync(on_failure);
  EXPECT_EQ(r.status.phase(), "Succeeded");
  EXPECT_EQ(statusOf(r, "job").restart_count(), 1);

  // Always: even exit 0 restarts.
  core::Pod always = pod("Always", "  - {name: job, image: \"busybox:1.36\"}\n");
  always.mutable_metadata()->set_uid("uid-always");
  syncer_->sync(always);
  runtime_.exitContainer("job", 0);
  r = syncer_->sync(always);
  EXPECT_EQ(statusOf(r, "job").restart_count(), 1);
  EXPECT_EQ(r.status.phase(), "Running");
}

TEST_F(RuntimePodSyncerTest, ImageAndCreateErrorsBecomeReasonsNotExceptions) {
  // A pull that fails: ErrImagePull, then ImagePullBackOff until the back-off ends.
  core::Pod p = pod("Always", R"(  - {name: missing, image: "example.com/nope:v1"}
  - {name: never, image: "example.com/absent:v1", imagePullPolicy: Never}
  - {name: badcmd, image: "busybox:1.36", command: [/bin/does-not-exist]}
  - {name: badname, image: "UPPER CASE"}
)");
  PodSyncResult r = syncer_->sync(p);
  EXPECT_EQ(r.status.phase(), "Pending");
  EXPECT_EQ(statusOf(r, "missing").state().waiting().reason(), "ErrImagePull");
  EXPECT_NE(statusOf(r, "missing").state().waiting().message().find("not found"),
            std::string::npos);
  EXPECT_TRUE(hasEvent(r, "Pulling", "example.com/nope:v1"));
  EXPECT_TRUE(hasEvent(r, "Failed", "Failed to pull image"));
  EXPECT_EQ(statusOf(r, "never").state().waiting().reason(), "ErrImageNeverPull");
  EXPECT_EQ(statusOf(r, "badcmd").state().waiting().reason(), "CreateContainerError");
  EXPECT_NE(statusOf(r, "badcmd").state().waiting().message().find("does-not-exist"),
            std::string::npos);
  EXPECT_EQ(statusOf(r, "badname").state().waiting().reason(), "InvalidImageName");
  EXPECT_EQ(images_.rootfsInUse(), 0u);  // nothing left of the failed create
  ASSERT_TRUE(r.resync_after);

  clock_.advance(5s);
  r = syncer_->sync(p);
  EXPECT_EQ(statusOf(r, "missing").state().waiting().reason(), "ImagePullBackOff");
  EXPECT_TRUE(hasEvent(r, "BackOff", "Back-off pulling image"));
  EXPECT_EQ(images_.pulls().size(), 1u);

  // Once the registry has it, the next try after the back-off pulls and starts it.
  images_.allowPull("example.com/nope:v1");
  clock_.advance(6s);
  r = syncer_->sync(p);
  EXPECT_TRUE(statusOf(r, "missing").state().has_running());
  EXPECT_TRUE(hasEvent(r, "Pulled", "Successfully pulled image \"example.com/nope:v1\""));
  EXPECT_EQ(images_.pulls().size(), 2u);
}

TEST_F(RuntimePodSyncerTest, PullPolicies) {
  images_.allowPull("busybox:1.36");
  images_.allowPull("busybox:latest");
  images_.store("busybox:latest");
  syncer_->sync(pod("Always", R"(  - {name: a, image: "busybox:1.36"}
  - {name: b, image: "busybox:1.36", imagePullPolicy: Always}
  - {name: c, image: "busybox"}
)"));
  // a: IfNotPresent by default for a tag, present; b: Always; c: :latest defaults to Always.
  EXPECT_EQ(images_.pulls(), (std::vector<std::string>{"docker.io/library/busybox:1.36",
                                                       "docker.io/library/busybox:latest"}));
}

TEST_F(RuntimePodSyncerTest, SandboxFailureIsAnEventAndNothingStarts) {
  network_.failSetUp(true);
  const core::Pod p = pod("Always", kTwoContainers);
  PodSyncResult r = syncer_->sync(p);
  EXPECT_EQ(r.status.phase(), "Pending");
  EXPECT_EQ(condition(r, "PodReadyToStartContainers"), "False");
  EXPECT_TRUE(hasEvent(r, "FailedCreatePodSandBox", "Operation not permitted"));
  EXPECT_TRUE(runtime_.created().empty());
  EXPECT_EQ(statusOf(r, "web").state().waiting().reason(), "ContainerCreating");
  network_.failSetUp(false);
  r = syncer_->sync(p);
  EXPECT_EQ(r.status.phase(), "Running");
  EXPECT_EQ(condition(r, "PodReadyToStartContainers"), "True");
}

TEST_F(RuntimePodSyncerTest, ReadinessDrivesReadyAndLivenessRestarts) {
  const core::Pod p = pod("Always", R"(  - name: web
    image: "busybox:1.36"
    readinessProbe: {exec: {command: [ready]}, periodSeconds: 5, failureThreshold: 1}
    livenessProbe: {exec: {command: [alive]}, periodSeconds: 3, failureThreshold: 2}
)");
  prober_.set("web", "ready", false);
  PodSyncResult r = syncer_->sync(p);
  EXPECT_FALSE(statusOf(r, "web").ready());  // not probed yet
  EXPECT_EQ(condition(r, "Ready"), "False");
  r = syncer_->sync(p);  // probes are due at once (no initialDelaySeconds)
  EXPECT_EQ(prober_.runs("web", "ready"), 1);
  EXPECT_FALSE(statusOf(r, "web").ready());
  EXPECT_EQ(condition(r, "ContainersReady"), "False");
  EXPECT_TRUE(hasEvent(r, "Unhealthy", "Readiness probe failed"));
  ASSERT_TRUE(r.resync_after);
  EXPECT_LE(*r.resync_after, 2000ms);

  prober_.set("web", "ready", true);
  clock_.advance(5s);
  r = syncer_->sync(p);
  EXPECT_TRUE(statusOf(r, "web").ready());
  EXPECT_EQ(condition(r, "Ready"), "True");
  EXPECT_EQ(prober_.runs("web", "ready"), 2);
  r = syncer_->sync(p);  // not due: not run again
  EXPECT_EQ(prober_.runs("web", "ready"), 2);

  // Two liveness failures in a row: killed and restarted.
  prober_.set("web", "alive", false);
  clock_.advance(3s);
  r = syncer_->sync(p);
  EXPECT_TRUE(statusOf(r, "web").state().has_running());
  EXPECT_EQ(statusOf(r, "web").restart_count(), 0);
  clock_.advance(3s);
  r = syncer_->sync(p);
  EXPECT_TRUE(hasEvent(r, "Killing", "failed liveness probe, will be restarted"));
  EXPECT_EQ(statusOf(r, "web").restart_count(), 1);
  EXPECT_EQ(statusOf(r, "web").last_state().terminated().exit_code(), 128 + SIGTERM);
  EXPECT_FALSE(statusOf(r, "web").ready());  // the new container is probed afresh
}

TEST_F(RuntimePodSyncerTest, StartupProbeHoldsBackTheOthers) {
  const core::Pod p = pod("Always", R"(  - name: slow
    image: "busybox:1.36"
    startupProbe: {exec: {command: [startup]}, periodSeconds: 1, failureThreshold: 30}
    readinessProbe: {exec: {command: [ready]}, periodSeconds: 1}
)");
  prober_.set("slow", "startup", false);
  syncer_->sync(p);
  PodSyncResult r = syncer_->sync(p);
  EXPECT_FALSE(statusOf(r, "slow").started());
  EXPECT_EQ(prober_.runs("slow", "ready"), 0);
  prober_.set("slow", "startup", true);
  clock_.advance(1s);
  r = syncer_->sync(p);
  EXPECT_TRUE(statusOf(r, "slow").started());
  EXPECT_TRUE(statusOf(r, "slow").ready());
  EXPECT_EQ(prober_.runs("slow", "ready"), 1);
}

TEST_F(RuntimePodSyncerTest, HostNetworkVolumesAndEnvReachTheContainerConfig) {
  const core::Pod host = pod("Always", R"yaml(  - name: agent
    image: "busybox:1.36"
    env: [{name: ME, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
    volumeMounts: [{name: scratch, mountPath: /scratch, subPath: a}]
)yaml",
                             R"yaml(  hostNetwork: true
  volumes: [{name: scratch, emptyDir: {}}]
)yaml");
  const PodSyncResult r = syncer_->sync(host);
  EXPECT_EQ(r.status.phase(), "Running");
  EXPECT_EQ(r.status.pod_ip(), "192.168.0.10");  // the node's
  EXPECT_EQ(network_.setups(), 0);
  const ContainerConfig c = runtime_.config(runtime_.running("agent"));
  EXPECT_TRUE(c.host_network);
  EXPECT_NE(std::find(c.env.begin(), c.env.end(), "ME=192.168.0.10"), c.env.end());
  ASSERT_EQ(c.mounts.size(), 1u);  // no managed /etc/hosts on the host's network
  EXPECT_EQ(c.mounts[0].destination, "/scratch");
  EXPECT_EQ(c.mounts[0].source,
            syncer_->podDir("0b9e5a4c-1111-2222-3333-444455556666") + "/volumes/scratch/a");

  // A missing configMap: FailedMount, nothing starts, no exception.
  core::Pod cm = pod("Always", "  - {name: app, image: \"busybox:1.36\"}\n",
                     "  volumes: [{name: conf, configMap: {name: web}}]\n");
  cm.mutable_metadata()->set_uid("uid-cm");
  const PodSyncResult failed = syncer_->sync(cm);
  EXPECT_TRUE(hasEvent(failed, "FailedMount", "volume \"conf\""));
  EXPECT_EQ(failed.status.phase(), "Pending");
  EXPECT_TRUE(runtime_.running("app").empty());
}

TEST_F(RuntimePodSyncerTest, ANewSyncerAdoptsRunningContainersWithoutRestartingThem) {
  const core::Pod p = pod("Always", kTwoContainers);
  syncer_->sync(p);
  runtime_.exitContainer("side", 1);
  syncer_->sync(p);  // side restarted once
  const auto created = runtime_.created();
  ASSERT_EQ(created.size(), 3u);

  syncer_ = makeSyncer();  // the kubelet restarted
  EXPECT_EQ(syncer_->knownPodUids(),
            std::vector<std::string>{"0b9e5a4c-1111-2222-3333-444455556666"});
  const PodSyncResult r = syncer_->sync(p);
  EXPECT_EQ(runtime_.created(), created);
  EXPECT_EQ(r.status.phase(), "Running");
  EXPECT_EQ(statusOf(r, "web").container_id(), "skiff://" + created[0]);
  EXPECT_EQ(statusOf(r, "side").restart_count(), 1);
  EXPECT_EQ(statusOf(r, "side").last_state().terminated().exit_code(), 1);
  EXPECT_EQ(condition(r, "Ready"), "True");
  // The back-off survived too: the next crash waits.
  runtime_.exitContainer("side", 1);
  EXPECT_EQ(statusOf(syncer_->sync(p), "side").state().waiting().reason(), "CrashLoopBackOff");
}

TEST_F(RuntimePodSyncerTest, TerminateRunsPreStopStopsEverythingAndReleasesTheSandbox) {
  const core::Pod p = pod("Always", R"(  - name: web
    image: "busybox:1.36"
    lifecycle: {preStop: {exec: {command: [/bin/sh, -c, "echo bye"]}}}
  - {name: side, image: "busybox:1.36"}
)",
                          "  terminationGracePeriodSeconds: 7\n");
  syncer_->sync(p);
  ASSERT_EQ(network_.live(), 1u);
  PodSyncResult r = syncer_->terminate(p, 5s);
  ASSERT_EQ(runtime_.execs().size(), 1u);
  EXPECT_EQ(runtime_.execs()[0].second, (std::vector<std::string>{"/bin/sh", "-c", "echo bye"}));
  for (const auto& [id, grace] : runtime_.stops())
    EXPECT_GE(grace, 2s) << id;
  EXPECT_TRUE(hasEvent(r, "Killing", "Stopping container web"));
  EXPECT_EQ(r.status.phase(), "Failed");  // killed, not completed
  EXPECT_EQ(statusOf(r, "web").state().terminated().exit_code(), 128 + SIGTERM);
  EXPECT_TRUE(runtime_.list().empty());
  EXPECT_EQ(images_.rootfsInUse(), 0u);
  EXPECT_EQ(network_.live(), 0u);
  EXPECT_FALSE(fs::exists(syncer_->podDir("0b9e5a4c-1111-2222-3333-444455556666")));
  EXPECT_FALSE(fs::exists(dir_ + "/logs/default_web_0b9e5a4c-1111-2222-3333-444455556666"));
  EXPECT_TRUE(syncer_->knownPodUids().empty());
  // Idempotent.
  EXPECT_EQ(syncer_->terminate(p, 5s).status.phase(), "Failed");
}

TEST_F(RuntimePodSyncerTest, CleanupOrphanReleasesAPodKnownOnlyByUid) {
  const core::Pod p = pod("Always", kTwoContainers);
  syncer_->sync(p);
  syncer_ = makeSyncer();
  syncer_->cleanupOrphan("0b9e5a4c-1111-2222-3333-444455556666");
  EXPECT_TRUE(runtime_.list().empty());
  EXPECT_EQ(network_.live(), 0u);
  EXPECT_TRUE(syncer_->knownPodUids().empty());
  syncer_->cleanupOrphan("0b9e5a4c-1111-2222-3333-444455556666");  // idempotent
  EXPECT_THROW(syncer_->cleanupOrphan("../etc"), std::invalid_argument);
}

}  // namespace
}  // namespace skiff::kubelet

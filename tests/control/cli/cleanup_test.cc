// cleanupNode (control/cli/cleanup.h) on real pods: runc with skiff-shim, the busybox fixture
// image, pod sandboxes on a bridge in a network namespace this test process moves into first (the
// machine's interfaces are never touched), cgroups below /skiff-cleanup-test-<pid>. It runs as
// `skiff cleanup` after a crash (every container killed at once) and as `skiff up` on its way out
// (SIGTERM, the pod's grace capped by the shutdown grace, then SIGKILL), on N pods whose
// containers ignore SIGTERM, and checks that nothing is left (containers, processes, mounts,
// cgroups, network namespaces, veths, the bridge, IPs) and that the pods went in parallel: the time
// is bounded well below N times one pod's. Root only; skipped otherwise.

#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "control/api/codec.h"
#include "control/cli/cleanup.h"
#include "kubelet/images/image_store.h"
#include "kubelet/network/pod_network.h"
#include "kubelet/pods/runtime_pod_syncer.h"
#include "kubelet/runtime/runc_runtime.h"

namespace skiff::cli {
namespace {
namespace fs = std::filesystem;
namespace core = api::core::v1;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

bool sh(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

double secondsSince(Steady::time_point t0) {
  return std::chrono::duration<double>(Steady::now() - t0).count();
}

class CleanupNodeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      skip_ = "needs root (runc, network namespaces, mounts)";
      return;
    }
    if (!sh("command -v runc") || !sh("command -v umoci") || !fs::exists("/bin/busybox")) {
      skip_ = "needs runc, umoci and busybox-static";
      return;
    }
    // This thread (gtest runs every test on it) and whatever it starts from now on (runc, ip,
    // the syncer's threads) live in a network namespace of their own: the node bridge and the
    // pods' veths never reach the machine's.
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    ASSERT_TRUE(sh("ip link set lo up"));
    char tmpl[] = "/tmp/skiff-cleanup-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    const std::string script =
        std::string(SKIFF_SOURCE_DIR) + "/tests/fixtures/images/make-busybox-image.sh";
    ASSERT_TRUE(sh(script + " " + dir_ + "/layout v1"));
    kubelet::images::ImageStore(dir_ + "/images")
        .importPath(dir_ + "/layout", "example.com/test/busybox:v1");
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    test_dir_ = dir_ + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    options_.agent_data_dir = test_dir_ + "/agent";
    options_.pod_cidr = "10.252.10.0/24";
    options_.bridge = "skcln" + std::to_string(::getpid() % 100000);
    options_.cgroup_parent = "/skiff-cleanup-test-" + std::to_string(::getpid());
    options_.image_root = dir_ + "/images";
    options_.log_dir = test_dir_ + "/logs";
    options_.bpf_pin_dir = test_dir_ + "/no-bpf-pins";
    options_.run_dir = test_dir_ + "/run";
    // The agent's wiring, as `skiff agent` makes it over the same directories.
    store_ = std::make_unique<kubelet::images::ImageStore>(options_.image_root);
    runtime_ = std::make_unique<kubelet::RuncRuntime>(
        kubelet::RuncOptions{.root = options_.run_dir + "/runc",
                             .state_dir = options_.run_dir + "/containers",
                             .shim = SKIFF_SHIM_PATH});
    kubelet::network::PodNetworkOptions net;
    net.pod_cidr = options_.pod_cidr;
    net.bridge = options_.bridge;
    net.netns_dir = options_.run_dir + "/netns";
    net.ipam_dir = options_.agent_data_dir + "/ipam";
    network_ = std::make_unique<kubelet::network::PodNetworkManager>(net);
    kubelet::RuntimePodSyncerOptions o;
    o.node_name = "node-1";
    o.host_ip = "10.252.10.1";
    o.root_dir = options_.agent_data_dir;
    o.log_dir = options_.log_dir;
    o.cgroup_parent = options_.cgroup_parent;
    syncer_ =
        std::make_unique<kubelet::RuntimePodSyncer>(o, *store_, *runtime_, *network_, nullptr);
  }

  void TearDown() override {
    if (!skip_.empty()) return;
    // Whatever a failed test left: the same cleanup, so the next test starts from nothing.
    syncer_.reset();
    network_.reset();
    runtime_.reset();
    store_.reset();
    std::ostringstream ignored;
    cleanupNode(options_, ignored);
    fs::remove_all(test_dir_);
  }

  // Starts `n` pods named PREFIX-0.. from `spec` (@NAME@ in it becomes the pod's name) and waits
  // until every container runs; records the containers' init pids.
  void startPods(int n, const std::string& prefix, const std::string& spec) {
    std::vector<core::Pod> pods;
    const size_t first_pid = pids_.size();
    for (int i = 0; i < n; ++i) {
      const std::string name = prefix + "-" + std::to_string(i);
      std::string pod_spec = spec;
      for (size_t at; (at = pod_spec.find("@NAME@")) != std::string::npos;)
        pod_spec.replace(at, 6, name);
      core::Pod pod;
      api::decodeYaml("metadata: {name: " + name + ", namespace: default, uid: uid-" + name +
                          "}\nspec:\n" + pod_spec,
                      pod);
      pods.push_back(pod);
      uids_.push_back("uid-" + name);
    }
    const auto deadline = Steady::now() + 60s;
    for (const auto& pod : pods) {
      while (true) {
        const kubelet::PodSyncResult r = syncer_->sync(pod);
        bool running = r.status.container_statuses_size() > 0;
        for (const auto& c : r.status.container_statuses())
          running = running && c.state().has_running();
        if (running) break;
        ASSERT_LT(Steady::now(), deadline)
            << "pod " << pod.metadata().name() << " does not run: " << r.status.DebugString();
        std::this_thread::sleep_for(50ms);
      }
    }
    for (const auto& id : runtime_->list()) {
      if (!id.starts_with("uid-" + prefix + "-")) continue;
      const kubelet::ContainerStatus st = runtime_->status(id);
      ASSERT_EQ(st.state, kubelet::ContainerState::kRunning) << id;
      pids_.push_back(st.pid);
    }
    ASSERT_EQ(pids_.size() - first_pid, static_cast<size_t>(n)) << "one container per pod";
  }

  // What the agent holds is dropped, as when `skiff agent` stopped (or crashed): cleanupNode
  // finds the pods through their state on disk.
  void stopAgent() {
    syncer_.reset();
    network_.reset();
    runtime_.reset();
    store_.reset();
  }

  void expectNothingLeft() {
    for (int pid : pids_) {
      EXPECT_NE(::kill(pid, 0), 0) << "container process " << pid << " still runs";
    }
    std::error_code ec;
    EXPECT_TRUE(fs::is_empty(options_.run_dir + "/containers", ec) || ec) << "container state";
    EXPECT_TRUE(fs::is_empty(options_.run_dir + "/runc", ec) || ec) << "runc state";
    EXPECT_TRUE(fs::is_empty(options_.run_dir + "/netns", ec) || ec) << "network namespaces";
    EXPECT_TRUE(fs::is_empty(options_.agent_data_dir + "/pods", ec) || ec) << "pod state";
    EXPECT_FALSE(fs::exists(options_.agent_data_dir + "/ipam")) << "IP allocations";
    EXPECT_EQ(::if_nametoindex(options_.bridge.c_str()), 0u) << "bridge " << options_.bridge;
    for (const auto& uid : uids_) {
      const std::string veth = kubelet::network::PodNetworkManager::hostVethName(uid);
      EXPECT_EQ(::if_nametoindex(veth.c_str()), 0u) << "veth " << veth << " of " << uid;
    }
    for (const auto& h : fs::directory_iterator("/sys/fs/cgroup")) {
      EXPECT_FALSE(fs::exists(h.path().string() + options_.cgroup_parent)) << h.path();
    }
    EXPECT_FALSE(fs::exists("/sys/fs/cgroup" + options_.cgroup_parent));
    EXPECT_EQ(readFile("/proc/self/mountinfo").find(test_dir_), std::string::npos)
        << "mounts below " << test_dir_;
  }

  static inline std::string skip_;
  static inline std::string dir_;
  std::string test_dir_;
  CleanupOptions options_;
  std::unique_ptr<kubelet::images::ImageStore> store_;
  std::unique_ptr<kubelet::RuncRuntime> runtime_;
  std::unique_ptr<kubelet::network::PodNetworkManager> network_;
  std::unique_ptr<kubelet::RuntimePodSyncer> syncer_;
  std::vector<std::string> uids_;
  std::vector<int> pids_;
};

constexpr int kPods = 12;

// `skiff cleanup` after a crash: containers that ignore SIGTERM (sleep as a pid namespace's init
// has no handler) are killed at once, the pods released in parallel.
TEST_F(CleanupNodeTest, CrashLeftoversAreKilledAtOnceAndInParallel) {
  startPods(kPods, "idle", R"(
  terminationGracePeriodSeconds: 30
  containers:
  - {name: idle, image: example.com/test/busybox:v1, command: [/bin/sleep, "3600"]}
)");
  ASSERT_EQ(pids_.size(), static_cast<size_t>(kPods));
  stopAgent();
  std::ostringstream progress;
  const auto t0 = Steady::now();
  const auto problems = cleanupNode(options_, progress);
  const double took = secondsSince(t0);
  std::cout << "cleanupNode of " << kPods << " pods (SIGKILL): " << took << " s\n"
            << progress.str();
  EXPECT_TRUE(problems.empty()) << problems.front();
  EXPECT_NE(progress.str().find("pods removed: " + std::to_string(kPods)), std::string::npos)
      << progress.str();
  expectNothingLeft();
  // One pod alone takes a few hundred milliseconds of runc and ip here; one after another with
  // a grace period each they took about 3 s apiece.
  EXPECT_LT(took, 0.4 * kPods);
}

// When each of `pids` ended (seconds after `t0`), watched every 10 ms from another thread until
// stop() (a process is gone once kill(pid, 0) fails: the shim reaps its container at once).
class DeathWatch {
 public:
  DeathWatch(std::vector<int> pids, Steady::time_point t0)
      : pids_(std::move(pids)), died_(pids_.size(), -1), t0_(t0), thread_([this] { run(); }) {}
  ~DeathWatch() { stop(); }
  void stop() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }
  double diedAt(size_t i) const { return died_[i]; }

 private:
  void run() {
    while (!done_) {
      for (size_t i = 0; i < pids_.size(); ++i) {
        if (died_[i] < 0 && ::kill(pids_[i], 0) != 0) died_[i] = secondsSince(t0_);
      }
      std::this_thread::sleep_for(10ms);
    }
  }
  std::vector<int> pids_;
  std::vector<double> died_;
  Steady::time_point t0_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// `skiff up` on its way out, with a shutdown grace of 3 s: every container gets SIGTERM at once;
// one that exits on it goes then, one that ignores it is killed when its pod's grace (capped by
// the shutdown grace) ends, all pods side by side.
TEST_F(CleanupNodeTest, ShutdownSendsSigtermThenSigkillAfterTheCappedGraceInParallel) {
  const std::string out = test_dir_ + "/out";
  fs::create_directories(out);
  constexpr int kEach = 4;
  // Exits on SIGTERM, leaving a mark on the host (wait returns as the trapped signal arrives).
  startPods(kEach, "polite",
            R"(
  terminationGracePeriodSeconds: 30
  volumes: [{name: out, hostPath: {path: )" +
                out + R"(}}]
  containers:
  - name: polite
    image: example.com/test/busybox:v1
    command: [/bin/sh, -c, "trap 'touch /out/@NAME@; exit 0' TERM; sleep 3600 & wait"]
    volumeMounts: [{name: out, mountPath: /out}]
)");
  // Ignore SIGTERM: the shutdown grace caps their 30 s.
  startPods(kEach, "stubborn", R"(
  terminationGracePeriodSeconds: 30
  containers:
  - {name: idle, image: example.com/test/busybox:v1, command: [/bin/sleep, "3600"]}
)");
  // Ignores SIGTERM too, but its own grace (1 s) is shorter than the shutdown's.
  startPods(kEach, "brief", R"(
  terminationGracePeriodSeconds: 1
  containers:
  - {name: idle, image: example.com/test/busybox:v1, command: [/bin/sleep, "3600"]}
)");
  ASSERT_EQ(pids_.size(), static_cast<size_t>(3 * kEach));
  stopAgent();
  options_.shutdown_grace = 3s;
  std::ostringstream progress;
  const auto t0 = Steady::now();
  DeathWatch deaths(pids_, t0);
  const auto problems = cleanupNode(options_, progress);
  const double took = secondsSince(t0);
  std::this_thread::sleep_for(20ms);
  deaths.stop();
  std::cout << "cleanupNode of " << 3 * kEach << " pods (shutdown grace 3 s): " << took << " s\n"
            << progress.str();
  EXPECT_TRUE(problems.empty()) << problems.front();
  for (int i = 0; i < kEach; ++i) {
    const std::string name = "polite-" + std::to_string(i);
    EXPECT_TRUE(fs::exists(out + "/" + name)) << name << " got no SIGTERM";
    EXPECT_GE(deaths.diedAt(i), 0) << name;
    EXPECT_LT(deaths.diedAt(i), 1.0) << name << " exited on SIGTERM but went late";
    EXPECT_GE(deaths.diedAt(kEach + i), 2.9) << "stubborn-" << i << " killed before the grace";
    EXPECT_LT(deaths.diedAt(kEach + i), 4.5) << "stubborn-" << i;
    EXPECT_GE(deaths.diedAt(2 * kEach + i), 0.9) << "brief-" << i << " killed before its grace";
    EXPECT_LT(deaths.diedAt(2 * kEach + i), 2.5) << "brief-" << i;
  }
  expectNothingLeft();
  // One grace period for all, not one per pod (12 x 3 s).
  EXPECT_GE(took, 2.9);
  EXPECT_LT(took, 6.0);
}

}  // namespace
}  // namespace skiff::cli

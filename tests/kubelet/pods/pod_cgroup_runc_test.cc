// The pod cgroup on the real things: RuntimePodSyncer with runc and skiff-shim, the busybox fixture
// image, sandboxes in a "node" network namespace the test makes. The pod cgroups go below a
// parent of the test's own, /skiff-test-cg-<pid>, in every hierarchy; the machine's root cgroup
// is only read. The values are read where the controller lives: the v2 tree when it has it, else
// the v1 hierarchy (this machine is hybrid: cpu, memory and pids are v1). Root only; skipped
// otherwise.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
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

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

const std::string kRoot = "/sys/fs/cgroup";

// The cgroup v2 mount: the root itself (unified) or its "unified" directory (hybrid).
std::string v2Mount() {
  return fs::exists(kRoot + "/cgroup.controllers") ? kRoot : kRoot + "/unified";
}

bool inV2(const std::string& controller) {
  std::istringstream in(readFile(v2Mount() + "/cgroup.controllers"));
  for (std::string w; in >> w;)
    if (w == controller) return true;
  return false;
}

// Every directory named `path` (a cgroup below the hierarchies' roots) in any hierarchy.
std::vector<std::string> everywhere(const std::string& path) {
  std::vector<std::string> out;
  std::set<std::string> roots = {v2Mount()};
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(kRoot, ec))
    if (!e.is_symlink(ec) && e.is_directory(ec)) roots.insert(e.path().string());
  for (const auto& r : roots) {
    if (fs::is_directory(r + path, ec)) out.push_back(r + path);
  }
  return out;
}

// The pod-level values, in v2 terms ("max" for unlimited) whichever hierarchy holds them.
struct PodCgroupValues {
  std::string memory_max;  // v2 memory.max / v1 memory.limit_in_bytes
  std::string cpu_max;     // v2 cpu.max / v1 "<cfs_quota_us> <cfs_period_us>"
  std::string cpu_weight;  // v2 cpu.weight, or "" on v1
  std::string cpu_shares;  // v1 cpu.shares, or "" on v2
  std::string pids_max;
};

PodCgroupValues valuesOf(const std::string& path) {
  PodCgroupValues v;
  if (inV2("memory")) {
    v.memory_max = trimmed(readFile(v2Mount() + path + "/memory.max"));
  } else {
    v.memory_max = trimmed(readFile(kRoot + "/memory" + path + "/memory.limit_in_bytes"));
    // v1 writes "unlimited" back as the page counter's maximum.
    if (!v.memory_max.empty() && std::stoull(v.memory_max) >= (1ULL << 62)) v.memory_max = "max";
  }
  if (inV2("cpu")) {
    v.cpu_max = trimmed(readFile(v2Mount() + path + "/cpu.max"));
    v.cpu_weight = trimmed(readFile(v2Mount() + path + "/cpu.weight"));
  } else {
    const std::string cpu = fs::exists(kRoot + "/cpu,cpuacct") ? "/cpu,cpuacct" : "/cpu";
    const std::string quota = trimmed(readFile(kRoot + cpu + path + "/cpu.cfs_quota_us"));
    v.cpu_max = (quota == "-1" ? "max" : quota) + " " +
                trimmed(readFile(kRoot + cpu + path + "/cpu.cfs_period_us"));
    v.cpu_shares = trimmed(readFile(kRoot + cpu + path + "/cpu.shares"));
  }
  v.pids_max = trimmed(readFile((inV2("pids") ? v2Mount() : kRoot + "/pids") + path + "/pids.max"));
  return v;
}

const core::ContainerStatus* statusOf(const PodSyncResult& r, const std::string& name) {
  for (const auto& c : r.status.container_statuses())
    if (c.name() == name) return &c;
  return nullptr;
}

class PodCgroupRuncTest : public runc_fixture::RuncPodTest {
 protected:
  static void SetUpTestSuite() {
    setUpSuite("runc, network namespaces, cgroups", "/tmp/skiff-podcgroup-runc-XXXXXX");
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    setUpNode("10.252.11.0/24");
    cgroup_parent_ = "/skiff-test-cg-" + std::to_string(::getpid());
    makeSyncer();
  }

  void makeSyncer() {
    RuntimePodSyncerOptions o = newRuntime("10.252.11.1");
    o.pod_max_pids = 128;
    o.backoff_base = 200ms;
    o.default_grace = 1s;
    if (gate_services_) {
      o.services = [this](const std::string&) -> std::optional<std::vector<core::Service>> {
        if (!services_listed_) return std::nullopt;
        return std::vector<core::Service>{};
      };
    }
    syncer_ = std::make_unique<RuntimePodSyncer>(o, *store_, *runtime_, *network_, nullptr);
  }

  void TearDown() override {
    if (!skip_.empty()) return;
    terminatePods();
    for (const auto& d : everywhere(cgroup_parent_))
      EXPECT_EQ(::rmdir(d.c_str()), 0) << d << ": " << std::strerror(errno);
    fs::remove_all(test_dir_);
  }

  PodSyncResult syncUntilRunning(const core::Pod& p, const std::vector<std::string>& containers) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    PodSyncResult r;
    while (true) {
      r = syncer_->sync(p);
      bool all = true;
      for (const auto& c : containers)
        all = all && statusOf(r, c) != nullptr && statusOf(r, c)->state().has_running();
      if (all || std::chrono::steady_clock::now() >= deadline) return r;
      std::this_thread::sleep_for(100ms);
    }
  }

  std::string podPath(const core::Pod& p) const {
    return cgroup_parent_ + "/pod" + p.metadata().uid();
  }

  bool gate_services_ = false;
  std::atomic<bool> services_listed_ = false;
};

constexpr const char* kTwoLimited = R"(
  terminationGracePeriodSeconds: 1
  containers:
  - name: big
    image: example.com/test/busybox:v1
    command: [/bin/busybox, sleep, "1000"]
    resources: {limits: {cpu: 250m, memory: 64Mi}}
  - name: small
    image: example.com/test/busybox:v1
    command: [/bin/busybox, sleep, "1000"]
    resources: {limits: {cpu: 250m, memory: 32Mi}}
)";

TEST_F(PodCgroupRuncTest, TwoLimitedContainersAddUpAtThePodLevel) {
  const core::Pod p = pod("limited", kTwoLimited);
  PodSyncResult r = syncUntilRunning(p, {"big", "small"});
  ASSERT_TRUE(statusOf(r, "big")->state().has_running()) << r.status.DebugString();
  ASSERT_TRUE(statusOf(r, "small")->state().has_running()) << r.status.DebugString();
  const PodCgroupValues v = valuesOf(podPath(p));
  EXPECT_EQ(v.memory_max, "100663296");
  EXPECT_EQ(v.cpu_max, "50000 100000");
  if (inV2("cpu")) {
    EXPECT_EQ(v.cpu_weight, "20");  // 512 shares
  } else {
    EXPECT_EQ(v.cpu_shares, "512");
  }
  EXPECT_EQ(v.pids_max, "128");
  // runc put each container below the pod cgroup, with its own limit.
  const std::string big = statusOf(r, "big")->container_id();
  const std::string id = big.substr(big.find("://") + 3);
  EXPECT_FALSE(everywhere(podPath(p) + "/" + id).empty());
  const PodCgroupValues c = valuesOf(podPath(p) + "/" + id);
  EXPECT_EQ(c.memory_max, "67108864");
  EXPECT_EQ(c.cpu_max, "25000 100000");

  const std::vector<std::string> dirs = everywhere(podPath(p));
  EXPECT_GE(dirs.size(), 3u);  // at least cpu, memory and pids
  syncer_->terminate(p, 1s);
  pods_.clear();
  EXPECT_TRUE(everywhere(podPath(p)).empty());
  EXPECT_TRUE(runtime_->list().empty());
}

TEST_F(PodCgroupRuncTest, BestEffortGetsTheMinimumWeightAndNoMemoryLimit) {
  const core::Pod p = pod("besteffort", R"(
  terminationGracePeriodSeconds: 1
  containers:
  - {name: app, image: example.com/test/busybox:v1, command: [/bin/busybox, sleep, "1000"]}
)");
  PodSyncResult r = syncUntilRunning(p, {"app"});
  ASSERT_TRUE(statusOf(r, "app")->state().has_running()) << r.status.DebugString();
  const PodCgroupValues v = valuesOf(podPath(p));
  EXPECT_EQ(v.memory_max, "max");
  EXPECT_EQ(v.cpu_max, "max 100000");
  if (inV2("cpu")) {
    EXPECT_EQ(v.cpu_weight, "1");
  } else {
    EXPECT_EQ(v.cpu_shares, "2");
  }
  syncer_->terminate(p, 1s);
  pods_.clear();
  EXPECT_TRUE(everywhere(podPath(p)).empty());
}

TEST_F(PodCgroupRuncTest, ARestartedSyncerWritesTheConfigAgain) {
  const core::Pod p = pod("adopted", kTwoLimited);
  PodSyncResult r = syncUntilRunning(p, {"big", "small"});
  ASSERT_TRUE(statusOf(r, "small")->state().has_running()) << r.status.DebugString();
  const std::string id = statusOf(r, "small")->container_id();
  // Someone raised the pod's memory limit while the kubelet was down.
  const std::string memory_file = inV2("memory")
                                      ? v2Mount() + podPath(p) + "/memory.max"
                                      : kRoot + "/memory" + podPath(p) + "/memory.limit_in_bytes";
  std::ofstream(memory_file) << "536870912";
  ASSERT_EQ(valuesOf(podPath(p)).memory_max, "536870912");

  makeSyncer();  // a restarted kubelet over the same directories
  r = syncer_->sync(p);
  EXPECT_EQ(statusOf(r, "small")->container_id(), id);  // adopted, not restarted
  EXPECT_EQ(valuesOf(podPath(p)).memory_max, "100663296");
  EXPECT_EQ(valuesOf(podPath(p)).cpu_max, "50000 100000");
}

TEST_F(PodCgroupRuncTest, APodCgroupThatWentMissingIsMadeAgainBeforeTheNextContainer) {
  gate_services_ = true;
  makeSyncer();
  const core::Pod p = pod("remade", kTwoLimited);
  // The Services are not listed yet: no container starts, but the pod cgroup is there.
  PodSyncResult r = syncer_->sync(p);
  ASSERT_EQ(statusOf(r, "big")->state().waiting().reason(), "CreateContainerConfigError")
      << r.status.DebugString();
  EXPECT_TRUE(runtime_->list().empty());
  EXPECT_EQ(valuesOf(podPath(p)).memory_max, "100663296");
  const std::vector<std::string> dirs = everywhere(podPath(p));
  ASSERT_FALSE(dirs.empty());
  for (const auto& d : dirs)
    ASSERT_EQ(::rmdir(d.c_str()), 0) << d << ": " << std::strerror(errno);

  services_listed_ = true;
  r = syncUntilRunning(p, {"big", "small"});
  ASSERT_TRUE(statusOf(r, "big")->state().has_running()) << r.status.DebugString();
  const PodCgroupValues v = valuesOf(podPath(p));
  EXPECT_EQ(v.memory_max, "100663296");
  EXPECT_EQ(v.cpu_max, "50000 100000");
  EXPECT_EQ(v.pids_max, "128");
}

}  // namespace
}  // namespace skiff::kubelet

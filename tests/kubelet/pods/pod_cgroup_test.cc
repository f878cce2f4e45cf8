// The pod cgroup's resource config (Kubernetes' ResourceConfigForPod) as a table, the shares ->
// weight conversion, and the files applyPodCgroup writes into a fake tree of hierarchies.

#include "kubelet/pods/pod_cgroup.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "control/api/codec.h"

namespace skiff::kubelet {
namespace {
namespace fs = std::filesystem;
namespace core = api::core::v1;

core::PodSpec specFromYaml(const std::string& yaml) {
  core::PodSpec spec;
  api::decodeYaml(yaml, spec);
  return spec;
}

struct ConfigCase {
  const char* name;
  const char* spec;
  int64_t pod_max_pids;
  PodResourceConfig want;
};

class PodResourceConfigTable : public ::testing::TestWithParam<ConfigCase> {};

TEST_P(PodResourceConfigTable, MatchesTheKubelet) {
  const ConfigCase& c = GetParam();
  EXPECT_EQ(podResourceConfig(specFromYaml(c.spec), c.pod_max_pids), c.want);
}

// {qos, shares, quota, period, memory, pids}
const ConfigCase kConfigCases[] = {
    {"Guaranteed",
     R"(
containers:
- {name: a, resources: {limits: {cpu: 250m, memory: 64Mi}}}
- {name: b, resources: {limits: {cpu: 250m, memory: 32Mi}, requests: {cpu: 250m, memory: 32Mi}}}
)",
     -1,
     {"Guaranteed", 512, 50000, 100000, 100663296, std::nullopt}},
    {"BurstableWithAllLimits",
     R"(
containers:
- {name: a, resources: {requests: {cpu: 100m, memory: 16Mi}, limits: {cpu: "1", memory: 64Mi}}}
- {name: b, resources: {requests: {cpu: 50m}, limits: {cpu: 500m, memory: 32Mi}}}
)",
     -1,
     {"Burstable", 153, 150000, 100000, 100663296, std::nullopt}},
    {"BurstableOneContainerWithoutLimits",
     R"(
containers:
- {name: a, resources: {requests: {cpu: 100m, memory: 16Mi}, limits: {cpu: "1", memory: 64Mi}}}
- {name: b, resources: {requests: {cpu: 200m}}}
)",
     -1,
     {"Burstable", 307, std::nullopt, 100000, std::nullopt, std::nullopt}},
    {"BurstableCpuLimitsOnly",
     R"(
containers:
- {name: a, resources: {limits: {cpu: 300m}}}
- {name: b, resources: {limits: {cpu: 200m}, requests: {memory: 8Mi}}}
)",
     -1,
     {"Burstable", 512, 50000, 100000, std::nullopt, std::nullopt}},
    {"BestEffort",
     R"(
containers:
- {name: a}
- {name: b, resources: {}}
)",
     -1,
     {"BestEffort", 2, std::nullopt, 100000, std::nullopt, std::nullopt}},
    {"BestEffortWithPodMaxPids",
     "containers: [{name: a}]\n",
     1024,
     {"BestEffort", 2, std::nullopt, 100000, std::nullopt, 1024}},
    {"InitContainerLargerThanTheSum",
     R"(
initContainers:
- {name: setup, resources: {limits: {cpu: "2", memory: 1Gi}}}
containers:
- {name: a, resources: {limits: {cpu: 250m, memory: 64Mi}}}
- {name: b, resources: {limits: {cpu: 250m, memory: 32Mi}}}
)",
     -1,
     {"Guaranteed", 2048, 200000, 100000, 1073741824, std::nullopt}},
    {"InitContainerSmallerThanTheSum",
     R"(
initContainers:
- {name: setup, resources: {limits: {cpu: 100m, memory: 8Mi}}}
containers:
- {name: a, resources: {limits: {cpu: 250m, memory: 64Mi}}}
- {name: b, resources: {limits: {cpu: 250m, memory: 32Mi}}}
)",
     -1,
     {"Guaranteed", 512, 50000, 100000, 100663296, std::nullopt}},
    {"InitContainerWithoutLimitsLiftsThem",
     R"(
initContainers:
- {name: setup, resources: {requests: {cpu: 100m}}}
containers:
- {name: a, resources: {limits: {cpu: 250m, memory: 64Mi}}}
)",
     -1,
     {"Burstable", 256, std::nullopt, 100000, std::nullopt, std::nullopt}},
    {"SidecarAddsToTheSumAndToLaterInitContainers",
     R"(
initContainers:
- {name: proxy, restartPolicy: Always, resources: {limits: {cpu: 100m, memory: 16Mi}}}
- {name: setup, resources: {limits: {cpu: 500m, memory: 128Mi}}}
containers:
- {name: a, resources: {limits: {cpu: 250m, memory: 64Mi}}}
)",
     -1,
     // max(100m + 250m, 100m + 500m) = 600m; max(16Mi + 64Mi, 16Mi + 128Mi) = 144Mi.
     {"Guaranteed", 614, 60000, 100000, 150994944, std::nullopt}},
    {"OverheadAddsToRequestsAndToSetLimits",
     R"(
overhead: {cpu: 100m, memory: 10Mi}
containers:
- {name: a, resources: {limits: {cpu: 250m, memory: 64Mi}}}
- {name: b, resources: {limits: {cpu: 250m, memory: 32Mi}}}
)",
     -1,
     {"Guaranteed", 614, 60000, 100000, 111149056, std::nullopt}},
    {"OverheadLeavesUnsetLimitsUnset",
     R"(
overhead: {cpu: 100m, memory: 10Mi}
containers:
- {name: a, resources: {requests: {cpu: 150m}}}
)",
     -1,
     {"Burstable", 256, std::nullopt, 100000, std::nullopt, std::nullopt}},
    {"TinyLimitsHitTheFloors",
     R"(
containers:
- {name: a, resources: {limits: {cpu: 1m, memory: 4Mi}}}
)",
     -1,
     {"Guaranteed", 2, 1000, 100000, 4194304, std::nullopt}},
};

INSTANTIATE_TEST_SUITE_P(Cases, PodResourceConfigTable, ::testing::ValuesIn(kConfigCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(PodResourceConfig, ABadQuantityNamesItsField) {
  // The API server's decoder rejects such text; a pod from elsewhere (a file, a test) may carry it.
  core::PodSpec spec = specFromYaml("containers:\n- {name: a, resources: {limits: {cpu: 1}}}\n");
  (*spec.mutable_containers(0)->mutable_resources()->mutable_limits())["cpu"].set_string("1x");
  try {
    podResourceConfig(spec);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("spec.containers[0].resources.limits.cpu"),
              std::string::npos)
        << e.what();
  }
}

TEST(PodCgroupConversions, SharesToWeightAsRunc) {
  EXPECT_EQ(cpuSharesToWeight(2), 1u);
  EXPECT_EQ(cpuSharesToWeight(0), 1u);  // clamped to 2
  EXPECT_EQ(cpuSharesToWeight(512), 20u);
  EXPECT_EQ(cpuSharesToWeight(1024), 39u);
  EXPECT_EQ(cpuSharesToWeight(262144), 10000u);
  EXPECT_EQ(cpuSharesToWeight(1000000), 10000u);  // clamped to 262144
  EXPECT_EQ(milliCpuToShares(0), 2u);
  EXPECT_EQ(milliCpuToShares(1), 2u);
  EXPECT_EQ(milliCpuToShares(500), 512u);
  EXPECT_EQ(milliCpuToQuota(0, 100000), 0);
  EXPECT_EQ(milliCpuToQuota(5, 100000), 1000);
  EXPECT_EQ(milliCpuToQuota(1500, 100000), 150000);
}

class FakeCgroupTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-pod-cgroup-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& path, const std::string& text) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << text;
  }
  std::string read(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::string dir_;
};

TEST_F(FakeCgroupTree, UnifiedWritesV2FilesAndEnablesControllersInTheParentOnly) {
  const std::string root = dir_ + "/unified";
  // The levels above pass cpu, memory and pids down to /skiff; /skiff enables only cpu so far.
  write(root + "/cgroup.subtree_control", "cpu memory pids");
  write(root + "/skiff/cgroup.controllers", "cpu memory pids");
  write(root + "/skiff/cgroup.subtree_control", "cpu");
  const std::vector<CgroupHierarchy> h = {{root, true, {"cpu", "memory", "pids", "io"}}};
  const PodResourceConfig config{"Guaranteed", 512, 50000, 100000, 100663296, 256};
  const PodCgroupResult r = applyPodCgroup(h, "/skiff", "poduid-1", config);
  EXPECT_TRUE(r.unsupported.empty());
  EXPECT_EQ(r.dirs, std::vector<std::string>{root + "/skiff/poduid-1"});
  EXPECT_EQ(read(root + "/skiff/poduid-1/memory.max"), "100663296");
  EXPECT_EQ(read(root + "/skiff/poduid-1/cpu.max"), "50000 100000");
  EXPECT_EQ(read(root + "/skiff/poduid-1/cpu.weight"), "20");
  EXPECT_EQ(read(root + "/skiff/poduid-1/pids.max"), "256");
  // Written one controller at a time, as the kernel wants it; the fake file keeps the last.
  EXPECT_EQ(read(root + "/skiff/cgroup.subtree_control"), "+pids");
  const auto wrote = [&](const std::string& entry) {
    return std::find(r.written.begin(), r.written.end(), entry) != r.written.end();
  };
  EXPECT_TRUE(wrote(root + "/skiff/cgroup.subtree_control=+memory"));
  EXPECT_FALSE(wrote(root + "/skiff/cgroup.subtree_control=+cpu"));
  EXPECT_EQ(read(root + "/cgroup.subtree_control"), "cpu memory pids");  // the root: untouched
}

TEST_F(FakeCgroupTree, UnlimitedValuesAreWrittenAsMax) {
  const std::string root = dir_ + "/unified";
  write(root + "/skiff/cgroup.controllers", "cpu memory pids");
  write(root + "/skiff/cgroup.subtree_control", "cpu memory pids");
  const std::vector<CgroupHierarchy> h = {{root, true, {"cpu", "memory", "pids"}}};
  const PodResourceConfig best_effort{"BestEffort", 2,           std::nullopt, 100000,
                                      std::nullopt, std::nullopt};
  applyPodCgroup(h, "/skiff", "pod2", best_effort);
  EXPECT_EQ(read(root + "/skiff/pod2/memory.max"), "max");
  EXPECT_EQ(read(root + "/skiff/pod2/cpu.max"), "max 100000");
  EXPECT_EQ(read(root + "/skiff/pod2/cpu.weight"), "1");
  EXPECT_EQ(read(root + "/skiff/pod2/pids.max"), "max");
}

TEST_F(FakeCgroupTree, AControllerTheParentIsNotOfferedIsUnsupported) {
  // Hybrid: the v2 tree has only hugetlb; the parent is made but nothing is enabled or written.
  const std::string root = dir_ + "/unified";
  write(root + "/skiff/cgroup.controllers", "hugetlb");
  const std::vector<CgroupHierarchy> h = {{root, true, {"cpu", "memory", "hugetlb"}}};
  const PodCgroupResult r = applyPodCgroup(h, "/skiff", "pod3", {});
  EXPECT_EQ(r.unsupported, (std::vector<std::string>{"cpu", "memory", "pids"}));
  EXPECT_TRUE(r.dirs.empty());
  EXPECT_FALSE(fs::exists(root + "/skiff/pod3"));
  EXPECT_FALSE(fs::exists(root + "/skiff/cgroup.subtree_control"));
}

TEST_F(FakeCgroupTree, TheRootsSubtreeControlIsNeverWritten) {
  const std::string root = dir_ + "/unified";
  write(root + "/cgroup.controllers", "cpu memory pids");
  write(root + "/cgroup.subtree_control", "");
  const std::vector<CgroupHierarchy> h = {{root, true, {"cpu", "memory", "pids"}}};
  const PodCgroupResult r = applyPodCgroup(h, "/", "pod4", {});
  EXPECT_EQ(r.unsupported.size(), 3u);
  EXPECT_EQ(read(root + "/cgroup.subtree_control"), "");
}

TEST_F(FakeCgroupTree, HybridWritesV1FilesWhereEachControllerLives) {
  const std::string memory = dir_ + "/memory", cpu = dir_ + "/cpu,cpuacct", pids = dir_ + "/pids",
                    unified = dir_ + "/unified";
  write(unified + "/cgroup.controllers", "hugetlb");
  const std::vector<CgroupHierarchy> h = {{cpu, false, {"cpu", "cpuacct"}},
                                          {memory, false, {"memory"}},
                                          {pids, false, {"pids"}},
                                          {dir_ + "/systemd", false, {"systemd"}},
                                          {unified, true, {"hugetlb"}}};
  const PodResourceConfig burstable{"Burstable", 153, std::nullopt, 100000, 100663296, 64};
  const PodCgroupResult r = applyPodCgroup(h, "/skiff/nested", "pod5", burstable);
  EXPECT_TRUE(r.unsupported.empty());
  EXPECT_EQ(r.dirs.size(), 3u);
  EXPECT_EQ(read(memory + "/skiff/nested/pod5/memory.limit_in_bytes"), "100663296");
  EXPECT_EQ(read(cpu + "/skiff/nested/pod5/cpu.shares"), "153");
  EXPECT_EQ(read(cpu + "/skiff/nested/pod5/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(read(cpu + "/skiff/nested/pod5/cpu.cfs_quota_us"), "-1");
  EXPECT_EQ(read(pids + "/skiff/nested/pod5/pids.max"), "64");
  EXPECT_FALSE(fs::exists(dir_ + "/systemd/skiff"));
  EXPECT_FALSE(fs::exists(unified + "/skiff"));
}

TEST_F(FakeCgroupTree, AFailedWriteNamesTheFile) {
  const std::string memory = dir_ + "/memory";
  // A directory where the control file should be: the write fails.
  fs::create_directories(memory + "/skiff/pod6/memory.limit_in_bytes");
  const std::vector<CgroupHierarchy> h = {{memory, false, {"memory"}}};
  try {
    applyPodCgroup(h, "/skiff", "pod6", {});
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(memory + "/skiff/pod6/memory.limit_in_bytes"),
              std::string::npos)
        << e.what();
  }
}

TEST(DiscoverCgroupHierarchies, NotACgroupFileSystemFindsNothing) {
  EXPECT_TRUE(discoverCgroupHierarchies("/tmp").empty());
  EXPECT_TRUE(discoverCgroupHierarchies("/nonexistent-skiff-cgroup-root").empty());
}

TEST(DiscoverCgroupHierarchies, ThisMachinesHierarchiesHaveTheirControllers) {
  const auto found = discoverCgroupHierarchies("/sys/fs/cgroup");
  if (found.empty()) GTEST_SKIP() << "no cgroup file system at /sys/fs/cgroup";
  int v2 = 0;
  for (const auto& h : found) {
    EXPECT_TRUE(fs::exists(h.path + "/cgroup.procs")) << h.path;
    if (h.v2) {
      ++v2;
    } else if (h.controllers.contains("memory")) {
      EXPECT_TRUE(fs::exists(h.path + "/memory.limit_in_bytes")) << h.path;
    } else if (h.controllers.contains("cpu")) {
      EXPECT_TRUE(fs::exists(h.path + "/cpu.shares")) << h.path;
    }
  }
  EXPECT_LE(v2, 1);
}

}  // namespace
}  // namespace skiff::kubelet

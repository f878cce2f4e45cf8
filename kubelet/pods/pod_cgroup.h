#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "skiff/api/core_v1.pb.h"

// The pod-level cgroup: `<cgroup parent>/pod<uid>` in every hierarchy, above the containers'
// cgroups that runc makes. It carries the pod's resource config as Kubernetes' kubelet computes
// it (pkg/kubelet/cm/helpers_linux.go ResourceConfigForPod), so that the containers of a pod
// together never get more than the pod asked for.

namespace skiff::kubelet {

// Kubernetes' constants (pkg/kubelet/cm): shares per CPU and the floor, the CFS period and the
// smallest quota.
inline constexpr int64_t kMinShares = 2;
inline constexpr int64_t kMaxShares = 262144;
inline constexpr int64_t kSharesPerCpu = 1024;
inline constexpr int64_t kQuotaPeriodUs = 100000;
inline constexpr int64_t kMinQuotaUs = 1000;

struct PodResourceConfig {
  std::string qos_class;  // Guaranteed, Burstable or BestEffort
  uint64_t cpu_shares = kMinShares;
  std::optional<int64_t> cpu_quota_us;  // nullopt: no CFS limit ("max", -1)
  uint64_t cpu_period_us = kQuotaPeriodUs;
  std::optional<int64_t> memory_limit;  // bytes; nullopt: unlimited
  std::optional<int64_t> pids_limit;    // nullopt: unlimited

  bool operator==(const PodResourceConfig&) const = default;
};

// MilliCPUToShares: 0 -> 2 (the kernel's minimum), else milli * 1024 / 1000, at least 2.
uint64_t milliCpuToShares(int64_t milli);
// MilliCPUToQuota: milli * period / 1000, at least 1 ms; 0 for 0 (no limit).
int64_t milliCpuToQuota(int64_t milli, int64_t period_us);
// cgroup v2 cpu.weight from v1 shares, as runc converts it: 1 + ((shares - 2) * 9999) / 262142,
// shares clamped to [2, 262144] (2 -> 1, 1024 -> 39, 262144 -> 10000).
uint64_t cpuSharesToWeight(uint64_t shares);

// Kubernetes' ComputePodQOS over the containers and init containers (cpu and memory only).
std::string podQosClass(const api::core::v1::PodSpec& spec);

// ResourceConfigForPod with CFS quota enforced and the default period:
//   - requests and limits per resource as PodRequests/PodLimits sum them: the app containers and
//     the restartable (sidecar) init containers add up; each other init container counts with
//     the sidecars before it; the pod needs the larger of the two. spec.overhead is added to the
//     requests, and to each limit that is set.
//   - cpu shares from the cpu requests (BestEffort: the minimum, 2);
//   - a CFS quota from the cpu limits when every container (init ones included) limits cpu, or
//     the pod is Guaranteed; the same for the memory limit;
//   - pids.max = `pod_max_pids` when it is positive (the kubelet's --pod-max-pids).
// A container that gives a limit but no request requests its limit, as the API server's
// defaulting makes it. Throws std::invalid_argument on a quantity that does not parse.
PodResourceConfig podResourceConfig(const api::core::v1::PodSpec& spec, int64_t pod_max_pids = -1);

// One mounted cgroup hierarchy and the controllers it offers to the cgroups made in it.
struct CgroupHierarchy {
  std::string path;  // the mount, e.g. /sys/fs/cgroup/memory or /sys/fs/cgroup/unified
  bool v2 = false;
  // v1: the controllers bound to this hierarchy; v2: the root's cgroup.controllers.
  std::set<std::string> controllers;
};

// The hierarchies mounted at `root` (unified only) or just below it (hybrid and v1: one directory
// per controller, symlinks such as cpu -> cpu,cpuacct skipped), by file system type.
std::vector<CgroupHierarchy> discoverCgroupHierarchies(const std::string& root);

struct PodCgroupResult {
  // Controllers the config needs that no hierarchy offers below `parent` (cpu, memory, pids).
  std::vector<std::string> unsupported;
  // The pod cgroup directories the config went into, one per hierarchy used.
  std::vector<std::string> dirs;
  // Each directory made and each file written, "path=value" (for tests and diagnostics).
  std::vector<std::string> written;
};

// Makes `<hierarchy><parent>/<name>` where a needed controller lives and writes `config` there:
//   v2: memory.max, cpu.max ("<quota>|max <period>"), cpu.weight, pids.max. A controller that the
//       parent's cgroup.controllers lists but its cgroup.subtree_control does not is enabled
//       there ("+memory"); the parent is made if missing, and nothing above it is ever written
//       (a controller the levels above do not pass down is unsupported).
//   v1: memory.limit_in_bytes, cpu.shares, cpu.cfs_period_us, cpu.cfs_quota_us, pids.max.
// Unlimited values are written too ("max", -1), so that re-applying resets a cgroup. `parent`
// starts with '/'. Throws std::runtime_error naming the file on a failed write.
PodCgroupResult applyPodCgroup(const std::vector<CgroupHierarchy>& hierarchies,
                               const std::string& parent, const std::string& name,
                               const PodResourceConfig& config);

}  // namespace skiff::kubelet

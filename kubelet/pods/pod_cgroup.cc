#include "kubelet/pods/pod_cgroup.h"

#include <fcntl.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "control/api/quantity.h"

namespace skiff::kubelet {
namespace fs = std::filesystem;
namespace core = api::core::v1;

namespace {

constexpr long kCgroupSuperMagic = 0x27e0eb;
constexpr long kCgroup2SuperMagic = 0x63677270;

// cpu and memory only: the resources the pod cgroup carries.
using ResourceList = std::map<std::string, api::Quantity>;

ResourceList toList(const google::protobuf::Map<std::string, api::runtime::Quantity>& m,
                    const std::string& what) {
  ResourceList out;
  for (const auto& [name, proto] : m) {
    if (name != "cpu" && name != "memory") continue;
    try {
      out[name] = api::Quantity::fromProto(proto);
    } catch (const api::QuantityError& e) {
      throw std::invalid_argument(what + "." + name + ": " + e.what());
    }
  }
  return out;
}

void addList(ResourceList& to, const ResourceList& from) {
  for (const auto& [name, q] : from) {
    auto [it, inserted] = to.try_emplace(name, q);
    if (!inserted) it->second += q;
  }
}

void maxList(ResourceList& to, const ResourceList& from) {
  for (const auto& [name, q] : from) {
    auto [it, inserted] = to.try_emplace(name, q);
    if (!inserted && q > it->second) it->second = q;
  }
}

bool nonZero(const ResourceList& list, const std::string& name) {
  auto it = list.find(name);
  return it != list.end() && !it->second.isZero();
}

struct ContainerResources {
  ResourceList requests, limits;
  bool sidecar = false;
};

// A container's requests and limits, requests defaulted from limits (SetDefaults_Pod).
ContainerResources resourcesOf(const core::Container& c, const std::string& field) {
  ContainerResources out;
  out.limits = toList(c.resources().limits(), field + ".resources.limits");
  out.requests = toList(c.resources().requests(), field + ".resources.requests");
  for (const auto& [name, q] : out.limits)
    out.requests.try_emplace(name, q);
  out.sidecar = c.restart_policy() == "Always";
  return out;
}

std::string readSmall(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::set<std::string> words(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;)
    out.insert(w);
  return out;
}

void writeControl(const std::string& path, const std::string& value,
                  std::vector<std::string>& written) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cgroup " + path + ": " + std::strerror(errno));
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    throw std::runtime_error("cgroup " + path + " = " + value + ": " +
                             std::strerror(n < 0 ? err : EIO));
  }
  written.push_back(path + "=" + value);
}

void makeDir(const std::string& path, std::vector<std::string>& written) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return;
  fs::create_directories(path, ec);
  if (ec) throw std::runtime_error("cgroup " + path + ": " + ec.message());
  written.push_back(path + "/");
}

}  // namespace

uint64_t milliCpuToShares(int64_t milli) {
  if (milli <= 0) return kMinShares;
  return static_cast<uint64_t>(std::max<int64_t>(kMinShares, milli * kSharesPerCpu / 1000));
}

int64_t milliCpuToQuota(int64_t milli, int64_t period_us) {
  if (milli <= 0) return 0;
  return std::max<int64_t>(kMinQuotaUs, milli * period_us / 1000);
}

uint64_t cpuSharesToWeight(uint64_t shares) {
  shares = std::clamp<uint64_t>(shares, kMinShares, kMaxShares);
  return 1 + ((shares - 2) * 9999) / 262142;
}

std::string podQosClass(const core::PodSpec& spec) {
  ResourceList requests, limits;
  bool guaranteed = true;
  auto visit = [&](const core::Container& c, const std::string& field) {
    const ContainerResources r = resourcesOf(c, field);
    for (const auto& [name, q] : r.requests)
      if (q.sign() > 0) addList(requests, {{name, q}});
    int limited = 0;
    for (const auto& [name, q] : r.limits) {
      if (q.sign() > 0) {
        addList(limits, {{name, q}});
        ++limited;
      }
    }
    if (limited != 2) guaranteed = false;
  };
  for (int i = 0; i < spec.containers_size(); ++i)
    visit(spec.containers(i), "spec.containers[" + std::to_string(i) + "]");
  for (int i = 0; i < spec.init_containers_size(); ++i)
    visit(spec.init_containers(i), "spec.initContainers[" + std::to_string(i) + "]");
  if (requests.empty() && limits.empty()) return "BestEffort";
  for (const auto& [name, request] : requests) {
    auto it = limits.find(name);
    if (it == limits.end() || it->second != request) guaranteed = false;
  }
  return guaranteed && requests.size() == limits.size() ? "Guaranteed" : "Burstable";
}

PodResourceConfig podResourceConfig(const core::PodSpec& spec, int64_t pod_max_pids) {
  ResourceList requests, limits;
  bool cpu_limited = true, memory_limited = true;
  auto declared = [&](const ResourceList& l) {
    if (!nonZero(l, "cpu")) cpu_limited = false;
    if (!nonZero(l, "memory")) memory_limited = false;
  };
  for (int i = 0; i < spec.containers_size(); ++i) {
    const ContainerResources r =
        resourcesOf(spec.containers(i), "spec.containers[" + std::to_string(i) + "]");
    declared(r.limits);
    addList(requests, r.requests);
    addList(limits, r.limits);
  }
  // Init containers: each runs alone next to the sidecars started before it.
  ResourceList sidecar_requests, sidecar_limits, init_requests, init_limits;
  for (int i = 0; i < spec.init_containers_size(); ++i) {
    const ContainerResources r =
        resourcesOf(spec.init_containers(i), "spec.initContainers[" + std::to_string(i) + "]");
    ResourceList req = r.requests, lim = r.limits;
    if (r.sidecar) {
      addList(requests, r.requests);
      addList(limits, r.limits);
      addList(sidecar_requests, r.requests);
      addList(sidecar_limits, r.limits);
      req = sidecar_requests;
      lim = sidecar_limits;
    } else {
      addList(req, sidecar_requests);
      addList(lim, sidecar_limits);
    }
    declared(lim);
    maxList(init_requests, req);
    maxList(init_limits, lim);
  }
  maxList(requests, init_requests);
  maxList(limits, init_limits);
  const ResourceList overhead = toList(spec.overhead(), "spec.overhead");
  addList(requests, overhead);
  for (const auto& [name, q] : overhead) {
    auto it = limits.find(name);
    if (it != limits.end() && !it->second.isZero()) it->second += q;
  }

  PodResourceConfig out;
  out.qos_class = podQosClass(spec);
  const int64_t cpu_request = requests.contains("cpu") ? requests["cpu"].milliValue() : 0;
  const int64_t cpu_limit = limits.contains("cpu") ? limits["cpu"].milliValue() : 0;
  const int64_t memory_limit = limits.contains("memory") ? limits["memory"].value() : 0;
  if (out.qos_class == "BestEffort") {
    out.cpu_shares = kMinShares;
  } else {
    out.cpu_shares = milliCpuToShares(cpu_request);
    const bool guaranteed = out.qos_class == "Guaranteed";
    if ((guaranteed || cpu_limited) && cpu_limit > 0) {
      out.cpu_quota_us = milliCpuToQuota(cpu_limit, static_cast<int64_t>(out.cpu_period_us));
    }
    if ((guaranteed || memory_limited) && memory_limit > 0) out.memory_limit = memory_limit;
  }
  if (pod_max_pids > 0) out.pids_limit = pod_max_pids;
  return out;
}

std::vector<CgroupHierarchy> discoverCgroupHierarchies(const std::string& root) {
  std::vector<CgroupHierarchy> out;
  struct statfs st {};
  if (::statfs(root.c_str(), &st) != 0) return out;
  if (st.f_type == kCgroup2SuperMagic) {
    out.push_back({root, true, words(readSmall(root + "/cgroup.controllers"))});
    return out;
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (entry.is_symlink(ec) || !entry.is_directory(ec)) continue;
    const std::string path = entry.path().string();
    if (::statfs(path.c_str(), &st) != 0) continue;
    if (st.f_type == kCgroup2SuperMagic) {
      out.push_back({path, true, words(readSmall(path + "/cgroup.controllers"))});
    } else if (st.f_type == kCgroupSuperMagic) {
      CgroupHierarchy h{path, false, {}};
      std::string name = entry.path().filename().string();
      for (size_t start = 0; start <= name.size();) {
        const size_t comma = std::min(name.find(',', start), name.size());
        h.controllers.insert(name.substr(start, comma - start));
        start = comma + 1;
      }
      out.push_back(std::move(h));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const CgroupHierarchy& a, const CgroupHierarchy& b) { return a.path < b.path; });
  return out;
}

PodCgroupResult applyPodCgroup(const std::vector<CgroupHierarchy>& hierarchies,
                               const std::string& parent, const std::string& name,
                               const PodResourceConfig& config) {
  PodCgroupResult result;
  std::set<std::string> done;
  // The parent's subtree_control is written only below a hierarchy's root, never in the root.
  const std::string trimmed = fs::path(parent).lexically_normal().relative_path().string();
  const bool parent_is_root = trimmed.empty() || trimmed == ".";
  const std::string unlimited_quota = "-1";
  // v2 first: where a controller is in both (never on one machine), v1 is not needed.
  std::vector<const CgroupHierarchy*> order;
  for (const auto& h : hierarchies)
    if (h.v2) order.push_back(&h);
  for (const auto& h : hierarchies)
    if (!h.v2) order.push_back(&h);
  for (const CgroupHierarchy* h : order) {
    const std::string parent_dir = h->path + parent;
    const std::string dir = parent_dir + "/" + name;
    std::vector<std::string> here;
    for (const char* c : {"cpu", "memory", "pids"}) {
      if (!done.contains(c) && h->controllers.contains(c)) here.push_back(c);
    }
    if (here.empty()) continue;
    if (h->v2) {
      makeDir(parent_dir, result.written);
      // What the levels above pass down to the parent; enable it for the parent's children.
      const std::set<std::string> offered = words(readSmall(parent_dir + "/cgroup.controllers"));
      const std::set<std::string> enabled =
          words(readSmall(parent_dir + "/cgroup.subtree_control"));
      std::vector<std::string> usable;
      for (const auto& c : here) {
        if (!offered.contains(c)) continue;
        if (!enabled.contains(c)) {
          if (parent_is_root) continue;
          writeControl(parent_dir + "/cgroup.subtree_control", "+" + c, result.written);
        }
        usable.push_back(c);
      }
      here = usable;
      if (here.empty()) continue;
    }
    makeDir(dir, result.written);
    result.dirs.push_back(dir);
    for (const auto& c : here) {
      if (c == "cpu") {
        if (h->v2) {
          writeControl(dir + "/cpu.weight", std::to_string(cpuSharesToWeight(config.cpu_shares)),
                       result.written);
          writeControl(dir + "/cpu.max",
                       (config.cpu_quota_us ? std::to_string(*config.cpu_quota_us) : "max") + " " +
                           std::to_string(config.cpu_period_us),
                       result.written);
        } else {
          writeControl(dir + "/cpu.shares", std::to_string(config.cpu_shares), result.written);
          // The period first: the kernel checks the quota against it (and against the parent).
          writeControl(dir + "/cpu.cfs_period_us", std::to_string(config.cpu_period_us),
                       result.written);
          writeControl(dir + "/cpu.cfs_quota_us",
                       config.cpu_quota_us ? std::to_string(*config.cpu_quota_us) : unlimited_quota,
                       result.written);
        }
      } else if (c == "memory") {
        const std::string limit =
            config.memory_limit ? std::to_string(*config.memory_limit) : (h->v2 ? "max" : "-1");
        writeControl(dir + (h->v2 ? "/memory.max" : "/memory.limit_in_bytes"), limit,
                     result.written);
      } else if (c == "pids") {
        writeControl(dir + "/pids.max",
                     config.pids_limit ? std::to_string(*config.pids_limit) : "max",
                     result.written);
      }
      done.insert(c);
    }
  }
  for (const char* c : {"cpu", "memory", "pids"}) {
    if (!done.contains(c)) result.unsupported.emplace_back(c);
  }
  return result;
}

}  // namespace skiff::kubelet

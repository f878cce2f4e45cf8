#include "kubelet/runtime/oci_spec.h"

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace skiff::kubelet {
namespace {

using api::Value;

const std::vector<std::string>& allCapabilities() {
  static const std::vector<std::string> kAll = {"CAP_CHOWN",
                                                "CAP_DAC_OVERRIDE",
                                                "CAP_DAC_READ_SEARCH",
                                                "CAP_FOWNER",
                                                "CAP_FSETID",
                                                "CAP_KILL",
                                                "CAP_SETGID",
                                                "CAP_SETUID",
                                                "CAP_SETPCAP",
                                                "CAP_LINUX_IMMUTABLE",
                                                "CAP_NET_BIND_SERVICE",
                                                "CAP_NET_BROADCAST",
                                                "CAP_NET_ADMIN",
                                                "CAP_NET_RAW",
                                                "CAP_IPC_LOCK",
                                                "CAP_IPC_OWNER",
                                                "CAP_SYS_MODULE",
                                                "CAP_SYS_RAWIO",
                                                "CAP_SYS_CHROOT",
                                                "CAP_SYS_PTRACE",
                                                "CAP_SYS_PACCT",
                                                "CAP_SYS_ADMIN",
                                                "CAP_SYS_BOOT",
                                                "CAP_SYS_NICE",
                                                "CAP_SYS_RESOURCE",
                                                "CAP_SYS_TIME",
                                                "CAP_SYS_TTY_CONFIG",
                                                "CAP_MKNOD",
                                                "CAP_LEASE",
                                                "CAP_AUDIT_WRITE",
                                                "CAP_AUDIT_CONTROL",
                                                "CAP_SETFCAP",
                                                "CAP_MAC_OVERRIDE",
                                                "CAP_MAC_ADMIN",
                                                "CAP_SYSLOG",
                                                "CAP_WAKE_ALARM",
                                                "CAP_BLOCK_SUSPEND",
                                                "CAP_AUDIT_READ",
                                                "CAP_PERFMON",
                                                "CAP_BPF",
                                                "CAP_CHECKPOINT_RESTORE"};
  return kAll;
}

// containerd's and Docker's default set.
const std::vector<std::string>& defaultCapabilities() {
  static const std::vector<std::string> kDefault = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE"};
  return kDefault;
}

Value strings(const std::vector<std::string>& items) {
  Value a = Value::array();
  for (const auto& s : items)
    a.push(Value::string(s));
  return a;
}

Value mount(const std::string& dest, const std::string& type, const std::string& source,
            const std::vector<std::string>& options) {
  Value m = Value::object();
  m.append("destination", Value::string(dest));
  m.append("type", Value::string(type));
  m.append("source", Value::string(source));
  m.append("options", strings(options));
  return m;
}

Value ns(const char* type, const std::string& path = {}) {
  Value n = Value::object();
  n.append("type", Value::string(type));
  if (!path.empty()) n.append("path", Value::string(path));
  return n;
}

}  // namespace

std::string normalizeCapability(const std::string& name) {
  std::string upper;
  for (char c : name)
    upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (upper == "ALL") return upper;
  if (!upper.starts_with("CAP_")) upper = "CAP_" + upper;
  const auto& all = allCapabilities();
  if (std::find(all.begin(), all.end(), upper) == all.end()) {
    throw std::invalid_argument("unknown capability \"" + name + "\"");
  }
  return upper;
}

std::vector<std::string> effectiveCapabilities(const ContainerConfig& config) {
  if (config.privileged) return allCapabilities();
  std::vector<std::string> caps = defaultCapabilities();
  for (const auto& d : config.capabilities_drop) {
    const std::string c = normalizeCapability(d);
    if (c == "ALL") {
      caps.clear();
    } else {
      std::erase(caps, c);
    }
  }
  for (const auto& a : config.capabilities_add) {
    const std::string c = normalizeCapability(a);
    if (c == "ALL") {
      caps = allCapabilities();
    } else if (std::find(caps.begin(), caps.end(), c) == caps.end()) {
      caps.push_back(c);
    }
  }
  return caps;
}

api::Value makeRuntimeSpec(const ContainerConfig& c) {
  if (c.args.empty())
    throw std::invalid_argument("container " + c.id + ": nothing to run (no command)");
  Value spec = Value::object();
  spec.append("ociVersion", Value::string("1.0.2"));

  Value process = Value::object();
  process.append("terminal", Value::boolean(false));
  Value user = Value::object();
  user.append("uid", Value::integer(c.uid));
  user.append("gid", Value::integer(c.gid));
  if (!c.additional_gids.empty()) {
    Value gids = Value::array();
    for (uint32_t g : c.additional_gids)
      gids.push(Value::integer(g));
    user.append("additionalGids", std::move(gids));
  }
  process.append("user", std::move(user));
  process.append("args", strings(c.args));
  process.append("env", strings(c.env));
  process.append("cwd", Value::string(c.cwd.empty() ? "/" : c.cwd));
  const auto caps = effectiveCapabilities(c);
  Value capabilities = Value::object();
  capabilities.append("bounding", strings(caps));
  capabilities.append("effective", strings(c.uid == 0 ? caps : std::vector<std::string>{}));
  capabilities.append("permitted", strings(c.uid == 0 ? caps : std::vector<std::string>{}));
  process.append("capabilities", std::move(capabilities));
  // As many open files as the kubelet may have (containerd's 1048576 where the node allows it).
  struct rlimit nofile {};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  const int64_t files = std::min<int64_t>(static_cast<int64_t>(nofile.rlim_max), 1048576);
  Value rlimit = Value::object();
  rlimit.append("type", Value::string("RLIMIT_NOFILE"));
  rlimit.append("hard", Value::integer(files));
  rlimit.append("soft", Value::integer(files));
  Value rlimits = Value::array();
  rlimits.push(std::move(rlimit));
  process.append("rlimits", std::move(rlimits));
  process.append("noNewPrivileges", Value::boolean(c.no_new_privileges));
  spec.append("process", std::move(process));

  Value root = Value::object();
  root.append("path", Value::string(c.rootfs));
  root.append("readonly", Value::boolean(c.readonly_rootfs));
  spec.append("root", std::move(root));
  if (!c.hostname.empty()) spec.append("hostname", Value::string(c.hostname));

  Value mounts = Value::array();
  mounts.push(mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}));
  mounts.push(
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  mounts.push(mount("/dev/pts", "devpts", "devpts",
                    {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
  mounts.push(
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
  mounts.push(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  mounts.push(
      mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", c.privileged ? "rw" : "ro"}));
  mounts.push(mount("/sys/fs/cgroup", "cgroup", "cgroup",
                    {"nosuid", "noexec", "nodev", "relatime", c.privileged ? "rw" : "ro"}));
  for (const auto& m : c.mounts)
    mounts.push(mount(m.destination, m.type, m.source, m.options));
  spec.append("mounts", std::move(mounts));

  Value linux = Value::object();
  Value namespaces = Value::array();
  namespaces.push(ns("pid"));
  namespaces.push(ns("ipc"));
  namespaces.push(ns("uts"));
  namespaces.push(ns("mount"));
  if (!c.host_network) namespaces.push(ns("network", c.netns_path));
  linux.append("namespaces", std::move(namespaces));
  if (!c.cgroups_path.empty()) linux.append("cgroupsPath", Value::string(c.cgroups_path));

  Value resources = Value::object();
  Value devices = Value::array();
  Value deny = Value::object();
  deny.append("allow", Value::boolean(c.privileged));
  deny.append("access", Value::string("rwm"));
  devices.push(std::move(deny));
  resources.append("devices", std::move(devices));
  if (c.resources.memory_limit) {
    Value memory = Value::object();
    memory.append("limit", Value::integer(*c.resources.memory_limit));
    resources.append("memory", std::move(memory));
  }
  if (c.resources.cpu_shares || c.resources.cpu_quota_us) {
    Value cpu = Value::object();
    if (c.resources.cpu_shares) {
      cpu.append("shares", Value::integer(static_cast<int64_t>(*c.resources.cpu_shares)));
    }
    if (c.resources.cpu_quota_us) {
      cpu.append("quota", Value::integer(*c.resources.cpu_quota_us));
      cpu.append("period", Value::integer(static_cast<int64_t>(c.resources.cpu_period_us)));
    }
    resources.append("cpu", std::move(cpu));
  }
  if (c.resources.pids_limit) {
    Value pids = Value::object();
    pids.append("limit", Value::integer(*c.resources.pids_limit));
    resources.append("pids", std::move(pids));
  }
  linux.append("resources", std::move(resources));
  if (!c.privileged) {
    linux.append("maskedPaths",
                 strings({"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                          "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                          "/proc/sched_debug", "/proc/scsi", "/sys/firmware"}));
    linux.append("readonlyPaths", strings({"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                           "/proc/sysrq-trigger"}));
  }
  spec.append("linux", std::move(linux));
  return spec;
}

}  // namespace skiff::kubelet

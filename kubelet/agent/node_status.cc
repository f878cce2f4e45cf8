#include "kubelet/agent/node_status.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <google/protobuf/util/message_differencer.h>

#include "control/api/quantity.h"
#include "control/api/time.h"
#include "control/client/typed.h"
#include "kubelet/agent/time_util.h"
#include "skiff/version.h"

namespace skiff::kubelet {

using api::coordination::v1::Lease;
using api::core::v1::Node;
using api::core::v1::NodeCondition;
using api::core::v1::NodeStatus;

namespace {

std::string firstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// A field of /proc/meminfo in bytes ("MemTotal:  16318036 kB"); 0 when missing.
int64_t meminfoBytes(const std::string& field) {
  std::ifstream in("/proc/meminfo");
  std::string name;
  int64_t kib = 0;
  std::string unit;
  while (in >> name >> kib) {
    std::getline(in, unit);
    if (name == field + ":") return kib * 1024;
  }
  return 0;
}

// The data dir, or its nearest parent that exists (statvfs needs a path that is there).
std::string existingDir(std::string dir) {
  std::error_code ec;
  std::filesystem::path p = dir.empty() ? "/" : dir;
  while (!std::filesystem::exists(p, ec) && p.has_parent_path() && p != p.parent_path()) {
    p = p.parent_path();
  }
  return p.string();
}

std::string osImage() {
  std::ifstream in("/etc/os-release");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("PRETTY_NAME=", 0) != 0) continue;
    std::string v = line.substr(12);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    return v;
  }
  return "Linux";
}

std::string goArch(const std::string& machine) {
  if (machine == "x86_64") return "amd64";
  if (machine == "aarch64") return "arm64";
  if (machine == "i686" || machine == "i386") return "386";
  return machine;
}

// The source address the kernel picks toward a public address: the default route's interface.
// Connecting a UDP socket sends nothing.
std::string defaultRouteIp() {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "127.0.0.1";
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(53);
  ::inet_pton(AF_INET, "192.0.2.1", &to.sin_addr);  // TEST-NET-1: never answered, never sent
  std::string out = "127.0.0.1";
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0) {
    sockaddr_in local{};
    socklen_t len = sizeof(local);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
      char buf[INET_ADDRSTRLEN] = {};
      if (::inet_ntop(AF_INET, &local.sin_addr, buf, sizeof(buf)) != nullptr) out = buf;
    }
  }
  ::close(fd);
  return out;
}

std::string runcVersion() {
  FILE* p = ::popen("runc --version 2>/dev/null", "r");
  if (p == nullptr) return "runc://unknown";
  char buf[256] = {};
  std::string line = std::fgets(buf, sizeof(buf), p) != nullptr ? buf : "";
  ::pclose(p);
  // "runc version 1.1.12+ds1"
  std::istringstream words(line);
  std::string a, b, version;
  words >> a >> b >> version;
  return "runc://" + (version.empty() ? std::string("unknown") : version);
}

void setQuantity(google::protobuf::Map<std::string, api::runtime::Quantity>& m,
                 const std::string& key, const std::string& value) {
  // In canonical form, as the apiserver stores it, so that an unchanged status compares equal.
  m[key] = api::Quantity::mustParse(value).toProto();
}

std::string kibibytes(int64_t bytes) {
  return std::to_string(bytes / 1024) + "Ki";
}

NodeCondition condition(const std::string& type, bool value, const std::string& reason,
                        const std::string& message) {
  NodeCondition c;
  c.set_type(type);
  c.set_status(value ? "True" : "False");
  c.set_reason(reason);
  c.set_message(message);
  return c;
}

// The status without what changes every post (heartbeat times), to tell real changes.
NodeStatus withoutHeartbeats(NodeStatus status) {
  for (auto& c : *status.mutable_conditions()) {
    c.clear_last_heartbeat_time();
    c.clear_last_transition_time();
  }
  return status;
}

bool sameStatus(const NodeStatus& a, const NodeStatus& b) {
  return google::protobuf::util::MessageDifferencer::Equals(withoutHeartbeats(a),
                                                            withoutHeartbeats(b));
}

}  // namespace

MachineInfo readMachineInfo(const std::string& data_dir) {
  MachineInfo m;
  cpu_set_t set;
  CPU_ZERO(&set);
  m.cpus = ::sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
  m.memory_bytes = meminfoBytes("MemTotal");
  struct statvfs fs {};
  if (::statvfs(existingDir(data_dir).c_str(), &fs) == 0) {
    m.ephemeral_bytes = static_cast<int64_t>(fs.f_blocks) * static_cast<int64_t>(fs.f_frsize);
  }
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) == 0) m.hostname = host;
  m.internal_ip = defaultRouteIp();
  struct utsname uts {};
  if (::uname(&uts) == 0) {
    m.kernel_version = uts.release;
    m.architecture = goArch(uts.machine);
  }
  m.os_image = osImage();
  m.machine_id = firstLine("/etc/machine-id");
  m.boot_id = firstLine("/proc/sys/kernel/random/boot_id");
  m.system_uuid = firstLine("/sys/class/dmi/id/product_uuid");
  return m;
}

PressureSample samplePressure(const std::string& data_dir) {
  PressureSample s;
  s.memory_available_bytes = meminfoBytes("MemAvailable");
  struct statvfs fs {};
  if (::statvfs(existingDir(data_dir).c_str(), &fs) == 0) {
    s.disk_available_bytes = static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
    s.disk_total_bytes = static_cast<int64_t>(fs.f_blocks) * static_cast<int64_t>(fs.f_frsize);
  }
  // /proc/loadavg's fourth field: "running/total" scheduling entities (processes and threads).
  std::string loadavg = firstLine("/proc/loadavg");
  if (auto slash = loadavg.find('/'); slash != std::string::npos) {
    s.pids_used = std::atoll(loadavg.c_str() + slash + 1);
  }
  s.pids_max = std::atoll(firstLine("/proc/sys/kernel/pid_max").c_str());
  return s;
}

std::vector<NodeCondition> nodeConditions(const PressureSample& sample,
                                          const PressureThresholds& thresholds,
                                          const std::string& not_ready) {
  std::vector<NodeCondition> out;
  if (not_ready.empty()) {
    out.push_back(condition("Ready", true, "KubeletReady", "kubelet is posting ready status"));
  } else {
    out.push_back(condition("Ready", false, "KubeletNotReady", not_ready));
  }
  bool memory = sample.memory_available_bytes < thresholds.memory_available_bytes;
  out.push_back(memory ? condition("MemoryPressure", true, "KubeletHasInsufficientMemory",
                                   "kubelet has insufficient memory available")
                       : condition("MemoryPressure", false, "KubeletHasSufficientMemory",
                                   "kubelet has sufficient memory available"));
  bool disk = sample.disk_total_bytes > 0 &&
              static_cast<double>(sample.disk_available_bytes) <
                  thresholds.disk_available_fraction * static_cast<double>(sample.disk_total_bytes);
  out.push_back(
      disk ? condition("DiskPressure", true, "KubeletHasDiskPressure", "kubelet has disk pressure")
           : condition("DiskPressure", false, "KubeletHasNoDiskPressure",
                       "kubelet has no disk pressure"));
  bool pids = sample.pids_max > 0 &&
              static_cast<double>(sample.pids_max - sample.pids_used) <
                  thresholds.pids_available_fraction * static_cast<double>(sample.pids_max);
  out.push_back(pids ? condition("PIDPressure", true, "KubeletHasInsufficientPID",
                                 "kubelet has insufficient PID available")
                     : condition("PIDPressure", false, "KubeletHasSufficientPID",
                                 "kubelet has sufficient PID available"));
  return out;
}

NodeStatusManager::NodeStatusManager(client::Client& client, NodeStatusOptions options)
    : client_(client), options_(std::move(options)) {
  if (options_.node_name.empty()) throw std::invalid_argument("node status: empty node name");
  machine_ = options_.machine ? options_.machine() : readMachineInfo(options_.data_dir);
  if (!options_.hostname_override.empty()) machine_.hostname = options_.hostname_override;
  if (!options_.node_ip_override.empty()) machine_.internal_ip = options_.node_ip_override;
  if (options_.container_runtime_version.empty()) {
    options_.container_runtime_version = runcVersion();
  }
}

NodeStatusManager::~NodeStatusManager() {
  stop();
}

bool NodeStatusManager::start() {
  while (!registerNode()) {
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; })) return false;
  }
  updateStatus(true);
  renewLease();
  std::lock_guard lock(mu_);
  if (stopping_) return false;
  thread_ = std::thread([this] { loop(); });
  return true;
}

void NodeStatusManager::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string NodeStatusManager::podCidr() const {
  std::lock_guard lock(mu_);
  return pod_cidr_;
}
std::string NodeStatusManager::nodeUid() const {
  std::lock_guard lock(mu_);
  return node_uid_;
}
std::string NodeStatusManager::nodeIp() const {
  return machine_.internal_ip;
}
uint64_t NodeStatusManager::statusPosts() const {
  std::lock_guard lock(mu_);
  return status_posts_;
}
uint64_t NodeStatusManager::leaseRenewals() const {
  std::lock_guard lock(mu_);
  return lease_renewals_;
}

bool NodeStatusManager::registerNode() {
  const std::string& name = options_.node_name;
  Node node;
  auto* meta = node.mutable_metadata();
  meta->set_name(name);
  auto& labels = *meta->mutable_labels();
  labels["kubernetes.io/hostname"] = name;
  labels["kubernetes.io/os"] = "linux";
  labels["kubernetes.io/arch"] = machine_.architecture;
  labels["beta.kubernetes.io/os"] = "linux";
  labels["beta.kubernetes.io/arch"] = machine_.architecture;
  for (const auto& [k, v] : options_.labels)
    labels[k] = v;
  for (const auto& [k, v] : options_.annotations)
    (*meta->mutable_annotations())[k] = v;
  if (!options_.pod_cidr.empty()) {
    node.mutable_spec()->set_pod_cidr(options_.pod_cidr);
    node.mutable_spec()->add_pod_cidrs(options_.pod_cidr);
  }
  *node.mutable_status() = desiredStatus(node);
  Node registered;
  try {
    registered = client::create(client_, node);
    std::cerr << "skiff agent: node " << name << ": registered" << std::endl;
  } catch (const client::ApiError& e) {
    if (!e.isAlreadyExists()) {
      std::cerr << "skiff agent: node " << name << ": registering: " << e.what() << std::endl;
      return false;
    }
    // Adopt the Node that is there, as the kubelet does: keep it, add what it lacks.
    try {
      registered = client::get<Node>(client_, "", name);
      bool changed = false;
      auto& have = *registered.mutable_metadata()->mutable_labels();
      for (const auto& [k, v] : labels) {
        if (!have.contains(k)) {
          have[k] = v;
          changed = true;
        }
      }
      auto& have_annotations = *registered.mutable_metadata()->mutable_annotations();
      for (const auto& [k, v] : options_.annotations) {
        auto it = have_annotations.find(k);
        if (it == have_annotations.end() || it->second != v) {
          have_annotations[k] = v;
          changed = true;
        }
      }
      if (registered.spec().pod_cidr().empty() && !options_.pod_cidr.empty()) {
        registered.mutable_spec()->set_pod_cidr(options_.pod_cidr);
        registered.mutable_spec()->clear_pod_cidrs();
        registered.mutable_spec()->add_pod_cidrs(options_.pod_cidr);
        changed = true;
      }
      if (changed) registered = client::update(client_, registered);
      std::cerr << "skiff agent: node " << name << ": adopted the existing Node" << std::endl;
    } catch (const client::ApiError& e2) {
      std::cerr << "skiff agent: node " << name << ": adopting: " << e2.what() << std::endl;
      return false;
    }
  }
  std::lock_guard lock(mu_);
  node_uid_ = registered.metadata().uid();
  pod_cidr_ =
      registered.spec().pod_cidr().empty() ? options_.pod_cidr : registered.spec().pod_cidr();
  last_posted_.reset();  // an apiserver may drop status on create: always follow with an update
  return true;
}

NodeStatus NodeStatusManager::desiredStatus(const Node& current) {
  NodeStatus status = current.status();
  auto& cap = *status.mutable_capacity();
  setQuantity(cap, "cpu", std::to_string(machine_.cpus));
  setQuantity(cap, "memory", kibibytes(machine_.memory_bytes));
  setQuantity(cap, "pods", std::to_string(machine_.pods));
  setQuantity(cap, "ephemeral-storage", kibibytes(machine_.ephemeral_bytes));
  // Allocatable: capacity less the hard eviction thresholds (no system/kube reservations).
  auto& alloc = *status.mutable_allocatable();
  alloc = cap;
  int64_t memory =
      std::max<int64_t>(0, machine_.memory_bytes - options_.thresholds.memory_available_bytes);
  setQuantity(alloc, "memory", kibibytes(memory));
  auto storage = static_cast<int64_t>(static_cast<double>(machine_.ephemeral_bytes) *
                                      (1.0 - options_.thresholds.disk_available_fraction));
  setQuantity(alloc, "ephemeral-storage", std::to_string(storage));

  status.clear_addresses();
  auto* ip = status.add_addresses();
  ip->set_type("InternalIP");
  ip->set_address(machine_.internal_ip);
  auto* host = status.add_addresses();
  host->set_type("Hostname");
  host->set_address(machine_.hostname);
  if (options_.kubelet_port > 0)
    status.mutable_daemon_endpoints()->mutable_kubelet_endpoint()->set_port(options_.kubelet_port);

  auto* info = status.mutable_node_info();
  info->set_machine_id(machine_.machine_id);
  info->set_system_uuid(machine_.system_uuid);
  info->set_boot_id(machine_.boot_id);
  info->set_kernel_version(machine_.kernel_version);
  info->set_os_image(machine_.os_image);
  info->set_container_runtime_version(options_.container_runtime_version);
  info->set_kubelet_version(std::string(kKubernetesVersion) + "-skiff-" + kVersion);
  info->set_kube_proxy_version(std::string(kKubernetesVersion) + "-skiff-" + kVersion);
  info->set_operating_system("linux");
  info->set_architecture(machine_.architecture);

  PressureSample sample =
      options_.pressure ? options_.pressure() : samplePressure(options_.data_dir);
  std::vector<NodeCondition> wanted = nodeConditions(
      sample, options_.thresholds, options_.not_ready ? options_.not_ready() : std::string());
  api::Timestamp now = api::now();
  now.nanos = 0;
  for (auto& c : wanted) {
    setTime(*c.mutable_last_heartbeat_time(), now);
    setTime(*c.mutable_last_transition_time(), now);
    for (const auto& old : current.status().conditions()) {
      if (old.type() == c.type() && old.status() == c.status() && old.has_last_transition_time()) {
        *c.mutable_last_transition_time() = old.last_transition_time();
      }
    }
  }
  // Conditions other components own (NetworkUnavailable, ...) stay as they are.
  google::protobuf::RepeatedPtrField<NodeCondition> merged;
  for (const auto& c : wanted)
    *merged.Add() = c;
  for (const auto& old : current.status().conditions()) {
    bool ours = false;
    for (const auto& c : wanted)
      ours = ours || c.type() == old.type();
    if (!ours) *merged.Add() = old;
  }
  *status.mutable_conditions() = std::move(merged);
  return status;
}

bool NodeStatusManager::updateStatus(bool force) {
  const std::string& name = options_.node_name;
  // nodeStatusUpdateRetry, as the kubelet: a conflict means someone else wrote; read again.
  for (int attempt = 0; attempt < 5; ++attempt) {
    Node current;
    try {
      current = client::get<Node>(client_, "", name);
    } catch (const client::ApiError& e) {
      if (e.isNotFound()) {
        std::cerr << "skiff agent: node " << name << ": the Node is gone; registering again"
                  << std::endl;
        if (!registerNode()) return false;
        force = true;
        continue;
      }
      std::cerr << "skiff agent: node " << name << ": reading the Node: " << e.what() << std::endl;
      return false;
    }
    {
      std::lock_guard lock(mu_);
      if (!current.spec().pod_cidr().empty()) pod_cidr_ = current.spec().pod_cidr();
      node_uid_ = current.metadata().uid();
    }
    NodeStatus status = desiredStatus(current);
    {
      std::lock_guard lock(mu_);
      bool due =
          std::chrono::steady_clock::now() - last_post_at_ >= options_.status_report_frequency;
      if (!force && !due && last_posted_ && sameStatus(*last_posted_, status) &&
          sameStatus(current.status(), status)) {
        return true;
      }
    }
    *current.mutable_status() = status;
    try {
      client::updateStatus(client_, current);
    } catch (const client::ApiError& e) {
      if (e.isConflict()) continue;
      std::cerr << "skiff agent: node " << name << ": posting status: " << e.what() << std::endl;
      return false;
    }
    std::lock_guard lock(mu_);
    last_posted_ = status;
    last_post_at_ = std::chrono::steady_clock::now();
    ++status_posts_;
    return true;
  }
  std::cerr << "skiff agent: node " << name << ": posting status: conflicts 5 times in a row"
            << std::endl;
  return false;
}

bool NodeStatusManager::renewLease() {
  const std::string& name = options_.node_name;
  std::optional<Lease> have;
  {
    std::lock_guard lock(mu_);
    have = lease_;
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      if (!have) {
        try {
          have = client::get<Lease>(client_, "kube-node-lease", name);
        } catch (const client::ApiError& e) {
          if (!e.isNotFound()) throw;
        }
      }
      Lease next = have ? *have : Lease();
      auto* meta = next.mutable_metadata();
      meta->set_name(name);
      meta->set_namespace_("kube-node-lease");
      std::string uid = nodeUid();
      if (!uid.empty() && meta->owner_references_size() == 0) {
        auto* owner = meta->add_owner_references();
        owner->set_api_version("v1");
        owner->set_kind("Node");
        owner->set_name(name);
        owner->set_uid(uid);
      }
      auto* spec = next.mutable_spec();
      spec->set_holder_identity(name);
      spec->set_lease_duration_seconds(options_.lease_duration_seconds);
      setMicroTime(*spec->mutable_renew_time(), api::now());
      Lease written = have ? client::update(client_, next) : client::create(client_, next);
      std::lock_guard lock(mu_);
      lease_ = written;
      ++lease_renewals_;
      return true;
    } catch (const client::ApiError& e) {
      if (e.isConflict() || e.isAlreadyExists() || e.isNotFound()) {
        have.reset();  // someone else wrote it: read it again
        continue;
      }
      std::cerr << "skiff agent: node " << name << ": renewing the Lease: " << e.what()
                << std::endl;
      break;
    }
  }
  std::lock_guard lock(mu_);
  lease_.reset();
  return false;
}

void NodeStatusManager::requestStatusUpdate() {
  {
    std::lock_guard lock(mu_);
    status_requested_ = true;
  }
  cv_.notify_all();
}

void NodeStatusManager::loop() {
  using Clock = std::chrono::steady_clock;
  auto next_status = Clock::now() + options_.status_update_frequency;
  auto next_lease = Clock::now() + options_.lease_renew_interval;
  // The kubelet retries a failed renewal at 200 ms, doubling up to 7 s.
  std::chrono::milliseconds lease_retry{200};
  while (true) {
    bool requested = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, std::min(next_status, next_lease),
                     [&] { return stopping_ || status_requested_; });
      if (stopping_) return;
      requested = status_requested_;
      status_requested_ = false;
    }
    auto now = Clock::now();
    if (requested) next_status = now;
    if (now >= next_lease) {
      if (renewLease()) {
        lease_retry = std::chrono::milliseconds(200);
        next_lease = now + options_.lease_renew_interval;
      } else {
        next_lease = now + lease_retry;
        lease_retry = std::min<std::chrono::milliseconds>(lease_retry * 2, std::chrono::seconds(7));
      }
    }
    if (now >= next_status) {
      updateStatus();
      next_status = now + options_.status_update_frequency;
    }
  }
}

}  // namespace skiff::kubelet

#include "kubelet/agent/hollow_pod_syncer.h"

#include <arpa/inet.h>

#include <stdexcept>

#include "kubelet/agent/time_util.h"

namespace skiff::kubelet {

using api::core::v1::Pod;
using api::core::v1::PodStatus;

namespace {

std::string ipText(uint32_t host_order) {
  in_addr a{htonl(host_order)};
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

void addCondition(PodStatus& status, const std::string& type, bool value,
                  const std::string& reason = {}) {
  auto* c = status.add_conditions();
  c->set_type(type);
  c->set_status(value ? "True" : "False");
  if (!reason.empty()) c->set_reason(reason);
}

std::string containerId(const Pod& pod, const std::string& name) {
  return "skiff://hollow-" + pod.metadata().uid().substr(0, 8) + "-" + name;
}

// The status both sync() and terminate() start from.
PodStatus baseStatus(const Pod& pod, const std::string& host_ip, const std::string& pod_ip,
                     const api::Timestamp& started) {
  PodStatus s;
  s.set_host_ip(host_ip);
  s.add_host_ips()->set_ip(host_ip);
  if (!pod_ip.empty()) {
    s.set_pod_ip(pod_ip);
    s.add_pod_ips()->set_ip(pod_ip);
  }
  setTime(*s.mutable_start_time(), started);
  for (const auto& c : pod.spec().init_containers()) {
    auto* cs = s.add_init_container_statuses();
    cs->set_name(c.name());
    cs->set_image(c.image());
    cs->set_image_id(c.image());
    cs->set_container_id(containerId(pod, c.name()));
    cs->set_ready(true);
    cs->set_started(false);
    cs->set_restart_count(0);
    auto* t = cs->mutable_state()->mutable_terminated();
    t->set_exit_code(0);
    t->set_reason("Completed");
    setTime(*t->mutable_started_at(), started);
    setTime(*t->mutable_finished_at(), started);
    t->set_container_id(containerId(pod, c.name()));
  }
  return s;
}

}  // namespace

HollowIpPool::HollowIpPool(const std::string& cidr) : cidr_(cidr) {
  auto slash = cidr.find('/');
  in_addr addr{};
  int bits = -1;
  if (slash != std::string::npos) {
    try {
      size_t used = 0;
      bits = std::stoi(cidr.substr(slash + 1), &used);
      if (used != cidr.size() - slash - 1) bits = -1;
    } catch (const std::exception&) {
      bits = -1;
    }
  }
  if (slash == std::string::npos ||
      ::inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &addr) != 1 || bits < 8 || bits > 30) {
    throw std::invalid_argument("pod CIDR \"" + cidr +
                                "\": want an IPv4 CIDR a.b.c.d/n with n from 8 to 30");
  }
  uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  uint32_t network = ntohl(addr.s_addr) & mask;
  first_ = network + 2;
  count_ = (uint32_t{1} << (32 - bits)) - 3;  // less network, bridge, broadcast
}

std::string HollowIpPool::take() {
  for (uint32_t i = 0; i < count_; ++i) {
    uint32_t offset = (cursor_ + i) % count_;
    if (used_.insert(offset).second) {
      cursor_ = (offset + 1) % count_;
      return ipText(first_ + offset);
    }
  }
  return {};
}

void HollowIpPool::give(const std::string& ip) {
  in_addr addr{};
  if (::inet_pton(AF_INET, ip.c_str(), &addr) != 1) return;
  uint32_t host = ntohl(addr.s_addr);
  if (host >= first_) used_.erase(host - first_);
}

HollowPodSyncer::HollowPodSyncer(HollowPodSyncerOptions options) : options_(std::move(options)) {}

PodSyncResult HollowPodSyncer::sync(const Pod& pod) {
  const std::string& uid = pod.metadata().uid();
  PodSyncResult result;
  HollowPod hollow;
  bool first = false;
  {
    std::lock_guard lock(mu_);
    auto it = pods_.find(uid);
    if (it == pods_.end()) {
      std::string cidr = options_.pod_cidr ? options_.pod_cidr() : std::string();
      if (cidr.empty()) throw std::runtime_error("the node has no podCIDR yet");
      if (!pool_ || pool_->cidr() != cidr) {
        if (pool_ && pool_->inUse() > 0) {
          throw std::runtime_error("the node's podCIDR changed to " + cidr + " with pods on it");
        }
        pool_ = std::make_unique<HollowIpPool>(cidr);
      }
      HollowPod fresh;
      fresh.ip = pool_->take();
      if (fresh.ip.empty()) throw std::runtime_error("no free address left in " + cidr);
      fresh.started = api::now();
      fresh.started.nanos = 0;
      it = pods_.emplace(uid, fresh).first;
      first = true;
    }
    hollow = it->second;
  }
  std::string host_ip = options_.host_ip ? options_.host_ip() : std::string("127.0.0.1");
  PodStatus& s = result.status;
  s = baseStatus(pod, host_ip, hollow.ip, hollow.started);
  s.set_phase("Running");
  addCondition(s, "PodReadyToStartContainers", true);
  addCondition(s, "Initialized", true);
  addCondition(s, "ContainersReady", true);
  addCondition(s, "Ready", true);
  for (const auto& c : pod.spec().containers()) {
    auto* cs = s.add_container_statuses();
    cs->set_name(c.name());
    cs->set_image(c.image());
    cs->set_image_id(c.image());
    cs->set_container_id(containerId(pod, c.name()));
    cs->set_ready(true);
    cs->set_started(true);
    cs->set_restart_count(0);
    setTime(*cs->mutable_state()->mutable_running()->mutable_started_at(), hollow.started);
    if (first) {
      std::string where = "spec.containers{" + c.name() + "}";
      result.events.push_back({"Normal", "Pulled",
                               "Container image \"" + c.image() + "\" already present on machine",
                               where});
      result.events.push_back({"Normal", "Created", "Created container " + c.name(), where});
      result.events.push_back({"Normal", "Started", "Started container " + c.name(), where});
    }
  }
  return result;
}

PodSyncResult HollowPodSyncer::terminate(const Pod& pod, std::chrono::milliseconds /*grace*/) {
  const std::string& uid = pod.metadata().uid();
  PodSyncResult result;
  HollowPod hollow;
  bool known = false;
  {
    std::lock_guard lock(mu_);
    auto it = pods_.find(uid);
    if (it != pods_.end()) {
      hollow = it->second;
      known = true;
      releaseLocked(uid);
    }
  }
  if (!known) {
    // Nothing ran here (or the agent restarted): report what the apiserver last had.
    result.status = pod.status();
    return result;
  }
  std::string host_ip = options_.host_ip ? options_.host_ip() : std::string("127.0.0.1");
  api::Timestamp now = api::now();
  PodStatus& s = result.status;
  s = baseStatus(pod, host_ip, hollow.ip, hollow.started);
  s.set_phase("Succeeded");
  addCondition(s, "PodReadyToStartContainers", false);
  addCondition(s, "Initialized", true);
  addCondition(s, "ContainersReady", false, "PodCompleted");
  addCondition(s, "Ready", false, "PodCompleted");
  for (const auto& c : pod.spec().containers()) {
    auto* cs = s.add_container_statuses();
    cs->set_name(c.name());
    cs->set_image(c.image());
    cs->set_image_id(c.image());
    cs->set_container_id(containerId(pod, c.name()));
    cs->set_ready(false);
    cs->set_started(false);
    cs->set_restart_count(0);
    auto* t = cs->mutable_state()->mutable_terminated();
    t->set_exit_code(0);
    t->set_reason("Completed");
    setTime(*t->mutable_started_at(), hollow.started);
    setTime(*t->mutable_finished_at(), now);
    t->set_container_id(containerId(pod, c.name()));
    if (pod.metadata().has_deletion_timestamp()) {
      result.events.push_back({"Normal", "Killing", "Stopping container " + c.name(),
                               "spec.containers{" + c.name() + "}"});
    }
  }
  return result;
}

std::vector<std::string> HollowPodSyncer::knownPodUids() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [uid, _] : pods_)
    out.push_back(uid);
  return out;
}

void HollowPodSyncer::cleanupOrphan(const std::string& pod_uid) {
  std::lock_guard lock(mu_);
  releaseLocked(pod_uid);
}

size_t HollowPodSyncer::runningPods() const {
  std::lock_guard lock(mu_);
  return pods_.size();
}

void HollowPodSyncer::releaseLocked(const std::string& uid) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) return;
  if (pool_) pool_->give(it->second.ip);
  pods_.erase(it);
}

}  // namespace skiff::kubelet

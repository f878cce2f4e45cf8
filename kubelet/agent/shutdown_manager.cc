#include "kubelet/agent/shutdown_manager.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>

namespace skiff::kubelet {

using api::core::v1::Pod;
using api::core::v1::PodStatus;

namespace {

constexpr const char* kInhibitWho = "skiff agent";
constexpr const char* kInhibitWhy = "Kubelet needs time to handle node shutdown";

std::string podName(const Pod& pod) {
  return pod.metadata().namespace_() + "/" + pod.metadata().name();
}

// "5s", "1500ms".
std::string durationText(std::chrono::microseconds d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

}  // namespace

std::string logindDropIn(std::chrono::seconds delay) {
  return "# skiff agent: graceful node shutdown (--shutdown-grace-period), as the kubelet's "
         "override\n[Login]\nInhibitDelayMaxSec=" +
         std::to_string(delay.count()) + "\n";
}

std::string writeLogindDropIn(const std::string& dir, std::chrono::seconds delay) {
  const std::filesystem::path path = std::filesystem::path(dir) / kLogindDropInName;
  const std::filesystem::path tmp = path.string() + ".tmp";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot make " + dir + ": " + ec.message());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << logindDropIn(delay);
    out.close();
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  ::chmod(tmp.c_str(), 0644);
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw std::runtime_error("cannot write " + path.string() + ": " + ec.message());
  return path.string();
}

int64_t podPriority(const Pod& pod) {
  if (pod.spec().has_priority()) return pod.spec().priority();
  const std::string& cls = pod.spec().priority_class_name();
  if (cls == "system-node-critical") return kSystemCriticalPriority + 1000;
  if (cls == "system-cluster-critical") return kSystemCriticalPriority;
  return 0;
}

bool isCriticalPod(const Pod& pod) {
  return podPriority(pod) >= kSystemCriticalPriority;
}

std::vector<ShutdownGroup> shutdownGroups(std::chrono::seconds total, std::chrono::seconds critical,
                                          const std::vector<Pod>& pods) {
  std::vector<ShutdownGroup> groups(2);
  groups[0].priority = 0;
  groups[0].grace = total - critical;
  groups[1].priority = kSystemCriticalPriority;
  groups[1].grace = critical;
  for (const Pod& pod : pods)
    groups[isCriticalPod(pod) ? 1 : 0].pods.push_back(pod);
  return groups;
}

std::chrono::seconds shutdownGracePeriod(const Pod& pod, std::chrono::seconds group) {
  if (pod.spec().has_termination_grace_period_seconds() &&
      pod.spec().termination_grace_period_seconds() <= group.count()) {
    return std::chrono::seconds(
        std::max<int64_t>(0, pod.spec().termination_grace_period_seconds()));
  }
  return group;
}

void setShutdownStatus(PodStatus& status) {
  if (status.phase() != "Succeeded") status.set_phase("Failed");
  status.set_reason(kNodeShutdownReason);
  status.set_message(kNodeShutdownMessage);
  api::core::v1::PodCondition* target = nullptr;
  for (auto& c : *status.mutable_conditions()) {
    if (c.type() == "DisruptionTarget") target = &c;
  }
  if (target == nullptr) {
    target = status.add_conditions();
    target->set_type("DisruptionTarget");
  }
  if (target->status() != "True") target->clear_last_transition_time();
  target->set_status("True");
  target->set_reason("TerminationByKubelet");
  target->set_message(kNodeShutdownMessage);
}

ShutdownManager::ShutdownManager(ShutdownInhibitor& inhibitor, ShutdownPods& pods,
                                 ShutdownManagerOptions options)
    : inhibitor_(inhibitor), pods_(pods), options_(std::move(options)) {}

ShutdownManager::~ShutdownManager() {
  stop();
}

void ShutdownManager::log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::cerr << "skiff agent: node " << options_.node_name << ": " << line << std::endl;
  }
}

void ShutdownManager::start() {
  const auto total = options_.grace_period;
  const auto critical = options_.grace_period_critical_pods;
  if (total.count() < 0 || critical.count() < 0) {
    throw std::invalid_argument(
        "shutdownGracePeriod and shutdownGracePeriodCriticalPods must not "
        "be negative");
  }
  if (critical > total) {
    throw std::invalid_argument(
        "shutdownGracePeriodCriticalPods (" + std::to_string(critical.count()) +
        "s) must be <= shutdownGracePeriod (" + std::to_string(total.count()) + "s)");
  }
  if (total.count() == 0) return;
  if (const auto delay_max = inhibitor_.inhibitDelayMax(); delay_max < total) {
    raiseInhibitDelay(delay_max);
  }
  inhibitor_.acquire(kInhibitWho, kInhibitWhy);
  log("graceful shutdown: holding a delay inhibitor lock (grace period " +
      std::to_string(total.count()) + "s, " + std::to_string(critical.count()) +
      "s of it for critical pods)");
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
}

void ShutdownManager::raiseInhibitDelay(std::chrono::microseconds current) {
  const auto total = options_.grace_period;
  // As the kubelet: the drop-in, logind told to reload, the limit read again. Logind reloads on
  // its own time after the SIGHUP, so the new value is awaited for a moment.
  const std::string path = writeLogindDropIn(options_.logind_conf_dir, total);
  log("graceful shutdown: logind's InhibitDelayMaxSec is " + durationText(current) +
      ", less than the shutdown grace period of " + std::to_string(total.count()) + "s: wrote " +
      path + " and reloading logind");
  inhibitor_.reloadConfiguration();
  const auto deadline = std::chrono::steady_clock::now() + options_.logind_reload_timeout;
  auto updated = inhibitor_.inhibitDelayMax();
  while (updated < total && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    updated = inhibitor_.inhibitDelayMax();
  }
  if (updated < total) {
    throw std::runtime_error("unable to update logind's InhibitDelayMaxSec to " +
                             std::to_string(total.count()) +
                             "s (the shutdown grace period): it is still " + durationText(updated) +
                             " after writing " + path + " and reloading logind");
  }
  log("graceful shutdown: logind's InhibitDelayMaxSec is now " + durationText(updated));
}

void ShutdownManager::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  std::list<std::thread> kills;
  {
    std::lock_guard lock(kills_mu_);
    kills.swap(kills_);
  }
  for (auto& t : kills)
    t.join();
  inhibitor_.release();
}

void ShutdownManager::loop() {
  while (!stopping_) {
    std::optional<bool> signal;
    try {
      signal = inhibitor_.waitForShutdownSignal(options_.poll_interval);
    } catch (const std::exception& e) {
      log(std::string("graceful shutdown: ") + e.what() + "; no longer watching for a shutdown");
      return;
    }
    if (signal) handleSignal(*signal);
  }
}

std::string ShutdownManager::notReadyMessage() const {
  return shutting_down_ ? kNodeShuttingDownMessage : "";
}

std::pair<std::string, std::string> ShutdownManager::admit(const Pod& /*pod*/) const {
  if (!shutting_down_) return {};
  return {kNodeShutdownNotAdmittedReason, kNodeShutdownNotAdmittedMessage};
}

void ShutdownManager::handleSignal(bool shutting_down) {
  log(std::string("graceful shutdown: ") +
      (shutting_down ? "the node is shutting down" : "the shutdown was cancelled"));
  if (options_.node_event) {
    options_.node_event(kNodeShutdownEventReason, shutting_down
                                                      ? kNodeShutdownEventMessage
                                                      : kNodeShutdownCancelledEventMessage);
  }
  shutting_down_ = shutting_down;
  if (options_.on_change) options_.on_change();
  if (shutting_down) {
    processShutdown();
    return;
  }
  try {
    inhibitor_.acquire(kInhibitWho, kInhibitWhy);
  } catch (const std::exception& e) {
    log(std::string("graceful shutdown: taking the inhibitor lock again: ") + e.what());
  }
}

void ShutdownManager::processShutdown() {
  const std::vector<Pod> active = pods_.activePods();
  log("graceful shutdown: stopping " + std::to_string(active.size()) + " pod(s)");
  for (ShutdownGroup& group :
       shutdownGroups(options_.grace_period, options_.grace_period_critical_pods, active)) {
    if (group.pods.empty()) continue;
    struct Pending {
      std::mutex mu;
      std::condition_variable cv;
      size_t left = 0;
    };
    auto pending = std::make_shared<Pending>();
    pending->left = group.pods.size();
    std::vector<std::thread> threads;
    threads.reserve(group.pods.size());
    for (const Pod& pod : group.pods) {
      const auto grace = shutdownGracePeriod(pod, group.grace);
      log("graceful shutdown: stopping pod " + podName(pod) + " (priority " +
          std::to_string(podPriority(pod)) + ", grace period " + std::to_string(grace.count()) +
          "s)");
      threads.emplace_back([this, pod, grace, pending] {
        try {
          pods_.killPod(pod, grace, setShutdownStatus);
        } catch (const std::exception& e) {
          log("graceful shutdown: stopping pod " + podName(pod) + ": " + e.what());
        }
        std::lock_guard lock(pending->mu);
        --pending->left;
        pending->cv.notify_all();
      });
    }
    bool done = false;
    {
      std::unique_lock lock(pending->mu);
      done = pending->cv.wait_for(lock, group.grace, [&] { return pending->left == 0; });
    }
    if (done) {
      for (auto& t : threads)
        t.join();
    } else {
      log("graceful shutdown: the pods of priority " + std::to_string(group.priority) +
          " and up did not stop within " + std::to_string(group.grace.count()) + "s; going on");
      std::lock_guard lock(kills_mu_);
      for (auto& t : threads)
        kills_.push_back(std::move(t));
    }
  }
  inhibitor_.release();
  ++shutdowns_handled_;
  log("graceful shutdown: done, inhibitor lock released; the node will shut down shortly");
}

}  // namespace skiff::kubelet

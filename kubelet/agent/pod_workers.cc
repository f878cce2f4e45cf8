#include "kubelet/agent/pod_workers.h"

#include <algorithm>
#include <atomic>
#include <iostream>
#include <set>

#include "control/client/typed.h"

namespace skiff::kubelet {

using api::core::v1::Pod;
using api::core::v1::PodStatus;

namespace {

std::string podName(const Pod& pod) {
  return pod.metadata().namespace_() + "/" + pod.metadata().name();
}

}  // namespace

PodWorkers::PodWorkers(client::Client& client, PodSyncer& syncer, PodStatusManager& statuses,
                       PodEventRecorder& events, PodWorkersOptions options)
    : client_(client),
      syncer_(syncer),
      statuses_(statuses),
      events_(events),
      options_(std::move(options)),
      queue_(options_.queue) {}

PodWorkers::~PodWorkers() {
  stop();
}

void PodWorkers::onPodAdd(const Pod& pod) {
  if (pod.spec().node_name() != options_.node_name || pod.metadata().uid().empty()) return;
  {
    std::lock_guard lock(mu_);
    auto& state = pods_[pod.metadata().uid()];
    state.pod = pod;
    state.removed = false;
  }
  queue_.add(pod.metadata().uid());
}

void PodWorkers::onPodUpdate(const Pod& old_pod, const Pod& pod) {
  // The same name with a new UID is another pod: the old one is gone.
  if (old_pod.metadata().uid() != pod.metadata().uid()) onPodDelete(old_pod);
  if (pod.spec().node_name() != options_.node_name) {
    onPodDelete(pod);
    return;
  }
  onPodAdd(pod);
}

void PodWorkers::onPodDelete(const Pod& pod) {
  const std::string& uid = pod.metadata().uid();
  {
    std::lock_guard lock(mu_);
    auto it = pods_.find(uid);
    if (it == pods_.end()) return;
    it->second.pod = pod;
    it->second.removed = true;
  }
  queue_.add(uid);
}

void PodWorkers::requestSync(const std::string& pod_uid) {
  {
    std::lock_guard lock(mu_);
    if (!pods_.contains(pod_uid)) return;
  }
  queue_.add(pod_uid);
}

std::vector<std::string> PodWorkers::cleanupOrphans() {
  std::vector<std::string> orphans;
  std::vector<std::string> known;
  try {
    known = syncer_.knownPodUids();
  } catch (const std::exception& e) {
    std::cerr << "skiff agent: node " << options_.node_name << ": listing local pods: " << e.what()
              << std::endl;
    return orphans;
  }
  std::vector<std::string> candidates;
  {
    std::lock_guard lock(mu_);
    for (const std::string& uid : known) {
      if (!pods_.contains(uid)) candidates.push_back(uid);
    }
  }
  // Side by side, as many as the workers' threads and at least a few: each may wait out its
  // containers' grace; one after another, a node with many orphans took as many grace periods.
  std::mutex out_mu;
  std::atomic<size_t> next{0};
  auto cleanOne = [&] {
    for (size_t i; (i = next.fetch_add(1)) < candidates.size();) {
      const std::string& uid = candidates[i];
      try {
        syncer_.cleanupOrphan(uid);
        std::lock_guard lock(out_mu);
        orphans.push_back(uid);
        std::cerr << "skiff agent: node " << options_.node_name << ": cleaned up pod " << uid
                  << ", deleted while the agent was away" << std::endl;
      } catch (const std::exception& e) {
        std::lock_guard lock(out_mu);
        std::cerr << "skiff agent: node " << options_.node_name << ": cleaning up pod " << uid
                  << ": " << e.what() << std::endl;
      }
    }
  };
  const size_t threads =
      std::min(candidates.size(), static_cast<size_t>(std::max(8, options_.workers)));
  std::vector<std::thread> cleaners;
  for (size_t i = 1; i < threads; ++i)
    cleaners.emplace_back(cleanOne);
  cleanOne();
  for (auto& t : cleaners)
    t.join();
  std::sort(orphans.begin(), orphans.end());
  return orphans;
}

void PodWorkers::start() {
  stopping_ = false;
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    threads_.emplace_back([this] { work(); });
  }
}

void PodWorkers::stop() {
  stopping_ = true;
  queue_.shutDown();
  for (auto& t : threads_)
    t.join();
  threads_.clear();
}

std::vector<Pod> PodWorkers::activePods() const {
  std::vector<Pod> out;
  std::lock_guard lock(mu_);
  for (const auto& [uid, state] : pods_) {
    if (state.removed || state.terminated || isTerminalPhase(state.pod.status().phase())) continue;
    out.push_back(state.pod);
  }
  return out;
}

bool PodWorkers::killPod(const std::string& uid, std::chrono::milliseconds grace,
                         const std::function<void(PodStatus&)>& set_status) {
  Pod pod;
  {
    std::unique_lock lock(mu_);
    auto it = pods_.find(uid);
    if (it == pods_.end()) return false;
    it->second.killing = true;  // the workers leave it alone from now on
    idle_cv_.wait(lock, [&] {
      auto found = pods_.find(uid);
      return found == pods_.end() || !found->second.busy;
    });
    it = pods_.find(uid);
    if (it == pods_.end()) return false;
    if (it->second.terminated) {
      it->second.killing = false;
      return false;
    }
    it->second.busy = true;
    pod = it->second.pod;
  }
  auto done = [&](bool terminated) {
    {
      std::lock_guard lock(mu_);
      if (auto it = pods_.find(uid); it != pods_.end()) {
        it->second.busy = false;
        it->second.killing = false;
        it->second.terminated = it->second.terminated || terminated;
      }
    }
    idle_cv_.notify_all();
    queue_.add(uid);  // whatever came meanwhile (a deletion) is handled now
  };
  // A status the apiserver refused is tried again a few times: after the shutdown nobody will.
  auto post = [&](const PodStatus& status) {
    for (int attempt = 0;; ++attempt) {
      try {
        statuses_.setPodStatus(pod, status);
        return;
      } catch (const std::exception& e) {
        if (attempt == 2) {
          std::cerr << "skiff agent: node " << options_.node_name << ": pod " << podName(pod)
                    << ": posting its status: " << e.what() << std::endl;
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
  };
  try {
    // First the status as it is with the shutdown's marks (Kubernetes posts it before the kill).
    PodStatus before = statuses_.lastPosted(uid).value_or(pod.status());
    set_status(before);
    post(before);
    PodSyncResult result = syncer_.terminate(pod, grace);
    recordEvents(pod, result.events);
    set_status(result.status);
    // The kubelet never moves a pod from one terminal phase to another (its containers' exit 0
    // after SIGTERM does not turn the shutdown's Failed into Succeeded).
    if (isTerminalPhase(before.phase())) result.status.set_phase(before.phase());
    post(result.status);
  } catch (...) {
    done(false);
    throw;
  }
  done(true);
  return true;
}

size_t PodWorkers::trackedPods() const {
  std::lock_guard lock(mu_);
  return pods_.size();
}

void PodWorkers::work() {
  while (auto uid = queue_.get()) {
    if (!stopping_) process(*uid);
    queue_.done(*uid);
  }
}

std::chrono::milliseconds PodWorkers::gracePeriod(const Pod& pod) const {
  if (pod.metadata().has_deletion_grace_period_seconds()) {
    return std::chrono::seconds(pod.metadata().deletion_grace_period_seconds());
  }
  if (pod.spec().has_termination_grace_period_seconds()) {
    return std::chrono::seconds(pod.spec().termination_grace_period_seconds());
  }
  return options_.default_grace;
}

void PodWorkers::recordEvents(const Pod& pod, const std::vector<PodEvent>& events) {
  for (const auto& e : events)
    events_.record(pod, e);
}

void PodWorkers::markTerminated(const std::string& uid) {
  std::lock_guard lock(mu_);
  if (auto it = pods_.find(uid); it != pods_.end()) it->second.terminated = true;
}

void PodWorkers::confirmDeletion(const Pod& pod) {
  client::DeleteOptions options;
  options.grace_period_seconds = 0;
  options.precondition_uid = pod.metadata().uid();
  try {
    client_.remove(client::resourceTypeOf<Pod>(), pod.metadata().namespace_(),
                   pod.metadata().name(), options);
  } catch (const client::ApiError& e) {
    // Gone already, or the name now belongs to a newer pod (the UID precondition failed).
    if (!e.isNotFound() && !e.isConflict()) throw;
  }
}

void PodWorkers::process(const std::string& uid) {
  PodState state;
  {
    std::lock_guard lock(mu_);
    auto it = pods_.find(uid);
    if (it == pods_.end()) return;
    // killPod() has it, and queues it again when it is done.
    if (it->second.busy || it->second.killing) return;
    it->second.busy = true;
    state = it->second;
  }
  // Not busy any more on every way out (killPod() may be waiting for that).
  struct Idle {
    PodWorkers& w;
    const std::string& uid;
    ~Idle() {
      {
        std::lock_guard lock(w.mu_);
        if (auto it = w.pods_.find(uid); it != w.pods_.end()) it->second.busy = false;
      }
      w.idle_cv_.notify_all();
    }
  } idle{*this, uid};
  const Pod& pod = state.pod;
  try {
    if (state.removed) {
      if (!state.terminated) {
        PodSyncResult result = syncer_.terminate(pod, gracePeriod(pod));
        recordEvents(pod, result.events);
      }
      std::lock_guard lock(mu_);
      auto it = pods_.find(uid);
      // Re-added meanwhile (a relist found it again): its next turn handles it.
      if (it != pods_.end() && it->second.removed) pods_.erase(it);
      statuses_.forget(uid);
      queue_.forget(uid);
      return;
    }
    if (pod.metadata().has_deletion_timestamp()) {
      if (!state.terminated) {
        PodSyncResult result = syncer_.terminate(pod, gracePeriod(pod));
        recordEvents(pod, result.events);
        statuses_.setPodStatus(pod, result.status);
        markTerminated(uid);
      }
      confirmDeletion(pod);
      queue_.forget(uid);
      return;  // the informer's delete forgets it
    }
    // Terminated by killPod() (node shutdown), or terminal: never synced again.
    if (state.terminated) {
      queue_.forget(uid);
      return;
    }
    if (isTerminalPhase(pod.status().phase())) {
      // Never run again; release what it held once.
      if (!state.terminated) {
        PodSyncResult result = syncer_.terminate(pod, std::chrono::milliseconds(0));
        recordEvents(pod, result.events);
        markTerminated(uid);
      }
      queue_.forget(uid);
      return;
    }
    if (!state.admitted && options_.admit) {
      // A pod new to the node that may not run here now (the node shuts down): Failed at once.
      auto [reason, message] = options_.admit(pod);
      if (!reason.empty()) {
        PodStatus rejected;
        rejected.set_phase("Failed");
        rejected.set_reason(reason);
        rejected.set_message(message);
        statuses_.setPodStatus(pod, rejected);
        std::cerr << "skiff agent: node " << options_.node_name << ": pod " << podName(pod)
                  << " not admitted: " << message << std::endl;
        markTerminated(uid);
        queue_.forget(uid);
        return;
      }
    }
    PodSyncResult result = syncer_.sync(pod);
    ++syncs_;
    {
      std::lock_guard lock(mu_);
      if (auto it = pods_.find(uid); it != pods_.end()) it->second.admitted = true;
    }
    recordEvents(pod, result.events);
    statuses_.setPodStatus(pod, result.status);
    if (isTerminalPhase(result.status.phase())) {
      PodSyncResult done = syncer_.terminate(pod, std::chrono::milliseconds(0));
      recordEvents(pod, done.events);
      markTerminated(uid);
    } else {
      queue_.addAfter(uid, result.resync_after.value_or(options_.sync_frequency));
    }
    queue_.forget(uid);
  } catch (const std::exception& e) {
    std::cerr << "skiff agent: node " << options_.node_name << ": pod " << podName(pod) << ": "
              << e.what() << " (retrying)" << std::endl;
    queue_.addRateLimited(uid);
  }
}

}  // namespace skiff::kubelet

#include "scheduler/queue.h"

#include <algorithm>

namespace skiff::scheduler {
namespace {

const std::set<std::string>& interestedPlugins(ClusterEvent event) {
  static const std::set<std::string> kNode = {
      "NodeResourcesFit",  "NodeAffinity", "TaintToleration",   "NodePorts",
      "NodeUnschedulable", "NodeName",     "PodTopologySpread", "InterPodAffinity"};
  static const std::set<std::string> kPodAdd = {"InterPodAffinity", "PodTopologySpread"};
  static const std::set<std::string> kPodUpdate = {"InterPodAffinity", "PodTopologySpread",
                                                   "NodeResourcesFit"};
  static const std::set<std::string> kPodDelete = {"NodeResourcesFit", "NodePorts",
                                                   "InterPodAffinity", "PodTopologySpread",
                                                   "DefaultPreemption"};
  static const std::set<std::string> kAll = {"*"};
  switch (event) {
    case ClusterEvent::kNodeAdd:
    case ClusterEvent::kNodeUpdate:
      return kNode;
    case ClusterEvent::kAssignedPodAdd:
      return kPodAdd;
    case ClusterEvent::kAssignedPodUpdate:
      return kPodUpdate;
    case ClusterEvent::kAssignedPodDelete:
      return kPodDelete;
    case ClusterEvent::kForceActivate:
      return kAll;
  }
  return kAll;
}

bool cares(const std::set<std::string>& rejected_by, const std::set<std::string>& interested) {
  if (rejected_by.empty() || interested.contains("*")) return true;
  for (const std::string& p : rejected_by) {
    if (interested.contains(p)) return true;
  }
  return false;
}

}  // namespace

std::string_view eventName(ClusterEvent event) {
  switch (event) {
    case ClusterEvent::kNodeAdd:
      return "NodeAdd";
    case ClusterEvent::kNodeUpdate:
      return "NodeUpdate";
    case ClusterEvent::kAssignedPodAdd:
      return "AssignedPodAdd";
    case ClusterEvent::kAssignedPodUpdate:
      return "AssignedPodUpdate";
    case ClusterEvent::kAssignedPodDelete:
      return "AssignedPodDelete";
    case ClusterEvent::kForceActivate:
      return "ForceActivate";
  }
  return "Unknown";
}

SchedulingQueue::SchedulingQueue(QueueOptions options, ClockFn clock)
    : options_(options), clock_(clock ? std::move(clock) : ClockFn([] { return Clock::now(); })) {}

std::chrono::milliseconds SchedulingQueue::backoffDuration(int attempts) const {
  auto d = options_.initial_backoff;
  for (int i = 1; i < attempts; ++i) {
    d *= 2;
    if (d >= options_.max_backoff) return options_.max_backoff;
  }
  return std::min(d, options_.max_backoff);
}

SchedulingQueue::Clock::time_point SchedulingQueue::backoffExpiry(const QueuedPodInfo& info) const {
  return info.timestamp + backoffDuration(std::max(1, info.attempts));
}

void SchedulingQueue::unlinkLocked(const std::string& key) {
  if (auto it = active_pos_.find(key); it != active_pos_.end()) {
    active_.erase(it->second);
    active_pos_.erase(it);
  }
  if (auto it = backoff_pos_.find(key); it != backoff_pos_.end()) {
    backoff_.erase(it->second);
    backoff_pos_.erase(it);
  }
  unschedulable_.erase(key);
}

void SchedulingQueue::placeLocked(const std::string& key, Entry entry, Where where) {
  unlinkLocked(key);
  entry.where = where;
  entry.seq = ++seq_;
  if (where == Where::kActive) {
    ActiveOrder order{podPriority(*entry.info.pod->pod), entry.info.timestamp, entry.seq};
    active_.emplace(order, key);
    active_pos_[key] = order;
    cv_.notify_one();
  } else if (where == Where::kBackoff) {
    backoff_pos_[key] = backoff_.emplace(backoffExpiry(entry.info), key);
  } else {
    unschedulable_.insert(key);
  }
  entries_[key] = std::move(entry);
}

void SchedulingQueue::add(PodPtr pod) {
  PodInfoPtr info = PodInfo::make(std::move(pod));
  std::lock_guard lock(mu_);
  const std::string key = info->key;
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    it->second.info.pod = std::move(info);
    if (it->second.where == Where::kActive) {
      // Keep its place; priority may have changed.
      placeLocked(key, std::move(it->second), Where::kActive);
    }
    return;
  }
  if (in_flight_.contains(key)) return;  // being scheduled; it comes back through done/unsched
  Entry e;
  e.info.pod = std::move(info);
  e.info.timestamp = clock_();
  placeLocked(key, std::move(e), Where::kActive);
}

void SchedulingQueue::update(PodPtr pod) {
  PodInfoPtr info = PodInfo::make(std::move(pod));
  std::lock_guard lock(mu_);
  const std::string key = info->key;
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (in_flight_.contains(key)) return;
    Entry e;
    e.info.pod = std::move(info);
    e.info.timestamp = clock_();
    placeLocked(key, std::move(e), Where::kActive);
    return;
  }
  it->second.info.pod = std::move(info);
  if (it->second.where == Where::kUnschedulable) {
    it->second.info.unschedulable_plugins.clear();
    moveToActiveOrBackoffLocked(key);
  } else {
    const Where where = it->second.where;
    placeLocked(key, std::move(it->second), where);
  }
}

void SchedulingQueue::remove(std::string_view key_view) {
  std::lock_guard lock(mu_);
  const std::string key(key_view);
  unlinkLocked(key);
  entries_.erase(key);
}

bool SchedulingQueue::popLocked(QueuedPodInfo& out) {
  if (active_.empty()) return false;
  auto first = active_.begin();
  const std::string key = first->second;
  active_.erase(first);
  active_pos_.erase(key);
  auto it = entries_.find(key);
  out = std::move(it->second.info);
  entries_.erase(it);
  ++out.attempts;
  if (out.attempts == 1) out.initial_attempt = clock_();
  auto [flight, added] = in_flight_.try_emplace(key, event_seq_);
  if (!added) {
    releaseSeqLocked(flight->second);
    flight->second = event_seq_;
  }
  ++in_flight_seqs_[event_seq_];
  return true;
}

bool SchedulingQueue::pop(QueuedPodInfo& out) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return closed_ || !active_.empty(); });
  if (closed_) return false;
  return popLocked(out);
}

bool SchedulingQueue::tryPop(QueuedPodInfo& out) {
  std::lock_guard lock(mu_);
  if (closed_) return false;
  return popLocked(out);
}

void SchedulingQueue::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

void SchedulingQueue::done(std::string_view key) {
  std::lock_guard lock(mu_);
  if (auto it = in_flight_.find(std::string(key)); it != in_flight_.end()) {
    releaseSeqLocked(it->second);
    in_flight_.erase(it);
  }
  if (in_flight_.empty()) {
    events_.clear();
  } else {
    const uint64_t oldest = std::min(event_seq_, in_flight_seqs_.begin()->first);
    events_.erase(events_.begin(), events_.upper_bound(oldest));
  }
}

void SchedulingQueue::releaseSeqLocked(uint64_t seq) {
  auto it = in_flight_seqs_.find(seq);
  if (it != in_flight_seqs_.end() && --it->second == 0) in_flight_seqs_.erase(it);
}

void SchedulingQueue::addUnschedulable(QueuedPodInfo info, bool unschedulable) {
  const std::string key = info.pod->key;
  bool event_while_in_flight = false;
  {
    std::lock_guard lock(mu_);
    auto flight = in_flight_.find(key);
    const uint64_t popped_at = flight == in_flight_.end() ? event_seq_ : flight->second;
    for (auto it = events_.upper_bound(popped_at); it != events_.end(); ++it) {
      if (cares(info.unschedulable_plugins, *it->second)) event_while_in_flight = true;
    }
    if (entries_.contains(key)) {
      // Re-added meanwhile (an update): the queued copy wins.
    } else {
      info.timestamp = clock_();
      Entry e;
      e.info = std::move(info);
      const Where where =
          unschedulable && !event_while_in_flight ? Where::kUnschedulable : Where::kBackoff;
      placeLocked(key, std::move(e), where);
    }
  }
  done(key);
}

void SchedulingQueue::moveToActiveOrBackoffLocked(const std::string& key) {
  Entry& e = entries_.at(key);
  const Where where = backoffExpiry(e.info) > clock_() ? Where::kBackoff : Where::kActive;
  placeLocked(key, std::move(e), where);
}

void SchedulingQueue::onEvent(ClusterEvent event) {
  std::lock_guard lock(mu_);
  const auto& interested = interestedPlugins(event);
  if (!in_flight_.empty()) events_[++event_seq_] = &interested;
  std::vector<std::string> move;
  for (const std::string& key : unschedulable_) {
    if (cares(entries_.at(key).info.unschedulable_plugins, interested)) move.push_back(key);
  }
  for (const std::string& key : move)
    moveToActiveOrBackoffLocked(key);
}

void SchedulingQueue::flushBackoff() {
  std::lock_guard lock(mu_);
  const auto now = clock_();
  while (!backoff_.empty() && backoff_.begin()->first <= now) {
    const std::string key = backoff_.begin()->second;
    placeLocked(key, std::move(entries_.at(key)), Where::kActive);
  }
}

void SchedulingQueue::flushUnschedulableLeftovers() {
  std::lock_guard lock(mu_);
  const auto now = clock_();
  std::vector<std::string> move;
  for (const std::string& key : unschedulable_) {
    if (now - entries_.at(key).info.timestamp >= options_.max_unschedulable) move.push_back(key);
  }
  for (const std::string& key : move)
    moveToActiveOrBackoffLocked(key);
}

size_t SchedulingQueue::activeSize() const {
  std::lock_guard lock(mu_);
  return active_.size();
}

size_t SchedulingQueue::backoffSize() const {
  std::lock_guard lock(mu_);
  return backoff_.size();
}

size_t SchedulingQueue::unschedulableSize() const {
  std::lock_guard lock(mu_);
  return unschedulable_.size();
}

bool SchedulingQueue::contains(std::string_view key) const {
  std::lock_guard lock(mu_);
  return entries_.contains(std::string(key));
}

}  // namespace skiff::scheduler

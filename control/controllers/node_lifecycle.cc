#include "control/controllers/node_lifecycle.h"

#include <algorithm>
#include <limits>

namespace skiff::controllers {

namespace {

using api::core::v1::Node;
using api::core::v1::NodeCondition;
using api::core::v1::Pod;
using api::core::v1::Taint;
using api::core::v1::Toleration;

bool before(const api::Timestamp& a, const api::Timestamp& b) {
  return a.seconds < b.seconds || (a.seconds == b.seconds && a.nanos < b.nanos);
}

std::chrono::milliseconds since(const api::Timestamp& then, const api::Timestamp& now) {
  return std::chrono::milliseconds(millisBetween(then, now));
}

bool isLifecycleTaint(const Taint& t) {
  return (t.key() == kTaintUnreachable || t.key() == kTaintNotReady) &&
         (t.effect() == "NoSchedule" || t.effect() == "NoExecute");
}

}  // namespace

const NodeCondition* nodeCondition(const Node& node, std::string_view type) {
  for (const auto& c : node.status().conditions()) {
    if (c.type() == type) return &c;
  }
  return nullptr;
}

NodeHealth observeNodeHealth(const std::optional<NodeHealth>& previous, const Node& node,
                             const api::coordination::v1::Lease* lease, const api::Timestamp& now) {
  NodeHealth next;
  const NodeCondition* ready = nodeCondition(node, "Ready");
  if (ready != nullptr && ready->has_last_heartbeat_time()) {
    next.ready_heartbeat = toTimestamp(ready->last_heartbeat_time());
  }
  if (lease != nullptr && lease->spec().has_renew_time()) {
    const auto& r = lease->spec().renew_time();
    next.lease_renew = api::Timestamp{r.seconds(), r.nanos()};
  }
  if (!previous) {
    // First sight: a node that never posted Ready counts from its creation (with the startup
    // grace period), any other from now, as tryUpdateNodeHealth does.
    next.probe_time = ready == nullptr && node.metadata().has_creation_timestamp()
                          ? toTimestamp(node.metadata().creation_timestamp())
                          : now;
    return next;
  }
  next.probe_time = previous->probe_time;
  bool heartbeat_moved =
      next.ready_heartbeat &&
      (!previous->ready_heartbeat || before(*previous->ready_heartbeat, *next.ready_heartbeat));
  bool lease_moved = next.lease_renew &&
                     (!previous->lease_renew || before(*previous->lease_renew, *next.lease_renew));
  if (heartbeat_moved || lease_moved) next.probe_time = now;
  // Keep the newest values seen, so that a stale cache entry does not count as news later.
  if (!next.ready_heartbeat) next.ready_heartbeat = previous->ready_heartbeat;
  if (!next.lease_renew) next.lease_renew = previous->lease_renew;
  if (previous->ready_heartbeat && next.ready_heartbeat &&
      before(*next.ready_heartbeat, *previous->ready_heartbeat)) {
    next.ready_heartbeat = previous->ready_heartbeat;
  }
  if (previous->lease_renew && next.lease_renew &&
      before(*next.lease_renew, *previous->lease_renew)) {
    next.lease_renew = previous->lease_renew;
  }
  return next;
}

NodeStatusDecision evaluateNodeStatus(const Node& node, const NodeHealth& health,
                                      const NodeLifecycleTiming& timing,
                                      const api::Timestamp& now) {
  NodeStatusDecision out;
  const NodeCondition* ready = nodeCondition(node, "Ready");
  if (ready != nullptr) {
    out.ready =
        ready->status() == "True" || ready->status() == "False" ? ready->status() : "Unknown";
  } else {
    out.ready.clear();  // never posted: no verdict until the startup grace period is over
  }
  auto grace = ready == nullptr ? timing.startup_grace_period : timing.grace_period;
  auto age = since(health.probe_time, now);
  if (age <= grace) {
    out.stale_in = grace - age + std::chrono::milliseconds(1);
    return out;
  }
  // Stale: every condition the kubelet owns goes Unknown.
  Node next = node;
  bool changed = false;
  bool saw_ready = false;
  for (auto& c : *next.mutable_status()->mutable_conditions()) {
    if (c.type() == "Ready") saw_ready = true;
    if (c.status() == "Unknown") continue;
    c.set_status("Unknown");
    c.set_reason("NodeStatusUnknown");
    c.set_message("Kubelet stopped posting node status.");
    setTime(*c.mutable_last_transition_time(), now);
    changed = true;
  }
  if (!saw_ready) {
    auto* c = next.mutable_status()->add_conditions();
    c->set_type("Ready");
    c->set_status("Unknown");
    c->set_reason("NodeStatusNeverUpdated");
    c->set_message("Kubelet never posted node status.");
    if (node.metadata().has_creation_timestamp()) {
      *c->mutable_last_heartbeat_time() = node.metadata().creation_timestamp();
    }
    setTime(*c->mutable_last_transition_time(), now);
    changed = true;
  }
  out.ready = "Unknown";
  if (changed) out.status_update = std::move(next);
  return out;
}

std::optional<std::vector<Taint>> desiredNodeTaints(const Node& node, std::string_view ready,
                                                    const api::Timestamp& now) {
  if (ready.empty()) return std::nullopt;  // no Ready condition yet: leave the taints alone
  std::string_view key;
  if (ready == "Unknown") key = kTaintUnreachable;
  if (ready == "False") key = kTaintNotReady;
  std::vector<Taint> out;
  bool changed = false;
  bool have_no_schedule = false;
  bool have_no_execute = false;
  for (const auto& t : node.spec().taints()) {
    if (!isLifecycleTaint(t)) {
      out.push_back(t);
      continue;
    }
    if (key.empty() || t.key() != key) {
      changed = true;  // drop it
      continue;
    }
    bool& have = t.effect() == "NoSchedule" ? have_no_schedule : have_no_execute;
    if (have) {
      changed = true;  // a duplicate
      continue;
    }
    have = true;
    out.push_back(t);
  }
  if (!key.empty() && !have_no_schedule) {
    Taint t;
    t.set_key(std::string(key));
    t.set_effect("NoSchedule");
    out.push_back(std::move(t));
    changed = true;
  }
  if (!key.empty() && !have_no_execute) {
    Taint t;
    t.set_key(std::string(key));
    t.set_effect("NoExecute");
    setTime(*t.mutable_time_added(), now);
    out.push_back(std::move(t));
    changed = true;
  }
  if (!changed) return std::nullopt;
  return out;
}

std::optional<Pod> podMarkedNotReady(const Pod& pod, const api::Timestamp& now) {
  if (isPodTerminal(pod) || pod.metadata().has_deletion_timestamp()) return std::nullopt;
  Pod next = pod;
  for (auto& c : *next.mutable_status()->mutable_conditions()) {
    if (c.type() != "Ready") continue;
    if (c.status() == "False") return std::nullopt;
    c.set_status("False");
    setTime(*c.mutable_last_transition_time(), now);
    return next;
  }
  return std::nullopt;  // never Ready: nothing to take back
}

std::chrono::milliseconds NoExecuteTaintLimiter::tryTake(const api::Timestamp& now) {
  if (rate_ <= 0) return std::chrono::milliseconds(0);
  if (next_ && before(now, *next_)) {
    return std::chrono::milliseconds(std::max<int64_t>(millisBetween(now, *next_), 1));
  }
  auto interval_ms = static_cast<int64_t>(1000.0 / rate_);
  api::Timestamp next = now;
  next.seconds += interval_ms / 1000;
  next.nanos += static_cast<int32_t>((interval_ms % 1000) * 1000000);
  if (next.nanos >= 1000000000) {
    next.nanos -= 1000000000;
    next.seconds += 1;
  }
  next_ = next;
  return std::chrono::milliseconds(0);
}

EvictionDecision podEviction(const Pod& pod, const std::vector<Taint>& taints,
                             const api::Timestamp& fallback_added, const api::Timestamp& now) {
  EvictionDecision out;
  constexpr int64_t kForever = std::numeric_limits<int64_t>::max();
  int64_t earliest_ms = kForever;  // from now
  for (const auto& taint : taints) {
    if (taint.effect() != "NoExecute") continue;
    const Toleration* used = nullptr;
    for (const auto& t : pod.spec().tolerations()) {
      if (toleratesTaint(t, taint)) {
        used = &t;
        break;
      }
    }
    std::string name = taint.key() + ":NoExecute";
    if (used == nullptr) {
      out.kind = EvictionDecision::Kind::kNow;
      out.taint = std::move(name);
      return out;
    }
    if (!used->has_toleration_seconds()) continue;  // tolerated forever
    int64_t seconds = std::max<int64_t>(used->toleration_seconds(), 0);
    api::Timestamp added =
        taint.has_time_added() ? toTimestamp(taint.time_added()) : fallback_added;
    int64_t at_ms = millisBetween(now, added) + seconds * 1000;
    if (at_ms < earliest_ms) {
      earliest_ms = at_ms;
      out.taint = std::move(name);
    }
  }
  if (earliest_ms == kForever) {
    out.taint.clear();
    return out;
  }
  if (earliest_ms <= 0) {
    out.kind = EvictionDecision::Kind::kNow;
    return out;
  }
  out.kind = EvictionDecision::Kind::kLater;
  out.after = std::chrono::milliseconds(earliest_ms);
  return out;
}

}  // namespace skiff::controllers

#include "kubelet/agent/status_manager.h"

#include <array>
#include <string_view>

#include <google/protobuf/util/message_differencer.h>

#include "control/client/typed.h"
#include "kubelet/agent/time_util.h"

namespace skiff::kubelet {

using api::core::v1::Pod;
using api::core::v1::PodCondition;
using api::core::v1::PodStatus;

namespace {

constexpr std::array<std::string_view, 4> kKubeletConditions = {
    "Initialized", "ContainersReady", "Ready", "PodReadyToStartContainers"};

bool kubeletOwns(std::string_view type) {
  for (auto t : kKubeletConditions) {
    if (t == type) return true;
  }
  return false;
}

const PodCondition* findCondition(const PodStatus& status, std::string_view type) {
  for (const auto& c : status.conditions()) {
    if (c.type() == type) return &c;
  }
  return nullptr;
}

bool equal(const PodStatus& a, const PodStatus& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

}  // namespace

bool isTerminalPhase(const std::string& phase) {
  return phase == "Succeeded" || phase == "Failed";
}

PodStatus mergePodStatus(const PodStatus& old_status, const PodStatus& observed) {
  PodStatus out = observed;
  api::Timestamp now = api::now();
  google::protobuf::RepeatedPtrField<PodCondition> conditions;
  for (const auto& c : observed.conditions()) {
    PodCondition next = c;
    const PodCondition* old = findCondition(old_status, c.type());
    if (old != nullptr && old->status() == c.status() && old->has_last_transition_time()) {
      *next.mutable_last_transition_time() = old->last_transition_time();
    } else if (!next.has_last_transition_time()) {
      setTime(*next.mutable_last_transition_time(), now);
    }
    next.mutable_last_transition_time()->set_nanos(0);
    *conditions.Add() = std::move(next);
  }
  for (const auto& old : old_status.conditions()) {
    if (kubeletOwns(old.type()) || findCondition(observed, old.type()) != nullptr) continue;
    *conditions.Add() = old;
  }
  // A pod on a node was scheduled: the kubelet reports PodScheduled True when nobody did
  // (generateAPIPodStatus), for pods bound by a binding that set no condition.
  bool scheduled = false;
  for (const auto& c : conditions)
    scheduled = scheduled || c.type() == "PodScheduled";
  if (!scheduled) {
    PodCondition c;
    c.set_type("PodScheduled");
    c.set_status("True");
    setTime(*c.mutable_last_transition_time(), now);
    *conditions.Add() = std::move(c);
  }
  *out.mutable_conditions() = std::move(conditions);
  if (old_status.has_start_time()) {
    *out.mutable_start_time() = old_status.start_time();
  } else if (out.has_start_time()) {
    out.mutable_start_time()->set_nanos(0);
  }
  if (isTerminalPhase(old_status.phase()) && !isTerminalPhase(out.phase())) {
    out.set_phase(old_status.phase());
  }
  // Fields the kubelet does not observe stay as the apiserver set them.
  if (!out.has_qos_class() && old_status.has_qos_class()) out.set_qos_class(old_status.qos_class());
  if (!out.has_nominated_node_name() && old_status.has_nominated_node_name()) {
    out.set_nominated_node_name(old_status.nominated_node_name());
  }
  return out;
}

bool PodStatusManager::setPodStatus(const Pod& pod, const PodStatus& observed) {
  const std::string& uid = pod.metadata().uid();
  Pod current = pod;
  for (int attempt = 0; attempt < 3; ++attempt) {
    PodStatus merged;
    {
      // What was posted last is newer than a cache that has not seen that post yet.
      std::lock_guard lock(mu_);
      auto it = posted_.find(uid);
      const PodStatus& base = it != posted_.end() && attempt == 0 ? it->second : current.status();
      merged = mergePodStatus(base, observed);
      if ((it != posted_.end() && equal(it->second, merged)) || equal(current.status(), merged)) {
        return false;
      }
    }
    Pod next = current;
    *next.mutable_status() = merged;
    try {
      client::updateStatus(client_, next);
    } catch (const client::ApiError& e) {
      if (e.isNotFound()) return false;
      if (!e.isConflict()) throw;
      // The pod changed since the cache saw it: merge into what the apiserver has now.
      try {
        current = client::get<Pod>(client_, pod.metadata().namespace_(), pod.metadata().name());
      } catch (const client::ApiError& get_error) {
        if (get_error.isNotFound()) return false;
        throw;
      }
      if (current.metadata().uid() != uid) return false;  // a new pod under the same name
      continue;
    }
    std::lock_guard lock(mu_);
    posted_[uid] = merged;
    ++posts_;
    return true;
  }
  throw client::ApiError(409, "Conflict",
                         "pod " + pod.metadata().namespace_() + "/" + pod.metadata().name() +
                             ": status conflicts 3 times in a row");
}

std::optional<PodStatus> PodStatusManager::lastPosted(const std::string& uid) const {
  std::lock_guard lock(mu_);
  auto it = posted_.find(uid);
  if (it == posted_.end()) return std::nullopt;
  return it->second;
}

void PodStatusManager::forget(const std::string& uid) {
  std::lock_guard lock(mu_);
  posted_.erase(uid);
}

uint64_t PodStatusManager::posts() const {
  std::lock_guard lock(mu_);
  return posts_;
}

}  // namespace skiff::kubelet

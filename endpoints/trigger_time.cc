#include "endpoints/trigger_time.h"

#include <cstdio>

namespace skiff::endpoints {
namespace {

api::Timestamp fromProto(const api::meta::v1::Time& t) {
  return {t.seconds(), t.nanos()};
}

}  // namespace

bool operator<(const api::Timestamp& a, const api::Timestamp& b) {
  return a.seconds != b.seconds ? a.seconds < b.seconds : a.nanos < b.nanos;
}

std::string formatRfc3339Nano(const api::Timestamp& t) {
  std::string text = api::formatRfc3339({t.seconds, 0});  // "...05Z"
  if (t.nanos <= 0) return text;
  char fraction[16];
  std::snprintf(fraction, sizeof(fraction), ".%09d", t.nanos);
  std::string f = fraction;
  while (f.back() == '0')
    f.pop_back();
  text.insert(text.size() - 1, f);
  return text;
}

std::optional<api::Timestamp> podTriggerTime(const api::core::v1::Pod& pod) {
  for (const auto& condition : pod.status().conditions()) {
    if (condition.type() == "Ready" && condition.has_last_transition_time())
      return fromProto(condition.last_transition_time());
  }
  if (pod.metadata().has_creation_timestamp())
    return fromProto(pod.metadata().creation_timestamp());
  return std::nullopt;
}

std::optional<api::Timestamp> TriggerTimeTracker::compute(
    const std::string& serviceKey, const api::core::v1::Service& service,
    const std::vector<const api::core::v1::Pod*>& pods) {
  std::lock_guard lock(mutex_);
  State& state = services_[serviceKey];
  std::optional<api::Timestamp> earliest;
  auto consider = [&](const api::Timestamp& t) {
    if (!earliest || t < *earliest) earliest = t;
  };
  State next;
  for (const auto* pod : pods) {
    auto t = podTriggerTime(*pod);
    if (!t) continue;
    auto it = state.pods.find(pod->metadata().name());
    if (it == state.pods.end() || it->second < *t) consider(*t);
    next.pods[pod->metadata().name()] = *t;
  }
  if (service.metadata().has_creation_timestamp()) {
    api::Timestamp created = fromProto(service.metadata().creation_timestamp());
    if (!state.service || *state.service < created) consider(created);
    next.service = created;
  }
  state = std::move(next);
  return earliest;
}

void TriggerTimeTracker::forget(const std::string& serviceKey) {
  std::lock_guard lock(mutex_);
  services_.erase(serviceKey);
}

}  // namespace skiff::endpoints

#pragma once

// When a change to a service's endpoints was triggered, as Kubernetes' endpoint controllers
// compute it (pkg/controller/util/endpoint/trigger_time_tracker.go) and put it in the
// endpoints.kubernetes.io/last-change-trigger-time annotation, from which every node's proxier
// measures network programming latency.

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/api/time.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::endpoints {

// Go's time.RFC3339Nano in UTC: "2024-01-02T03:04:05.123456789Z", trailing zeros of the fraction
// dropped ("...:05.5Z", "...:05Z").
std::string formatRfc3339Nano(const api::Timestamp& t);

// The trigger time of a pod's current state: its Ready condition's lastTransitionTime, else its
// creation time.
std::optional<api::Timestamp> podTriggerTime(const api::core::v1::Pod& pod);

bool operator<(const api::Timestamp& a, const api::Timestamp& b);

// Remembers, per service, the trigger times of the last sync, and gives for the next one the
// earliest trigger time that changed since (the change that has waited longest). Thread-safe.
class TriggerTimeTracker {
 public:
  // `serviceKey` is "namespace/name". Nullopt when nothing changed that carries a time.
  std::optional<api::Timestamp> compute(const std::string& serviceKey,
                                        const api::core::v1::Service& service,
                                        const std::vector<const api::core::v1::Pod*>& pods);
  void forget(const std::string& serviceKey);

 private:
  struct State {
    std::map<std::string, api::Timestamp> pods;  // pod name -> trigger time last seen
    std::optional<api::Timestamp> service;
  };
  std::mutex mutex_;
  std::map<std::string, State> services_;
};

}  // namespace skiff::endpoints

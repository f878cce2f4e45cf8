#pragma once

// The proxier's change trackers, after Kubernetes' pkg/proxy ServiceChangeTracker and
// EndpointsChangeTracker (with its endpointSliceCache). Informer handlers record changes; the sync
// loop checks them out, so it only looks at services that changed since its last sync.
//
// - One {oldest previous, newest current} pair per service: a service updated ten times between
//   two syncs is one change, and a change that flips back (A -> B -> A) is no change at all.
// - Only what the data path depends on is compared: a Service's spec and load-balancer status, an
//   EndpointSlice's address type, ports and endpoints; resourceVersion bumps, annotations and
//   status conditions cost nothing.
//
// Thread-safe: updates come from informer threads, checkouts from the sync thread.

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "control/api/time.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/discovery_v1.pb.h"

namespace skiff::endpoints {

using ServicePtr = std::shared_ptr<const api::core::v1::Service>;
using SlicePtr = std::shared_ptr<const api::discovery::v1::EndpointSlice>;

// "namespace/name".
std::string serviceKeyOf(const api::core::v1::Service& service);
// The service an EndpointSlice belongs to ("namespace/<kubernetes.io/service-name>"), or "" when
// it has no service-name label.
std::string serviceKeyOf(const api::discovery::v1::EndpointSlice& slice);

// Whether two states of a service program the same data path (nullptr: absent or skipped).
bool sameForProxy(const ServicePtr& a, const ServicePtr& b);
bool sameForProxy(const SlicePtr& a, const SlicePtr& b);

class ServiceChangeTracker {
 public:
  struct Change {
    ServicePtr previous;  // the state the proxier last synced; nullptr: none
    ServicePtr current;   // the newest state; nullptr: deleted
  };

  // An add (previous null), update, or delete (current null). Services the proxier skips
  // (headless, ExternalName) count as absent.
  void update(const ServicePtr& previous, const ServicePtr& current);
  // The pending changes, by service key; the tracker starts empty again.
  std::map<std::string, Change> checkout();
  size_t pending() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, Change> items_;
};

class EndpointsChangeTracker {
 public:
  // `startTime`: trigger times before it are not reported (they predate this proxier, as
  // kube-proxy ignores them at start-up).
  explicit EndpointsChangeTracker(api::Timestamp startTime = {});

  // A slice added or updated (removed = false) or deleted. Slices without the service-name label
  // are ignored; a slice whose label moves to another service leaves the first one.
  void update(const SlicePtr& slice, bool removed);

  struct Checkout {
    // Services whose endpoints changed since the last checkout.
    std::set<std::string> changed;
    // For each of them, the last-change-trigger-time of every slice update that made a change.
    std::map<std::string, std::vector<api::Timestamp>> triggerTimes;
  };
  // Applies the pending slice changes and reports which services they changed.
  Checkout checkout();
  // The slices of a service as of the last checkout, sorted by name.
  std::vector<SlicePtr> slices(const std::string& serviceKey) const;
  // Every service key that has slices as of the last checkout.
  std::vector<std::string> services() const;

 private:
  struct PerService {
    std::map<std::string, SlicePtr> applied;  // slice name -> slice
    std::map<std::string, SlicePtr> pending;  // slice name -> newest state (nullptr: deleted)
    std::vector<api::Timestamp> triggerTimes;
  };
  void updateLocked(const std::string& serviceKey, const std::string& sliceName,
                    const SlicePtr& slice);

  const api::Timestamp startTime_;
  mutable std::mutex mutex_;
  std::map<std::string, PerService> services_;
  std::map<std::string, std::string> sliceOwner_;  // "ns/slice" -> service key
  std::set<std::string> dirty_;                    // services with pending slices
};

}  // namespace skiff::endpoints

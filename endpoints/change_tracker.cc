#include "endpoints/change_tracker.h"

#include <google/protobuf/util/message_differencer.h>

#include "endpoints/endpointslice_reconciler.h"
#include "endpoints/service_translation.h"
#include "endpoints/trigger_time.h"

namespace skiff::endpoints {
namespace {

using google::protobuf::util::MessageDifferencer;

ServicePtr unlessSkipped(const ServicePtr& service) {
  return service && !shouldSkipService(*service) ? service : nullptr;
}

std::string sliceKey(const api::discovery::v1::EndpointSlice& slice) {
  return slice.metadata().namespace_() + "/" + slice.metadata().name();
}

}  // namespace

std::string serviceKeyOf(const api::core::v1::Service& service) {
  return service.metadata().namespace_() + "/" + service.metadata().name();
}

std::string serviceKeyOf(const api::discovery::v1::EndpointSlice& slice) {
  auto it = slice.metadata().labels().find(std::string(kLabelServiceName));
  if (it == slice.metadata().labels().end() || it->second.empty()) return {};
  return slice.metadata().namespace_() + "/" + it->second;
}

bool sameForProxy(const ServicePtr& a, const ServicePtr& b) {
  if (!a || !b) return !a && !b;
  if (a == b) return true;
  return serviceKeyOf(*a) == serviceKeyOf(*b) && MessageDifferencer::Equals(a->spec(), b->spec()) &&
         MessageDifferencer::Equals(a->status().load_balancer(), b->status().load_balancer());
}

bool sameForProxy(const SlicePtr& a, const SlicePtr& b) {
  if (!a || !b) return !a && !b;
  if (a == b) return true;
  if (a->address_type() != b->address_type() || a->ports_size() != b->ports_size() ||
      a->endpoints_size() != b->endpoints_size()) {
    return false;
  }
  for (int i = 0; i < a->ports_size(); ++i) {
    if (!MessageDifferencer::Equals(a->ports(i), b->ports(i))) return false;
  }
  for (int i = 0; i < a->endpoints_size(); ++i) {
    if (!MessageDifferencer::Equals(a->endpoints(i), b->endpoints(i))) return false;
  }
  return true;
}

void ServiceChangeTracker::update(const ServicePtr& previous, const ServicePtr& current) {
  const ServicePtr& any = current ? current : previous;
  if (!any) return;
  const std::string key = serviceKeyOf(*any);
  std::lock_guard lock(mutex_);
  auto [it, inserted] = items_.try_emplace(key);
  if (inserted) it->second.previous = unlessSkipped(previous);
  it->second.current = unlessSkipped(current);
  if (sameForProxy(it->second.previous, it->second.current)) items_.erase(it);
}

std::map<std::string, ServiceChangeTracker::Change> ServiceChangeTracker::checkout() {
  std::lock_guard lock(mutex_);
  return std::exchange(items_, {});
}

size_t ServiceChangeTracker::pending() const {
  std::lock_guard lock(mutex_);
  return items_.size();
}

EndpointsChangeTracker::EndpointsChangeTracker(api::Timestamp startTime) : startTime_(startTime) {}

void EndpointsChangeTracker::updateLocked(const std::string& serviceKey,
                                          const std::string& sliceName, const SlicePtr& slice) {
  PerService& per = services_[serviceKey];
  per.pending[sliceName] = slice;
  dirty_.insert(serviceKey);
  if (!slice) return;
  auto it = slice->metadata().annotations().find(std::string(kAnnotationLastChangeTriggerTime));
  if (it == slice->metadata().annotations().end()) return;
  auto when = api::parseRfc3339(it->second);
  if (!when || *when < startTime_) return;
  // Only a slice that differs from what was applied triggers anything.
  auto applied = per.applied.find(sliceName);
  if (applied != per.applied.end() && sameForProxy(applied->second, slice)) return;
  per.triggerTimes.push_back(*when);
}

void EndpointsChangeTracker::update(const SlicePtr& slice, bool removed) {
  if (!slice) return;
  const std::string key = serviceKeyOf(*slice);
  const std::string id = sliceKey(*slice);
  std::lock_guard lock(mutex_);
  auto owner = sliceOwner_.find(id);
  if (owner != sliceOwner_.end() && owner->second != key) {
    // The label moved: the slice leaves its old service.
    updateLocked(owner->second, slice->metadata().name(), nullptr);
    sliceOwner_.erase(owner);
  }
  if (key.empty()) return;
  if (removed) {
    sliceOwner_.erase(id);
    updateLocked(key, slice->metadata().name(), nullptr);
  } else {
    sliceOwner_[id] = key;
    updateLocked(key, slice->metadata().name(), slice);
  }
}

EndpointsChangeTracker::Checkout EndpointsChangeTracker::checkout() {
  std::lock_guard lock(mutex_);
  Checkout out;
  for (const auto& key : dirty_) {
    auto it = services_.find(key);
    if (it == services_.end()) continue;
    PerService& per = it->second;
    bool changed = false;
    for (auto& [name, slice] : per.pending) {
      auto applied = per.applied.find(name);
      SlicePtr old = applied == per.applied.end() ? nullptr : applied->second;
      if (!sameForProxy(old, slice)) changed = true;
      if (slice) {
        per.applied[name] = slice;
      } else if (applied != per.applied.end()) {
        per.applied.erase(applied);
      }
    }
    per.pending.clear();
    if (changed) {
      out.changed.insert(key);
      if (!per.triggerTimes.empty()) out.triggerTimes[key] = std::move(per.triggerTimes);
    }
    per.triggerTimes.clear();
    if (per.applied.empty()) services_.erase(it);
  }
  dirty_.clear();
  return out;
}

std::vector<SlicePtr> EndpointsChangeTracker::slices(const std::string& serviceKey) const {
  std::lock_guard lock(mutex_);
  std::vector<SlicePtr> out;
  auto it = services_.find(serviceKey);
  if (it == services_.end()) return out;
  for (const auto& [name, slice] : it->second.applied)
    out.push_back(slice);
  return out;
}

std::vector<std::string> EndpointsChangeTracker::services() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [key, per] : services_) {
    if (!per.applied.empty()) out.push_back(key);
  }
  return out;
}

}  // namespace skiff::endpoints

#include "endpoints/proxier.h"

#include <algorithm>
#include <unordered_map>

#include "endpoints/trigger_time.h"

namespace skiff::endpoints {
namespace {

double secondsBetween(const api::Timestamp& from, const api::Timestamp& to) {
  return static_cast<double>(to.seconds - from.seconds) +
         static_cast<double>(to.nanos - from.nanos) / 1e9;
}

}  // namespace

Proxier::Proxier(dataplane::Dataplane& dataplane, ProxierOptions options)
    : dataplane_(dataplane),
      options_(std::move(options)),
      // Whole seconds: trigger times (pod conditions) have seconds precision.
      endpointChanges_(api::Timestamp{options_.now().seconds, 0}),
      latency_(latencyBuckets()),
      syncDuration_(latencyBuckets()) {}

void Proxier::onServiceUpdate(const ServicePtr& previous, const ServicePtr& current) {
  serviceChanges_.update(previous, current);
}

void Proxier::onSliceUpdate(const SlicePtr& slice, bool removed) {
  endpointChanges_.update(slice, removed);
}

void Proxier::onNodeUpdate(const std::shared_ptr<const api::core::v1::Node>& node) {
  std::lock_guard lock(mutex_);
  NodeInfo before = nodeInfoLocked();
  node_ = node;
  if (!(nodeInfoLocked() == before)) {
    nodeChanged_ = true;
    pendingNode_ = true;
  }
}

void Proxier::setServicesSynced() {
  servicesSynced_ = true;
}

void Proxier::setEndpointSlicesSynced() {
  slicesSynced_ = true;
}

bool Proxier::informersSynced() const {
  return servicesSynced_ && slicesSynced_;
}

bool Proxier::hasPendingChanges() const {
  return serviceChanges_.pending() > 0 || pendingNode_;
}

NodeInfo Proxier::nodeInfoLocked() const {
  NodeInfo info;
  info.name = options_.nodeName;
  if (!options_.nodePortAddresses.empty()) {
    info.addresses = options_.nodePortAddresses;
  } else if (node_) {
    info.addresses = nodePortAddresses(*node_);
  }
  return info;
}

SyncResult Proxier::sync() {
  SyncResult result;
  if (!informersSynced()) return result;
  result.ran = true;
  const auto started = std::chrono::steady_clock::now();

  NodeInfo node;
  bool nodeChanged = false;
  {
    std::lock_guard lock(mutex_);
    node = nodeInfoLocked();
    nodeChanged = std::exchange(nodeChanged_, false);
    pendingNode_ = false;
  }
  auto serviceChanges = serviceChanges_.checkout();
  auto endpointChanges = endpointChanges_.checkout();

  std::set<std::string> changed = std::move(retry_);
  retry_.clear();
  for (auto& [key, change] : serviceChanges) {
    changed.insert(key);
    if (change.current) {
      services_[key] = change.current;
    } else {
      services_.erase(key);
    }
  }
  for (const auto& key : endpointChanges.changed)
    changed.insert(key);
  for (auto& [key, times] : endpointChanges.triggerTimes) {
    auto& list = unreportedTriggers_[key];
    list.insert(list.end(), times.begin(), times.end());
  }

  const bool full =
      needFullSync_ || nodeChanged || started - lastFullSync_ >= options_.fullSyncPeriod;
  result.full = full;

  std::map<std::string, std::vector<dataplane::Service>> next;  // the new state of changed keys
  std::map<std::string, uint16_t> healthChecks;
  {
    std::lock_guard lock(mutex_);
    if (full) {
      for (const auto& [key, services] : programmed_)
        changed.insert(key);
      for (const auto& [key, service] : services_)
        changed.insert(key);
    }
    // Pass 1: translate every changed service.
    std::map<std::string, dataplane::Result<Translation>> translated;
    for (const auto& key : changed) {
      auto it = services_.find(key);
      if (it == services_.end()) continue;
      std::vector<SlicePtr> slices = endpointChanges_.slices(key);
      std::vector<const api::discovery::v1::EndpointSlice*> ptrs;
      ptrs.reserve(slices.size());
      for (const auto& s : slices)
        ptrs.push_back(s.get());
      auto t = translated.emplace(key, translate(*it->second, ptrs, node)).first;
      if (options_.maglevTableSize != 0 && t->second.ok()) {
        for (dataplane::Service& s : t->second->services) {
          if (s.backends.size() <= options_.maglevTableSize)
            s.maglevTableSize = options_.maglevTableSize;
        }
      }
    }
    // Whether `holder`, a changed service, keeps frontend `f` after this sync (its new state has
    // it, or its new state is refused and its programmed one has it).
    auto keeps = [&](const std::string& holder, const dataplane::FrontendKey& f) {
      auto t = translated.find(holder);
      if (t == translated.end()) return false;  // deleted
      if (!t->second.ok()) return true;         // keeps its programming, which has f
      for (const auto& s : t->second->services) {
        for (const auto& fe : s.frontends) {
          if (fe.key == f) return true;
        }
      }
      return false;
    };
    // Pass 2: frontend conflicts. A frontend stays with the service that holds it; among new
    // claims, the first key wins.
    std::unordered_map<dataplane::FrontendKey, std::string> claimed;
    for (const auto& key : changed) {
      auto it = services_.find(key);
      std::vector<dataplane::Service> desired;
      if (it != services_.end()) {
        auto& t = translated.at(key);
        std::string refusal;
        if (!t.ok()) {
          refusal = t.message();
        } else {
          for (const auto& s : t->services) {
            for (const auto& f : s.frontends) {
              std::string other;
              if (auto o = frontendOwners_.find(f.key);
                  o != frontendOwners_.end() && o->second != key &&
                  (changed.count(o->second) == 0 || keeps(o->second, f.key))) {
                other = o->second;
              } else if (auto c = claimed.find(f.key); c != claimed.end() && c->second != key) {
                other = c->second;
              }
              if (!other.empty()) {
                refusal = "service \"" + key + "\": frontend " + f.key.toString() +
                          " belongs to service \"" + other + "\"";
                break;
              }
            }
            if (!refusal.empty()) break;
          }
          if (refusal.empty()) desired = std::move(t->services);
        }
        if (!refusal.empty()) {
          // Keep the last good programming; try again next sync.
          result.rejected.push_back(refusal);
          retry_.insert(key);
          auto old = programmed_.find(key);
          desired = old == programmed_.end() ? std::vector<dataplane::Service>{} : old->second;
        }
        const auto& spec = it->second->spec();
        if (spec.external_traffic_policy() == "Local" && spec.health_check_node_port() > 0 &&
            spec.health_check_node_port() <= 65535) {
          healthChecks[key] = static_cast<uint16_t>(spec.health_check_node_port());
        }
      }
      for (const auto& s : desired) {
        for (const auto& f : s.frontends)
          claimed.emplace(f.key, key);
      }
      next[key] = std::move(desired);
    }
  }
  rejectedServices_ += result.rejected.size();

  // The delta: dataplane services whose state differs from what is programmed.
  dataplane::ServiceDelta delta;
  delta.replaceAll = full;
  // A full delta takes the new states of `next` by move (from delta.upserted[firstNext] on, in
  // the order of `next`) and gives them back once applied: no copy of every service.
  size_t firstNext = 0;
  {
    std::lock_guard lock(mutex_);
    if (full) {
      for (const auto& [key, services] : programmed_) {
        if (next.count(key) != 0) continue;
        for (const auto& s : services)
          delta.upserted.push_back(s);
      }
      firstNext = delta.upserted.size();
      for (auto& [key, services] : next) {
        for (auto& s : services)
          delta.upserted.push_back(std::move(s));
      }
    } else {
      for (const auto& [key, services] : next) {
        std::map<std::string, const dataplane::Service*> old;
        if (auto it = programmed_.find(key); it != programmed_.end()) {
          for (const auto& s : it->second)
            old[s.id] = &s;
        }
        for (const auto& s : services) {
          auto o = old.find(s.id);
          if (o == old.end() || !(*o->second == s)) delta.upserted.push_back(s);
          if (o != old.end()) old.erase(o);
        }
        for (const auto& [id, s] : old)
          delta.removed.push_back(id);
      }
    }
  }
  result.upserted = full ? 0 : delta.upserted.size();
  result.removed = delta.removed.size();

  if (full || !delta.upserted.empty() || !delta.removed.empty()) {
    dataplane::Status status = dataplane_.apply(delta);
    if (!status.ok()) {
      ++failedApplies_;
      result.ok = false;
      result.error = status.message();
      needFullSync_ = true;
      // The changes stay pending in `next` terms: the full sync recomputes every service.
      ++syncs_;
      return result;
    }
  }
  if (full) {
    result.upserted = delta.upserted.size();
    size_t i = firstNext;
    for (auto& [key, services] : next) {
      for (auto& s : services)
        s = std::move(delta.upserted[i++]);
    }
  }

  {
    std::lock_guard lock(mutex_);
    for (auto& [key, services] : next) {
      if (auto old = programmed_.find(key); old != programmed_.end()) {
        for (const auto& svc : old->second) {
          for (const auto& f : svc.frontends) {
            auto o = frontendOwners_.find(f.key);
            if (o != frontendOwners_.end() && o->second == key) frontendOwners_.erase(o);
          }
        }
      }
      for (const auto& svc : services) {
        for (const auto& f : svc.frontends)
          frontendOwners_[f.key] = key;
      }
      if (services.empty()) {
        programmed_.erase(key);
      } else {
        programmed_[key] = std::move(services);
      }
      if (auto hc = healthChecks.find(key); hc != healthChecks.end()) {
        healthCheckPorts_[key] = hc->second;
      } else {
        healthCheckPorts_.erase(key);
      }
    }
  }
  if (full) {
    needFullSync_ = false;
    lastFullSync_ = started;
    ++fullSyncs_;
  }
  // Programmed: every trigger of a service that is not waiting for a retry is reported.
  const api::Timestamp now = options_.now();
  for (auto it = unreportedTriggers_.begin(); it != unreportedTriggers_.end();) {
    if (retry_.count(it->first) != 0) {
      ++it;
      continue;
    }
    for (const auto& t : it->second)
      latency_.observe(std::max(0.0, secondsBetween(t, now)));
    it = unreportedTriggers_.erase(it);
  }
  ++syncs_;
  lastSuccessfulSync_ = static_cast<double>(now.seconds) + static_cast<double>(now.nanos) / 1e9;
  syncDuration_.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return result;
}

std::map<std::string, dataplane::Service> Proxier::programmed() const {
  std::lock_guard lock(mutex_);
  std::map<std::string, dataplane::Service> out;
  for (const auto& [key, services] : programmed_) {
    for (const auto& s : services)
      out.emplace(s.id, s);
  }
  return out;
}

std::optional<size_t> Proxier::localReadyEndpoints(const std::string& serviceKey) const {
  std::lock_guard lock(mutex_);
  auto it = programmed_.find(serviceKey);
  if (it == programmed_.end()) return std::nullopt;
  size_t best = 0;
  for (const auto& s : it->second) {
    size_t n = 0;
    for (const auto& b : s.backends) {
      if (b.local && b.ready) ++n;
    }
    best = std::max(best, n);
  }
  return best;
}

std::map<std::string, uint16_t> Proxier::healthCheckNodePorts() const {
  std::lock_guard lock(mutex_);
  return healthCheckPorts_;
}

std::string Proxier::metricsText() const {
  constexpr std::string_view kLatencyHelp =
      "From the change that triggered an endpoint update (the EndpointSlice's "
      "endpoints.kubernetes.io/last-change-trigger-time) to its programming on this node.";
  constexpr std::string_view kSyncHelp = "Time of one sync of the data path.";
  constexpr std::string_view kLastSyncHelp =
      "When the data path last accepted a sync (seconds since the epoch).";
  std::string out;
  out += latency_.prometheusText("skiff_proxy_network_programming_duration_seconds", kLatencyHelp);
  out += latency_.prometheusText("kubeproxy_network_programming_duration_seconds", kLatencyHelp);
  out += syncDuration_.prometheusText("skiff_proxy_sync_duration_seconds", kSyncHelp);
  out += syncDuration_.prometheusText("kubeproxy_sync_proxy_rules_duration_seconds", kSyncHelp);
  out += prometheusCounter("skiff_proxy_syncs_total", "Syncs run.",
                           static_cast<double>(syncs_.load()));
  out += prometheusCounter("skiff_proxy_full_syncs_total", "Full (replaceAll) syncs applied.",
                           static_cast<double>(fullSyncs_.load()));
  out += prometheusCounter("skiff_proxy_sync_failures_total", "Deltas the data path refused.",
                           static_cast<double>(failedApplies_.load()));
  out += prometheusCounter("skiff_proxy_rejected_services_total",
                           "Service states refused (bad input or a frontend conflict).",
                           static_cast<double>(rejectedServices_.load()));
  out += prometheusGauge("skiff_proxy_last_successful_sync_timestamp_seconds", kLastSyncHelp,
                         lastSuccessfulSync_.load());
  out += prometheusGauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds", kLastSyncHelp,
                         lastSuccessfulSync_.load());
  size_t count = 0;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, services] : programmed_)
      count += services.size();
  }
  out += prometheusGauge("skiff_proxy_programmed_services", "Service ports programmed.",
                         static_cast<double>(count));
  return out;
}

}  // namespace skiff::endpoints

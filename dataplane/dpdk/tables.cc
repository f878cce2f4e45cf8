#include "dataplane/dpdk/tables.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <set>

#include "dataplane/dpdk/flow_table.h"
#include "dataplane/hash.h"
#include "dataplane/maglev.h"

namespace skiff::dataplane::dpdk {
namespace {

constexpr int familyIndex(AddressFamily f) {
  return f == AddressFamily::kIPv4 ? 0 : 1;
}

bool prefixMatch(const SourceRange& r, const uint8_t (&addr)[16]) {
  const uint8_t full = r.length / 8;
  if (std::memcmp(r.addr, addr, full) != 0) return false;
  const uint8_t rest = r.length % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (r.addr[full] & mask) == (addr[full] & mask);
}

}  // namespace

uint64_t hashFrontendKey(const WireFrontendKey& key) {
  std::array<uint64_t, 3> w{};
  std::memcpy(&w[0], key.addr, 8);
  std::memcpy(&w[1], key.addr + 8, 8);
  w[2] = uint64_t{key.port} | uint64_t{key.family} << 16 | uint64_t{key.proto} << 24;
  return hashFrontendWords(w[0], w[1], w[2]);
}

WireFrontendKey wireKey(const FrontendKey& key) {
  WireFrontendKey k{};
  std::memcpy(k.addr, key.address.bytes().data(), 16);
  const uint8_t port[2] = {static_cast<uint8_t>(key.port >> 8), static_cast<uint8_t>(key.port)};
  std::memcpy(&k.port, port, 2);
  k.family = static_cast<uint8_t>(key.address.family());
  k.proto = static_cast<uint8_t>(key.protocol);
  return k;
}

const FrontendEntry* Tables::lookup(const WireFrontendKey& key, bool wildcardNodePorts) const {
  return lookupHashed(key, hashFrontendKey(key), wildcardNodePorts);
}

const FrontendEntry* Tables::lookupWildcard(const WireFrontendKey& key) const {
  WireFrontendKey any{};
  any.port = key.port;
  any.family = key.family;
  any.proto = key.proto;
  const FrontendEntry* fe = lookupHashed(any, hashFrontendKey(any), false);
  return fe && (fe->flags & kFrontendWildcard) ? fe : nullptr;
}

bool Tables::sourceAllowed(const FrontendEntry& fe, const uint8_t (&saddr)[16],
                           uint8_t family) const {
  if (!(fe.flags & kFrontendSourceRanges)) return true;
  for (uint32_t i = 0; i < fe.rangeCount; ++i) {
    const SourceRange& r = ranges_[fe.rangeBegin + i];
    if (r.family == family && prefixMatch(r, saddr)) return true;
  }
  return false;
}

TableBuilder::TableBuilder(Capacities capacities) : capacities_(capacities) {}

Status TableBuilder::apply(const ServiceDelta& delta) {
  if (Status s = validate(delta); !s.ok()) return s;
  freedServiceIds_.clear();
  freedBackendIds_.clear();
  newServiceIds_.clear();
  newBackendIds_.clear();

  // What goes: removed ids, and with replaceAll every service not upserted.
  std::set<std::string> going;
  std::set<std::string> upserted;
  for (const Service& s : delta.upserted)
    upserted.insert(s.id);
  if (delta.replaceAll) {
    for (const auto& [id, ps] : services_) {
      if (!upserted.count(id)) going.insert(id);
    }
  }
  for (const std::string& id : delta.removed) {
    if (services_.count(id)) going.insert(id);
  }

  // Frontend keys held by services that stay as they are.
  std::map<FrontendKey, std::string> held;
  for (const auto& [id, ps] : services_) {
    if (going.count(id) || upserted.count(id)) continue;
    for (const Frontend& f : ps.service.frontends)
      held[f.key] = id;
  }
  for (const Service& s : delta.upserted) {
    for (const Frontend& f : s.frontends) {
      auto it = held.find(f.key);
      if (it != held.end()) {
        return Status::failure("service \"" + s.id + "\": frontend " + f.key.toString() +
                               " belongs to service \"" + it->second + "\"");
      }
    }
  }

  // Capacity: the ids in use once the delta is applied.
  size_t servicesAfter = 0;
  size_t backendsAfter = 0;
  for (const auto& [id, ps] : services_) {
    if (going.count(id) || upserted.count(id)) continue;
    ++servicesAfter;
    backendsAfter += ps.backendIds.size();
  }
  for (const Service& s : delta.upserted) {
    ++servicesAfter;
    backendsAfter += s.backends.size();
  }
  if (servicesAfter > capacities_.services) {
    return Status::failure("too many services: " + std::to_string(servicesAfter) + " > " +
                           std::to_string(capacities_.services));
  }
  if (backendsAfter > capacities_.backends) {
    return Status::failure("too many backends: " + std::to_string(backendsAfter) + " > " +
                           std::to_string(capacities_.backends));
  }

  // Nothing can fail from here on but a Maglev build, which validate(Service) already ruled out.
  auto takeServiceId = [&] {
    uint32_t id;
    if (!freeServiceIds_.empty()) {
      id = freeServiceIds_.back();
      freeServiceIds_.pop_back();
    } else {
      id = nextServiceId_++;
    }
    newServiceIds_.push_back(id);
    return id;
  };
  auto takeBackendId = [&] {
    uint32_t id;
    if (!freeBackendIds_.empty()) {
      id = freeBackendIds_.back();
      freeBackendIds_.pop_back();
    } else {
      id = nextBackendId_++;
    }
    maxBackendId_ = std::max(maxBackendId_, id);
    newBackendIds_.push_back(id);
    return id;
  };
  // Ids freed now are reused from the next apply on, after a snapshot without them is out.
  std::vector<uint32_t> releasedServices, releasedBackends;

  for (const std::string& id : going) {
    auto it = services_.find(id);
    releasedServices.push_back(it->second.svcId);
    for (const auto& [key, bid] : it->second.backendIds)
      releasedBackends.push_back(bid);
    services_.erase(it);
  }
  for (const Service& s : delta.upserted) {
    auto [it, inserted] = services_.try_emplace(s.id);
    ProgrammedService& ps = it->second;
    if (inserted) ps.svcId = takeServiceId();
    std::map<BackendKey, uint32_t> ids;
    for (const Backend& b : s.backends) {
      auto old = ps.backendIds.find(b.key());
      if (old != ps.backendIds.end()) {
        ids[b.key()] = old->second;
        ps.backendIds.erase(old);
      } else {
        ids[b.key()] = takeBackendId();
      }
    }
    for (const auto& [key, bid] : ps.backendIds)
      releasedBackends.push_back(bid);
    ps.backendIds = std::move(ids);
    const bool sameRings = !inserted && ps.service.backends == s.backends &&
                           ps.service.maglevTableSize == s.maglevTableSize &&
                           ps.service.externalTrafficPolicy == s.externalTrafficPolicy &&
                           ps.service.frontends == s.frontends;
    ps.service = s;
    if (!sameRings) {
      if (Status st = rebuildRings(ps); !st.ok()) return st;
    }
  }
  freedServiceIds_ = releasedServices;
  freedBackendIds_ = releasedBackends;
  freeServiceIds_.insert(freeServiceIds_.end(), pendingServiceIds_.begin(),
                         pendingServiceIds_.end());
  freeBackendIds_.insert(freeBackendIds_.end(), pendingBackendIds_.begin(),
                         pendingBackendIds_.end());
  pendingServiceIds_ = std::move(releasedServices);
  pendingBackendIds_ = std::move(releasedBackends);
  return {};
}

Status TableBuilder::rebuildRings(ProgrammedService& ps) {
  ps.rings.clear();
  ps.eligible.clear();
  const uint32_t size = effectiveMaglevTableSize(ps.service);
  for (const Frontend& f : ps.service.frontends) {
    const AddressFamily family = f.key.address.family();
    const BackendScope scope = backendScope(ps.service, f.kind, TrafficOrigin::kExternal);
    const std::pair<int, int> at{familyIndex(family), static_cast<int>(scope)};
    if (ps.eligible.count(at)) continue;
    EligibleBackends el = eligibleBackends(ps.service, family, scope);
    if (!el.indices.empty()) {
      std::vector<MaglevBackend> mb;
      for (uint32_t i : el.indices) {
        const Backend& b = ps.service.backends[i];
        mb.push_back({b.key(), b.weight, ps.backendIds.at(b.key())});
      }
      auto table = buildMaglevTable(mb, size);
      if (!table.ok())
        return Status::failure("service \"" + ps.service.id + "\": " + table.message());
      ps.rings[at] = std::make_shared<const std::vector<uint32_t>>(std::move(*table));
    }
    ps.eligible[at] = std::move(el);
  }
  return {};
}

std::unique_ptr<Tables> TableBuilder::build() {
  auto t = std::make_unique<Tables>();
  t->generation_ = ++generation_;
  size_t frontends = 0;
  for (const auto& [id, ps] : services_)
    frontends += ps.service.frontends.size();
  const size_t slots = std::bit_ceil(std::max<size_t>(16, frontends * 2));
  t->slots_.assign(slots, FrontendEntry{});
  t->mask_ = slots - 1;
  t->frontendCount_ = frontends;
  t->backends_.assign(maxBackendId_ + 1, BackendEntry{});

  for (const auto& [id, ps] : services_) {
    const Service& s = ps.service;
    for (const Backend& b : s.backends) {
      const uint32_t bid = ps.backendIds.at(b.key());
      BackendEntry& e = t->backends_[bid];
      std::memcpy(e.addr, b.address.bytes().data(), 16);
      const uint8_t port[2] = {static_cast<uint8_t>(b.port >> 8), static_cast<uint8_t>(b.port)};
      std::memcpy(&e.port, port, 2);
      e.family = static_cast<uint8_t>(b.address.family());
      e.svcId = ps.svcId;
      e.flags = static_cast<uint8_t>(
          (b.ready ? kBackendReady : 0) | (b.serving ? kBackendServing : 0) |
          (b.terminating ? kBackendTerminating : 0) | (b.local ? kBackendLocal : 0));
    }
    // Eligibility bits from the selection of each (family, scope) computed for the rings.
    for (const auto& [at, el] : ps.eligible) {
      const uint8_t bit = at.second == static_cast<int>(BackendScope::kNodeLocal)
                              ? kBackendEligibleLocal
                              : kBackendEligibleCluster;
      for (uint32_t i : el.indices)
        t->backends_[ps.backendIds.at(s.backends[i].key())].flags |= bit;
    }
    for (const auto& [at, ring] : ps.rings)
      t->rings_.push_back(ring);

    uint32_t rangeBegin = static_cast<uint32_t>(t->ranges_.size());
    for (const IpPrefix& p : s.loadBalancerSourceRanges) {
      SourceRange r{};
      std::memcpy(r.addr, p.address().bytes().data(), 16);
      r.length = p.length();
      r.family = static_cast<uint8_t>(p.family());
      t->ranges_.push_back(r);
    }
    for (const Frontend& f : s.frontends) {
      FrontendEntry e{};
      e.key = wireKey(f.key);
      e.svcId = ps.svcId;
      e.kind = static_cast<uint8_t>(f.kind);
      const BackendScope scope = backendScope(s, f.kind, TrafficOrigin::kExternal);
      const std::pair<int, int> at{familyIndex(f.key.address.family()), static_cast<int>(scope)};
      const EligibleBackends& el = ps.eligible.at(at);
      e.selection = static_cast<uint8_t>(el.selection);
      auto ring = ps.rings.find(at);
      if (ring != ps.rings.end()) {
        e.ring = ring->second->data();
        e.ringSize = static_cast<uint32_t>(ring->second->size());
        e.backendCount = static_cast<uint32_t>(el.indices.size());
      }
      if (scope == BackendScope::kNodeLocal) e.flags |= kFrontendLocal;
      if (s.affinity == SessionAffinity::kClientIP) {
        e.flags |= kFrontendAffinity;
        e.affinityTimeoutNs = uint64_t{s.affinityTimeoutSeconds} * 1000000000ULL;
      }
      if (f.kind == FrontendKind::kLoadBalancer && !s.loadBalancerSourceRanges.empty()) {
        e.flags |= kFrontendSourceRanges;
        e.rangeBegin = rangeBegin;
        e.rangeCount = static_cast<uint32_t>(s.loadBalancerSourceRanges.size());
      }
      if (f.kind == FrontendKind::kNodePort && f.key.address.isUnspecified())
        e.flags |= kFrontendWildcard;
      for (uint64_t i = hashFrontendKey(e.key) & t->mask_;; i = (i + 1) & t->mask_) {
        if (t->slots_[i].svcId == kNoId) {
          t->slots_[i] = e;
          break;
        }
      }
    }
  }
  return t;
}

}  // namespace skiff::dataplane::dpdk

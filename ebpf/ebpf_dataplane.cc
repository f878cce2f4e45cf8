#include "ebpf/ebpf_dataplane.h"

#include <algorithm>
#include <set>
#include <utility>

#include "ebpf/abi.h"

namespace skiff::ebpf {
namespace {

using dataplane::AddressFamily;
using dataplane::BackendScope;
using dataplane::Result;
using dataplane::Selection;
using dataplane::Service;
using dataplane::Status;
using dataplane::TrafficOrigin;

size_t familyIndex(AddressFamily f) {
  return f == AddressFamily::kIPv4 ? 0 : 1;
}
size_t scopeIndex(BackendScope s) {
  return s == BackendScope::kCluster ? 0 : 1;
}
constexpr AddressFamily kFamilies[] = {AddressFamily::kIPv4, AddressFamily::kIPv6};
constexpr BackendScope kScopes[] = {BackendScope::kCluster, BackendScope::kNodeLocal};
constexpr TrafficOrigin kOrigins[] = {TrafficOrigin::kExternal, TrafficOrigin::kInCluster};
static_assert(SKIFF_ORIGIN_EXTERNAL == 0 && SKIFF_ORIGIN_IN_CLUSTER == 1);

Status fail(const std::string& id, const std::string& what) {
  return Status::failure("service \"" + id + "\": " + what);
}

}  // namespace

uint32_t IdPool::take() {
  uint32_t id = SKIFF_ID_NONE;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else if (next_ <= max_) {
    id = next_++;
  }
  if (id != SKIFF_ID_NONE) ++inUse_;
  return id;
}

void IdPool::give(uint32_t id) {
  if (id == SKIFF_ID_NONE) return;
  free_.push_back(id);
  --inUse_;
}

EbpfDataplane::EbpfDataplane(std::unique_ptr<Programs> programs, const LoadOptions& load)
    : programs_(std::move(programs)),
      writer_(programs_->maps()),
      // Ids index the maps; id 0 is never used, so the last usable id is max_entries - 1.
      serviceIds_(load.services - 1),
      backendIds_(load.backends - 1),
      ringIds_(load.rings - 1) {}

Result<std::unique_ptr<EbpfDataplane>> EbpfDataplane::create(const EbpfDataplaneOptions& options) {
  const LoadOptions& l = options.load;
  if (l.services < 2 || l.backends < 2 || l.rings < 2 || l.frontends < 1) {
    return Status::failure("eBPF data path: capacities must leave room for ids from 1");
  }
  auto programs = Programs::load(options.load);
  if (!programs.ok()) return programs.status();
  std::unique_ptr<EbpfDataplane> dp(new EbpfDataplane(std::move(*programs), options.load));
  if (!options.pinDir.empty()) {
    if (Status s = dp->programs_->pinMaps(options.pinDir); !s.ok()) return s;
  }
  for (int ifindex : options.xdpIfindexes) {
    if (Status s = dp->programs_->attachXdp(ifindex, options.xdpNative); !s.ok()) return s;
  }
  if (!options.cgroupPath.empty()) {
    if (Status s = dp->programs_->attachCgroup(options.cgroupPath); !s.ok()) return s;
  }
  return dp;
}

Status EbpfDataplane::apply(const dataplane::ServiceDelta& delta) {
  if (Status s = dataplane::validate(delta); !s.ok()) return s;
  std::set<std::string> upserted;
  for (const Service& s : delta.upserted)
    upserted.insert(s.id);
  std::vector<std::string> removals = delta.removed;
  if (delta.replaceAll) {
    for (const auto& [id, p] : services_) {
      if (!upserted.contains(id)) removals.push_back(id);
    }
  }
  const std::set<std::string> removing(removals.begin(), removals.end());
  // A frontend held by a service that stays and is not this one: refuse the delta whole.
  for (const Service& s : delta.upserted) {
    for (const dataplane::Frontend& f : s.frontends) {
      auto it = frontendOwners_.find(f.key);
      if (it == frontendOwners_.end() || it->second == s.id) continue;
      if (removing.contains(it->second) || upserted.contains(it->second)) continue;
      return fail(s.id,
                  "frontend " + f.key.toString() + " belongs to service \"" + it->second + "\"");
    }
  }
  for (const std::string& id : removals) {
    if (Status s = remove(id); !s.ok()) return s;
  }
  for (const Service& s : delta.upserted) {
    if (Status st = program(s); !st.ok()) return st;
  }
  return {};
}

Status EbpfDataplane::remove(const std::string& id) {
  auto it = services_.find(id);
  if (it == services_.end()) return {};
  Programmed& p = it->second;
  for (const dataplane::Frontend& f : p.service.frontends) {
    if (Status s = writer_.deleteFrontend(frontendKey(f.key)); !s.ok())
      return fail(id, s.message());
    frontendOwners_.erase(f.key);
  }
  // Every id goes back to its pool exactly once, even if a failure here is retried.
  for (auto& byScope : p.rings) {
    for (Ring& r : byScope) {
      if (r.id == SKIFF_ID_NONE) continue;
      if (Status s = writer_.deleteRing(r.id); !s.ok()) return fail(id, s.message());
      ringIds_.give(r.id);
      r.id = SKIFF_ID_NONE;
    }
  }
  for (const dataplane::IpPrefix& range : p.service.loadBalancerSourceRanges) {
    if (Status s = writer_.deleteSourceRange(p.svcId, range); !s.ok()) return fail(id, s.message());
  }
  for (auto b = p.backendIds.begin(); b != p.backendIds.end(); b = p.backendIds.erase(b)) {
    if (Status s = writer_.clearBackend(b->second); !s.ok()) return fail(id, s.message());
    backendIds_.give(b->second);
  }
  serviceIds_.give(p.svcId);
  services_.erase(it);
  return {};
}

Status EbpfDataplane::program(const Service& service) {
  const std::string& id = service.id;
  auto [it, fresh] = services_.try_emplace(id);
  Programmed& p = it->second;
  const Service previous = fresh ? Service{} : p.service;
  if (fresh) {
    p.svcId = serviceIds_.take();
    if (p.svcId == SKIFF_ID_NONE) {
      services_.erase(it);
      return fail(id, "no free service id");
    }
    if (Status s = writer_.resetServiceStats(p.svcId); !s.ok()) return fail(id, s.message());
  }

  // Which (family, scope) rings the frontends need, and the eligible backends of each.
  std::array<std::array<bool, 2>, 2> needed{};
  for (const dataplane::Frontend& f : service.frontends) {
    for (TrafficOrigin o : kOrigins) {
      needed[familyIndex(f.key.address.family())]
            [scopeIndex(dataplane::backendScope(service, f.kind, o))] = true;
    }
  }
  std::array<std::array<dataplane::EligibleBackends, 2>, 2> eligible;
  for (AddressFamily fam : kFamilies) {
    for (BackendScope scope : kScopes) {
      eligible[familyIndex(fam)][scopeIndex(scope)] =
          dataplane::eligibleBackends(service, fam, scope);
    }
  }

  // 1. Backends: ids for new ones, entries (conditions, eligibility) for all.
  std::map<dataplane::BackendKey, uint32_t> ids;
  for (size_t i = 0; i < service.backends.size(); ++i) {
    const dataplane::Backend& b = service.backends[i];
    auto old = p.backendIds.find(b.key());
    uint32_t backendId = old != p.backendIds.end() ? old->second : SKIFF_ID_NONE;
    if (backendId == SKIFF_ID_NONE) {
      backendId = backendIds_.take();
      if (backendId == SKIFF_ID_NONE) return fail(id, "no free backend id");
      p.backendIds[b.key()] = backendId;  // owned from now on, even if a later step fails
      if (Status s = writer_.resetBackendStats(backendId); !s.ok()) return fail(id, s.message());
    }
    ids[b.key()] = backendId;
    skiff_backend v{};
    copyAddress(b.address, v.addr);
    v.port = toNetwork16(b.port);
    v.family = static_cast<uint8_t>(b.address.family());
    v.svc_id = p.svcId;
    v.flags = static_cast<uint8_t>(
        (b.ready ? SKIFF_BE_F_READY : 0) | (b.serving ? SKIFF_BE_F_SERVING : 0) |
        (b.terminating ? SKIFF_BE_F_TERMINATING : 0) | (b.local ? SKIFF_BE_F_LOCAL : 0));
    const size_t fam = familyIndex(b.address.family());
    const auto index = static_cast<uint32_t>(i);
    for (BackendScope scope : kScopes) {
      const auto& e = eligible[fam][scopeIndex(scope)].indices;
      if (std::binary_search(e.begin(), e.end(), index)) {
        v.flags |= scope == BackendScope::kCluster ? SKIFF_BE_F_ELIGIBLE_CLUSTER
                                                   : SKIFF_BE_F_ELIGIBLE_LOCAL;
      }
    }
    if (Status s = writer_.putBackend(backendId, v); !s.ok()) return fail(id, s.message());
  }

  // 2. Rings: only the positions that changed.
  std::vector<uint32_t> unusedRings;
  const uint32_t tableSize = dataplane::effectiveMaglevTableSize(service);
  for (AddressFamily fam : kFamilies) {
    for (BackendScope scope : kScopes) {
      Ring& ring = p.rings[familyIndex(fam)][scopeIndex(scope)];
      const dataplane::EligibleBackends& e = eligible[familyIndex(fam)][scopeIndex(scope)];
      ring.selection = e.selection;
      ring.backends = static_cast<uint16_t>(std::min<size_t>(e.indices.size(), UINT16_MAX));
      if (!needed[familyIndex(fam)][scopeIndex(scope)] || e.indices.empty()) {
        if (ring.id != SKIFF_ID_NONE) {
          // Deleted once no frontend points at it any more (step 4).
          unusedRings.push_back(ring.id);
          ring.id = SKIFF_ID_NONE;
          ring.table.clear();
        }
        continue;
      }
      std::vector<dataplane::MaglevBackend> members;
      for (uint32_t i : e.indices) {
        const dataplane::Backend& b = service.backends[i];
        members.push_back({b.key(), b.weight, ids.at(b.key())});
      }
      auto table = dataplane::buildMaglevTable(members, tableSize);
      if (!table.ok()) return fail(id, table.message());
      if (ring.id == SKIFF_ID_NONE) {
        ring.id = ringIds_.take();
        if (ring.id == SKIFF_ID_NONE) return fail(id, "no free ring id");
        ring.table.clear();
      }
      const auto changed = dataplane::changedPositions(ring.table, *table);
      if (Status s = writer_.putRing(ring.id, *table, changed); !s.ok()) {
        return fail(id, s.message());
      }
      ring.table = std::move(*table);
    }
  }

  // 3. Source ranges, then frontends (which turn the range check on).
  for (const dataplane::IpPrefix& range : previous.loadBalancerSourceRanges) {
    if (std::find(service.loadBalancerSourceRanges.begin(), service.loadBalancerSourceRanges.end(),
                  range) == service.loadBalancerSourceRanges.end()) {
      if (Status s = writer_.deleteSourceRange(p.svcId, range); !s.ok()) {
        return fail(id, s.message());
      }
    }
  }
  for (const dataplane::IpPrefix& range : service.loadBalancerSourceRanges) {
    if (Status s = writer_.putSourceRange(p.svcId, range); !s.ok()) return fail(id, s.message());
  }
  for (size_t fi = 0; fi < service.frontends.size(); ++fi) {
    const dataplane::Frontend& f = service.frontends[fi];
    skiff_service v{};
    v.svc_id = p.svcId;
    v.frontend_id = static_cast<uint32_t>(fi);
    v.kind = kindCode(f.kind);
    v.affinity_timeout_s = service.affinityTimeoutSeconds;
    if (service.affinity == dataplane::SessionAffinity::kClientIP) v.flags |= SKIFF_SVC_F_AFFINITY;
    if (f.kind == dataplane::FrontendKind::kLoadBalancer &&
        !service.loadBalancerSourceRanges.empty()) {
      v.flags |= SKIFF_SVC_F_SRC_RANGES;
    }
    if (f.kind == dataplane::FrontendKind::kNodePort && f.key.address.isUnspecified()) {
      v.flags |= SKIFF_SVC_F_WILDCARD;
    }
    const size_t fam = familyIndex(f.key.address.family());
    for (TrafficOrigin o : kOrigins) {
      const size_t origin =
          o == TrafficOrigin::kExternal ? SKIFF_ORIGIN_EXTERNAL : SKIFF_ORIGIN_IN_CLUSTER;
      const BackendScope scope = dataplane::backendScope(service, f.kind, o);
      if (scope == BackendScope::kNodeLocal) {
        v.flags |= origin == SKIFF_ORIGIN_EXTERNAL ? SKIFF_SVC_F_LOCAL_EXTERNAL
                                                   : SKIFF_SVC_F_LOCAL_IN_CLUSTER;
      }
      const Ring& ring = p.rings[fam][scopeIndex(scope)];
      v.ring_id[origin] = ring.id;
      v.ring_size[origin] = ring.id == SKIFF_ID_NONE ? 0 : static_cast<uint32_t>(ring.table.size());
      v.backend_count[origin] = ring.id == SKIFF_ID_NONE ? 0 : ring.backends;
      v.selection[origin] = selectionCode(ring.selection);
    }
    if (Status s = writer_.putFrontend(frontendKey(f.key), v); !s.ok())
      return fail(id, s.message());
    frontendOwners_[f.key] = id;
  }
  for (const dataplane::Frontend& f : previous.frontends) {
    const bool kept = std::any_of(service.frontends.begin(), service.frontends.end(),
                                  [&](const dataplane::Frontend& n) { return n.key == f.key; });
    if (kept) continue;
    // A frontend another service of the same delta took over is that service's now.
    auto owner = frontendOwners_.find(f.key);
    if (owner != frontendOwners_.end() && owner->second != id) continue;
    if (Status s = writer_.deleteFrontend(frontendKey(f.key)); !s.ok())
      return fail(id, s.message());
    if (owner != frontendOwners_.end()) frontendOwners_.erase(owner);
  }

  // 4. Rings no frontend uses, then backends no longer listed, now that no ring names them.
  for (uint32_t ringId : unusedRings) {
    if (Status s = writer_.deleteRing(ringId); !s.ok()) return fail(id, s.message());
    ringIds_.give(ringId);
  }
  for (auto b = p.backendIds.begin(); b != p.backendIds.end();) {
    if (ids.contains(b->first)) {
      ++b;
      continue;
    }
    if (Status s = writer_.clearBackend(b->second); !s.ok()) return fail(id, s.message());
    backendIds_.give(b->second);
    b = p.backendIds.erase(b);
  }
  p.service = service;
  return {};
}

uint32_t EbpfDataplane::backendId(const std::string& id,
                                  const dataplane::BackendKey& backend) const {
  auto it = services_.find(id);
  if (it == services_.end()) return SKIFF_ID_NONE;
  auto b = it->second.backendIds.find(backend);
  return b == it->second.backendIds.end() ? SKIFF_ID_NONE : b->second;
}

uint32_t EbpfDataplane::serviceId(const std::string& id) const {
  auto it = services_.find(id);
  return it == services_.end() ? SKIFF_ID_NONE : it->second.svcId;
}

Result<dataplane::DataplaneStats> EbpfDataplane::stats() const {
  dataplane::DataplaneStats out;
  const MapFds& m = programs_->maps();
  for (const auto& [id, p] : services_) {
    auto s = readServiceStats(m.svcStats, p.svcId);
    if (!s.ok()) return s.status();
    dataplane::ServiceStats ss;
    ss.id = id;
    ss.newFlows = s->new_flows;
    ss.packets = s->packets;
    ss.bytes = s->bytes;
    for (size_t i = 0; i < dataplane::kDropReasonCount; ++i)
      ss.drops[i] = s->drops[i];
    for (const dataplane::Backend& b : p.service.backends) {
      auto backendId = p.backendIds.find(b.key());
      if (backendId == p.backendIds.end()) continue;  // a failed apply() left it out
      auto bs = readBackendStats(m.backendStats, backendId->second);
      if (!bs.ok()) return bs.status();
      ss.backends.push_back({b.key(), bs->new_flows, bs->packets, bs->bytes});
    }
    out.services.push_back(std::move(ss));
  }
  for (uint32_t i = 0; i < dataplane::kDropReasonCount; ++i) {
    auto g = readGlobal(m.global, i);
    if (!g.ok()) return g.status();
    out.unattributedDrops[i] = *g;
  }
  out.failedUpdates = writer_.failedUpdates();
  return out;
}

}  // namespace skiff::ebpf

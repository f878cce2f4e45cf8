#include "ebpf/ebpf_dataplane.h"

#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "ebpf/abi.h"
#include "ebpf/cgroup.h"

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

std::string parentOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos || slash == 0 ? std::string("/") : path.substr(0, slash);
}

Status ensureBpffs(const std::string& pinDir) {
  const std::string parent = parentOf(pinDir);
  struct statfs fs {};
  if (::statfs(parent.c_str(), &fs) == 0 && fs.f_type == BPF_FS_MAGIC) return {};
  if (::mkdir(parent.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::failure("mkdir " + parent + ": " + std::strerror(errno));
  }
  if (::mount("bpffs", parent.c_str(), "bpf", 0, "mode=0700") != 0) {
    return Status::failure("mount bpffs on " + parent + " (for the pin directory " + pinDir +
                           "): " + std::strerror(errno));
  }
  return {};
}

template <class T>
bool sameBytes(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

}  // namespace

uint32_t IdPool::take(bool* fresh) {
  uint32_t id = SKIFF_ID_NONE;
  if (fresh != nullptr) *fresh = false;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else if (next_ <= max_) {
    id = next_++;
    if (fresh != nullptr) *fresh = true;
  }
  if (id != SKIFF_ID_NONE) ++inUse_;
  return id;
}

bool IdPool::reserve(uint32_t id) {
  if (id == SKIFF_ID_NONE || id > max_) return false;
  if (id >= next_) {
    for (uint32_t skipped = next_; skipped < id; ++skipped)
      free_.push_back(skipped);
    next_ = id + 1;
  } else {
    auto it = std::find(free_.begin(), free_.end(), id);
    if (it == free_.end()) return false;
    free_.erase(it);
  }
  ++inUse_;
  return true;
}

void IdPool::give(uint32_t id) {
  if (id == SKIFF_ID_NONE) return;
  free_.push_back(id);
  --inUse_;
}

EbpfDataplane::EbpfDataplane(std::unique_ptr<Programs> programs, const LoadOptions& load)
    : programs_(std::move(programs)),
      writer_(programs_->maps(), load.rings),
      // Ids index the maps; id 0 is never used, so the last usable id is max_entries - 1.
      serviceIds_(load.services - 1),
      backendIds_(load.backends - 1) {}

Result<std::unique_ptr<EbpfDataplane>> EbpfDataplane::create(const EbpfDataplaneOptions& options) {
  const LoadOptions& l = options.load;
  if (l.services < 2 || l.backends < 2 || l.rings < 2 || l.frontends < 1) {
    return Status::failure("eBPF data path: capacities must leave room for ids from 1");
  }
  if (!options.cgroupPath.empty()) {
    if (Status s = ensureCgroup(options.cgroupPath); !s.ok()) return s;
  }
  if (!options.pinDir.empty() && options.mountBpffs) {
    if (Status s = ensureBpffs(options.pinDir); !s.ok()) return s;
  }
  auto programs = Programs::load(options.load, options.pinDir);
  if (!programs.ok()) return programs.status();
  std::unique_ptr<EbpfDataplane> dp(new EbpfDataplane(std::move(*programs), options.load));
  if (dp->programs_->reusedPinnedMaps()) {
    if (Status s = dp->restore(); !s.ok()) {
      return Status::failure("adopt the maps pinned under " + options.pinDir + ": " + s.message());
    }
    dp->restored_ = true;
  }
  for (int ifindex : options.xdpIfindexes) {
    auto got = dp->programs_->attachNodePort(ifindex, options.nodePortMode, options.xdpNative);
    if (!got.ok()) return got.status();
    dp->nodePort_.emplace_back(ifindex, *got);
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
  // Maglev tables first (pure functions of each service: in parallel for a large delta), then
  // backends (one batch) and rings (copied into the ring memory) of every service, then the
  // frontends that name them (one batch), then what no frontend names any more.
  const std::vector<Service>& upserts = delta.upserted;
  // Map the ring memory the rings of new services will need at once (growing it ring by ring
  // remaps it again and again, and each mapping of a BPF array is populated whole). Services
  // already programmed mostly keep their rings (a periodic full sync changes none).
  uint64_t ringEntries = 0;
  for (const Service& s : upserts) {
    if (services_.contains(s.id)) continue;
    std::array<std::array<bool, 2>, 2> needed{};
    for (const dataplane::Frontend& f : s.frontends) {
      for (TrafficOrigin o : kOrigins) {
        needed[familyIndex(f.key.address.family())]
              [scopeIndex(dataplane::backendScope(s, f.kind, o))] = true;
      }
    }
    const uint64_t size = (dataplane::effectiveMaglevTableSize(s) + SKIFF_RING_ALIGN - 1) /
                          SKIFF_RING_ALIGN * SKIFF_RING_ALIGN;
    for (const auto& byScope : needed) {
      for (bool n : byScope)
        ringEntries += n ? size : 0;
    }
  }
  writer_.reserveRingEntries(ringEntries);

  // Tables are computed chunk by chunk into two sets of slots: helper threads compute the next
  // chunk while this thread programs the current one (and then helps with the next).
  constexpr size_t kChunk = 256;
  const size_t total = upserts.size();
  const size_t chunks = (total + kChunk - 1) / kChunk;
  const size_t helpers =
      total < 16
          ? 0
          : std::max<size_t>(1, std::min<size_t>(std::thread::hardware_concurrency(), 8)) - 1;
  struct Progress {
    std::atomic<size_t> next{0};
    std::atomic<size_t> done{0};
  };
  // Services programmed in exactly this state (a periodic full sync sends every service): their
  // rings already hold their tables, so none is built or compared.
  std::vector<uint8_t> keepRings(total, 0);
  for (size_t i = 0; i < total; ++i) {
    auto it = services_.find(upserts[i].id);
    keepRings[i] =
        it != services_.end() && it->second.ringsCurrent && it->second.service == upserts[i];
  }
  std::unique_ptr<Progress[]> progress(new Progress[std::max<size_t>(chunks, 1)]);
  std::array<std::vector<Tables>, 2> slots;
  for (auto& s : slots)
    s.resize(std::min(kChunk, total));
  // Chunks this thread is done with (their slots may be reused); chunks + 2 tells helpers to stop.
  std::atomic<size_t> consumed{0};
  auto computeChunk = [&](size_t c) {
    const size_t base = c * kChunk;
    const size_t n = std::min(kChunk, total - base);
    Progress& p = progress[c];
    std::vector<Tables>& out = slots[c % 2];
    for (size_t i = p.next++; i < n; i = p.next++) {
      if (keepRings[base + i] == 0) computeTables(upserts[base + i], out[i]);
      if (++p.done == n) p.done.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 0; t < helpers; ++t) {
    pool.emplace_back([&] {
      for (size_t c = 0; c < chunks; ++c) {
        // Chunk c goes into the slots of chunk c - 2.
        for (size_t seen = consumed.load(); seen + 2 <= c; seen = consumed.load())
          consumed.wait(seen);
        if (consumed.load() > chunks) return;
        computeChunk(c);
      }
    });
  }
  std::vector<std::function<Status()>> frontendSteps;
  std::vector<std::function<Status()>> cleanupSteps;
  Status programmed;
  writer_.beginBatch();
  for (size_t c = 0; c < chunks && programmed.ok(); ++c) {
    computeChunk(c);
    const size_t base = c * kChunk;
    const size_t n = std::min(kChunk, total - base);
    for (size_t d = progress[c].done.load(); d < n; d = progress[c].done.load())
      progress[c].done.wait(d);
    std::vector<Tables>& tables = slots[c % 2];
    for (size_t i = 0; i < n; ++i) {
      programmed = program(upserts[base + i], tables[i], keepRings[base + i] != 0, frontendSteps,
                           cleanupSteps);
      if (!programmed.ok()) break;
    }
    consumed = c + 1;
    consumed.notify_all();
  }
  consumed = chunks + 2;
  consumed.notify_all();
  for (std::thread& t : pool)
    t.join();
  slots = {};
  if (Status s = writer_.flush(); !s.ok()) return s;
  writer_.beginBatch();
  Status fronted;
  for (auto& step : frontendSteps) {
    fronted = step();
    if (!fronted.ok()) break;
  }
  if (Status s = writer_.flush(); !s.ok()) return s;
  if (!fronted.ok()) return fronted;
  // Clears of backends are queued and flushed too: no frontend names their rings any more.
  writer_.beginBatch();
  Status cleaned;
  for (auto& step : cleanupSteps) {
    cleaned = step();
    if (!cleaned.ok()) break;
  }
  if (Status s = writer_.flush(); !s.ok()) return s;
  if (!cleaned.ok()) return cleaned;
  if (!programmed.ok()) return programmed;
  // The first full sync after a restart: what the previous run programmed and nobody claimed.
  if (delta.replaceAll) return purgeRecovered();
  return {};
}

Status EbpfDataplane::restore() {
  const MapFds& m = programs_->maps();
  auto names = readServiceNames(m.serviceNames);
  if (!names.ok()) return names.status();
  std::unordered_map<uint32_t, RecoveredService*> bySvc;
  for (const ServiceName& n : *names) {
    if (!serviceIds_.reserve(n.svcId)) {
      return Status::failure("service id " + std::to_string(n.svcId) + " of \"" + n.name +
                             "\" is out of range or named twice");
    }
    RecoveredService& r = recovered_.services[n.name];
    r.svcId = n.svcId;
    bySvc[n.svcId] = &r;
  }
  auto ownerOf = [&](uint32_t svcId) -> RecoveredService& {
    auto it = bySvc.find(svcId);
    if (it != bySvc.end()) return *it->second;
    if (svcId != SKIFF_ID_NONE && serviceIds_.reserve(svcId)) {
      recovered_.orphanServiceIds.push_back(svcId);
    }
    return recovered_.orphans;
  };

  auto frontends = readFrontends(m.services);
  if (!frontends.ok()) return frontends.status();
  for (const FrontendEntry& e : *frontends) {
    writer_.adoptFrontend(e.key, e.value);
    RecoveredService& r = ownerOf(e.value.svc_id);
    r.frontends.push_back(e);
    if (&r == &recovered_.orphans) continue;
    const size_t fam = e.key.family == SKIFF_AF_INET ? 0 : 1;
    for (uint32_t origin = 0; origin < SKIFF_ORIGIN_COUNT; ++origin) {
      const uint32_t start = e.value.ring_start[origin];
      const uint32_t size = e.value.ring_size[origin];
      if (start == SKIFF_ID_NONE || size == 0) continue;
      const uint32_t local = origin == SKIFF_ORIGIN_EXTERNAL ? SKIFF_SVC_F_LOCAL_EXTERNAL
                                                             : SKIFF_SVC_F_LOCAL_IN_CLUSTER;
      Ring& slot = r.rings[fam][(e.value.flags & local) != 0 ? 1 : 0];
      // The ring memory between the extents frontends name is free; an extent that does not fit
      // (out of range, overlapping another) is not adopted: the service gets a new ring.
      if (slot.start == start || !writer_.adoptRing(start, size)) continue;
      slot.start = start;
      slot.size = size;
    }
  }

  auto backends = readBackends(m.backends);
  if (!backends.ok()) return backends.status();
  for (const BackendEntry& e : *backends) {
    if (!backendIds_.reserve(e.id)) {
      return Status::failure("backend id " + std::to_string(e.id) + " out of range");
    }
    writer_.adoptBackend(e.id, e.value);
    RecoveredService& r = ownerOf(e.value.svc_id);
    const dataplane::BackendKey key{addressFromKey(e.value.addr, e.value.family),
                                    fromNetwork16(e.value.port)};
    if (&r == &recovered_.orphans || !r.backendIds.emplace(key, e.id).second) {
      recovered_.orphans.orphanBackendIds.push_back(e.id);
    }
  }
  auto ranges = readSourceRanges(m.sourceRanges);
  if (!ranges.ok()) return ranges.status();
  for (const skiff_src_range_key& k : *ranges) {
    writer_.adoptSourceRange(k);
    ownerOf(k.svc_id).ranges.push_back(k);
  }
  return {};
}

Status EbpfDataplane::purge(RecoveredService& r) {
  for (const FrontendEntry& e : r.frontends) {
    // Gone unless a service programmed since took the frontend over.
    const skiff_service* now = writer_.frontend(e.key);
    if (now == nullptr || now->svc_id != e.value.svc_id) continue;
    if (Status s = writer_.deleteFrontend(e.key); !s.ok()) return s;
  }
  r.frontends.clear();
  for (auto& byScope : r.rings) {
    for (Ring& ring : byScope) {
      if (ring.start != SKIFF_ID_NONE) writer_.releaseRing(ring.start);
      ring.start = SKIFF_ID_NONE;
    }
  }
  for (const skiff_src_range_key& k : r.ranges) {
    if (Status s = writer_.deleteSourceRange(k); !s.ok()) return s;
  }
  r.ranges.clear();
  for (const auto& [key, backendId] : r.backendIds)
    r.orphanBackendIds.push_back(backendId);
  r.backendIds.clear();
  for (uint32_t backendId : r.orphanBackendIds) {
    if (Status s = writer_.clearBackend(backendId); !s.ok()) return s;
    backendIds_.give(backendId);
  }
  r.orphanBackendIds.clear();
  if (r.svcId != SKIFF_ID_NONE) {
    if (Status s = writer_.deleteServiceName(r.svcId); !s.ok()) return s;
    serviceIds_.give(r.svcId);
    r.svcId = SKIFF_ID_NONE;
  }
  return {};
}

Status EbpfDataplane::purgeRecovered() {
  for (auto it = recovered_.services.begin(); it != recovered_.services.end();) {
    if (Status s = purge(it->second); !s.ok())
      return fail(it->first, "remove stale: " + s.message());
    it = recovered_.services.erase(it);
  }
  if (Status s = purge(recovered_.orphans); !s.ok()) return s;
  for (uint32_t svcId : recovered_.orphanServiceIds)
    serviceIds_.give(svcId);
  recovered_.orphanServiceIds.clear();
  return {};
}

Status EbpfDataplane::detachAndUnpin() {
  return programs_->detachAndUnpin();
}

Status EbpfDataplane::remove(const std::string& id) {
  auto it = services_.find(id);
  if (it == services_.end()) {
    auto rec = recovered_.services.find(id);
    if (rec == recovered_.services.end()) return {};
    if (Status s = purge(rec->second); !s.ok()) return fail(id, s.message());
    recovered_.services.erase(rec);
    return {};
  }
  Programmed& p = it->second;
  for (const dataplane::Frontend& f : p.service.frontends) {
    if (Status s = writer_.deleteFrontend(frontendKey(f.key)); !s.ok())
      return fail(id, s.message());
    frontendOwners_.erase(f.key);
  }
  // No frontend names its rings any more.
  for (auto& byScope : p.rings) {
    for (Ring& r : byScope) {
      if (r.start != SKIFF_ID_NONE) writer_.releaseRing(r.start);
      r.start = SKIFF_ID_NONE;
    }
  }
  for (const dataplane::IpPrefix& range : p.service.loadBalancerSourceRanges) {
    if (Status s = writer_.deleteSourceRange(p.svcId, range); !s.ok()) return fail(id, s.message());
  }
  for (auto b = p.backendIds.begin(); b != p.backendIds.end(); b = p.backendIds.erase(b)) {
    if (Status s = writer_.clearBackend(b->second); !s.ok()) return fail(id, s.message());
    backendIds_.give(b->second);
  }
  if (Status s = writer_.deleteServiceName(p.svcId); !s.ok()) return fail(id, s.message());
  serviceIds_.give(p.svcId);
  services_.erase(it);
  return {};
}

void EbpfDataplane::computeTables(const Service& service, Tables& out) {
  for (auto& byScope : out) {
    for (TableSlot& slot : byScope)
      slot.built = false;
  }
  std::array<std::array<bool, 2>, 2> needed{};
  for (const dataplane::Frontend& f : service.frontends) {
    for (TrafficOrigin o : kOrigins) {
      needed[familyIndex(f.key.address.family())]
            [scopeIndex(dataplane::backendScope(service, f.kind, o))] = true;
    }
  }
  const uint32_t tableSize = dataplane::effectiveMaglevTableSize(service);
  std::vector<dataplane::MaglevBackend> members;
  for (AddressFamily fam : kFamilies) {
    for (BackendScope scope : kScopes) {
      if (!needed[familyIndex(fam)][scopeIndex(scope)]) continue;
      const dataplane::EligibleBackends e = dataplane::eligibleBackends(service, fam, scope);
      if (e.indices.empty()) continue;
      // The table names each backend by its index in service.backends (program() swaps in ids).
      members.clear();
      members.reserve(e.indices.size());
      for (uint32_t i : e.indices) {
        const dataplane::Backend& b = service.backends[i];
        members.push_back({b.key(), b.weight, i});
      }
      TableSlot& slot = out[familyIndex(fam)][scopeIndex(scope)];
      slot.status = dataplane::buildMaglevTableInto(members, tableSize, slot.table);
      slot.built = true;
    }
  }
}

Status EbpfDataplane::program(const Service& service, Tables& tables, bool keepRings,
                              std::vector<std::function<Status()>>& frontendSteps,
                              std::vector<std::function<Status()>>& cleanupSteps) {
  const std::string& id = service.id;
  auto [it, fresh] = services_.try_emplace(id);
  Programmed& p = it->second;
  const Service previous = fresh ? Service{} : p.service;
  // What the pinned maps held for this service before a restart: same ids, counters kept.
  std::optional<RecoveredService> adopted;
  if (fresh) {
    if (auto rec = recovered_.services.find(id); rec != recovered_.services.end()) {
      adopted = std::move(rec->second);
      recovered_.services.erase(rec);
      p.svcId = adopted->svcId;
      p.backendIds = adopted->backendIds;
      p.rings = adopted->rings;
    } else {
      bool freshId = false;
      p.svcId = serviceIds_.take(&freshId);
      if (p.svcId == SKIFF_ID_NONE) {
        services_.erase(it);
        return fail(id, "no free service id");
      }
      // An id never handed out on maps this process made has zero counters already.
      if (!freshId || programs_->reusedPinnedMaps()) {
        if (Status s = writer_.resetServiceStats(p.svcId); !s.ok()) return fail(id, s.message());
      }
      if (Status s = writer_.putServiceName(p.svcId, id); !s.ok()) return fail(id, s.message());
    }
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
      bool freshId = false;
      backendId = backendIds_.take(&freshId);
      if (backendId == SKIFF_ID_NONE) return fail(id, "no free backend id");
      p.backendIds[b.key()] = backendId;  // owned from now on, even if a later step fails
      if (!freshId || programs_->reusedPinnedMaps()) {
        if (Status s = writer_.resetBackendStats(backendId); !s.ok()) return fail(id, s.message());
      }
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

  // 2. Rings: a changed ring goes whole into a free extent of the ring memory; the frontends
  // switch to it in step 3 and the old extent is released in step 4.
  std::vector<uint32_t> unusedRings;
  std::vector<uint32_t> idOf(service.backends.size(), SKIFF_ID_NONE);
  for (size_t i = 0; i < service.backends.size(); ++i)
    idOf[i] = ids.at(service.backends[i].key());
  if (keepRings) {
    // The rings are not rebuilt, but something else may have written into them: drift is
    // repaired as a rebuild would have (their tables are built here, on this thread).
    for (const auto& byScope : p.rings) {
      for (const Ring& ring : byScope) {
        if (ring.start != SKIFF_ID_NONE && !writer_.ringIntact(ring.start)) keepRings = false;
      }
    }
    if (!keepRings) computeTables(service, tables);
  }
  if (!keepRings) p.ringsCurrent = false;
  // On a failure the rings go back to the extents the frontends still name, and the new extents
  // are given back (else a retry would find the ring memory taken by rings nothing names).
  const Rings before = p.rings;
  auto failRings = [&](const std::string& what) {
    for (size_t f = 0; f < p.rings.size(); ++f) {
      for (size_t sc = 0; sc < p.rings[f].size(); ++sc) {
        const uint32_t now = p.rings[f][sc].start;
        if (now != SKIFF_ID_NONE && now != before[f][sc].start) writer_.releaseRing(now);
      }
    }
    p.rings = before;
    return fail(id, what);
  };
  for (AddressFamily fam : kFamilies) {
    if (keepRings) break;
    for (BackendScope scope : kScopes) {
      Ring& ring = p.rings[familyIndex(fam)][scopeIndex(scope)];
      const dataplane::EligibleBackends& e = eligible[familyIndex(fam)][scopeIndex(scope)];
      ring.selection = e.selection;
      ring.backends = static_cast<uint16_t>(std::min<size_t>(e.indices.size(), UINT16_MAX));
      TableSlot& table = tables[familyIndex(fam)][scopeIndex(scope)];
      if (!needed[familyIndex(fam)][scopeIndex(scope)] || e.indices.empty() || !table.built) {
        if (ring.start != SKIFF_ID_NONE) {
          // Released once no frontend points at it any more (step 4).
          unusedRings.push_back(ring.start);
          ring.start = SKIFF_ID_NONE;
          ring.size = 0;
        }
        continue;
      }
      if (!table.status.ok()) return failRings(table.status.message());
      const dataplane::MaglevTable& t = table.table;
      // The table names backends by index: the ring gets their ids as it is copied.
      auto start = writer_.putRing(ring.start, t, idOf);
      if (!start.ok()) return failRings(start.message());
      if (ring.start != SKIFF_ID_NONE && *start != ring.start) unusedRings.push_back(ring.start);
      ring.start = *start;
      ring.size = static_cast<uint32_t>(t.size());
    }
  }

  // Step 3 once the backends are in their map, step 4 once the frontends are (apply() flushes).
  frontendSteps.push_back([this, &service, &p, previous, adopted = std::move(adopted)]() -> Status {
    return programFrontends(service, p, previous, adopted);
  });
  cleanupSteps.push_back(
      [this, &p, unusedRings = std::move(unusedRings), ids = std::move(ids)]() -> Status {
        return dropUnused(p, unusedRings, ids);
      });
  return {};
}

Status EbpfDataplane::programFrontends(const Service& service, Programmed& p,
                                       const Service& previous,
                                       const std::optional<RecoveredService>& adopted) {
  const std::string& id = service.id;
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
      v.ring_start[origin] = ring.start;
      v.ring_size[origin] = ring.start == SKIFF_ID_NONE ? 0 : ring.size;
      v.backend_count[origin] = ring.start == SKIFF_ID_NONE ? 0 : ring.backends;
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
  if (adopted) {
    // Frontends and ranges the service had before the restart and has no more.
    for (const FrontendEntry& e : adopted->frontends) {
      const bool kept = std::any_of(
          service.frontends.begin(), service.frontends.end(),
          [&](const dataplane::Frontend& n) { return sameBytes(frontendKey(n.key), e.key); });
      const skiff_service* now = writer_.frontend(e.key);
      if (kept || now == nullptr || now->svc_id != p.svcId) continue;
      if (Status s = writer_.deleteFrontend(e.key); !s.ok()) return fail(id, s.message());
    }
    for (const skiff_src_range_key& k : adopted->ranges) {
      const bool kept = std::any_of(
          service.loadBalancerSourceRanges.begin(), service.loadBalancerSourceRanges.end(),
          [&](const dataplane::IpPrefix& r) { return sameBytes(sourceRangeKey(p.svcId, r), k); });
      if (kept) continue;
      if (Status s = writer_.deleteSourceRange(k); !s.ok()) return fail(id, s.message());
    }
  }

  p.service = service;
  p.ringsCurrent = true;
  return {};
}

Status EbpfDataplane::dropUnused(Programmed& p, const std::vector<uint32_t>& unusedRings,
                                 const std::map<dataplane::BackendKey, uint32_t>& ids) {
  // 4. Rings no frontend uses, then backends no longer listed, now that no ring names them.
  for (uint32_t start : unusedRings)
    writer_.releaseRing(start);
  for (auto b = p.backendIds.begin(); b != p.backendIds.end();) {
    if (ids.contains(b->first)) {
      ++b;
      continue;
    }
    if (Status s = writer_.clearBackend(b->second); !s.ok()) return fail(p.service.id, s.message());
    backendIds_.give(b->second);
    b = p.backendIds.erase(b);
  }
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

#pragma once

// The DPDK data path's lookup tables: an immutable snapshot of every programmed service, built by
// the control thread (TableBuilder) and read by the workers without locks. A new snapshot is
// published with RCU (rcu.h); a worker sees the old or the new one for a whole burst, never a mix.
//
// Ids: each service and each (service, backend) pair has a small id that stays the same while it
// exists, across snapshots. Conntrack and affinity entries (per lcore, outliving snapshots) and
// the per-lcore counters are indexed by these ids, as the eBPF path's maps are.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/dataplane.h"
#include "dataplane/dpdk/flow_table.h"
#include "dataplane/selection.h"
#include "dataplane/service.h"
#include "dataplane/status.h"

namespace skiff::dataplane::dpdk {

inline constexpr uint32_t kNoId = 0;

// A frontend as packets carry it: 16 address bytes in network order (IPv4 in the first 4), the
// port as the 16-bit value loaded from the packet (network order), family 4/6, IANA protocol.
struct WireFrontendKey {
  uint8_t addr[16];
  uint16_t port;
  uint8_t family;
  uint8_t proto;
};
static_assert(sizeof(WireFrontendKey) == 20);

// Backend flags: the EndpointSlice conditions and where new flows may go.
inline constexpr uint8_t kBackendReady = 1u << 0;
inline constexpr uint8_t kBackendServing = 1u << 1;
inline constexpr uint8_t kBackendTerminating = 1u << 2;
inline constexpr uint8_t kBackendLocal = 1u << 3;
// In eligibleBackends() of its family for the cluster / node-local scope.
inline constexpr uint8_t kBackendEligibleCluster = 1u << 4;
inline constexpr uint8_t kBackendEligibleLocal = 1u << 5;

// 32-byte aligned: an entry never spans two cache lines (an established packet reads one line).
struct alignas(32) BackendEntry {
  uint8_t addr[16];
  uint16_t port;   // network order
  uint8_t family;  // 0: this id is not in use
  uint8_t flags;   // kBackend*
  uint32_t svcId;  // the service that lists it
};

// Frontend flags.
inline constexpr uint8_t kFrontendAffinity = 1u << 0;
inline constexpr uint8_t kFrontendSourceRanges = 1u << 1;
inline constexpr uint8_t kFrontendWildcard = 1u << 2;  // NodePort on every node address
inline constexpr uint8_t kFrontendLocal = 1u << 3;     // new flows keep to node-local backends

struct SourceRange {
  uint8_t addr[16];
  uint8_t length;
  uint8_t family;
};

// What a packet to a frontend needs, in one cache line: the DPDK path sees traffic that arrives
// on the node's ports, so only the external origin's ring is kept.
struct alignas(64) FrontendEntry {
  WireFrontendKey key;
  uint32_t svcId;     // kNoId: empty slot
  uint8_t kind;       // FrontendKind
  uint8_t flags;      // kFrontend*
  uint8_t selection;  // Selection of the ring's backends
  uint8_t pad0;
  const uint32_t* ring;  // backend ids; null when no backend is eligible
  uint32_t ringSize;
  uint32_t backendCount;
  uint64_t affinityTimeoutNs;
  uint32_t rangeBegin;  // into Tables::ranges
  uint32_t rangeCount;
};
static_assert(sizeof(FrontendEntry) == 64);

// One immutable snapshot.
class Tables {
 public:
  // Exact match, then (if `wildcardNodePorts`) the port-only NodePort frontend. Null if none.
  const FrontendEntry* lookup(const WireFrontendKey& key, bool wildcardNodePorts) const;
  // The same in two steps, for a burst: prefetch the slot of each key's hash
  // (hashFrontendKey), then look each up with its hash.
  void prefetchFrontend(uint64_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hash & mask_], 0, 3);
  }
  const FrontendEntry* lookupHashed(const WireFrontendKey& key, uint64_t hash,
                                    bool wildcardNodePorts) const {
    if (slots_.empty()) return nullptr;
    for (uint64_t i = hash & mask_;; i = (i + 1) & mask_) {
      const FrontendEntry& e = slots_[i];
      if (e.svcId == kNoId) break;
      if (sameKey(e.key, key)) return &e;
    }
    return wildcardNodePorts ? lookupWildcard(key) : nullptr;
  }
  // lookupHashed of the key given as words: a0, a1 the address, a2 = port | family << 16 |
  // proto << 24 (hashFrontendWords), compared word by word against the slots.
  const FrontendEntry* lookupHashedWords(uint64_t a0, uint64_t a1, uint32_t a2, uint64_t hash,
                                         bool wildcardNodePorts) const {
    if (slots_.empty()) return nullptr;
    for (uint64_t i = hash & mask_;; i = (i + 1) & mask_) {
      const FrontendEntry& e = slots_[i];
      if (e.svcId == kNoId) break;
      uint64_t x0, x1;
      uint32_t x2;
      __builtin_memcpy(&x0, e.key.addr, 8);
      __builtin_memcpy(&x1, e.key.addr + 8, 8);
      __builtin_memcpy(&x2, &e.key.port, 4);
      if (((x0 ^ a0) | (x1 ^ a1) | (x2 ^ a2)) == 0) return &e;
    }
    if (!wildcardNodePorts) return nullptr;
    WireFrontendKey k;
    __builtin_memcpy(k.addr, &a0, 8);
    __builtin_memcpy(k.addr + 8, &a1, 8);
    __builtin_memcpy(&k.port, &a2, 4);
    return lookupWildcard(k);
  }
  // The entry of backend `id` (for a prefetch: any id, in use or not, below the id count).
  const BackendEntry* backendSlot(uint32_t id) const {
    return id < backends_.size() ? &backends_[id] : nullptr;
  }
  // The backend `id` if it is listed in service `svcId` with `family`, else null.
  const BackendEntry* listedBackend(uint32_t id, uint32_t svcId, uint8_t family) const {
    if (id == kNoId || id >= backends_.size()) return nullptr;
    const BackendEntry& b = backends_[id];
    if (b.family != family || b.svcId != svcId) return nullptr;
    return &b;
  }
  // loadBalancerSourceRanges of `fe` (checked only when it has kFrontendSourceRanges).
  bool sourceAllowed(const FrontendEntry& fe, const uint8_t (&saddr)[16], uint8_t family) const;

  static bool sameKey(const WireFrontendKey& a, const WireFrontendKey& b) {
    uint64_t x[2], y[2];
    uint32_t xt, yt;
    __builtin_memcpy(x, &a, 16);
    __builtin_memcpy(y, &b, 16);
    __builtin_memcpy(&xt, reinterpret_cast<const uint8_t*>(&a) + 16, 4);
    __builtin_memcpy(&yt, reinterpret_cast<const uint8_t*>(&b) + 16, 4);
    return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (xt ^ yt)) == 0;
  }

  size_t frontendCount() const { return frontendCount_; }
  uint64_t generation() const { return generation_; }

 private:
  friend class TableBuilder;
  // The port-only NodePort frontend of `key`'s port, family and protocol, if any.
  const FrontendEntry* lookupWildcard(const WireFrontendKey& key) const;
  std::vector<FrontendEntry> slots_;  // open addressing, power-of-two size
  uint64_t mask_ = 0;
  size_t frontendCount_ = 0;
  std::vector<BackendEntry> backends_;  // by backend id
  std::vector<SourceRange> ranges_;
  // The rings the entries point into, shared between snapshots.
  std::vector<std::shared_ptr<const std::vector<uint32_t>>> rings_;
  uint64_t generation_ = 0;
};

uint64_t hashFrontendKey(const WireFrontendKey& key);
// hashFrontendKey of the key with address words a0, a1 and a2 = port | family << 16 |
// proto << 24 (what the data path has in registers).
inline uint64_t hashFrontendWords(uint64_t a0, uint64_t a1, uint64_t a2) {
  const uint64_t w[3] = {a0, a1, a2};
  return tableHash(w, 3, 0x66726f6e74ULL);
}
WireFrontendKey wireKey(const FrontendKey& key);

struct Capacities {
  // Ids run from 1 to these: they size the per-lcore counter arrays.
  uint32_t services = 16384;
  uint32_t backends = 65536;
};

// Ids the control side gave out: what stats() needs to name counters.
struct ProgrammedService {
  Service service;
  uint32_t svcId = kNoId;
  std::map<BackendKey, uint32_t> backendIds;
  // Its rings by (family index, scope), kept so an unchanged service is not rebuilt.
  std::map<std::pair<int, int>, std::shared_ptr<const std::vector<uint32_t>>> rings;
  std::map<std::pair<int, int>, EligibleBackends> eligible;
};

// The control thread's model of what is programmed, and the snapshot factory. Not thread-safe:
// one control thread owns it.
class TableBuilder {
 public:
  explicit TableBuilder(Capacities capacities = {});

  // Checks and applies `delta` to the model (nothing changes on failure). Ids of new services
  // and backends are taken from free lists; ids of removed ones are returned to them once the
  // caller has published a snapshot without them (release()).
  Status apply(const ServiceDelta& delta);
  // A snapshot of the current model.
  std::unique_ptr<Tables> build();

  const std::map<std::string, ProgrammedService>& services() const { return services_; }
  const Capacities& capacities() const { return capacities_; }
  // Ids that were freed by the last apply() (their counters must be reset before reuse).
  const std::vector<uint32_t>& freedServiceIds() const { return freedServiceIds_; }
  const std::vector<uint32_t>& freedBackendIds() const { return freedBackendIds_; }
  // Ids handed out by the last apply() (their counters start from zero now).
  const std::vector<uint32_t>& newServiceIds() const { return newServiceIds_; }
  const std::vector<uint32_t>& newBackendIds() const { return newBackendIds_; }

 private:
  Status rebuildRings(ProgrammedService& ps);

  Capacities capacities_;
  std::map<std::string, ProgrammedService> services_;
  std::vector<uint32_t> freeServiceIds_;
  std::vector<uint32_t> freeBackendIds_;
  uint32_t nextServiceId_ = 1;
  uint32_t nextBackendId_ = 1;
  uint32_t maxBackendId_ = 0;
  // Freed by the previous apply(): free for reuse from this one on.
  std::vector<uint32_t> pendingServiceIds_, pendingBackendIds_;
  std::vector<uint32_t> freedServiceIds_, freedBackendIds_, newServiceIds_, newBackendIds_;
  uint64_t generation_ = 0;
};

}  // namespace skiff::dataplane::dpdk

#pragma once

// Writes the tables of lb_abi.h: the one place that turns keys and values into BPF map updates,
// used by the eBPF Dataplane and by the data-path tests. It remembers what it wrote and skips a
// write that would change nothing; Maglev rings go into the mmapped ring memory with memcpy,
// backends, names and frontends in batches; every failed BPF call is counted (Katran's habit).
// It must be the maps' only writer.

#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dataplane/address.h"
#include "dataplane/status.h"
#include "ebpf/abi.h"
#include "ebpf/loader.h"

namespace skiff::ebpf {

class MapWriter {
 public:
  // `maxRings`: the most rings in use at once (LoadOptions::rings); 0 = no limit.
  explicit MapWriter(const MapFds& fds, uint32_t maxRings = 0);
  ~MapWriter();
  MapWriter(const MapWriter&) = delete;
  MapWriter& operator=(const MapWriter&) = delete;

  dataplane::Status putFrontend(const skiff_frontend_key& key, const skiff_service& value);
  dataplane::Status deleteFrontend(const skiff_frontend_key& key);

  dataplane::Status putBackend(uint32_t id, const skiff_backend& value);
  // Marks the id unused (family 0): flows that still name it are reselected.
  dataplane::Status clearBackend(uint32_t id);

  // Maglev rings live in the flat, mmapped ring memory (skiff_rings) as extents named by their
  // first entry (`start`; 0 = none). putRing(start, table) makes the ring hold `table` (backend
  // ids) and returns the start to point the frontends at: `start` itself if it already holds
  // exactly `table` (nothing written), else a free extent filled with `table` (the old one stays
  // intact until releaseRing(), so frontends switch from one whole ring to the other). Only when
  // the memory has no room for a second copy is a ring of the same size rewritten in place, one
  // changed position at a time (each 4-byte store atomic).
  dataplane::Result<uint32_t> putRing(uint32_t start, std::span<const uint32_t> table);
  // The same for a table of indices: the ring holds ids[table[i]] (kMaglevEmpty entries, which no
  // index names, stay as they are), translated while it is copied (no pass over the table first).
  dataplane::Result<uint32_t> putRing(uint32_t start, std::span<const uint32_t> table,
                                      std::span<const uint32_t> ids);
  // Maps the ring memory far enough for `entries` more entries (whole blocks) past the extents
  // handed out so far (capped at its size), so that a large batch of new rings maps it once instead
  // of growing the mapping ring by ring. Only a hint: putRing() maps what it needs either way.
  void reserveRingEntries(uint64_t entries);
  // Gives an extent back once no frontend names it; reused only after a quarantine.
  void releaseRing(uint32_t start);
  // Whether extent `start` still holds what putRing() last wrote into it (a hash of the ring
  // memory against the one taken at the write; false for an adopted extent, whose content was
  // never written by this writer). One pass over the ring, no table built.
  bool ringIntact(uint32_t start) const;
  // What extent `start` holds (empty if none).
  std::span<const uint32_t> ring(uint32_t start) const;
  uint32_t ringSize(uint32_t start) const;
  size_t ringsInUse() const { return extents_.size(); }
  // Entries of the ring memory.
  uint32_t ringEntries() const { return ringEntries_; }
  // Rings rewritten in place for want of room (see putRing).
  uint64_t inPlaceRingWrites() const { return inPlaceRingWrites_; }

  // Between beginBatch() and flush(), putBackend, clearBackend, putServiceName and putFrontend
  // are queued and flush() writes each map's queue with one bpf_map_update_batch (one syscall
  // for thousands of entries; per-element updates on kernels without batch support, counted in
  // batchFallbacks()). The maps change only at flush(): callers flush before writing what must
  // come after (frontends after their backends, clears after the frontends stop naming them).
  void beginBatch() { batching_ = true; }
  dataplane::Status flush();
  uint64_t batchFallbacks() const { return batchFallbacks_; }

  dataplane::Status putSourceRange(uint32_t svcId, const dataplane::IpPrefix& range);
  dataplane::Status deleteSourceRange(uint32_t svcId, const dataplane::IpPrefix& range);

  // The name of service id `svcId` (skiff_svc_names), for a restarted loader and for tools.
  dataplane::Status putServiceName(uint32_t svcId, const std::string& name);
  dataplane::Status deleteServiceName(uint32_t svcId);

  // A restarted loader on pinned maps: what they already hold, so that writes that would change
  // nothing are skipped.
  void adoptFrontend(const skiff_frontend_key& key, const skiff_service& value);
  void adoptBackend(uint32_t id, const skiff_backend& value);
  // An extent a frontend of the pinned maps names; false if it is out of range or overlaps one
  // adopted before with another size.
  bool adoptRing(uint32_t start, uint32_t size);
  void adoptSourceRange(const skiff_src_range_key& key);
  dataplane::Status deleteSourceRange(const skiff_src_range_key& key);
  // The value written for `key`, or nullptr.
  const skiff_service* frontend(const skiff_frontend_key& key) const;

  // Zeroes the per-CPU counters of a service or backend id (when the id is handed out again).
  dataplane::Status resetServiceStats(uint32_t svcId);
  dataplane::Status resetBackendStats(uint32_t backendId);

  // Failed BPF calls so far.
  uint64_t failedUpdates() const { return failedUpdates_; }
  // BPF map updates and deletes issued so far (a batch counts once).
  uint64_t calls() const { return calls_; }
  const MapFds& fds() const { return fds_; }

 private:
  struct Quarantined {
    uint32_t start = 0;
    uint32_t size = 0;  // aligned
    uint64_t releasedNs = 0;
  };

  dataplane::Status check(int err, const char* what);
  dataplane::Status mapRings();
  // A free extent of `size` entries (aligned), or 0.
  uint32_t allocate(uint32_t size);
  void freeExtent(uint32_t start, uint32_t size);
  void reclaim(bool all);
  // Maps the ring memory at least up to entry `entries` (the rest stays unmapped until used).
  dataplane::Status ensureMapped(uint64_t entries);
  template <class K, class V>
  dataplane::Status updateBatch(int fd, std::vector<K>& keys, std::vector<V>& values,
                                const char* what);

  using FrontendBytes = std::array<uint8_t, sizeof(skiff_frontend_key)>;
  using RangeBytes = std::array<uint8_t, sizeof(skiff_src_range_key)>;

  MapFds fds_;
  // The ring memory: address space for all of it (reservedBytes_), mapped from its start as far
  // as ringBytes_ (see ensureMapped).
  uint32_t* rings_ = nullptr;
  size_t reservedBytes_ = 0;
  uint32_t ringEntries_ = 0;
  size_t ringBytes_ = 0;
  std::string ringsError_;
  uint32_t maxRings_ = 0;
  // Extents in use (start -> size as written), free extents (start -> aligned size), the bump
  // pointer past the highest extent ever handed out, and released extents in quarantine.
  std::unordered_map<uint32_t, uint32_t> extents_;
  // Extents putRing() wrote: start -> ringHash() of what it wrote.
  std::unordered_map<uint32_t, uint64_t> ringHashes_;
  std::map<uint32_t, uint32_t> free_;
  uint32_t top_ = SKIFF_RING_ALIGN;
  std::vector<Quarantined> quarantine_;
  uint64_t inPlaceRingWrites_ = 0;
  // putRing's backend ids by table index + 1 (reused from ring to ring).
  std::vector<uint32_t> ringIds_;

  bool batching_ = false;
  std::vector<uint32_t> backendKeys_;
  std::vector<skiff_backend> backendValues_;
  std::vector<uint32_t> nameKeys_;
  std::vector<skiff_svc_name> nameValues_;
  std::vector<skiff_frontend_key> frontendKeys_;
  std::vector<skiff_service> frontendValues_;
  uint64_t batchFallbacks_ = 0;
  // What the maps hold, as written.
  std::map<FrontendBytes, skiff_service> frontends_;
  std::unordered_map<uint32_t, skiff_backend> backends_;
  std::set<RangeBytes> ranges_;
  uint64_t failedUpdates_ = 0;
  uint64_t calls_ = 0;
};

// The LPM key of a source range.
skiff_src_range_key sourceRangeKey(uint32_t svcId, const dataplane::IpPrefix& range);

// Reads a per-CPU array entry summed over CPUs.
dataplane::Result<skiff_svc_stats> readServiceStats(int fd, uint32_t svcId);
dataplane::Result<skiff_be_stats> readBackendStats(int fd, uint32_t backendId);
dataplane::Result<uint64_t> readGlobal(int fd, uint32_t index);

}  // namespace skiff::ebpf

#pragma once

// Writes the tables of lb_abi.h: the one place that turns keys and values into BPF map updates,
// used by the eBPF Dataplane and by the data-path tests. It remembers what it wrote and skips a
// write that would change nothing; ring writes touch only the positions that changed, in one
// batch; every failed BPF call is counted (Katran's habit). It must be the maps' only writer.

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
  explicit MapWriter(const MapFds& fds) : fds_(fds) {}
  ~MapWriter();
  MapWriter(const MapWriter&) = delete;
  MapWriter& operator=(const MapWriter&) = delete;

  dataplane::Status putFrontend(const skiff_frontend_key& key, const skiff_service& value);
  dataplane::Status deleteFrontend(const skiff_frontend_key& key);

  dataplane::Status putBackend(uint32_t id, const skiff_backend& value);
  // Marks the id unused (family 0): flows that still name it are reselected.
  dataplane::Status clearBackend(uint32_t id);

  // Programs Maglev ring `ringId` to hold `table` (backend ids). A new ring, or one whose size
  // changes, is built in a new inner map and swapped in with one outer update; otherwise only
  // `changed` positions are written, in one batch (dataplane::changedPositions gives them).
  dataplane::Status putRing(uint32_t ringId, std::span<const uint32_t> table,
                            std::span<const uint32_t> changed);
  // Writes every position (a full resync of an existing ring).
  dataplane::Status putRing(uint32_t ringId, std::span<const uint32_t> table);
  dataplane::Status deleteRing(uint32_t ringId);
  // Deletes several rings from the outer map in one batch (falls back to one call each).
  dataplane::Status deleteRings(std::span<const uint32_t> ringIds);

  // Between beginRingBatch() and flushRings(), a new or resized ring is built and filled at once
  // but put into the outer map only by flushRings(), all in one batch: every outer map-in-map
  // update waits for an RCU grace period (~12 ms), a batch waits once (Linux >= 6.8). Callers
  // must not write a frontend naming such a ring before flushRings() has returned.
  void beginRingBatch() { batching_ = true; }
  dataplane::Status flushRings();
  // Outer-map batch calls the kernel refused (EINVAL/ENOTSUPP) and did one update at a time.
  uint64_t batchFallbacks() const { return batchFallbacks_; }
  // The size of ring `ringId` as written, 0 if none.
  uint32_t ringSize(uint32_t ringId) const;

  dataplane::Status putSourceRange(uint32_t svcId, const dataplane::IpPrefix& range);
  dataplane::Status deleteSourceRange(uint32_t svcId, const dataplane::IpPrefix& range);

  // The name of service id `svcId` (skiff_svc_names), for a restarted loader and for tools.
  dataplane::Status putServiceName(uint32_t svcId, const std::string& name);
  dataplane::Status deleteServiceName(uint32_t svcId);

  // A restarted loader on pinned maps: what they already hold, so that writes that would change
  // nothing are skipped and rings are written in place. adoptRing takes ownership of `fd`.
  void adoptFrontend(const skiff_frontend_key& key, const skiff_service& value);
  void adoptBackend(uint32_t id, const skiff_backend& value);
  void adoptRing(uint32_t ringId, int fd, uint32_t size);
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
  struct Ring {
    int fd = -1;
    uint32_t size = 0;
  };

  dataplane::Status check(int err, const char* what);
  dataplane::Status writePositions(const Ring& ring, std::span<const uint32_t> table,
                                   std::span<const uint32_t> positions);
  // Puts `fresh` into the outer map as ring `ringId` and closes the inner map it replaces.
  void commitRing(uint32_t ringId, const Ring& fresh);
  void dropPending(uint32_t ringId);

  using FrontendBytes = std::array<uint8_t, sizeof(skiff_frontend_key)>;
  using RangeBytes = std::array<uint8_t, sizeof(skiff_src_range_key)>;

  MapFds fds_;
  std::unordered_map<uint32_t, Ring> rings_;
  // Filled inner maps waiting for flushRings(), in order.
  std::vector<std::pair<uint32_t, Ring>> pending_;
  bool batching_ = false;
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

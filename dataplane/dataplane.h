#pragma once

// The interface the node proxier programs. The eBPF data path (ebpf/) and the DPDK data path
// (dataplane/dpdk/) implement it; endpoints/ drives it; tests/mocks/ holds its mock.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/service.h"
#include "dataplane/status.h"

namespace skiff::dataplane {

// What changed since the last apply(): the proxier's diff of desired against programmed state.
struct ServiceDelta {
  // The full desired state of each service that was added or changed.
  std::vector<Service> upserted;
  // Ids of services to remove.
  std::vector<std::string> removed;
  // A full resync: `upserted` is the whole desired state, every other service goes, and `removed`
  // must be empty.
  bool replaceAll = false;
};

// Checks a delta on its own (a data path also checks it against what it holds): every upserted
// service passes validate(Service); no id is upserted twice, removed twice, or both upserted and
// removed; no frontend key belongs to two upserted services; `removed` is empty with replaceAll.
Status validate(const ServiceDelta& delta);

// Why a data path dropped a packet. The numbering is the index into DropCounters.
enum class DropReason : uint8_t {
  // Selection::kNoBackends: the service has no usable backend (the client gets a reject when the
  // data path can send one).
  kNoBackend,
  // Selection::kNoLocalBackends: Local traffic policy and no usable backend on this node.
  kNoLocalBackend,
  // The client is outside the service's loadBalancerSourceRanges.
  kSourceRangeDenied,
  // No room to track a new flow.
  kConntrackFull,
  // Truncated or inconsistent headers on a packet to a frontend.
  kMalformedPacket,
  // Could not be sent on (a full TX queue).
  kTxFailed,
};
inline constexpr size_t kDropReasonCount = 6;
std::string_view toString(DropReason reason);  // "NoBackend", "NoLocalBackend", ...

// Packets dropped, indexed by static_cast<size_t>(DropReason).
using DropCounters = std::array<uint64_t, kDropReasonCount>;

struct BackendStats {
  BackendKey backend;
  uint64_t newFlows = 0;
  uint64_t packets = 0;
  uint64_t bytes = 0;

  friend bool operator==(const BackendStats&, const BackendStats&) = default;
};

struct ServiceStats {
  std::string id;
  // Over all frontends; packets and bytes are the forwarded ones, in both directions where the
  // data path sees both (DNAT with reverse NAT), else client to backend.
  uint64_t newFlows = 0;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  DropCounters drops{};
  // One entry per backend currently listed in the service.
  std::vector<BackendStats> backends;

  friend bool operator==(const ServiceStats&, const ServiceStats&) = default;
};

struct DataplaneStats {
  // One entry per programmed service, in no particular order.
  std::vector<ServiceStats> services;
  // Drops that no service can be charged with (a malformed packet whose frontend is unknown).
  DropCounters unattributedDrops{};
  // Table writes that failed (BPF map updates, table allocations), as Katran counts them.
  uint64_t failedUpdates = 0;

  friend bool operator==(const DataplaneStats&, const DataplaneStats&) = default;
};

// A data path that load-balances the services it is given.
//
// Threading: all methods are called from one thread (the proxier's sync loop), never
// concurrently, so implementations need no locking against their caller, only against their own
// packet-processing threads. Packets keep flowing while apply() runs: a packet sees a service in
// its old or its new state, or a Maglev table being rewritten position by position, in which every
// entry names a backend of the old or the new state (backends are added before tables name them and
// removed after tables stop naming them). New flows use the new state once apply() has returned.
//
// Flows: apply() never moves an established flow except as establishedFlow() (selection.h) says;
// new flows go where eligibleBackends(), sourceAllowed() and affinityHolds() say.
//
// Errors: no exceptions; apply() returns a failure. An invalid delta (validate(), or a frontend key
// that another programmed service holds) changes nothing. A failure while programming (a map is
// full) may leave part of the delta applied; the caller then retries with replaceAll.
class Dataplane {
 public:
  virtual ~Dataplane() = default;

  // "ebpf", "dpdk": for logs and `skiff lb`.
  virtual std::string_view name() const = 0;

  // Programs `delta`. An upserted service replaces its previous state entirely (frontends it no
  // longer lists stop matching); removing an id that is not programmed is not an error.
  virtual Status apply(const ServiceDelta& delta) = 0;

  // A snapshot of the counters. They count from the time a service was first applied and are
  // forgotten when it is removed; a backend's counters are forgotten when it leaves its service.
  virtual Result<DataplaneStats> stats() const = 0;
};

using DataplanePtr = std::unique_ptr<Dataplane>;

}  // namespace skiff::dataplane

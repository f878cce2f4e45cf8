#pragma once

// The eBPF data path behind the Dataplane interface: loads the programs, attaches them, and turns
// each ServiceDelta into map writes, only where something changed (Katran's habit): service,
// backend and ring ids from free lists, Maglev rings rewritten position by position, backends
// written before rings name them and cleared after rings stop naming them.

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dataplane/dataplane.h"
#include "dataplane/maglev.h"
#include "dataplane/selection.h"
#include "ebpf/loader.h"
#include "ebpf/map_reader.h"
#include "ebpf/map_writer.h"

namespace skiff::ebpf {

struct EbpfDataplaneOptions {
  LoadOptions load;
  // A cgroup v2 directory whose processes (and those of its sub-cgroups) get the socket LB, made
  // if missing (ebpf::defaultCgroupPath() is Skiff's own subtree); the root of the cgroup v2
  // hierarchy is refused. Empty: not attached.
  std::string cgroupPath;
  // Interfaces that get the node-port load balancer (NodePort, externalIPs, LoadBalancer), in
  // `nodePortMode`: XDP (native, or generic without xdpNative), tc (ingress + egress), or auto
  // (native XDP where the driver has it, else tc).
  std::vector<int> xdpIfindexes;
  bool xdpNative = true;
  NodePortMode nodePortMode = NodePortMode::kXdp;
  // Where to pin the maps and the attachments (SKIFF_PIN_DIR); empty: not pinned, and everything
  // is detached when the EbpfDataplane goes. Pinned, everything stays attached and programmed
  // after it goes (a restart does not drop traffic); a later create() on the same directory
  // reuses the maps, adopts the services they hold by name (same ids, so conntrack entries and
  // counters stay valid) and removes those the first full sync (replaceAll) no longer lists.
  // detachAndUnpin() removes it all (clean shutdown, `skiff cleanup`).
  std::string pinDir;
  // Mount bpffs on the pin directory's parent if nothing is mounted there (as Cilium does).
  bool mountBpffs = true;
};

// Hands out ids 1..max; freed ids are reused first.
class IdPool {
 public:
  explicit IdPool(uint32_t max) : max_(max) {}
  // 0 (SKIFF_ID_NONE) when exhausted. `fresh` (if given) tells whether the id is handed out for
  // the first time by this pool (on maps this process created, its entries are still zero).
  uint32_t take(bool* fresh = nullptr);
  void give(uint32_t id);
  // Marks `id` taken (a restarted loader's ids); false if out of range or already taken.
  bool reserve(uint32_t id);
  size_t inUse() const { return inUse_; }

 private:
  uint32_t max_;
  uint32_t next_ = 1;
  std::vector<uint32_t> free_;
  size_t inUse_ = 0;
};

class EbpfDataplane final : public dataplane::Dataplane {
 public:
  static dataplane::Result<std::unique_ptr<EbpfDataplane>> create(
      const EbpfDataplaneOptions& options);

  std::string_view name() const override { return "ebpf"; }
  dataplane::Status apply(const dataplane::ServiceDelta& delta) override;
  dataplane::Result<dataplane::DataplaneStats> stats() const override;

  // Detaches every program, removes every pin and the pin directory (the maps go with the last
  // reference). The EbpfDataplane must not be used afterwards.
  dataplane::Status detachAndUnpin();
  // Services adopted from pinned maps at create() and not yet claimed by an apply().
  size_t unclaimedServices() const { return recovered_.services.size(); }
  bool restoredFromPins() const { return restored_; }
  // What each interface of EbpfDataplaneOptions::xdpIfindexes got (kXdp or kTc).
  const std::vector<std::pair<int, NodePortMode>>& nodePortAttachments() const { return nodePort_; }

  Programs& programs() { return *programs_; }
  const MapWriter& writer() const { return writer_; }
  const MapFds& maps() const { return programs_->maps(); }
  // The backend id programmed for `backend` of service `id`, 0 if none (for tests and tools).
  uint32_t backendId(const std::string& id, const dataplane::BackendKey& backend) const;
  uint32_t serviceId(const std::string& id) const;

 private:
  // One Maglev ring per (family, scope) a service's frontends use: an extent of the ring memory
  // (the writer holds its entries).
  struct Ring {
    uint32_t start = SKIFF_ID_NONE;
    uint32_t size = 0;
    dataplane::Selection selection = dataplane::Selection::kNoBackends;
    uint16_t backends = 0;
  };
  // A Maglev table a service needs, computed ahead (in parallel for a large delta); entries are
  // indices into service.backends until program() names the ids. Slots are reused from service
  // to service (no allocation per table).
  struct TableSlot {
    bool built = false;
    dataplane::Status status;
    dataplane::MaglevTable table;
  };
  // By [family][scope].
  using Tables = std::array<std::array<TableSlot, 2>, 2>;
  // [family: 0 IPv4, 1 IPv6][scope: 0 cluster, 1 node-local]
  using Rings = std::array<std::array<Ring, 2>, 2>;

  struct Programmed {
    uint32_t svcId = SKIFF_ID_NONE;
    dataplane::Service service;
    std::map<dataplane::BackendKey, uint32_t> backendIds;
    Rings rings;
    // The rings hold the tables of `service` (false from the moment program() starts changing
    // them until its frontends are programmed): an upsert of the same state rebuilds none.
    bool ringsCurrent = false;
  };

  // What pinned maps held at create(), by service name, until apply() claims it.
  struct RecoveredService {
    uint32_t svcId = SKIFF_ID_NONE;
    std::vector<FrontendEntry> frontends;
    std::map<dataplane::BackendKey, uint32_t> backendIds;
    std::vector<uint32_t> orphanBackendIds;  // (orphans only: keys may repeat)
    Rings rings;
    std::vector<skiff_src_range_key> ranges;
  };
  struct Recovered {
    std::unordered_map<std::string, RecoveredService> services;
    // Entries no named service owns (an interrupted write): removed at the first full sync.
    RecoveredService orphans;
    std::vector<uint32_t> orphanServiceIds;
  };

  EbpfDataplane(std::unique_ptr<Programs> programs, const LoadOptions& load);

  dataplane::Status restore();
  dataplane::Status purgeRecovered();
  dataplane::Status purge(RecoveredService& r);
  static void computeTables(const dataplane::Service& service, Tables& out);
  // Backends (queued) and rings of `service` (kept as they are if `keepRings`: the service is
  // programmed in exactly this state and `tables` were not built); pushes the rest (source ranges
  // and frontends, to run once apply() has flushed the backends; then what is no longer used, once
  // the frontends are flushed).
  dataplane::Status program(const dataplane::Service& service, Tables& tables, bool keepRings,
                            std::vector<std::function<dataplane::Status()>>& frontendSteps,
                            std::vector<std::function<dataplane::Status()>>& cleanupSteps);
  dataplane::Status programFrontends(const dataplane::Service& service, Programmed& p,
                                     const dataplane::Service& previous,
                                     const std::optional<RecoveredService>& adopted);
  dataplane::Status dropUnused(Programmed& p, const std::vector<uint32_t>& unusedRings,
                               const std::map<dataplane::BackendKey, uint32_t>& ids);
  dataplane::Status remove(const std::string& id);

  std::unique_ptr<Programs> programs_;
  MapWriter writer_;
  IdPool serviceIds_;
  IdPool backendIds_;
  std::unordered_map<std::string, Programmed> services_;
  std::map<dataplane::FrontendKey, std::string> frontendOwners_;
  Recovered recovered_;
  bool restored_ = false;
  std::vector<std::pair<int, NodePortMode>> nodePort_;
};

}  // namespace skiff::ebpf

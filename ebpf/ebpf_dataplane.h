#pragma once

// The eBPF data path behind the Dataplane interface: loads the programs, attaches them, and turns
// each ServiceDelta into map writes, only where something changed (Katran's habit): service,
// backend and ring ids from free lists, Maglev rings rewritten position by position, backends
// written before rings name them and cleared after rings stop naming them.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "dataplane/dataplane.h"
#include "dataplane/maglev.h"
#include "dataplane/selection.h"
#include "ebpf/loader.h"
#include "ebpf/map_writer.h"

namespace skiff::ebpf {

struct EbpfDataplaneOptions {
  LoadOptions load;
  // A cgroup v2 directory whose processes get the socket LB (never the machine's root cgroup);
  // empty: not attached.
  std::string cgroupPath;
  // Interfaces that get the XDP program.
  std::vector<int> xdpIfindexes;
  bool xdpNative = true;
  // Where to pin the maps (SKIFF_PIN_DIR); empty: not pinned.
  std::string pinDir;
};

// Hands out ids 1..max; freed ids are reused first.
class IdPool {
 public:
  explicit IdPool(uint32_t max) : max_(max) {}
  // 0 (SKIFF_ID_NONE) when exhausted.
  uint32_t take();
  void give(uint32_t id);
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

  Programs& programs() { return *programs_; }
  const MapWriter& writer() const { return writer_; }
  const MapFds& maps() const { return programs_->maps(); }
  // The backend id programmed for `backend` of service `id`, 0 if none (for tests and tools).
  uint32_t backendId(const std::string& id, const dataplane::BackendKey& backend) const;
  uint32_t serviceId(const std::string& id) const;

 private:
  // One Maglev ring per (family, scope) a service's frontends use.
  struct Ring {
    uint32_t id = SKIFF_ID_NONE;
    dataplane::MaglevTable table;
    dataplane::Selection selection = dataplane::Selection::kNoBackends;
    uint16_t backends = 0;
  };
  // [family: 0 IPv4, 1 IPv6][scope: 0 cluster, 1 node-local]
  using Rings = std::array<std::array<Ring, 2>, 2>;

  struct Programmed {
    uint32_t svcId = SKIFF_ID_NONE;
    dataplane::Service service;
    std::map<dataplane::BackendKey, uint32_t> backendIds;
    Rings rings;
  };

  EbpfDataplane(std::unique_ptr<Programs> programs, const LoadOptions& load);

  dataplane::Status program(const dataplane::Service& service);
  dataplane::Status remove(const std::string& id);

  std::unique_ptr<Programs> programs_;
  MapWriter writer_;
  IdPool serviceIds_;
  IdPool backendIds_;
  IdPool ringIds_;
  std::unordered_map<std::string, Programmed> services_;
  std::map<dataplane::FrontendKey, std::string> frontendOwners_;
};

}  // namespace skiff::ebpf

#pragma once

// Reads the tables of lb_abi.h back: for a restarted loader that adopts what the pinned maps hold,
// and for `skiff lb`, which opens the pinned maps of a running node. Never writes.

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/status.h"
#include "ebpf/abi.h"
#include "ebpf/loader.h"

namespace skiff::ebpf {

// The shared maps pinned under `dir` (SKIFF_PIN_DIR), opened read-only; closes them on
// destruction.
class PinnedMaps {
 public:
  ~PinnedMaps();
  PinnedMaps(const PinnedMaps&) = delete;
  PinnedMaps& operator=(const PinnedMaps&) = delete;
  PinnedMaps(PinnedMaps&& other) noexcept;

  static dataplane::Result<PinnedMaps> open(const std::string& dir);
  const MapFds& fds() const { return fds_; }

 private:
  PinnedMaps() = default;
  MapFds fds_;
};

struct FrontendEntry {
  skiff_frontend_key key{};
  skiff_service value{};
};
struct BackendEntry {
  uint32_t id = SKIFF_ID_NONE;
  skiff_backend value{};
};
struct RingEntry {
  uint32_t start = SKIFF_ID_NONE;  // first entry in skiff_rings
  std::vector<uint32_t> table;     // backend ids by position
};
struct ServiceName {
  uint32_t svcId = SKIFF_ID_NONE;
  std::string name;
};

dataplane::Result<std::vector<FrontendEntry>> readFrontends(int servicesFd);
// Backend ids in use (family != 0).
dataplane::Result<std::vector<BackendEntry>> readBackends(int backendsFd);
// Every ring a frontend names (each once, by start), with its positions.
dataplane::Result<std::vector<RingEntry>> readRings(int ringsFd, int servicesFd);
dataplane::Result<std::vector<skiff_src_range_key>> readSourceRanges(int rangesFd);
dataplane::Result<std::vector<ServiceName>> readServiceNames(int namesFd);

// An attachment pinned under a pin directory (link_* files): a cgroup hook, an XDP interface
// or a tc hook of one.
struct Attachment {
  std::string pin;      // file name under the pin directory
  std::string kind;     // "cgroup", "xdp", "tc-ingress", "tc-egress" or "unknown"
  uint64_t target = 0;  // cgroup id or ifindex
  uint32_t programId = 0;
  std::string program;    // the attached program's name
  bool detached = false;  // the link exists but its target went away
};
dataplane::Result<std::vector<Attachment>> readAttachments(const std::string& pinDir);

// "10.96.0.10:80/TCP", "[fd00::1]:80/UDP" for a frontend key (a wildcard NodePort: "*:30080/TCP").
std::string frontendText(const skiff_frontend_key& key);
// "10.0.1.1:8080" for a backend.
std::string backendText(const skiff_backend& backend);

}  // namespace skiff::ebpf

#pragma once

// Loads the BPF programs of ebpf/bpf/ through their bpftool skeletons: sets capacities and
// configuration before load, shares one set of maps between the XDP and the socket objects, and
// attaches them (XDP to interfaces, the socket hooks to a cgroup v2 directory).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dataplane/status.h"
#include "ebpf/bpf/lb_abi.h"

struct skiff_xdp;
struct skiff_sock;

namespace skiff::ebpf {

// Service ids that get default-size ring memory when LoadOptions::ringEntries is 0.
inline constexpr uint32_t kDefaultRingServices = 1024;

struct LoadOptions {
  // SKIFF_FWD_PASS, SKIFF_FWD_TX or SKIFF_FWD_FIB.
  uint32_t fwdMode = SKIFF_FWD_PASS;
  // SKIFF_LB_SNAT or SKIFF_LB_DSR (lb_abi.h): how node-port traffic reaches backends on other
  // nodes (`--lb-mode snat|dsr`). With DSR the node also decapsulates IPIP packets of its
  // services for its own backends.
  uint32_t lbMode = SKIFF_LB_SNAT;
  // DSR: the outer source address (IPv4, network order, as in_addr.s_addr); 0: the address the
  // kernel's FIB gives the route to the backend (Linux 6.7).
  uint32_t dsrSourceV4 = 0;
  // Map capacities (max_entries).
  uint32_t frontends = SKIFF_MAX_FRONTENDS;
  uint32_t services = SKIFF_MAX_SERVICES;
  uint32_t backends = SKIFF_MAX_BACKENDS;
  // The most Maglev rings in use at once (extents of skiff_rings).
  uint32_t rings = SKIFF_MAX_RINGS;
  // Entries of the ring memory (skiff_rings, preallocated: 4 bytes each, rounded up to blocks of
  // SKIFF_RING_ALIGN); 0: one default-size ring (16381) per service id for up to
  // kDefaultRingServices ids (64 MiB).
  uint32_t ringEntries = 0;
  uint32_t conntrack = SKIFF_CT_SIZE;
  uint32_t sockRevNat = SKIFF_SOCK_REVNAT_SIZE;
  uint32_t affinity = SKIFF_AFFINITY_SIZE;
  uint32_t sourceRanges = SKIFF_SRC_RANGES_SIZE;
  // Conntrack as a plain HASH instead of an LRU: a full table then refuses new entries instead
  // of evicting old ones (tests of the "conntrack full" path).
  bool conntrackWithoutLru = false;
  // Conntrack lifetimes after the last packet; 0 keeps the program's default.
  uint64_t ctTcpNs = 0;
  uint64_t ctOtherNs = 0;
  uint64_t ctClosingNs = 0;
  // Answer new flows to a service without backends with an ICMP(v6) port unreachable (XDP;
  // the socket LB fails connect() with ECONNREFUSED either way).
  bool rejectWithoutBackends = true;
  // Load the socket programs too.
  bool withSocketLb = true;
  // Load the node-port program's XDP entry and its tc entries (off: attachXdp() or attachTc()
  // fails; tests of one hook skip the other's verification).
  bool withXdp = true;
  bool withTc = true;
};

// tc attachments are TCX links (Linux 6.6): the uapi headers of Debian 12 (6.1) and its libbpf
// (1.1) do not name them yet, but bpf_link_create passes them through.
inline constexpr int kTcxIngress = 46;   // BPF_TCX_INGRESS
inline constexpr int kTcxEgress = 47;    // BPF_TCX_EGRESS
inline constexpr int kLinkTypeTcx = 11;  // BPF_LINK_TYPE_TCX
// The ifindex and attach type of a TCX link's bpf_link_info (the union's first two words).
struct TcxLinkInfo {
  uint32_t ifindex = 0;
  uint32_t attachType = 0;
};
TcxLinkInfo tcxLinkInfo(const void* bpfLinkInfo);

// How NodePort/externalIP/LoadBalancer traffic reaches the load balancer on an interface.
enum class NodePortMode {
  kXdp,  // XDP (native, or generic without EbpfDataplaneOptions::xdpNative); fail if it cannot
  kTc,   // the same program at tc ingress, reverse NAT of replies at tc egress
  kAuto  // native XDP where the driver has it, else tc
};
// "xdp", "tc", "auto"; nullopt for anything else.
std::optional<NodePortMode> parseNodePortMode(std::string_view text);
std::string_view nodePortModeName(NodePortMode mode);

// "snat", "dsr" (SKIFF_LB_*); nullopt for anything else.
std::optional<uint32_t> parseLbMode(std::string_view text);
std::string_view lbModeName(uint32_t mode);

// The file descriptors of the shared maps (owned by Programs).
// The ring entries of skiff_rings that `options` ask for (ringEntries or its default, in whole
// blocks): the map has this / SKIFF_RING_ALIGN elements.
uint32_t ringEntriesFor(const LoadOptions& options);

struct MapFds {
  int services = -1;
  int backends = -1;
  int rings = -1;
  int conntrack = -1;
  int sockRevNat = -1;
  int affinity = -1;
  int sourceRanges = -1;
  int svcStats = -1;
  int backendStats = -1;
  int global = -1;
  int serviceNames = -1;
};

// The loaded programs and their maps. Without a pin directory, everything is detached and
// unloaded on destruction. With one (SKIFF_PIN_DIR), the maps and the attachments (BPF links) are
// pinned there and outlive the process: a loader started later on the same directory reuses the
// pinned maps (no flow is reset) and swaps its programs into the pinned links (no second
// attachment, no moment without a program); detachAndUnpin() or cleanupPinDir() removes it all.
class Programs {
 public:
  ~Programs();
  Programs(const Programs&) = delete;
  Programs& operator=(const Programs&) = delete;

  // `pinDir` empty: nothing pinned. Otherwise maps pinned there are reused (they must have been
  // made with the same capacities and layouts; a clear error says which one differs) and the
  // others are pinned after load.
  static dataplane::Result<std::unique_ptr<Programs>> load(const LoadOptions& options,
                                                           const std::string& pinDir = {});

  const std::string& pinDir() const { return pinDir_; }
  // True when the maps came from pinDir() (a restart): they hold the previous run's state.
  bool reusedPinnedMaps() const { return reusedPinnedMaps_; }
  // True when pinDir() held maps of another layout (SKIFF_ABI_VERSION), which load() unpinned
  // and replaced with fresh ones (the pinned links got the new programs all the same).
  bool replacedOldPins() const { return replacedOldPins_; }

  const MapFds& maps() const { return maps_; }
  int xdpProgram() const;
  // The node-port program's tc entries (same object, same maps and configuration as XDP).
  int tcIngressProgram() const;
  int tcEgressProgram() const;
  // The socket program named `name` (SKIFF_PROG_*), or -1.
  int socketProgram(const std::string& name) const;
  // Every loaded program by name, for checks.
  std::vector<std::pair<std::string, int>> programs() const;

  // Attaches the XDP program to `ifindex` (native mode when `native`, else generic). With a pin
  // directory as a pinned BPF link (an existing one gets the new program).
  dataplane::Status attachXdp(int ifindex, bool native);
  // Attaches the tc entries to `ifindex` as TCX links: ingress translates as XDP does, egress
  // reverse-translates replies leaving toward clients. With a pin directory the links are pinned
  // (link_tcx_ingress_<ifindex>, link_tcx_egress_<ifindex>) and an earlier run's get the new
  // programs. Other tc programs on the interface stay (earlier TCX links run first, clsact
  // filters after).
  dataplane::Status attachTc(int ifindex);
  // Native XDP if the interface's driver takes it, else tc; says which one it attached.
  dataplane::Result<NodePortMode> attachNodePort(int ifindex, NodePortMode mode, bool xdpNative);
  // Attaches the eight socket hooks to the cgroup v2 directory `cgroupPath` as BPF links; with a
  // pin directory they are pinned, and links pinned by an earlier run get the new programs.
  dataplane::Status attachCgroup(const std::string& cgroupPath);
  // Detaches everything attached so far, pinned or not.
  void detachAll();
  // Detaches everything and removes every pin of pinDir() (and the directory).
  dataplane::Status detachAndUnpin();
  // After a crash: detaches the links pinned under `dir`, removes every pin and the directory.
  // A missing directory is fine.
  static dataplane::Status cleanupPinDir(const std::string& dir);

  // Pins every shared map under `dir` (SKIFF_PIN_DIR), creating it; bpffs must be mounted.
  dataplane::Status pinMaps(const std::string& dir);

 private:
  Programs() = default;

  // Closes what this process holds; pinned links stay attached.
  void release();
  dataplane::Status attachLink(int progFd, int targetFd, int attachType, uint32_t flags,
                               const std::string& pinName, const std::string& what);

  skiff_xdp* xdp_ = nullptr;
  skiff_sock* sock_ = nullptr;
  MapFds maps_;
  std::string pinDir_;
  bool reusedPinnedMaps_ = false;
  bool replacedOldPins_ = false;
  std::vector<int> linkFds_;
  std::vector<std::pair<int, uint32_t>> xdpIfindexes_;  // netlink attachments: (ifindex, flags)
};

}  // namespace skiff::ebpf

#pragma once

// The measuring code of the eBPF data path's benchmarks, shared by `skiff bench xdp|socklb`
// (control/cli) and the Google Benchmark binaries of bench/ebpf/ (issue LB-EBPF, part 7).
//
// XDP: each figure is the median of many BPF_PROG_TEST_RUN calls of one packet each (repeat = 1),
// so every run sees the original frame (a `repeat` loop would rerun the program on its own
// output); the kernel's per-call `duration` excludes the syscall. The floor is a two-instruction
// XDP_TX program measured the same way in the same run.
// Socket LB: connect() + accept() + close() through a ClusterIP beside the same to the backend
// directly, in a child process with its own network namespace and a cgroup made for the run.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dataplane/status.h"
#include "ebpf/ebpf_dataplane.h"

namespace skiff::ebpf::bench {

// The median of `values` (0 if empty).
double median(std::vector<double> values);

// TCP flags of the frames below.
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpAck = 0x10;

// An Ethernet + IPv4 + TCP frame (a SYN unless `flags` says otherwise) from `src`:`sport` to
// `dst`:`dport` (host order), with valid checksums.
std::vector<uint8_t> tcpFrame(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport,
                              uint8_t flags = kTcpSyn);

// N services of B backends each programmed into a fresh (unpinned, unattached) eBPF data path in
// SKIFF_FWD_TX mode, plus the XDP_TX floor program. Service i has the external IP
// 198.18.0.0 + i + 1, port 80/TCP, and backends 10.0.0.0 + 16 i + b + 1 : 8080.
class XdpRig {
 public:
  ~XdpRig();
  XdpRig(const XdpRig&) = delete;
  XdpRig& operator=(const XdpRig&) = delete;

  // Needs root. programAllMs() is the apply() of all N services.
  static dataplane::Result<std::unique_ptr<XdpRig>> create(uint32_t services,
                                                           uint32_t backendsPerService);

  int lbProgram() const;
  // The same load balancer's tc ingress entry (same maps).
  int tcProgram() const;
  int floorProgram() const { return floorFd_; }
  // In-kernel ns of one run of `frame`, or -1 (the verdict goes to `verdict` if given).
  double runOnce(int prog, std::span<const uint8_t> frame, uint32_t* verdict = nullptr);
  // A SYN (or a segment with `flags`) from a client to service `index`'s frontend.
  std::vector<uint8_t> frameTo(uint32_t index, uint32_t client, uint16_t sport,
                               uint8_t flags = kTcpSyn) const;

  double programAllMs() const { return programAllMs_; }
  // Replaces the first backend of service `index` by a new address (`generation` > 0 makes each
  // call differ) and returns the ms apply() took.
  dataplane::Result<double> programOneChange(uint32_t index, uint32_t generation);
  EbpfDataplane& dataplane() { return *dp_; }
  uint32_t services() const { return static_cast<uint32_t>(services_.size()); }

 private:
  XdpRig() = default;
  std::unique_ptr<EbpfDataplane> dp_;
  std::vector<dataplane::Service> services_;
  int floorFd_ = -1;
  double programAllMs_ = 0;
};

struct XdpFigures {
  double establishedNs = 0;
  double newFlowNs = 0;
  double floorNs = 0;
  // The same established and new-flow packets through the tc ingress entry (an skb per call:
  // the test run allocates and frees it, which XDP's floor does not include).
  double tcEstablishedNs = 0;
  double tcNewFlowNs = 0;
};
// Medians over `runs` one-packet runs each: an established flow (an ACK of a flow whose SYN, run
// first, made the conntrack entry: what an established TCP flow sends), new flows (a SYN from a
// new source port and address each run), the floor; then the tc entry's established and new
// flows, interleaved in the same runs. Spread over the rig's services (run i goes to service
// i * 7919 % N).
dataplane::Result<XdpFigures> measureXdpPackets(XdpRig& rig, uint32_t runs);

struct SocklbFigures {
  double socklbConnectUs = 0;
  double directConnectUs = 0;
};
// `connects` connect + accept + close through a ClusterIP and as many directly, interleaved in
// rounds of 100; medians of the per-round means. Runs in a forked child (own network namespace,
// cgroup `cgroup2Mount()/skiff-bench-PID`, removed afterwards). Needs root.
dataplane::Result<SocklbFigures> measureSocklb(uint32_t connects);

}  // namespace skiff::ebpf::bench

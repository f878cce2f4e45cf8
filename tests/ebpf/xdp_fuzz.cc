// Fuzz target for the XDP load balancer (ebpf/bpf/skiff_xdp.bpf.c) through BPF_PROG_TEST_RUN: the
// programs are loaded once (TX mode, no socket LB, nothing attached or pinned) and programmed
// through EbpfDataplane::apply with the services the DPDK target uses
// (tests/dataplane/fuzz_frames.h); each input is up to 8 frames run one after the other
// (conntrack carries over between inputs: the maps are not reset). Invariants: every run succeeds,
// the verdict is PASS, DROP or TX, and a TX frame is well formed (an Ethernet and IP header, and
// an IPv4 header checksum that was right on input is right on output). Needs root and BPF; the
// program's own coverage is not fed back to libFuzzer, so this is mutation of the seeds, not
// coverage-guided.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "ebpf/ebpf_dataplane.h"
#include "tests/dataplane/fuzz_frames.h"

namespace {

using namespace skiff;  // NOLINT(google-build-using-namespace): a fuzz entry point

std::unique_ptr<ebpf::EbpfDataplane> load() {
  ebpf::EbpfDataplaneOptions o;
  o.load.fwdMode = SKIFF_FWD_TX;
  o.load.frontends = 64;
  o.load.services = 64;
  o.load.backends = 256;
  o.load.rings = 64;
  o.load.conntrack = 4096;
  o.load.sockRevNat = 64;
  o.load.affinity = 64;
  o.load.sourceRanges = 64;
  o.load.withSocketLb = false;
  auto dp = ebpf::EbpfDataplane::create(o);
  if (!dp.ok()) {
    std::fprintf(stderr, "xdp fuzz: cannot load the programs (root and BPF needed): %s\n",
                 std::string(dp.message()).c_str());
    std::abort();
  }
  const dataplane::Status s = (*dp)->apply(dataplane::fuzz::fuzzServices());
  if (!s.ok()) {
    std::fprintf(stderr, "xdp fuzz: services rejected: %s\n", s.message().c_str());
    std::abort();
  }
  return std::move(*dp);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ebpf::EbpfDataplane* dp = load().release();
  const int prog = dp->programs().xdpProgram();
  for (const std::vector<uint8_t>& in : dataplane::fuzz::splitFrames(data, size)) {
    // The kernel refuses test runs of less than an Ethernet header.
    if (in.size() < 14) continue;
    std::vector<uint8_t> out(in.size() + 512, 0);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = out.data(),
                .data_size_in = static_cast<uint32_t>(in.size()),
                .data_size_out = static_cast<uint32_t>(out.size()), .repeat = 1);
    const int err = bpf_prog_test_run_opts(prog, &opts);
    const char* why = nullptr;
    if (err != 0) {
      why = "BPF_PROG_TEST_RUN failed";
    } else if (opts.retval != XDP_PASS && opts.retval != XDP_DROP && opts.retval != XDP_TX) {
      why = "verdict out of range";
    } else if (opts.data_size_out > out.size()) {
      why = "output beyond the buffer";
    } else if (opts.retval == XDP_TX) {
      uint16_t type = 0;
      const size_t off = dataplane::fuzz::ipOffset(out.data(), opts.data_size_out, &type);
      if (off == 0 || (type != 0x0800 && type != 0x86dd) ||
          opts.data_size_out < off + (type == 0x0800 ? 20u : 40u)) {
        why = "TX frame without an IP header";
      } else if (dataplane::fuzz::ipv4ChecksumOk(in.data(), in.size()) &&
                 !dataplane::fuzz::ipv4ChecksumOk(out.data(), opts.data_size_out)) {
        why = "TX frame with a broken IPv4 header checksum";
      }
    }
    // SKIFF_FUZZ_VERBOSE=1: each frame's verdict, to see what the seeds reach.
    static const bool verbose = std::getenv("SKIFF_FUZZ_VERBOSE") != nullptr;
    if (verbose) {
      std::fprintf(stderr, "xdp fuzz: %zu bytes in: err %d, retval %u, %u bytes out\n", in.size(),
                   err, opts.retval, opts.data_size_out);
    }
    if (why) {
      std::fprintf(stderr, "xdp fuzz: %s (err %d, retval %u, %u bytes out)\n", why, err,
                   opts.retval, opts.data_size_out);
      std::abort();
    }
  }
  return 0;
}

// Fuzz target for the DPDK data path's per-packet logic (dataplane/dpdk/pipeline.h: parse of
// Ethernet/VLAN/IPv4/IPv6/TCP/UDP/ICMP, lookup, conntrack, NAT, rejects), without EAL. A few
// services are programmed once; each input is up to 8 frames, each prefixed by a 2-byte big-endian
// length, run in order through one burst after the flows of the previous input are forgotten (so
// an input replays alone). Invariants: no crash or sanitizer report, the length stays within the
// buffer, PASS leaves the frame unchanged, and a TX frame is well formed: at least an Ethernet and
// IP header, and an IPv4 header checksum that was right on input (or a reject, built here) is
// right on output.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "dataplane/dpdk/pipeline.h"
#include "dataplane/dpdk/tables.h"
#include "tests/dataplane/fuzz_frames.h"

namespace {

using namespace skiff::dataplane;        // NOLINT(google-build-using-namespace): a fuzz entry point
using namespace skiff::dataplane::dpdk;  // NOLINT(google-build-using-namespace)

struct Env {
  Env() : builder(Capacities{16, 64}), pipeline(config()) {
    const ServiceDelta delta = fuzz::fuzzServices();
    const Status s = builder.apply(delta);
    if (!s.ok()) {
      std::fprintf(stderr, "fuzz services rejected: %s\n", std::string(s.message()).c_str());
      std::abort();
    }
    tables = builder.build();
  }
  static PipelineConfig config() {
    PipelineConfig c;
    c.conntrackCapacity = 1024;
    c.affinityCapacity = 64;
    c.capacities = {16, 64};
    return c;
  }
  TableBuilder builder;
  std::shared_ptr<const Tables> tables;
  Pipeline pipeline;
  uint64_t now = 1;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Env* env = new Env();
  env->pipeline.clearFlows();
  const std::vector<std::vector<uint8_t>> frames = fuzz::splitFrames(data, size);
  std::vector<std::vector<uint8_t>> buffers;
  if (frames.empty()) return 0;
  std::vector<PacketRef> refs;
  for (const auto& f : frames) {
    // Room for a reject (an ICMP error quoting the packet) as the mbuf's tailroom gives it.
    buffers.emplace_back(f.size() + 256, 0xa5);
    std::copy(f.begin(), f.end(), buffers.back().begin());
  }
  for (size_t i = 0; i < frames.size(); ++i) {
    refs.push_back({buffers[i].data(), static_cast<uint32_t>(frames[i].size()),
                    static_cast<uint32_t>(buffers[i].size())});
  }
  std::vector<Verdict> verdicts(frames.size());
  env->now += 1000000;
  env->pipeline.processBurst(*env->tables, refs.data(), verdicts.data(), refs.size(), env->now);
  for (size_t i = 0; i < frames.size(); ++i) {
    const auto& in = frames[i];
    const PacketRef& out = refs[i];
    bool bad = out.len > out.capacity || out.data != buffers[i].data();
    const char* why = "length beyond the buffer";
    switch (verdicts[i]) {
      case Verdict::kPass:
        if (!bad && (out.len != in.size() || !std::equal(in.begin(), in.end(), out.data))) {
          bad = true;
          why = "PASS changed the frame";
        }
        break;
      case Verdict::kDrop:
        break;
      case Verdict::kTx: {
        uint16_t type = 0;
        const size_t off = bad ? 0 : fuzz::ipOffset(out.data, out.len, &type);
        if (!bad && (off == 0 || (type != 0x0800 && type != 0x86dd) ||
                     out.len < off + (type == 0x0800 ? 20 : 40))) {
          bad = true;
          why = "TX frame without an IP header";
        } else if (!bad && fuzz::ipv4ChecksumOk(in.data(), in.size()) &&
                   !fuzz::ipv4ChecksumOk(out.data, out.len)) {
          bad = true;
          why = "TX frame with a broken IPv4 header checksum";
        }
        break;
      }
      default:
        bad = true;
        why = "verdict out of range";
    }
    if (bad) {
      std::fprintf(stderr, "frame %zu of %zu: %s\n", i, frames.size(), why);
      std::abort();
    }
  }
  return 0;
}

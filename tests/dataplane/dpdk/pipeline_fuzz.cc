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

namespace {

using namespace skiff::dataplane;        // NOLINT(google-build-using-namespace): a fuzz entry point
using namespace skiff::dataplane::dpdk;  // NOLINT(google-build-using-namespace)

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

Service service(const char* id, FrontendKey key, FrontendKind kind, std::vector<Backend> backends) {
  Service s;
  s.id = id;
  s.frontends = {{key, kind}};
  s.backends = std::move(backends);
  return s;
}

Backend backend(const char* address, uint16_t port) {
  Backend b;
  b.address = ip(address);
  b.port = port;
  b.local = true;
  return b;
}

struct Env {
  Env() : builder(Capacities{16, 64}), pipeline(config()) {
    ServiceDelta delta;
    delta.upserted.push_back(
        service("default/web:", {ip("10.96.0.10"), 80, L4Protocol::kTcp}, FrontendKind::kClusterIP,
                {backend("10.0.1.1", 8080), backend("10.0.1.2", 8080), backend("10.0.1.3", 8080)}));
    delta.upserted.push_back(service("default/dns:", {ip("10.96.0.11"), 53, L4Protocol::kUdp},
                                     FrontendKind::kClusterIP, {}));
    Service six =
        service("default/web6:", {ip("fd00::10"), 443, L4Protocol::kTcp}, FrontendKind::kClusterIP,
                {backend("fd00:1::1", 8443), backend("fd00:1::2", 8443)});
    six.affinity = SessionAffinity::kClientIP;
    delta.upserted.push_back(six);
    Service np = service("default/np:", {ip("0.0.0.0"), 30080, L4Protocol::kTcp},
                         FrontendKind::kNodePort, {backend("10.0.2.1", 80)});
    delta.upserted.push_back(np);
    Service lb = service("default/lb:", {ip("192.0.2.10"), 80, L4Protocol::kUdp},
                         FrontendKind::kLoadBalancer, {backend("10.0.3.1", 5000)});
    lb.loadBalancerSourceRanges = {*IpPrefix::parse("198.51.100.0/24")};
    delta.upserted.push_back(lb);
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

// Offset of the IP header after Ethernet and up to two VLAN tags, or 0.
size_t ipOffset(const uint8_t* p, size_t len, uint16_t* ethertype) {
  size_t off = 12;
  for (int tags = 0; tags <= 2; ++tags) {
    if (len < off + 2) return 0;
    const uint16_t t = static_cast<uint16_t>(p[off] << 8 | p[off + 1]);
    if (t == 0x8100 || t == 0x88a8) {
      off += 4;
      continue;
    }
    *ethertype = t;
    return off + 2;
  }
  return 0;
}

// True when the frame is IPv4 with a whole header whose checksum is right.
bool ipv4ChecksumOk(const uint8_t* p, size_t len) {
  uint16_t type = 0;
  const size_t off = ipOffset(p, len, &type);
  if (off == 0 || type != 0x0800 || len < off + 20) return false;
  const size_t ihl = (p[off] & 0x0f) * 4u;
  if ((p[off] >> 4) != 4 || ihl < 20 || len < off + ihl) return false;
  uint32_t sum = 0;
  for (size_t i = 0; i < ihl; i += 2)
    sum += static_cast<uint32_t>(p[off + i] << 8 | p[off + i + 1]);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Env* env = new Env();
  env->pipeline.clearFlows();
  std::vector<std::vector<uint8_t>> frames;
  std::vector<std::vector<uint8_t>> buffers;
  while (size >= 2 && frames.size() < 8) {
    const size_t n = std::min<size_t>(static_cast<size_t>(data[0] << 8 | data[1]), size - 2);
    frames.emplace_back(data + 2, data + 2 + n);
    data += 2 + n;
    size -= 2 + n;
  }
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
        const size_t off = bad ? 0 : ipOffset(out.data, out.len, &type);
        if (!bad && (off == 0 || (type != 0x0800 && type != 0x86dd) ||
                     out.len < off + (type == 0x0800 ? 20 : 40))) {
          bad = true;
          why = "TX frame without an IP header";
        } else if (!bad && ipv4ChecksumOk(in.data(), in.size()) &&
                   !ipv4ChecksumOk(out.data, out.len)) {
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

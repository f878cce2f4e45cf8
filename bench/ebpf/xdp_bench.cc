// Per-packet cost of the XDP program, measured in the kernel by BPF_PROG_TEST_RUN (its duration
// excludes the syscall): a frame that is no service's (the floor: parse and one lookup), a new
// flow (Maglev pick, two conntrack inserts, DNAT), an established flow (conntrack hit, DNAT) and
// a reply (reverse NAT). Each run translates a fresh copy of the frame, so every repetition does
// the full work; the figure is the median of the per-run durations.

#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "ebpf/ebpf_dataplane.h"
#include "tests/ebpf/packet.h"

namespace {

using skiff::dataplane::Backend;
using skiff::dataplane::IpAddress;
using skiff::ebpf::testing::Bytes;
using skiff::ebpf::testing::PacketSpec;

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

std::unique_ptr<skiff::ebpf::EbpfDataplane> makeDataplane(size_t backends) {
  skiff::ebpf::EbpfDataplaneOptions options;
  options.load.fwdMode = SKIFF_FWD_TX;
  options.load.conntrack = 1 << 16;
  options.load.frontends = 1024;
  options.load.services = 1024;
  options.load.backends = 1024;
  options.load.rings = 1024;
  options.load.withSocketLb = false;
  auto dp = skiff::ebpf::EbpfDataplane::create(options);
  if (!dp.ok()) return nullptr;
  skiff::dataplane::Service s;
  s.id = "bench/web:http";
  s.frontends = {{{ip("203.0.113.10"), 80, skiff::dataplane::L4Protocol::kTcp},
                  skiff::dataplane::FrontendKind::kLoadBalancer}};
  for (size_t i = 0; i < backends; ++i) {
    s.backends.push_back(Backend{
        .address = IpAddress::v4(0x0a000000u + static_cast<uint32_t>(i) + 1), .port = 8080});
  }
  skiff::dataplane::ServiceDelta delta;
  delta.upserted = {s};
  if (!(*dp)->apply(delta).ok()) return nullptr;
  return std::move(*dp);
}

// Runs `frame` once; returns the in-kernel duration in ns, or -1.
double runOnce(int prog, const Bytes& frame, Bytes& out) {
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = out.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()),
              .data_size_out = static_cast<uint32_t>(out.size()), .repeat = 1);
  if (bpf_prog_test_run_opts(prog, &opts) != 0) return -1;
  return opts.duration;
}

enum class Kind { kNotService, kNewFlow, kEstablished, kReply };

void runBench(benchmark::State& state, Kind kind) {
  if (geteuid() != 0) {
    state.SkipWithError("needs root (BPF)");
    return;
  }
  auto dp = makeDataplane(100);
  if (!dp) {
    state.SkipWithError("could not load the eBPF data path");
    return;
  }
  const int prog = dp->programs().xdpProgram();
  PacketSpec spec{.src = ip("198.51.100.7"),
                  .dst = ip("203.0.113.10"),
                  .sport = 40000,
                  .dport = static_cast<uint16_t>(kind == Kind::kNotService ? 81 : 80)};
  Bytes out(256);
  Bytes first = skiff::ebpf::testing::buildPacket(spec);
  if (kind == Kind::kEstablished || kind == Kind::kReply) runOnce(prog, first, out);
  Bytes frame = first;
  if (kind == Kind::kReply) {
    auto t = skiff::ebpf::testing::parseTuple(out);
    frame = skiff::ebpf::testing::buildPacket(
        {.src = t->dst, .dst = spec.src, .sport = t->dport, .dport = spec.sport});
  }
  std::vector<double> ns;
  uint32_t port = 0;
  for (auto _ : state) {
    if (kind == Kind::kNewFlow) {
      state.PauseTiming();
      spec.sport = static_cast<uint16_t>(1024 + port++ % 60000);
      frame = skiff::ebpf::testing::buildPacket(spec);
      state.ResumeTiming();
    }
    const double d = runOnce(prog, frame, out);
    if (d < 0) {
      state.SkipWithError("BPF_PROG_TEST_RUN failed");
      return;
    }
    ns.push_back(d);
  }
  if (ns.empty()) return;
  std::nth_element(ns.begin(), ns.begin() + static_cast<std::ptrdiff_t>(ns.size() / 2), ns.end());
  const double median = ns[ns.size() / 2];
  state.counters["ns_per_packet_median"] = median;
  state.counters["Mpps_one_core"] = median > 0 ? 1000.0 / median : 0;
}

void BM_XdpNotService(benchmark::State& state) {
  runBench(state, Kind::kNotService);
}
void BM_XdpNewFlow(benchmark::State& state) {
  runBench(state, Kind::kNewFlow);
}
void BM_XdpEstablished(benchmark::State& state) {
  runBench(state, Kind::kEstablished);
}
void BM_XdpReply(benchmark::State& state) {
  runBench(state, Kind::kReply);
}

BENCHMARK(BM_XdpNotService);
BENCHMARK(BM_XdpNewFlow);
BENCHMARK(BM_XdpEstablished);
BENCHMARK(BM_XdpReply);

}  // namespace

BENCHMARK_MAIN();

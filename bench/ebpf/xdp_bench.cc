// Per-packet cost of the XDP program, measured in the kernel by BPF_PROG_TEST_RUN (its duration
// excludes the syscall), with the measuring code `skiff bench xdp` uses (ebpf/lb_bench.h): a
// frame that is no service's (parse and one lookup), a new flow (Maglev pick, two conntrack
// inserts, DNAT), an established flow (an ACK: conntrack hit, DNAT), a reply (reverse NAT) and the
// XDP_TX floor, each with 1 and 1,000 services of 10 backends programmed. One packet per call,
// so every run sees the original frame; the figure is the median of the per-run durations.

#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "ebpf/lb_bench.h"

namespace {

using skiff::ebpf::bench::XdpRig;

enum class Kind { kNotService, kNewFlow, kEstablished, kReply, kFloor };

constexpr uint32_t kClient = 0xc6336407u;  // 198.51.100.7

uint32_t get32(const std::vector<uint8_t>& f, size_t at) {
  return static_cast<uint32_t>(f[at]) << 24 | static_cast<uint32_t>(f[at + 1]) << 16 |
         static_cast<uint32_t>(f[at + 2]) << 8 | f[at + 3];
}
uint16_t get16(const std::vector<uint8_t>& f, size_t at) {
  return static_cast<uint16_t>(f[at] << 8 | f[at + 1]);
}

void runBench(benchmark::State& state, Kind kind) {
  if (geteuid() != 0) {
    state.SkipWithError("needs root (BPF)");
    return;
  }
  auto rig = XdpRig::create(static_cast<uint32_t>(state.range(0)), 10);
  if (!rig.ok()) {
    state.SkipWithError(rig.message().c_str());
    return;
  }
  XdpRig& r = **rig;
  const int prog = kind == Kind::kFloor ? r.floorProgram() : r.lbProgram();
  std::vector<uint8_t> frame = r.frameTo(0, kClient, 40000);
  if (kind == Kind::kNotService)
    frame = skiff::ebpf::bench::tcpFrame(kClient, 40000, 0xcb00710a, 81);
  if (kind == Kind::kEstablished || kind == Kind::kReply) r.runOnce(prog, frame);
  // An established flow's packets are ACKs (its SYN made the entry).
  if (kind == Kind::kEstablished) frame = r.frameTo(0, kClient, 40000, skiff::ebpf::bench::kTcpAck);
  if (kind == Kind::kReply) {
    // The backend's answer to the translated SYN, as the first run sent it on.
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    std::vector<uint8_t> out(256);
    opts.data_in = frame.data();
    opts.data_size_in = static_cast<uint32_t>(frame.size());
    opts.data_out = out.data();
    opts.data_size_out = static_cast<uint32_t>(out.size());
    opts.repeat = 1;
    if (bpf_prog_test_run_opts(prog, &opts) != 0) {
      state.SkipWithError("BPF_PROG_TEST_RUN failed");
      return;
    }
    frame =
        skiff::ebpf::bench::tcpFrame(get32(out, 14 + 16), get16(out, 14 + 20 + 2), kClient, 40000,
                                     skiff::ebpf::bench::kTcpSyn | skiff::ebpf::bench::kTcpAck);
  }
  std::vector<double> ns;
  uint32_t flow = 0;
  for (auto _ : state) {
    if (kind == Kind::kNewFlow) {
      state.PauseTiming();
      ++flow;
      frame = r.frameTo(flow % r.services(), 0x64400000u + flow / 50000,
                        static_cast<uint16_t>(1024 + flow % 50000));
      state.ResumeTiming();
    }
    const double d = r.runOnce(prog, frame);
    if (d < 0) {
      state.SkipWithError("BPF_PROG_TEST_RUN failed");
      return;
    }
    ns.push_back(d);
  }
  if (ns.empty()) return;
  const double median = skiff::ebpf::bench::median(ns);
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
void BM_XdpTxFloor(benchmark::State& state) {
  runBench(state, Kind::kFloor);
}

// The argument: services programmed.
BENCHMARK(BM_XdpNotService)->Arg(1)->Arg(1000);
BENCHMARK(BM_XdpNewFlow)->Arg(1)->Arg(1000);
BENCHMARK(BM_XdpEstablished)->Arg(1)->Arg(1000);
BENCHMARK(BM_XdpReply)->Arg(1)->Arg(1000);
BENCHMARK(BM_XdpTxFloor)->Arg(1);

}  // namespace

BENCHMARK_MAIN();

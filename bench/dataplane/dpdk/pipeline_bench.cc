// The DPDK pipeline per packet, without EAL or ports: bursts of 32 frames (64-byte TCP) through
// Pipeline::processBurst. Every iteration first restores the burst's frames from their templates
// (the pipeline rewrites them); BM_RestoreOnly measures that step alone, to subtract.
// Established: 4096 flows to one service of 10 backends, conntrack warm. New flows: each packet
// a tuple not seen before.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "dataplane/dpdk/pipeline.h"
#include "dataplane/dpdk/tables.h"
#include "tests/dataplane/packet_builder.h"

namespace {

namespace dp = skiff::dataplane::dpdk;
using skiff::dataplane::IpAddress;
using skiff::dataplane::testing::buildPacket;
using skiff::dataplane::testing::Bytes;
using skiff::dataplane::testing::PacketSpec;

constexpr size_t kBurst = 32;
constexpr size_t kFlows = 4096;
constexpr size_t kStride = 128;

struct Setup {
  dp::PipelineConfig cfg;
  dp::TableBuilder builder{dp::Capacities{16, 64}};
  std::unique_ptr<dp::Tables> tables;
  std::vector<uint8_t> templates;  // kFlows frames, kStride apart
  uint32_t frameLen = 0;

  Setup() {
    cfg.capacities = {16, 64};
    cfg.conntrackCapacity = 1 << 16;
    skiff::dataplane::ServiceDelta d;
    skiff::dataplane::Service s;
    s.id = "bench/web:";
    s.frontends = {{{IpAddress::v4(0x0a600001), 80, skiff::dataplane::L4Protocol::kTcp},
                    skiff::dataplane::FrontendKind::kLoadBalancer}};
    for (uint32_t b = 0; b < 10; ++b) {
      skiff::dataplane::Backend be;
      be.address = IpAddress::v4(0x0a000101 + b);
      be.port = 8080;
      s.backends.push_back(be);
    }
    d.upserted.push_back(s);
    (void)builder.apply(d);
    tables = builder.build();
    templates.assign(kFlows * kStride, 0);
    for (size_t f = 0; f < kFlows; ++f) {
      PacketSpec spec{.src = IpAddress::v4(0xc6336400 + static_cast<uint32_t>(f / 1000)),
                      .dst = IpAddress::v4(0x0a600001),
                      .sport = static_cast<uint16_t>(1024 + f % 1000),
                      .dport = 80,
                      .tcpFlags = 0x10,
                      .payload = {0, 0, 0, 0, 0, 0}};
      const Bytes frame = buildPacket(spec);
      frameLen = static_cast<uint32_t>(frame.size());
      std::memcpy(templates.data() + f * kStride, frame.data(), frame.size());
    }
  }
};

void restore(const Setup& s, std::vector<uint8_t>& buf, dp::PacketRef* refs, size_t first) {
  for (size_t i = 0; i < kBurst; ++i) {
    const size_t f = (first + i) % kFlows;
    std::memcpy(buf.data() + i * kStride, s.templates.data() + f * kStride, s.frameLen);
    refs[i] = {buf.data() + i * kStride, s.frameLen, kStride};
  }
}

void setCounters(benchmark::State& state) {
  const auto packets = static_cast<double>(state.iterations() * kBurst);
  state.counters["ns_per_packet"] =
      benchmark::Counter(packets, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["Mpps"] = benchmark::Counter(packets / 1e6, benchmark::Counter::kIsRate);
}

void BM_RestoreOnly(benchmark::State& state) {
  Setup s;
  std::vector<uint8_t> buf(kBurst * kStride);
  dp::PacketRef refs[kBurst];
  size_t first = 0;
  for (auto _ : state) {
    restore(s, buf, refs, first);
    benchmark::DoNotOptimize(refs);
    first += kBurst;
  }
  setCounters(state);
}
BENCHMARK(BM_RestoreOnly);

void BM_Established(benchmark::State& state) {
  Setup s;
  dp::Pipeline p(s.cfg);
  std::vector<uint8_t> buf(kBurst * kStride);
  dp::PacketRef refs[kBurst];
  dp::Verdict v[kBurst];
  for (size_t first = 0; first < kFlows; first += kBurst) {
    restore(s, buf, refs, first);
    p.processBurst(*s.tables, refs, v, kBurst, 1000);
  }
  size_t first = 0;
  uint64_t now = 2000;
  for (auto _ : state) {
    restore(s, buf, refs, first);
    p.processBurst(*s.tables, refs, v, kBurst, now++);
    benchmark::DoNotOptimize(v);
    first += kBurst;
  }
  setCounters(state);
}
BENCHMARK(BM_Established);

void BM_NewFlow(benchmark::State& state) {
  Setup s;
  s.cfg.conntrackCapacity = 1 << 20;
  dp::Pipeline p(s.cfg);
  std::vector<uint8_t> buf(kBurst * kStride);
  dp::PacketRef refs[kBurst];
  dp::Verdict v[kBurst];
  uint32_t tuple = 0;
  uint64_t now = 1000;
  for (auto _ : state) {
    restore(s, buf, refs, 0);
    for (size_t i = 0; i < kBurst; ++i) {
      // A fresh source address and port (the checksums go stale, which costs nothing extra).
      const uint32_t t = tuple++;
      uint8_t* d = refs[i].data;
      d[26] = 10;
      d[27] = static_cast<uint8_t>(t >> 24);
      d[28] = static_cast<uint8_t>(t >> 16);
      d[29] = static_cast<uint8_t>(t >> 8);
      d[35] = static_cast<uint8_t>(t);
    }
    p.processBurst(*s.tables, refs, v, kBurst, now++);
    benchmark::DoNotOptimize(v);
  }
  setCounters(state);
}
BENCHMARK(BM_NewFlow);

}  // namespace

BENCHMARK_MAIN();

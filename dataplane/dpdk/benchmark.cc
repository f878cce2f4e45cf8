#include "dataplane/dpdk/benchmark.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "dataplane/dpdk/pipeline.h"
#include "dataplane/dpdk/port.h"
#include "dataplane/dpdk/tables.h"

namespace skiff::dataplane::dpdk {
namespace {

constexpr uint32_t kFrameLen = 60;  // 64 bytes on the wire with the FCS
constexpr uint16_t kBenchBurst = 32;

uint16_t fold(uint32_t sum) {
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

uint32_t sum16(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2)
    s += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  return s;
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// A 60-byte IPv4 TCP (ACK) or UDP frame with every checksum right.
void buildFrame(uint8_t* f, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, bool udp) {
  std::memset(f, 0, kFrameLen);
  const uint8_t macs[12] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1};
  std::memcpy(f, macs, 12);
  put16(f + 12, 0x0800);
  uint8_t* ip = f + 14;
  const uint16_t l4len = udp ? 8 + 18 : 20 + 6;
  ip[0] = 0x45;
  put16(ip + 2, static_cast<uint16_t>(20 + l4len));
  ip[8] = 64;
  ip[9] = udp ? 17 : 6;
  for (int i = 0; i < 4; ++i) {
    ip[12 + i] = static_cast<uint8_t>(src >> (24 - 8 * i));
    ip[16 + i] = static_cast<uint8_t>(dst >> (24 - 8 * i));
  }
  put16(ip + 10, static_cast<uint16_t>(~fold(sum16(ip, 20))));
  uint8_t* l4 = ip + 20;
  put16(l4, sport);
  put16(l4 + 2, dport);
  if (udp) {
    put16(l4 + 4, l4len);
  } else {
    l4[12] = 5 << 4;
    l4[13] = 0x10;
    put16(l4 + 14, 0xffff);
  }
  uint32_t pseudo = sum16(ip + 12, 8) + ip[9] + l4len;
  const uint16_t c = static_cast<uint16_t>(~fold(pseudo + sum16(l4, l4len)));
  put16(l4 + (udp ? 6 : 16), udp && c == 0 ? 0xffff : c);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One loop iteration (one RX burst): its cycles, the part inside processBurst, its packets.
struct Iteration {
  uint32_t cycles;
  uint32_t pipelineCycles;
  uint32_t packets;
};

struct Loop {
  Pipeline* pipeline = nullptr;  // null: the io floor
  const Tables* tables = nullptr;
  const std::vector<uint8_t>* frames = nullptr;  // templates, kFrameLen apart
  uint32_t frameCount = 0;
  bool freshTuples = false;  // new flows: rewrite the source of each template
  uint64_t tuple = 0;
  uint64_t notTranslated = 0;
  bool generate = true;  // false: RX -> TX alone (the io floor without the generator)
  // rdtsc around the generator (floor loops) or around processBurst (pipeline loops), per run,
  // over the iterations that count (see runLoop).
  bool timeGenerator = false;
  uint64_t generatorCycles = 0;
  uint64_t pipelineCycles = 0;
  // Of the last run: packets in the iterations that count, and the share of its cycles left out.
  uint64_t countedPackets = 0;
  double descheduledShare = 0;
  std::vector<Iteration> iterations;  // reused from run to run (no allocation while timed)
};

// An iteration that took more than this many times the run's median was not running all along:
// the thread was descheduled or the vCPU stolen (a loaded 2-core VM does that every few ms, and
// a time slice is a thousand bursts). Interrupts and cache misses cost far less than 3 extra
// bursts, so they stay counted.
constexpr uint32_t kDescheduledFactor = 4;

// Runs `packets` packets through RX (port 0) -> generator -> [pipeline] -> TX (port 1); returns
// cycles per packet of the iterations that count: rdtsc per iteration, those longer than
// kDescheduledFactor times the median left out (their cycles and their packets).
double runLoop(Loop& loop, uint64_t packets, uint32_t& cursor) {
  rte_mbuf* mbufs[kBenchBurst];
  PacketRef refs[kBenchBurst];
  Verdict verdicts[kBenchBurst];
  uint64_t done = 0;
  uint64_t ns = 1;
  loop.iterations.clear();
  loop.iterations.reserve(packets / kBenchBurst + 1024);
  std::vector<uint32_t> generatorCycles;  // per iteration, when timed
  if (loop.timeGenerator) generatorCycles.reserve(packets / kBenchBurst + 1024);
  uint64_t last = rte_rdtsc();
  while (done < packets) {
    const uint16_t n = rte_eth_rx_burst(0, 0, mbufs, kBenchBurst);
    const uint64_t genStart = loop.timeGenerator ? rte_rdtsc() : 0;
    for (uint16_t i = 0; i < n && loop.generate; ++i) {
      uint8_t* d = rte_pktmbuf_mtod(mbufs[i], uint8_t*);
      std::memcpy(d, loop.frames->data() + static_cast<size_t>(cursor) * kFrameLen, kFrameLen);
      if (loop.freshTuples) {
        // A source address and port never used before (10.128.0.0/9 x 1024..65535).
        const uint64_t t = loop.tuple++;
        const uint32_t src = 0x0a800000u | static_cast<uint32_t>((t / 64512) & 0x7fffff);
        const auto sport = static_cast<uint16_t>(1024 + t % 64512);
        uint8_t old[6];
        std::memcpy(old, d + 26, 4);
        std::memcpy(old + 4, d + 34, 2);
        uint8_t now[6];
        for (int k = 0; k < 4; ++k)
          now[k] = static_cast<uint8_t>(src >> (24 - 8 * k));
        put16(now + 4, sport);
        std::memcpy(d + 26, now, 4);
        std::memcpy(d + 34, now + 4, 2);
        // The checksums are left stale: the pipeline does not verify them (NICs do), it only
        // updates them incrementally, which costs the same either way.
      }
      mbufs[i]->data_len = kFrameLen;
      mbufs[i]->pkt_len = kFrameLen;
      if (++cursor == loop.frameCount) cursor = 0;
    }
    if (loop.timeGenerator)
      generatorCycles.push_back(static_cast<uint32_t>(rte_rdtsc() - genStart));
    uint64_t pipe = 0;
    if (loop.pipeline != nullptr && n > 0) {
      for (uint16_t i = 0; i < n; ++i)
        refs[i] = {rte_pktmbuf_mtod(mbufs[i], uint8_t*), kFrameLen, kFrameLen};
      const uint64_t t0 = rte_rdtsc();
      loop.pipeline->processBurst(*loop.tables, refs, verdicts, n, ns);
      pipe = rte_rdtsc() - t0;
      ns += 1000;
      for (uint16_t i = 0; i < n; ++i)
        loop.notTranslated += verdicts[i] != Verdict::kTx;
    }
    uint16_t sent = rte_eth_tx_burst(1, 0, mbufs, n);
    if (sent < n) rte_pktmbuf_free_bulk(mbufs + sent, n - sent);
    done += n;
    const uint64_t now = rte_rdtsc();
    const uint64_t cycles = now - last;
    last = now;
    loop.iterations.push_back({static_cast<uint32_t>(std::min<uint64_t>(cycles, UINT32_MAX)),
                               static_cast<uint32_t>(std::min<uint64_t>(pipe, UINT32_MAX)), n});
  }
  std::vector<uint32_t> sorted;
  sorted.reserve(loop.iterations.size());
  for (const Iteration& it : loop.iterations)
    if (it.packets != 0) sorted.push_back(it.cycles);
  if (sorted.empty()) return 0;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2),
                   sorted.end());
  const uint64_t limit = uint64_t{sorted[sorted.size() / 2]} * kDescheduledFactor;
  uint64_t counted = 0, countedPackets = 0, all = 0;
  for (size_t k = 0; k < loop.iterations.size(); ++k) {
    const Iteration& it = loop.iterations[k];
    all += it.cycles;
    if (it.cycles > limit) continue;
    counted += it.cycles;
    countedPackets += it.packets;
    loop.pipelineCycles += it.pipelineCycles;
    if (loop.timeGenerator) loop.generatorCycles += generatorCycles[k];
  }
  loop.countedPackets = countedPackets;
  loop.descheduledShare =
      all == 0 ? 0 : static_cast<double>(all - counted) / static_cast<double>(all);
  return static_cast<double>(counted) / static_cast<double>(countedPackets);
}

}  // namespace

Result<BenchmarkResult> runBenchmark(const BenchmarkOptions& o) {
  if (o.services == 0 || o.flows == 0) return Status::failure("services and flows must be > 0");
  if (rte_eth_dev_count_avail() < 2)
    return Status::failure("needs two ports (EAL --vdev=net_null0 --vdev=net_null1)");
  auto pool = mbufPoolForSocket(SOCKET_ID_ANY, 8191);
  if (!pool.ok()) return pool.status();
  for (uint16_t p : {uint16_t{0}, uint16_t{1}}) {
    if (Status s = startPort(p, {}, *pool); !s.ok()) return s;
  }

  // Services 10.96.x.y:80, even ones TCP and odd ones UDP, 10 backends each.
  PipelineConfig cfg;
  cfg.conntrackCapacity = std::max<size_t>(2 * static_cast<size_t>(o.flows) + 1024, 1 << 16);
  cfg.capacities = {o.services + 1, o.services * 10 + 16};
  cfg.rejectWithoutBackends = false;
  TableBuilder builder(cfg.capacities);
  ServiceDelta delta;
  for (uint32_t s = 0; s < o.services; ++s) {
    Service svc;
    svc.id = "bench/svc" + std::to_string(s) + ":";
    const bool udp = s % 2 == 1;
    svc.frontends.push_back(
        {{IpAddress::v4(0x0a600000u + s), 80, udp ? L4Protocol::kUdp : L4Protocol::kTcp},
         FrontendKind::kLoadBalancer});
    for (uint32_t b = 0; b < 10; ++b) {
      Backend be;
      be.address = IpAddress::v4(0x0a000000u + (s << 8) + b + 1 + 0x00100000u);
      be.port = 8080;
      svc.backends.push_back(be);
    }
    svc.maglevTableSize = o.maglevTableSize;
    delta.upserted.push_back(std::move(svc));
  }
  if (Status s = builder.apply(delta); !s.ok()) return s;
  std::unique_ptr<Tables> tables = builder.build();

  // Templates: flow f goes to service f % services (TCP and UDP alternate when services > 1;
  // one service: TCP only).
  std::vector<uint8_t> frames(static_cast<size_t>(o.flows) * kFrameLen);
  for (uint32_t f = 0; f < o.flows; ++f) {
    const uint32_t s = f % o.services;
    const bool udp = s % 2 == 1;
    buildFrame(frames.data() + static_cast<size_t>(f) * kFrameLen, 0xc6120000u + (f / 60000),
               0x0a600000u + s, static_cast<uint16_t>(1024 + f % 60000), 80, udp);
  }

  BenchmarkResult r;
  r.tscHz = static_cast<double>(rte_get_tsc_hz());
  std::vector<double> est, fresh, floor, ioOnly, gen, estPipe, freshPipe;
  const uint64_t packets = o.packetsPerRun;
  for (int rep = 0; rep < o.repetitions; ++rep) {
    // Floor and pipeline alternate, so that both see the same machine.
    Loop io;
    io.frames = &frames;
    io.frameCount = o.flows;
    uint32_t cursor = 0;
    floor.push_back(runLoop(io, packets, cursor));
    Loop bare = io;
    bare.generate = false;
    cursor = 0;
    ioOnly.push_back(runLoop(bare, packets, cursor));
    Loop timed = io;
    timed.timeGenerator = true;
    cursor = 0;
    runLoop(timed, packets, cursor);
    gen.push_back(static_cast<double>(timed.generatorCycles) /
                  static_cast<double>(timed.countedPackets));
    r.descheduledShare = std::max(
        {r.descheduledShare, io.descheduledShare, bare.descheduledShare, timed.descheduledShare});

    Pipeline pipeline(cfg);
    Loop lb = io;
    lb.pipeline = &pipeline;
    lb.tables = tables.get();
    cursor = 0;
    runLoop(lb, o.flows, cursor);  // warm: every flow established
    lb.notTranslated = 0;
    lb.pipelineCycles = 0;
    est.push_back(runLoop(lb, packets, cursor));
    estPipe.push_back(static_cast<double>(lb.pipelineCycles) /
                      static_cast<double>(lb.countedPackets));
    r.descheduledShare = std::max(r.descheduledShare, lb.descheduledShare);
    r.lostPackets += lb.notTranslated;

    Pipeline freshPipeline(cfg);
    Loop nf = io;
    nf.pipeline = &freshPipeline;
    nf.tables = tables.get();
    nf.freshTuples = true;
    nf.tuple = static_cast<uint64_t>(rep) * packets;
    cursor = 0;
    const uint64_t freshPackets = std::min<uint64_t>(packets, cfg.conntrackCapacity / 2);
    fresh.push_back(runLoop(nf, freshPackets, cursor));
    freshPipe.push_back(static_cast<double>(nf.pipelineCycles) /
                        static_cast<double>(nf.countedPackets));
    r.descheduledShare = std::max(r.descheduledShare, nf.descheduledShare);
  }
  for (uint16_t p : {uint16_t{0}, uint16_t{1}})
    (void)rte_eth_dev_stop(p);
  r.establishedCycles = median(est);
  r.newFlowCycles = median(fresh);
  r.floorCycles = median(floor);
  r.ioOnlyCycles = median(ioOnly);
  r.generatorCycles = median(gen);
  r.establishedPipelineCycles = median(estPipe);
  r.newFlowPipelineCycles = median(freshPipe);
  r.establishedMpps = r.tscHz / r.establishedCycles / 1e6;
  r.floorMpps = r.tscHz / r.floorCycles / 1e6;
  r.ratioToFloor = r.establishedCycles / r.floorCycles;
  return r;
}

}  // namespace skiff::dataplane::dpdk

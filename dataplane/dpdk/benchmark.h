#pragma once

// `skiff bench dpdk`: the packet rate of the DPDK pipeline on net_null ports, beside `io`
// forwarding through the same ports in the same run (DPDK testpmd's --forward-mode=io: RX burst,
// TX burst, nothing else) as the floor.
//
// Both loops run on one lcore: rte_eth_rx_burst(32) from net_null0, a generator that writes
// pre-built 64-byte frames (TCP and UDP, half each) into the received mbufs, and
// rte_eth_tx_burst to net_null1. The pipeline loop processes the burst between generator and TX;
// the floor loop does not. Established flows: `flows` tuples over `services` services of 10
// backends, conntrack warmed first. New flows: every packet a tuple not seen before.
// Figures are rdtsc cycles per packet, medians of `repetitions` runs. Each run times every loop
// iteration (one burst) and leaves out those that took over 4 times the run's median: there the
// thread was descheduled (on a shared 2-core VM under a build, a quarter to three quarters of
// the wall time; cycles per packet then measured the other processes). `descheduledShare` says
// how much was left out; interrupts and misses cost far less and stay in. Besides the whole loop's
// cycles, the run reports the floor's parts (RX -> TX without the generator; the generator alone)
// and the pipeline's own cycles (rdtsc around processBurst), i.e. the per-packet cost net of the
// generator and the I/O.

#include <cstdint>
#include <string>

#include "dataplane/status.h"

namespace skiff::dataplane::dpdk {

struct BenchmarkOptions {
  uint32_t services = 1;
  uint32_t flows = 1000000;
  uint32_t packetsPerRun = 20000000;
  int repetitions = 5;
  uint32_t maglevTableSize = 1021;
};

struct BenchmarkResult {
  double tscHz = 0;
  double establishedCycles = 0;
  double newFlowCycles = 0;
  double floorCycles = 0;
  double establishedMpps = 0;
  double floorMpps = 0;
  double ratioToFloor = 0;  // established cycles / floor cycles
  // The floor's parts: RX -> TX alone, and the generator alone (rdtsc around it in a floor loop).
  double ioOnlyCycles = 0;
  double generatorCycles = 0;
  // The pipeline net of generator and I/O: rdtsc around processBurst, per packet.
  double establishedPipelineCycles = 0;
  double newFlowPipelineCycles = 0;
  uint64_t lostPackets = 0;  // not translated in the established runs (must be 0)
  // The largest share of a run's cycles left out as descheduled (0 on an idle machine).
  double descheduledShare = 0;
};

// EAL must be initialised with two net_null ports (0 and 1) and this thread on an lcore.
Result<BenchmarkResult> runBenchmark(const BenchmarkOptions& options);

}  // namespace skiff::dataplane::dpdk

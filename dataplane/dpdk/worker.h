#pragma once

// The run-to-completion lcore loop (DPDK's l3fwd shape): drain TX buffers on a TSC deadline,
// burst RX (32) from each queue this lcore owns, process the burst (prefetching packet i+1 while
// handling i), buffer each packet for TX on its port (or to the exception port, or free it), then
// report an RCU quiescent state. No locks, no allocation, no exceptions in the loop.

#include <rte_ethdev.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "dataplane/dpdk/pipeline.h"
#include "dataplane/dpdk/rcu.h"

namespace skiff::dataplane::dpdk {

inline constexpr uint16_t kBurstSize = 32;
inline constexpr uint16_t kNoPort = UINT16_MAX;

struct RxQueue {
  uint16_t port = 0;
  uint16_t queue = 0;
};

// Everything one lcore needs, in its own cache lines (indexed by lcore in the caller's array).
struct alignas(64) WorkerContext {
  Pipeline* pipeline = nullptr;
  TablePublisher* publisher = nullptr;
  uint32_t rcuId = 0;
  std::vector<RxQueue> rx;
  // This lcore's TX queue on every port.
  uint16_t txQueue = 0;
  // Where PASS verdicts go (a TAP port to the kernel), with its TX queue; kNoPort frees them.
  uint16_t exceptionPort = kNoPort;
  uint16_t exceptionQueue = 0;
  // Flush partial TX buffers after this many TSC cycles (default: 100 us).
  uint64_t drainCycles = 0;
  std::atomic<bool>* stop = nullptr;

  // Set up by prepareWorker(): one TX buffer per port, and the TSC to ns factor.
  std::vector<rte_eth_dev_tx_buffer*> txBuffers;
  uint64_t nsPerCycleQ32 = 0;
  // Loop iterations and bursts that carried packets (to tell busy from idle polling).
  Counter iterations, busyIterations;
};

// Allocates the TX buffers (on the lcore's socket) and sets the TSC factors. Call from the
// control thread before launching; fails with a message if memory is short.
Status prepareWorker(WorkerContext& ctx, unsigned socket);
// Frees what prepareWorker() allocated (after the worker returned).
void releaseWorker(WorkerContext& ctx);

// The lcore function: loops until *ctx.stop, then flushes and returns 0. `arg` is a
// WorkerContext*.
int workerMain(void* arg);

__extension__ typedef unsigned __int128 Uint128;

// Nanoseconds of a TSC value with the factor of prepareWorker().
inline uint64_t tscToNs(uint64_t tsc, uint64_t nsPerCycleQ32) {
  return static_cast<uint64_t>((static_cast<Uint128>(tsc) * nsPerCycleQ32) >> 32);
}

}  // namespace skiff::dataplane::dpdk

#include "dataplane/dpdk/worker.h"

#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>

namespace skiff::dataplane::dpdk {
namespace {

// A TX buffer that could not send everything: free the rest and count it (TxFailed).
void txFailed(rte_mbuf** unsent, uint16_t count, void* userdata) {
  auto* counters = static_cast<LcoreCounters*>(userdata);
  counters->unattributed[static_cast<size_t>(DropReason::kTxFailed)].add(count);
  rte_pktmbuf_free_bulk(unsent, count);
}

}  // namespace

Status prepareWorker(WorkerContext& ctx, unsigned socket) {
  if (ctx.pipeline == nullptr || ctx.publisher == nullptr || ctx.stop == nullptr)
    return Status::failure("worker: pipeline, publisher and stop flag are required");
  const uint64_t hz = rte_get_tsc_hz();
  if (hz == 0) return Status::failure("worker: TSC frequency unknown");
  ctx.nsPerCycleQ32 = static_cast<uint64_t>((static_cast<Uint128>(1000000000ULL) << 32) / hz);
  if (ctx.drainCycles == 0) ctx.drainCycles = hz / 10000;  // 100 us
  ctx.txBuffers.assign(RTE_MAX_ETHPORTS, nullptr);
  for (uint16_t port = 0; port < RTE_MAX_ETHPORTS; ++port) {
    if (!rte_eth_dev_is_valid_port(port)) continue;
    auto* b = static_cast<rte_eth_dev_tx_buffer*>(
        rte_zmalloc_socket("skiff_tx_buffer", RTE_ETH_TX_BUFFER_SIZE(kBurstSize),
                           RTE_CACHE_LINE_SIZE, static_cast<int>(socket)));
    if (b == nullptr) {
      releaseWorker(ctx);
      return Status::failure("worker: no memory for a TX buffer on socket " +
                             std::to_string(socket));
    }
    rte_eth_tx_buffer_init(b, kBurstSize);
    rte_eth_tx_buffer_set_err_callback(b, txFailed, &ctx.pipeline->counters());
    ctx.txBuffers[port] = b;
  }
  return {};
}

void releaseWorker(WorkerContext& ctx) {
  for (rte_eth_dev_tx_buffer*& b : ctx.txBuffers) {
    rte_free(b);
    b = nullptr;
  }
}

int workerMain(void* arg) {
  WorkerContext& ctx = *static_cast<WorkerContext*>(arg);
  Pipeline& pipeline = *ctx.pipeline;
  TablePublisher& publisher = *ctx.publisher;
  rte_mbuf* mbufs[kBurstSize];
  PacketRef refs[kBurstSize];
  Verdict verdicts[kBurstSize];
  uint64_t lastDrain = rte_rdtsc();

  publisher.online(ctx.rcuId);
  while (!ctx.stop->load(std::memory_order_relaxed)) {
    const uint64_t tsc = rte_rdtsc();
    if (tsc - lastDrain > ctx.drainCycles) {
      for (const RxQueue& q : ctx.rx)
        rte_eth_tx_buffer_flush(q.port, ctx.txQueue, ctx.txBuffers[q.port]);
      if (ctx.exceptionPort != kNoPort)
        rte_eth_tx_buffer_flush(ctx.exceptionPort, ctx.exceptionQueue,
                                ctx.txBuffers[ctx.exceptionPort]);
      lastDrain = tsc;
    }
    const Tables* tables = publisher.acquire();
    const uint64_t now = tscToNs(tsc, ctx.nsPerCycleQ32);
    bool busy = false;
    for (const RxQueue& q : ctx.rx) {
      const uint16_t n = rte_eth_rx_burst(q.port, q.queue, mbufs, kBurstSize);
      if (n == 0) continue;
      busy = true;
      for (uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = mbufs[i];
        refs[i].data = rte_pktmbuf_mtod(m, uint8_t*);
        // Chained mbufs are not parsed: the first segment alone would be a truncated frame.
        refs[i].len = m->nb_segs == 1 ? rte_pktmbuf_data_len(m) : 0;
        refs[i].capacity = rte_pktmbuf_data_len(m) + rte_pktmbuf_tailroom(m);
      }
      if (tables != nullptr) {
        pipeline.processBurst(*tables, refs, verdicts, n, now);
      } else {
        for (uint16_t i = 0; i < n; ++i)
          verdicts[i] = Verdict::kPass;
      }
      for (uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = mbufs[i];
        switch (verdicts[i]) {
          case Verdict::kTx:
            if (refs[i].len != rte_pktmbuf_data_len(m)) {
              m->data_len = static_cast<uint16_t>(refs[i].len);
              m->pkt_len = refs[i].len;
            }
            rte_eth_tx_buffer(q.port, ctx.txQueue, ctx.txBuffers[q.port], m);
            break;
          case Verdict::kPass:
            if (ctx.exceptionPort != kNoPort) {
              rte_eth_tx_buffer(ctx.exceptionPort, ctx.exceptionQueue,
                                ctx.txBuffers[ctx.exceptionPort], m);
            } else {
              rte_pktmbuf_free(m);
            }
            break;
          case Verdict::kDrop:
            rte_pktmbuf_free(m);
            break;
        }
      }
    }
    ctx.iterations.add();
    if (busy) ctx.busyIterations.add();
    // No table pointer is held past this point.
    publisher.quiescent(ctx.rcuId);
  }
  for (const RxQueue& q : ctx.rx)
    rte_eth_tx_buffer_flush(q.port, ctx.txQueue, ctx.txBuffers[q.port]);
  if (ctx.exceptionPort != kNoPort)
    rte_eth_tx_buffer_flush(ctx.exceptionPort, ctx.exceptionQueue,
                            ctx.txBuffers[ctx.exceptionPort]);
  publisher.offline(ctx.rcuId);
  return 0;
}

}  // namespace skiff::dataplane::dpdk

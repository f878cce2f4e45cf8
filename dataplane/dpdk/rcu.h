#pragma once

// Publishes table snapshots to the workers with RCU (DPDK's rte_rcu_qsbr): the control thread
// swaps the pointer, waits until every online worker has passed a quiescent state (it reports one
// per loop iteration, when it holds no table pointer), then frees the old snapshot. Workers never
// block and never take a lock; the control thread waits at most one loop iteration of each
// worker. rte_rcu_qsbr needs no EAL, so this runs in unit tests too.

#include <atomic>
#include <cstdint>
#include <memory>

#include "dataplane/dpdk/tables.h"
#include "dataplane/status.h"

struct rte_rcu_qsbr;

namespace skiff::dataplane::dpdk {

class TablePublisher {
 public:
  // Room for workers with ids 0..maxWorkers-1.
  static Result<std::unique_ptr<TablePublisher>> create(uint32_t maxWorkers);
  ~TablePublisher();
  TablePublisher(const TablePublisher&) = delete;
  TablePublisher& operator=(const TablePublisher&) = delete;

  // Worker side. Register once, go online before the first acquire(); offline while idle or
  // stopped, so that the control thread does not wait for it.
  void registerWorker(uint32_t id);
  void unregisterWorker(uint32_t id);
  void online(uint32_t id);
  void offline(uint32_t id);
  // The current snapshot: valid until this worker's next quiescent().
  const Tables* acquire() const { return current_.load(std::memory_order_acquire); }
  void quiescent(uint32_t id);

  // Control side: makes `next` current and frees the previous snapshot once no worker can
  // still read it. Not concurrent with itself.
  void publish(std::unique_ptr<Tables> next);
  // Publishes nothing; returns once every online worker has passed a quiescent state.
  void synchronize();

 private:
  TablePublisher() = default;

  rte_rcu_qsbr* qs_ = nullptr;
  std::atomic<const Tables*> current_{nullptr};
  std::unique_ptr<const Tables> owned_;
};

}  // namespace skiff::dataplane::dpdk

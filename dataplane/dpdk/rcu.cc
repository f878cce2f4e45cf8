#include "dataplane/dpdk/rcu.h"

#include <rte_rcu_qsbr.h>

#include <cstdlib>

namespace skiff::dataplane::dpdk {

Result<std::unique_ptr<TablePublisher>> TablePublisher::create(uint32_t maxWorkers) {
  if (maxWorkers == 0) return Status::failure("RCU: at least one worker is needed");
  const size_t size = rte_rcu_qsbr_get_memsize(maxWorkers);
  if (size == 0)
    return Status::failure("RCU: cannot size a QSBR variable for " + std::to_string(maxWorkers) +
                           " workers");
  const size_t rounded =
      (size + RTE_CACHE_LINE_SIZE - 1) / RTE_CACHE_LINE_SIZE * RTE_CACHE_LINE_SIZE;
  void* mem = std::aligned_alloc(RTE_CACHE_LINE_SIZE, rounded);
  if (mem == nullptr) return Status::failure("RCU: out of memory");
  auto* qs = static_cast<rte_rcu_qsbr*>(mem);
  if (rte_rcu_qsbr_init(qs, maxWorkers) != 0) {
    std::free(mem);
    return Status::failure("RCU: rte_rcu_qsbr_init failed");
  }
  std::unique_ptr<TablePublisher> p(new TablePublisher());
  p->qs_ = qs;
  return p;
}

TablePublisher::~TablePublisher() {
  std::free(qs_);
}

void TablePublisher::registerWorker(uint32_t id) {
  rte_rcu_qsbr_thread_register(qs_, id);
}

void TablePublisher::unregisterWorker(uint32_t id) {
  rte_rcu_qsbr_thread_unregister(qs_, id);
}

void TablePublisher::online(uint32_t id) {
  rte_rcu_qsbr_thread_online(qs_, id);
}

void TablePublisher::offline(uint32_t id) {
  rte_rcu_qsbr_thread_offline(qs_, id);
}

void TablePublisher::quiescent(uint32_t id) {
  rte_rcu_qsbr_quiescent(qs_, id);
}

void TablePublisher::publish(std::unique_ptr<Tables> next) {
  const Tables* raw = next.release();
  current_.store(raw, std::memory_order_release);
  synchronize();
  owned_.reset(raw);
}

void TablePublisher::synchronize() {
  rte_rcu_qsbr_synchronize(qs_, RTE_QSBR_THRID_INVALID);
}

}  // namespace skiff::dataplane::dpdk

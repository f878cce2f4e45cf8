#include "dataplane/dpdk/port.h"

#include <rte_errno.h>
#include <rte_mbuf.h>

#include <map>

namespace skiff::dataplane::dpdk {
namespace {

Status portFailure(uint16_t port, const std::string& step, int rc) {
  return Status::failure("port " + portName(port) + ": " + step + ": " +
                         rte_strerror(rc < 0 ? -rc : rc));
}

}  // namespace

std::string portName(uint16_t port) {
  char name[RTE_ETH_NAME_MAX_LEN] = {};
  if (rte_eth_dev_get_name_by_port(port, name) != 0) return std::to_string(port);
  return std::to_string(port) + " (" + name + ")";
}

Result<rte_mempool*> mbufPoolForSocket(int socket, uint32_t mbufs) {
  // Only the control thread creates pools, before the workers start.
  static std::map<int, rte_mempool*> pools;
  if (socket == SOCKET_ID_ANY) socket = static_cast<int>(rte_socket_id());
  if (auto it = pools.find(socket); it != pools.end()) return it->second;
  const std::string name = "skiff_mbufs_s" + std::to_string(socket);
  rte_mempool* pool =
      rte_pktmbuf_pool_create(name.c_str(), mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
  if (pool == nullptr) {
    return Status::failure("mbuf pool of " + std::to_string(mbufs) + " buffers on socket " +
                           std::to_string(socket) + ": " + rte_strerror(rte_errno) +
                           " (hugepages reserved? or run with --no-huge -m MB)");
  }
  pools[socket] = pool;
  return pool;
}

Status startPort(uint16_t port, const PortConfig& config, rte_mempool* pool) {
  if (!rte_eth_dev_is_valid_port(port))
    return Status::failure("port " + std::to_string(port) + ": no such port");
  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(port, &info); rc != 0) return portFailure(port, "info", rc);
  if (config.rxQueues > info.max_rx_queues || config.txQueues > info.max_tx_queues) {
    return Status::failure("port " + portName(port) + ": wants " + std::to_string(config.rxQueues) +
                           " RX and " + std::to_string(config.txQueues) + " TX queues, has " +
                           std::to_string(info.max_rx_queues) + " and " +
                           std::to_string(info.max_tx_queues));
  }
  rte_eth_conf conf{};
  if (config.rxQueues > 1) {
    const uint64_t want = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = want & info.flow_type_rss_offloads;
  }
  if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
  if (int rc = rte_eth_dev_configure(port, config.rxQueues, config.txQueues, &conf); rc != 0)
    return portFailure(port, "configure", rc);
  uint16_t rxd = config.rxDescriptors, txd = config.txDescriptors;
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd); rc != 0)
    return portFailure(port, "descriptors", rc);
  const int socket = rte_eth_dev_socket_id(port);
  const unsigned s = socket < 0 ? rte_socket_id() : static_cast<unsigned>(socket);
  for (uint16_t q = 0; q < config.rxQueues; ++q) {
    rte_eth_rxconf rxc = info.default_rxconf;
    if (int rc = rte_eth_rx_queue_setup(port, q, rxd, s, &rxc, pool); rc != 0)
      return portFailure(port, "RX queue " + std::to_string(q), rc);
  }
  for (uint16_t q = 0; q < config.txQueues; ++q) {
    rte_eth_txconf txc = info.default_txconf;
    txc.offloads = conf.txmode.offloads;
    if (int rc = rte_eth_tx_queue_setup(port, q, txd, s, &txc); rc != 0)
      return portFailure(port, "TX queue " + std::to_string(q), rc);
  }
  if (int rc = rte_eth_dev_start(port); rc != 0) return portFailure(port, "start", rc);
  if (config.promiscuous) (void)rte_eth_promiscuous_enable(port);  // not every PMD has it
  return {};
}

}  // namespace skiff::dataplane::dpdk

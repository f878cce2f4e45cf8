#pragma once

// Port and mbuf pool setup for the DPDK data path: any PMD (a NIC on bare metal; net_null,
// net_ring, net_tap, net_af_packet, net_af_xdp here), RSS across the RX queues, one TX queue per
// worker lcore, an mbuf pool per NUMA socket.

#include <rte_ethdev.h>
#include <rte_mempool.h>

#include <cstdint>
#include <string>

#include "dataplane/status.h"

namespace skiff::dataplane::dpdk {

struct PortConfig {
  uint16_t rxQueues = 1;
  uint16_t txQueues = 1;
  uint16_t rxDescriptors = 1024;
  uint16_t txDescriptors = 1024;
  bool promiscuous = true;
};

// The mbuf pool of `socket` (SOCKET_ID_ANY: the caller's), created on first use with `mbufs`
// buffers of RTE_MBUF_DEFAULT_BUF_SIZE. Fails with DPDK's reason (e.g. no hugepages left).
Result<rte_mempool*> mbufPoolForSocket(int socket, uint32_t mbufs);

// Configures and starts `port`: RSS (IP, TCP, UDP, as far as the device hashes them) when it has
// more than one RX queue, its queues on the port's socket from `pool`, promiscuous mode when the
// device has it. Errors name the port and the step.
Status startPort(uint16_t port, const PortConfig& config, rte_mempool* pool);

// "0 (net_null0)": for messages and metrics.
std::string portName(uint16_t port);

}  // namespace skiff::dataplane::dpdk

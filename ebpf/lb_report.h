#pragma once

// What the pinned maps of a running eBPF data path say, in rows: one per frontend, one per
// backend (counters summed over CPUs), and the global drops and events. `skiff lb` prints it;
// tests read the same rows.

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/dataplane.h"
#include "dataplane/status.h"
#include "ebpf/map_reader.h"

namespace skiff::ebpf {

struct FrontendRow {
  std::string frontend;  // "10.96.0.10:80/TCP"
  std::string service;   // "default/web:http" ("" if unnamed)
  uint32_t svcId = 0;
  std::string kind;  // "ClusterIP", ...
  // Per origin: [SKIFF_ORIGIN_EXTERNAL] (XDP) and [SKIFF_ORIGIN_IN_CLUSTER] (socket LB).
  std::array<uint16_t, SKIFF_ORIGIN_COUNT> backends{};
  std::array<std::string, SKIFF_ORIGIN_COUNT> selection;
  std::array<uint32_t, SKIFF_ORIGIN_COUNT> ringSize{};
  // The service's counters (shared by its frontends).
  uint64_t newFlows = 0;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  dataplane::DropCounters drops{};
};

struct BackendRow {
  uint32_t id = 0;
  uint32_t svcId = 0;
  std::string service;
  std::string address;     // "10.0.1.1:8080"
  std::string conditions;  // "ready,serving"
  uint64_t newFlows = 0;   // connections (socket LB) and new flows (XDP)
  uint64_t packets = 0;    // XDP only: the socket LB sees no packets
  uint64_t bytes = 0;
};

struct LbReport {
  std::string pinDir;
  std::vector<FrontendRow> frontends;  // by service name, then frontend
  std::vector<BackendRow> backends;    // by service name, then address
  size_t services = 0;
  size_t rings = 0;
  dataplane::DropCounters drops{};  // drops no service can be charged with
  std::vector<std::pair<std::string, uint64_t>> events;
  std::vector<Attachment> attachments;
};

dataplane::Result<LbReport> readLbReport(const std::string& pinDir);

// A flow of the node-port load balancer (XDP, tc): a forward entry of the conntrack table. The
// socket LB keeps no conntrack (it translates once, at connect()).
struct FlowRow {
  std::string client;    // "192.0.2.1:40000"
  std::string frontend;  // what the client addressed: "10.0.0.1:30080/TCP"
  std::string backend;   // "10.0.1.1:8080" ("" if the backend id is no longer programmed)
  std::string service;   // "default/web:http" ("" if unnamed)
  std::string protocol;  // "TCP", "UDP", ...
  uint32_t backendId = 0;
  uint32_t svcId = 0;
  uint64_t ageNs = 0;   // since the flow's first packet
  uint64_t idleNs = 0;  // since its last packet
  bool seenReply = false;
  bool closing = false;   // TCP FIN or RST seen
  uint8_t protoCode = 0;  // IPPROTO_*
};

// Every forward conntrack entry pinned under `pinDir` (expired ones too, until their slot is
// reused: idleNs tells), by service, then client; seenReply, closing and idleNs take the flow's
// reply entry (backend -> client) into account.
dataplane::Result<std::vector<FlowRow>> readFlows(const std::string& pinDir);

}  // namespace skiff::ebpf

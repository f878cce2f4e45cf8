#include "ebpf/lb_report.h"

#include <bpf/bpf.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <tuple>
#include <unordered_map>

#include "ebpf/map_writer.h"

namespace skiff::ebpf {
namespace {

using dataplane::Result;
using dataplane::Status;

// Indexed by the SKIFF_KIND_* and SKIFF_SEL_* codes of lb_abi.h.
constexpr const char* kKinds[] = {"ClusterIP", "NodePort", "ExternalIP", "LoadBalancer"};
constexpr const char* kSelections[] = {"Ready", "ServingTerminating", "NoBackends",
                                       "NoLocalBackends"};

std::string kindText(uint8_t code) {
  return code < std::size(kKinds) ? kKinds[code] : "kind" + std::to_string(code);
}
std::string selectionText(uint8_t code) {
  return code < std::size(kSelections) ? kSelections[code] : "selection" + std::to_string(code);
}

std::string conditionsText(uint8_t flags) {
  std::string out;
  const std::pair<uint8_t, const char*> bits[] = {{SKIFF_BE_F_READY, "ready"},
                                                  {SKIFF_BE_F_SERVING, "serving"},
                                                  {SKIFF_BE_F_TERMINATING, "terminating"},
                                                  {SKIFF_BE_F_LOCAL, "local"}};
  for (const auto& [bit, name] : bits) {
    if ((flags & bit) == 0) continue;
    if (!out.empty()) out += ",";
    out += name;
  }
  return out.empty() ? "-" : out;
}

}  // namespace

Result<LbReport> readLbReport(const std::string& pinDir) {
  auto opened = PinnedMaps::open(pinDir);
  if (!opened.ok()) return opened.status();
  const MapFds& m = opened->fds();
  LbReport report;
  report.pinDir = pinDir;

  auto names = readServiceNames(m.serviceNames);
  if (!names.ok()) return names.status();
  std::unordered_map<uint32_t, std::string> nameOf;
  for (const ServiceName& n : *names)
    nameOf[n.svcId] = n.name;
  report.services = names->size();

  auto frontends = readFrontends(m.services);
  if (!frontends.ok()) return frontends.status();
  for (const FrontendEntry& e : *frontends) {
    FrontendRow row;
    row.frontend = frontendText(e.key);
    row.svcId = e.value.svc_id;
    if (auto it = nameOf.find(row.svcId); it != nameOf.end()) row.service = it->second;
    row.kind = kindText(e.value.kind);
    for (size_t o = 0; o < SKIFF_ORIGIN_COUNT; ++o) {
      row.backends[o] = e.value.backend_count[o];
      row.selection[o] = selectionText(e.value.selection[o]);
      row.ringSize[o] = e.value.ring_size[o];
    }
    auto stats = readServiceStats(m.svcStats, row.svcId);
    if (!stats.ok()) return stats.status();
    row.newFlows = stats->new_flows;
    row.packets = stats->packets;
    row.bytes = stats->bytes;
    for (size_t i = 0; i < dataplane::kDropReasonCount; ++i)
      row.drops[i] = stats->drops[i];
    report.frontends.push_back(std::move(row));
  }
  std::sort(report.frontends.begin(), report.frontends.end(), [](const auto& a, const auto& b) {
    return std::tie(a.service, a.frontend) < std::tie(b.service, b.frontend);
  });

  auto backends = readBackends(m.backends);
  if (!backends.ok()) return backends.status();
  for (const BackendEntry& e : *backends) {
    BackendRow row;
    row.id = e.id;
    row.svcId = e.value.svc_id;
    if (auto it = nameOf.find(row.svcId); it != nameOf.end()) row.service = it->second;
    row.address = backendText(e.value);
    row.conditions = conditionsText(e.value.flags);
    auto stats = readBackendStats(m.backendStats, e.id);
    if (!stats.ok()) return stats.status();
    row.newFlows = stats->new_flows;
    row.packets = stats->packets;
    row.bytes = stats->bytes;
    report.backends.push_back(std::move(row));
  }
  std::sort(report.backends.begin(), report.backends.end(), [](const auto& a, const auto& b) {
    return std::tie(a.service, a.address, a.id) < std::tie(b.service, b.address, b.id);
  });

  auto rings = readRings(m.rings, m.services);
  if (!rings.ok()) return rings.status();
  report.rings = rings->size();

  for (uint32_t i = 0; i < dataplane::kDropReasonCount; ++i) {
    auto g = readGlobal(m.global, i);
    if (!g.ok()) return g.status();
    report.drops[i] = *g;
  }
  const std::pair<uint32_t, const char*> events[] = {
      {SKIFF_GLOBAL_CT_INSERT_FAILED, "conntrackInsertFailed"},
      {SKIFF_GLOBAL_FRAGMENT_PASSED, "fragmentsPassed"},
      {SKIFF_GLOBAL_ICMP_TRANSLATED, "icmpTranslated"},
      {SKIFF_GLOBAL_REPLY_TRANSLATED, "repliesTranslated"},
      {SKIFF_GLOBAL_CT_RESELECTED, "conntrackReselected"},
      {SKIFF_GLOBAL_SOCK_TRANSLATED, "socketsTranslated"},
      {SKIFF_GLOBAL_FIB_REDIRECTED, "fibRedirected"},
      {SKIFF_GLOBAL_DSR_ENCAP, "dsrEncapsulated"},
      {SKIFF_GLOBAL_DSR_DECAP, "dsrDecapsulated"},
  };
  for (const auto& [index, name] : events) {
    auto g = readGlobal(m.global, index);
    if (!g.ok()) return g.status();
    report.events.emplace_back(name, *g);
  }
  auto attachments = readAttachments(pinDir);
  if (!attachments.ok()) return attachments.status();
  report.attachments = std::move(*attachments);
  return report;
}

namespace {

std::string protocolText(uint8_t proto) {
  switch (proto) {
    case IPPROTO_TCP:
      return "TCP";
    case IPPROTO_UDP:
      return "UDP";
    case IPPROTO_SCTP:
      return "SCTP";
    case IPPROTO_ICMP:
      return "ICMP";
    case IPPROTO_ICMPV6:
      return "ICMPv6";
    default:
      return "proto" + std::to_string(proto);
  }
}

std::string endpointText(const uint8_t (&addr)[16], uint8_t family, uint16_t portBe) {
  const dataplane::IpAddress address = addressFromKey(addr, family);
  const std::string host =
      family == SKIFF_AF_INET6 ? "[" + address.toString() + "]" : address.toString();
  return host + ":" + std::to_string(fromNetwork16(portBe));
}

}  // namespace

Result<std::vector<FlowRow>> readFlows(const std::string& pinDir) {
  auto opened = PinnedMaps::open(pinDir);
  if (!opened.ok()) return opened.status();
  const MapFds& m = opened->fds();
  auto names = readServiceNames(m.serviceNames);
  if (!names.ok()) return names.status();
  std::unordered_map<uint32_t, std::string> nameOf;
  for (const ServiceName& n : *names)
    nameOf[n.svcId] = n.name;
  auto backends = readBackends(m.backends);
  if (!backends.ok()) return backends.status();
  std::unordered_map<uint32_t, std::string> backendOf;
  for (const BackendEntry& b : *backends)
    backendOf[b.id] = backendText(b.value);

  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const uint64_t nowNs =
      static_cast<uint64_t>(now.tv_sec) * 1000000000ULL + static_cast<uint64_t>(now.tv_nsec);
  auto since = [nowNs](uint64_t t) { return t != 0 && t < nowNs ? nowNs - t : 0; };

  // The slots in batches (an ARRAY, or a HASH of slot index -> slot without LRU).
  std::vector<FlowRow> flows;
  auto replyKey = [](const std::string& client, uint8_t proto, uint32_t backendId) {
    return client + "/" + std::to_string(proto) + "/" + std::to_string(backendId);
  };
  std::unordered_map<std::string, skiff_ct_entry> replies;
  constexpr uint32_t kBatch = 4096;
  std::vector<uint32_t> keys(kBatch);
  std::vector<skiff_ct_slot> slots(kBatch);
  uint32_t in = 0, out = 0;
  bool first = true;
  for (;;) {
    uint32_t count = kBatch;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    const int rc = bpf_map_lookup_batch(m.conntrack, first ? nullptr : &in, &out, keys.data(),
                                        slots.data(), &count, &opts);
    const int err = rc < 0 ? errno : 0;
    if (rc < 0 && err != ENOENT) {
      return Status::failure("read " SKIFF_MAP_CT ": " + std::string(std::strerror(err)));
    }
    for (uint32_t i = 0; i < count; ++i) {
      const skiff_ct_slot& slot = slots[i];
      if (slot.key.family == 0) continue;
      if (slot.key.dir == SKIFF_CT_REPLY) {
        // The reply direction's entry (backend -> client) holds what replies did.
        replies[replyKey(endpointText(slot.key.daddr, slot.key.family, slot.key.dport),
                         slot.key.proto, slot.entry.backend_id)] = slot.entry;
        continue;
      }
      if (slot.key.dir != SKIFF_CT_FORWARD) continue;
      FlowRow row;
      row.client = endpointText(slot.key.saddr, slot.key.family, slot.key.sport);
      row.protocol = protocolText(slot.key.proto);
      row.frontend =
          endpointText(slot.entry.frontend_addr, slot.key.family, slot.entry.frontend_port) + "/" +
          row.protocol;
      row.backendId = slot.entry.backend_id;
      row.svcId = slot.entry.svc_id;
      if (auto it = backendOf.find(row.backendId); it != backendOf.end()) row.backend = it->second;
      if (auto it = nameOf.find(row.svcId); it != nameOf.end()) row.service = it->second;
      row.ageNs = since(slot.entry.created_ns);
      row.idleNs = since(slot.entry.last_seen_ns);
      row.seenReply = (slot.entry.flags & SKIFF_CT_F_SEEN_REPLY) != 0;
      row.closing = (slot.entry.flags & SKIFF_CT_F_CLOSING) != 0;
      row.protoCode = slot.key.proto;
      flows.push_back(std::move(row));
    }
    if (rc < 0) break;  // ENOENT: that was the last batch
    in = out;
    first = false;
  }
  for (FlowRow& f : flows) {
    auto it = replies.find(replyKey(f.client, f.protoCode, f.backendId));
    if (it == replies.end()) continue;
    f.seenReply = f.seenReply || (it->second.flags & SKIFF_CT_F_SEEN_REPLY) != 0;
    f.closing = f.closing || (it->second.flags & SKIFF_CT_F_CLOSING) != 0;
    f.idleNs = std::min(f.idleNs, since(it->second.last_seen_ns));
  }
  std::sort(flows.begin(), flows.end(), [](const FlowRow& a, const FlowRow& b) {
    return std::tie(a.service, a.client, a.frontend) < std::tie(b.service, b.client, b.frontend);
  });
  return flows;
}

}  // namespace skiff::ebpf

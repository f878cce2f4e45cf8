#include "ebpf/lb_report.h"

#include <algorithm>
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

}  // namespace skiff::ebpf

#include "control/cli/lb_command.h"

#include <net/if.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "control/api/json.h"

#if SKIFF_WITH_EBPF
#include "control/cli/ebpf_options.h"
#include "ebpf/cgroup.h"
#include "ebpf/ebpf_dataplane.h"
#include "ebpf/lb_report.h"
#include "ebpf/loader.h"
#endif

namespace skiff::cli {
namespace {

#if SKIFF_WITH_EBPF

std::string jsonQuoted(std::string_view s) {
  std::string out;
  api::appendJsonString(out, s);
  return out;
}

bool validOutput(const LbOptions& o, std::ostream& err) {
  if (o.output.empty() || o.output == "json") return true;
  err << "error: unknown output format \"" << o.output << "\" (want json, or none for a table)\n";
  return false;
}

// Reads the report or says why not.
std::unique_ptr<ebpf::LbReport> report(const LbOptions& o, std::ostream& err) {
  auto r = ebpf::readLbReport(o.pinDir);
  if (!r.ok()) {
    err << "error: " << r.message() << "\n";
    return nullptr;
  }
  return std::make_unique<ebpf::LbReport>(std::move(*r));
}

std::string dropsJson(const dataplane::DropCounters& drops) {
  std::string out = "{";
  for (size_t i = 0; i < drops.size(); ++i) {
    if (i > 0) out += ",";
    out += jsonQuoted(dataplane::toString(static_cast<dataplane::DropReason>(i))) + ":" +
           std::to_string(drops[i]);
  }
  return out + "}";
}

std::string frontendJson(const ebpf::FrontendRow& f) {
  std::ostringstream o;
  o << "{\"frontend\":" << jsonQuoted(f.frontend) << ",\"service\":" << jsonQuoted(f.service)
    << ",\"svcId\":" << f.svcId << ",\"kind\":" << jsonQuoted(f.kind);
  const char* origins[] = {"external", "inCluster"};
  for (size_t i = 0; i < SKIFF_ORIGIN_COUNT; ++i) {
    o << ",\"" << origins[i] << "\":{\"backends\":" << f.backends[i]
      << ",\"selection\":" << jsonQuoted(f.selection[i]) << ",\"ringSize\":" << f.ringSize[i]
      << "}";
  }
  o << ",\"newFlows\":" << f.newFlows << ",\"packets\":" << f.packets << ",\"bytes\":" << f.bytes
    << ",\"drops\":" << dropsJson(f.drops) << "}";
  return o.str();
}

std::string backendJson(const ebpf::BackendRow& b) {
  std::ostringstream o;
  o << "{\"id\":" << b.id << ",\"service\":" << jsonQuoted(b.service) << ",\"svcId\":" << b.svcId
    << ",\"address\":" << jsonQuoted(b.address) << ",\"conditions\":" << jsonQuoted(b.conditions)
    << ",\"newFlows\":" << b.newFlows << ",\"packets\":" << b.packets << ",\"bytes\":" << b.bytes
    << "}";
  return o.str();
}

template <class Row, class F>
std::string jsonArray(const std::vector<Row>& rows, F toJson) {
  std::string out = "[";
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i > 0) out += ",";
    out += toJson(rows[i]);
  }
  return out + "]";
}

// Columns padded to their widest cell.
void printTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i)
      widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      out << row[i];
      if (i + 1 < row.size()) out << std::string(widths[i] - row[i].size() + 3, ' ');
    }
    out << "\n";
  }
}

std::string orDash(const std::string& s) {
  return s.empty() ? "-" : s;
}

#endif  // SKIFF_WITH_EBPF

std::string defaultPinDir() {
#if SKIFF_WITH_EBPF
  return SKIFF_PIN_DIR;
#else
  return "/sys/fs/bpf/skiff";
#endif
}

[[maybe_unused]] int withoutEbpf(std::ostream& err) {
  err << "error: this skiff was built without the eBPF data path (-DSKIFF_WITH_EBPF=OFF)\n";
  return 1;
}

}  // namespace

#if SKIFF_WITH_EBPF

int runLbStatus(const LbOptions& o, std::ostream& out, std::ostream& err) {
  if (!validOutput(o, err)) return 1;
  auto r = report(o, err);
  if (!r) return 1;
  if (o.output == "json") {
    out << "{\"pinDir\":" << jsonQuoted(r->pinDir) << ",\"services\":" << r->services
        << ",\"frontends\":" << r->frontends.size() << ",\"backends\":" << r->backends.size()
        << ",\"rings\":" << r->rings << ",\"attachments\":"
        << jsonArray(r->attachments,
                     [](const ebpf::Attachment& a) {
                       return "{\"pin\":" + jsonQuoted(a.pin) + ",\"kind\":" + jsonQuoted(a.kind) +
                              ",\"target\":" + std::to_string(a.target) +
                              ",\"program\":" + jsonQuoted(a.program) +
                              ",\"programId\":" + std::to_string(a.programId) +
                              ",\"detached\":" + (a.detached ? "true" : "false") + "}";
                     })
        << ",\"drops\":" << dropsJson(r->drops) << ",\"events\":{";
    for (size_t i = 0; i < r->events.size(); ++i) {
      out << (i > 0 ? "," : "") << jsonQuoted(r->events[i].first) << ":" << r->events[i].second;
    }
    out << "}}\n";
    return 0;
  }
  size_t cgroupHooks = 0, xdp = 0, detached = 0;
  // The node-port load balancer's hooks per interface: XDP, tc ingress, tc egress (in this order,
  // whatever the order of the pins).
  std::map<uint64_t, std::array<bool, 3>> nodePort;
  std::set<uint64_t> tcInterfaces;
  for (const ebpf::Attachment& a : r->attachments) {
    cgroupHooks += a.kind == "cgroup" ? 1 : 0;
    xdp += a.kind == "xdp" ? 1 : 0;
    detached += a.detached ? 1 : 0;
    if (a.kind == "xdp" || a.kind == "tc-ingress" || a.kind == "tc-egress") {
      nodePort[a.target][a.kind == "xdp" ? 0 : a.kind == "tc-ingress" ? 1 : 2] = true;
    }
    if (a.kind.rfind("tc-", 0) == 0) tcInterfaces.insert(a.target);
  }
  out << "Pin directory:  " << r->pinDir << "\n"
      << "Attached:       " << cgroupHooks << " socket hooks (cgroup), " << xdp
      << " XDP interfaces, " << tcInterfaces.size() << " tc interfaces"
      << (detached > 0 ? ", " + std::to_string(detached) + " detached" : "") << "\n";
  if (!nodePort.empty()) {
    out << "Node ports:    ";
    for (const auto& [ifindex, hooks] : nodePort) {
      char name[IF_NAMESIZE] = {};
      const bool named = ifindex != 0 && if_indextoname(static_cast<unsigned>(ifindex), name);
      out << " " << (named ? std::string(name) : "ifindex") << " (" << ifindex << "):";
      const char* names[] = {"XDP", "tc ingress", "tc egress"};
      bool first = true;
      for (size_t i = 0; i < hooks.size(); ++i) {
        if (!hooks[i]) continue;
        out << (first ? " " : ", ") << names[i];
        first = false;
      }
      out << ";";
    }
    out << "\n";
  }
  out << "Services:       " << r->services << " (" << r->frontends.size() << " frontends, "
      << r->backends.size() << " backends, " << r->rings << " Maglev rings)\n"
      << "Drops (no service):";
  for (size_t i = 0; i < r->drops.size(); ++i) {
    out << " " << dataplane::toString(static_cast<dataplane::DropReason>(i)) << "=" << r->drops[i];
  }
  out << "\nEvents:        ";
  for (const auto& [name, count] : r->events)
    out << " " << name << "=" << count;
  out << "\n";
  return 0;
}

int runLbServices(const LbOptions& o, std::ostream& out, std::ostream& err) {
  if (!validOutput(o, err)) return 1;
  auto r = report(o, err);
  if (!r) return 1;
  if (o.output == "json") {
    out << "{\"services\":" << jsonArray(r->frontends, frontendJson) << "}\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"SERVICE", "FRONTEND", "KIND", "SVC-ID",
                                                 "BACKENDS", "SELECTION", "NEW-FLOWS", "PACKETS",
                                                 "DROPS"}};
  for (const ebpf::FrontendRow& f : r->frontends) {
    uint64_t drops = 0;
    for (uint64_t d : f.drops)
      drops += d;
    // In-cluster (socket LB) first; the external origin (XDP) where it differs.
    const size_t in = SKIFF_ORIGIN_IN_CLUSTER, ex = SKIFF_ORIGIN_EXTERNAL;
    std::string backends = std::to_string(f.backends[in]);
    std::string selection = f.selection[in];
    if (f.backends[ex] != f.backends[in] || f.selection[ex] != f.selection[in]) {
      backends += " (external " + std::to_string(f.backends[ex]) + ")";
      selection += " (external " + f.selection[ex] + ")";
    }
    rows.push_back({orDash(f.service), f.frontend, f.kind, std::to_string(f.svcId), backends,
                    selection, std::to_string(f.newFlows), std::to_string(f.packets),
                    std::to_string(drops)});
  }
  printTable(out, rows);
  return 0;
}

int runLbBackends(const LbOptions& o, std::ostream& out, std::ostream& err) {
  if (!validOutput(o, err)) return 1;
  auto r = report(o, err);
  if (!r) return 1;
  if (o.output == "json") {
    out << "{\"backends\":" << jsonArray(r->backends, backendJson) << "}\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"SERVICE", "BACKEND", "ID", "CONDITIONS", "NEW-FLOWS", "PACKETS", "BYTES"}};
  for (const ebpf::BackendRow& b : r->backends) {
    rows.push_back({orDash(b.service), b.address, std::to_string(b.id), b.conditions,
                    std::to_string(b.newFlows), std::to_string(b.packets),
                    std::to_string(b.bytes)});
  }
  printTable(out, rows);
  return 0;
}

std::string secondsText(uint64_t ns) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(1) << static_cast<double>(ns) / 1e9 << "s";
  return o.str();
}

int runLbFlows(const LbOptions& o, std::ostream& out, std::ostream& err) {
  if (!validOutput(o, err)) return 1;
  auto flows = ebpf::readFlows(o.pinDir);
  if (!flows.ok()) {
    err << "error: " << flows.message() << "\n";
    return 1;
  }
  if (o.output == "json") {
    out << "{\"flows\":" << jsonArray(*flows, [](const ebpf::FlowRow& f) {
      return "{\"client\":" + jsonQuoted(f.client) + ",\"frontend\":" + jsonQuoted(f.frontend) +
             ",\"backend\":" + jsonQuoted(f.backend) + ",\"service\":" + jsonQuoted(f.service) +
             ",\"protocol\":" + jsonQuoted(f.protocol) +
             ",\"backendId\":" + std::to_string(f.backendId) +
             ",\"svcId\":" + std::to_string(f.svcId) + ",\"ageNs\":" + std::to_string(f.ageNs) +
             ",\"idleNs\":" + std::to_string(f.idleNs) +
             ",\"seenReply\":" + (f.seenReply ? "true" : "false") +
             ",\"closing\":" + (f.closing ? "true" : "false") + "}";
    }) << "}\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"SERVICE", "CLIENT", "FRONTEND", "BACKEND", "AGE", "IDLE", "FLAGS"}};
  for (const ebpf::FlowRow& f : *flows) {
    std::string flags = f.seenReply ? "replied" : "";
    if (f.closing) flags += flags.empty() ? "closing" : ",closing";
    rows.push_back({orDash(f.service), f.client, f.frontend, orDash(f.backend),
                    secondsText(f.ageNs), secondsText(f.idleNs), orDash(flags)});
  }
  printTable(out, rows);
  return 0;
}

int runLbStats(const LbOptions& o, std::ostream& out, std::ostream& err) {
  if (!validOutput(o, err)) return 1;
  auto r = report(o, err);
  if (!r) return 1;
  // Per service: its counters are shared by its frontends, so once per service id.
  struct ServiceTotals {
    std::string name;
    uint64_t newFlows = 0, packets = 0, bytes = 0, drops = 0;
    std::vector<std::string> frontends;
  };
  std::map<uint32_t, ServiceTotals> services;
  for (const ebpf::FrontendRow& f : r->frontends) {
    ServiceTotals& t = services[f.svcId];
    t.name = f.service;
    t.frontends.push_back(f.frontend);
    t.newFlows = f.newFlows;
    t.packets = f.packets;
    t.bytes = f.bytes;
    t.drops = 0;
    for (uint64_t d : f.drops)
      t.drops += d;
  }
  if (o.output == "json") {
    out << "{\"services\":[";
    bool first = true;
    for (const auto& [id, t] : services) {
      out << (first ? "" : ",") << "{\"service\":" << jsonQuoted(t.name) << ",\"svcId\":" << id
          << ",\"newFlows\":" << t.newFlows << ",\"packets\":" << t.packets
          << ",\"bytes\":" << t.bytes << ",\"drops\":" << t.drops << "}";
      first = false;
    }
    out << "],\"backends\":" << jsonArray(r->backends, backendJson)
        << ",\"drops\":" << dropsJson(r->drops) << ",\"events\":{";
    for (size_t i = 0; i < r->events.size(); ++i) {
      out << (i > 0 ? "," : "") << jsonQuoted(r->events[i].first) << ":" << r->events[i].second;
    }
    out << "}}\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"SERVICE", "SVC-ID", "FRONTENDS", "NEW-FLOWS", "PACKETS", "BYTES", "DROPS"}};
  for (const auto& [id, t] : services) {
    rows.push_back({orDash(t.name), std::to_string(id), std::to_string(t.frontends.size()),
                    std::to_string(t.newFlows), std::to_string(t.packets), std::to_string(t.bytes),
                    std::to_string(t.drops)});
  }
  printTable(out, rows);
  out << "\n";
  rows = {{"SERVICE", "BACKEND", "NEW-FLOWS", "PACKETS", "BYTES"}};
  for (const ebpf::BackendRow& b : r->backends) {
    rows.push_back({orDash(b.service), b.address, std::to_string(b.newFlows),
                    std::to_string(b.packets), std::to_string(b.bytes)});
  }
  printTable(out, rows);
  out << "\nDrops (no service):";
  for (size_t i = 0; i < r->drops.size(); ++i) {
    out << " " << dataplane::toString(static_cast<dataplane::DropReason>(i)) << "=" << r->drops[i];
  }
  out << "\nEvents:";
  for (const auto& [name, count] : r->events)
    out << " " << name << "=" << count;
  out << "\n";
  return 0;
}

int runLbCleanup(const LbOptions& o, std::ostream& out, std::ostream& err) {
  if (auto s = ebpf::Programs::cleanupPinDir(o.pinDir); !s.ok()) {
    err << "error: " << s.message() << "\n";
    return 1;
  }
  out << "detached and unpinned everything under " << o.pinDir << "\n";
  return 0;
}

int runLbAttach(const LbOptions& o, std::ostream& out, std::ostream& err) {
  auto parsed =
      ebpfDataplaneOptions({.cgroupPath = o.cgroup.empty() ? ebpf::defaultCgroupPath() : o.cgroup,
                            .pinDir = o.pinDir,
                            .nodePortDevices = o.nodePortDevices,
                            .nodePortMode = o.nodePortMode,
                            .lbMode = o.lbMode});
  if (!parsed.ok()) {
    err << "error: " << parsed.message() << "\n";
    return 1;
  }
  const ebpf::EbpfDataplaneOptions& options = *parsed;
  // Pinned, the programs stay attached and the maps programmed when this process exits.
  auto made = ebpf::EbpfDataplane::create(options);
  if (!made.ok()) {
    err << "error: " << made.message() << "\n";
    return 1;
  }
  out << "attached the socket load balancer to cgroup " << options.cgroupPath;
  for (const auto& [ifindex, got] : (*made)->nodePortAttachments()) {
    char name[IF_NAMESIZE] = {};
    out << "; node ports on " << (if_indextoname(static_cast<unsigned>(ifindex), name) ? name : "?")
        << " through " << (got == ebpf::NodePortMode::kXdp ? "XDP" : "tc ingress/egress");
  }
  out << "; pinned under " << o.pinDir
      << ((*made)->restoredFromPins() ? " (adopted the pinned maps)" : "") << "\n";
  return 0;
}

int runLbExec(const LbOptions& o, std::ostream& err) {
  if (o.command.empty()) {
    err << "error: skiff lb exec needs a command: skiff lb exec -- CMD ARGS...\n";
    return 1;
  }
  const std::string base = o.cgroup.empty() ? ebpf::defaultCgroupPath() : o.cgroup;
  const std::string host = base + "/" + ebpf::kHostCgroupName;
  if (auto s = ebpf::ensureCgroup(host); !s.ok()) {
    err << "error: " << s.message() << "\n";
    return 1;
  }
  if (auto s = ebpf::joinCgroup(host); !s.ok()) {
    err << "error: " << s.message() << "\n";
    return 1;
  }
  std::vector<char*> argv;
  std::vector<std::string> args = o.command;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  err << "error: run " << o.command[0] << ": " << std::strerror(errno) << "\n";
  return errno == ENOENT ? 127 : 126;
}

#else

int runLbStatus(const LbOptions&, std::ostream&, std::ostream& err) {
  return withoutEbpf(err);
}
int runLbServices(const LbOptions&, std::ostream&, std::ostream& err) {
  return withoutEbpf(err);
}
int runLbBackends(const LbOptions&, std::ostream&, std::ostream& err) {
  return withoutEbpf(err);
}
int runLbCleanup(const LbOptions&, std::ostream&, std::ostream& err) {
  return withoutEbpf(err);
}
int runLbExec(const LbOptions&, std::ostream& err) {
  return withoutEbpf(err);
}
int runLbAttach(const LbOptions&, std::ostream&, std::ostream& err) {
  return withoutEbpf(err);
}
int runLbFlows(const LbOptions&, std::ostream&, std::ostream& err) {
  return withoutEbpf(err);
}
int runLbStats(const LbOptions&, std::ostream&, std::ostream& err) {
  return withoutEbpf(err);
}

#endif  // SKIFF_WITH_EBPF

void addLbCommand(CLI::App& app, int& exit_code) {
  CLI::App* lb = app.add_subcommand(
      "lb",
      "The eBPF load balancer of this node: what it holds and counts; run a host process "
      "with ClusterIP access; run it without a control plane (attach, apply, detach)");
  lb->require_subcommand(1);
  auto options = std::make_shared<LbOptions>();
  options->pinDir = defaultPinDir();

  auto reader = [&](const char* name, const char* help,
                    int (*run)(const LbOptions&, std::ostream&, std::ostream&)) {
    CLI::App* cmd = lb->add_subcommand(name, help);
    cmd->add_option("--pin-dir", options->pinDir, "Where the data path pinned its maps")
        ->capture_default_str();
    cmd->add_option("-o,--output", options->output, "Output format: json (default: a table)");
    cmd->callback([options, run, &exit_code] { exit_code = run(*options, std::cout, std::cerr); });
  };
  reader("status", "Attachments, table sizes, drops no service is charged with, and events",
         runLbStatus);
  reader("services", "Frontends with their service, backends in use, selection and counters",
         runLbServices);
  reader("backends",
         "Backends with their conditions and counters (new connections and flows, packets, "
         "bytes; summed over CPUs)",
         runLbBackends);
  reader("stats",
         "Counters in one view: per service and per backend (new flows, packets, bytes; summed "
         "over CPUs), drops no service is charged with, events (DSR encap/decap among them)",
         runLbStats);
  reader("flows",
         "The node-port load balancer's flows (XDP, tc conntrack): client, frontend, backend, "
         "age, idle time, flags; the socket LB keeps none (it translates at connect())",
         runLbFlows);

  CLI::App* cleanup = lb->add_subcommand(
      "cleanup",
      "Detach and unpin everything a data path left under the pin directory (after a "
      "crash; resets flows)");
  cleanup->add_option("--pin-dir", options->pinDir, "Where the data path pinned its maps")
      ->capture_default_str();
  cleanup->callback(
      [options, &exit_code] { exit_code = runLbCleanup(*options, std::cout, std::cerr); });

  CLI::App* attach = lb->add_subcommand(
      "attach",
      "Load the data path, pin its maps and links and attach it (as skiff agent does), then "
      "exit leaving it attached; program it with skiff lb apply, remove it with skiff lb detach");
  attach->add_option("--pin-dir", options->pinDir, "Where to pin its maps and links")
      ->capture_default_str();
  attach->add_option("--cgroup", options->cgroup,
                     "The cgroup v2 directory whose processes get the socket LB (default: skiff "
                     "under the cgroup v2 mount; never the root cgroup)");
  attach
      ->add_option("--nodeport-devices", options->nodePortDevices,
                   "Interfaces whose NodePort, externalIP and LoadBalancer traffic it balances "
                   "(comma-separated)")
      ->delimiter(',');
  attach
      ->add_option("--nodeport-mode", options->nodePortMode,
                   "xdp (native XDP), tc (tc ingress + egress), auto (native XDP, else tc)")
      ->check(CLI::IsMember({"xdp", "tc", "auto"}))
      ->capture_default_str();
  attach
      ->add_option("--lb-mode", options->lbMode,
                   "How node-port traffic reaches backends on other nodes: snat or dsr (IPIP)")
      ->check(CLI::IsMember({"snat", "dsr"}))
      ->capture_default_str();
  attach->callback(
      [options, &exit_code] { exit_code = runLbAttach(*options, std::cout, std::cerr); });

  CLI::App* detach = lb->add_subcommand(
      "detach",
      "Detach and unpin what skiff lb attach (or a data path) pinned: the same as skiff lb "
      "cleanup (EbpfDataplane's clean detach; resets flows)");
  detach->add_option("--pin-dir", options->pinDir, "Where the data path pinned its maps")
      ->capture_default_str();
  detach->callback(
      [options, &exit_code] { exit_code = runLbCleanup(*options, std::cout, std::cerr); });

  CLI::App* exec = lb->add_subcommand(
      "exec",
      "Run a command in Skiff's cgroup subtree (CGROUP/host), where the socket load balancer "
      "answers ClusterIPs: skiff lb exec -- curl http://10.96.0.10/");
  exec->add_option("--cgroup", options->cgroup,
                   "The socket LB's cgroup v2 directory (default: skiff under the cgroup v2 "
                   "mount)");
  exec->add_option("command", options->command, "CMD ARGS... (after --)")->required();
  exec->callback([options, &exit_code] { exit_code = runLbExec(*options, std::cerr); });
}

}  // namespace skiff::cli

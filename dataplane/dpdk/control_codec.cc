#include "dataplane/dpdk/control_codec.h"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>

#include "dataplane/dpdk/pipeline.h"

namespace skiff::dataplane::dpdk {
namespace {

std::string addressBytes(const IpAddress& a) {
  const auto o = a.octets();
  return std::string(reinterpret_cast<const char*>(o.data()), o.size());
}

std::optional<IpAddress> addressFrom(const std::string& b) {
  if (b.size() == 4) {
    return IpAddress::v4({static_cast<uint8_t>(b[0]), static_cast<uint8_t>(b[1]),
                          static_cast<uint8_t>(b[2]), static_cast<uint8_t>(b[3])});
  }
  if (b.size() == 16) {
    std::array<uint8_t, 16> a{};
    std::memcpy(a.data(), b.data(), 16);
    return IpAddress::v6(a);
  }
  return std::nullopt;
}

Status fieldError(const std::string& where, const std::string& what) {
  return Status::failure(where + ": " + what);
}

// Escapes a Prometheus label value.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

Status ioError(const char* what) {
  return Status::failure(std::string("control socket: ") + what + ": " + std::strerror(errno));
}

Status writeAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ioError("write");
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return {};
}

Status readAll(int fd, char* p, size_t n) {
  while (n > 0) {
    const ssize_t r = ::recv(fd, p, n, 0);
    if (r == 0) return Status::failure("control socket: connection closed");
    if (r < 0) {
      if (errno == EINTR) continue;
      return ioError("read");
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return {};
}

}  // namespace

void toProto(const ServiceDelta& delta, v1::ApplyRequest& out) {
  out.Clear();
  out.set_replace_all(delta.replaceAll);
  for (const std::string& id : delta.removed)
    out.add_removed(id);
  for (const Service& s : delta.upserted) {
    v1::Service* p = out.add_upserted();
    p->set_id(s.id);
    for (const Frontend& f : s.frontends) {
      v1::Frontend* pf = p->add_frontends();
      pf->set_address(addressBytes(f.key.address));
      pf->set_port(f.key.port);
      pf->set_protocol(static_cast<uint32_t>(f.key.protocol));
      pf->set_kind(static_cast<uint32_t>(f.kind));
    }
    for (const Backend& b : s.backends) {
      v1::Backend* pb = p->add_backends();
      pb->set_address(addressBytes(b.address));
      pb->set_port(b.port);
      pb->set_weight(b.weight);
      pb->set_ready(b.ready);
      pb->set_serving(b.serving);
      pb->set_terminating(b.terminating);
      pb->set_local(b.local);
      pb->set_zone(b.zone);
    }
    p->set_affinity(static_cast<uint32_t>(s.affinity));
    p->set_affinity_timeout_seconds(s.affinityTimeoutSeconds);
    p->set_external_traffic_policy(static_cast<uint32_t>(s.externalTrafficPolicy));
    p->set_internal_traffic_policy(static_cast<uint32_t>(s.internalTrafficPolicy));
    for (const IpPrefix& r : s.loadBalancerSourceRanges) {
      v1::Prefix* pr = p->add_load_balancer_source_ranges();
      pr->set_address(addressBytes(r.address()));
      pr->set_length(r.length());
    }
    p->set_maglev_table_size(s.maglevTableSize);
  }
}

Result<ServiceDelta> fromProto(const v1::ApplyRequest& in) {
  ServiceDelta d;
  d.replaceAll = in.replace_all();
  d.removed.assign(in.removed().begin(), in.removed().end());
  for (int i = 0; i < in.upserted_size(); ++i) {
    const v1::Service& p = in.upserted(i);
    const std::string at = "upserted[" + std::to_string(i) + "]";
    Service s;
    s.id = p.id();
    for (int j = 0; j < p.frontends_size(); ++j) {
      const v1::Frontend& f = p.frontends(j);
      const std::string fat = at + ".frontends[" + std::to_string(j) + "]";
      auto a = addressFrom(f.address());
      if (!a) return fieldError(fat + ".address", "not 4 or 16 bytes");
      if (f.port() > 65535) return fieldError(fat + ".port", std::to_string(f.port()) + " > 65535");
      if (f.protocol() != 6 && f.protocol() != 17 && f.protocol() != 132)
        return fieldError(fat + ".protocol",
                          std::to_string(f.protocol()) + " is not TCP (6), UDP (17) or SCTP (132)");
      if (f.kind() > 3) return fieldError(fat + ".kind", std::to_string(f.kind()) + " is no kind");
      s.frontends.push_back(
          {{*a, static_cast<uint16_t>(f.port()), static_cast<L4Protocol>(f.protocol())},
           static_cast<FrontendKind>(f.kind())});
    }
    for (int j = 0; j < p.backends_size(); ++j) {
      const v1::Backend& b = p.backends(j);
      const std::string bat = at + ".backends[" + std::to_string(j) + "]";
      auto a = addressFrom(b.address());
      if (!a) return fieldError(bat + ".address", "not 4 or 16 bytes");
      if (b.port() > 65535) return fieldError(bat + ".port", std::to_string(b.port()) + " > 65535");
      Backend m;
      m.address = *a;
      m.port = static_cast<uint16_t>(b.port());
      m.weight = b.weight();
      m.ready = b.ready();
      m.serving = b.serving();
      m.terminating = b.terminating();
      m.local = b.local();
      m.zone = b.zone();
      s.backends.push_back(std::move(m));
    }
    if (p.affinity() > 1) return fieldError(at + ".affinity", "not None (0) or ClientIP (1)");
    s.affinity = static_cast<SessionAffinity>(p.affinity());
    s.affinityTimeoutSeconds = p.affinity_timeout_seconds();
    if (p.external_traffic_policy() > 1 || p.internal_traffic_policy() > 1)
      return fieldError(at, "traffic policy not Cluster (0) or Local (1)");
    s.externalTrafficPolicy = static_cast<TrafficPolicy>(p.external_traffic_policy());
    s.internalTrafficPolicy = static_cast<TrafficPolicy>(p.internal_traffic_policy());
    for (int j = 0; j < p.load_balancer_source_ranges_size(); ++j) {
      const v1::Prefix& r = p.load_balancer_source_ranges(j);
      auto a = addressFrom(r.address());
      const std::string rat = at + ".load_balancer_source_ranges[" + std::to_string(j) + "]";
      if (!a) return fieldError(rat + ".address", "not 4 or 16 bytes");
      if (r.length() > (a->isV4() ? 32u : 128u))
        return fieldError(rat + ".length", std::to_string(r.length()) + " too long");
      s.loadBalancerSourceRanges.emplace_back(*a, static_cast<uint8_t>(r.length()));
    }
    s.maglevTableSize = p.maglev_table_size();
    d.upserted.push_back(std::move(s));
  }
  return d;
}

void toProto(const DataplaneStats& stats, v1::Stats& out) {
  for (const ServiceStats& s : stats.services) {
    v1::ServiceStats* p = out.add_services();
    p->set_id(s.id);
    p->set_new_flows(s.newFlows);
    p->set_packets(s.packets);
    p->set_bytes(s.bytes);
    for (uint64_t d : s.drops)
      p->add_drops(d);
    for (const BackendStats& b : s.backends) {
      v1::BackendStats* pb = p->add_backends();
      pb->set_address(addressBytes(b.backend.address));
      pb->set_port(b.backend.port);
      pb->set_new_flows(b.newFlows);
      pb->set_packets(b.packets);
      pb->set_bytes(b.bytes);
    }
  }
  for (uint64_t d : stats.unattributedDrops)
    out.add_unattributed_drops(d);
  out.set_failed_updates(stats.failedUpdates);
}

DataplaneStats fromProto(const v1::Stats& in) {
  DataplaneStats out;
  for (const v1::ServiceStats& p : in.services()) {
    ServiceStats s;
    s.id = p.id();
    s.newFlows = p.new_flows();
    s.packets = p.packets();
    s.bytes = p.bytes();
    for (int i = 0; i < p.drops_size() && static_cast<size_t>(i) < kDropReasonCount; ++i)
      s.drops[static_cast<size_t>(i)] = p.drops(i);
    for (const v1::BackendStats& pb : p.backends()) {
      BackendStats b;
      if (auto a = addressFrom(pb.address())) b.backend.address = *a;
      b.backend.port = static_cast<uint16_t>(pb.port());
      b.newFlows = pb.new_flows();
      b.packets = pb.packets();
      b.bytes = pb.bytes();
      s.backends.push_back(b);
    }
    out.services.push_back(std::move(s));
  }
  for (int i = 0; i < in.unattributed_drops_size() && static_cast<size_t>(i) < kDropReasonCount;
       ++i)
    out.unattributedDrops[static_cast<size_t>(i)] = in.unattributed_drops(i);
  out.failedUpdates = in.failed_updates();
  return out;
}

std::string prometheusText(const v1::Stats& stats) {
  std::string o;
  auto family = [&](const char* name, const char* type, const char* help) {
    o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto sample = [&](const std::string& name, const std::string& labels, uint64_t v) {
    o += name + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(v) + "\n";
  };
  struct PortField {
    const char* name;
    uint64_t (v1::PortStats::*get)() const;
    const char* help;
  };
  const PortField portFields[] = {
      {"skiff_dpdk_port_rx_packets_total", &v1::PortStats::rx_packets, "Packets received"},
      {"skiff_dpdk_port_tx_packets_total", &v1::PortStats::tx_packets, "Packets sent"},
      {"skiff_dpdk_port_rx_bytes_total", &v1::PortStats::rx_bytes, "Bytes received"},
      {"skiff_dpdk_port_tx_bytes_total", &v1::PortStats::tx_bytes, "Bytes sent"},
      {"skiff_dpdk_port_rx_missed_total", &v1::PortStats::rx_missed,
       "Packets the port dropped for want of RX descriptors"},
      {"skiff_dpdk_port_rx_errors_total", &v1::PortStats::rx_errors, "Erroneous received packets"},
      {"skiff_dpdk_port_tx_errors_total", &v1::PortStats::tx_errors, "Failed transmissions"},
  };
  for (const PortField& f : portFields) {
    family(f.name, "counter", f.help);
    for (const v1::PortStats& p : stats.ports())
      sample(f.name, "port=\"" + std::to_string(p.port()) + "\",name=\"" + label(p.name()) + "\"",
             (p.*f.get)());
  }
  struct LcoreField {
    const char* name;
    uint64_t (v1::LcoreStats::*get)() const;
    const char* help;
  };
  const LcoreField lcoreFields[] = {
      {"skiff_dpdk_lcore_rx_packets_total", &v1::LcoreStats::rx_packets, "Packets processed"},
      {"skiff_dpdk_lcore_tx_packets_total", &v1::LcoreStats::tx_packets, "Packets sent on"},
      {"skiff_dpdk_lcore_pass_packets_total", &v1::LcoreStats::pass_packets,
       "Packets handed to the exception path"},
      {"skiff_dpdk_lcore_drop_packets_total", &v1::LcoreStats::drop_packets, "Packets dropped"},
      {"skiff_dpdk_lcore_iterations_total", &v1::LcoreStats::iterations, "Loop iterations"},
      {"skiff_dpdk_lcore_busy_iterations_total", &v1::LcoreStats::busy_iterations,
       "Loop iterations that received packets"},
  };
  for (const LcoreField& f : lcoreFields) {
    family(f.name, "counter", f.help);
    for (const v1::LcoreStats& l : stats.lcores())
      sample(f.name, "lcore=\"" + std::to_string(l.lcore()) + "\"", (l.*f.get)());
  }
  family("skiff_dpdk_lcore_conntrack_entries", "gauge", "Conntrack entries in use");
  for (const v1::LcoreStats& l : stats.lcores())
    sample("skiff_dpdk_lcore_conntrack_entries", "lcore=\"" + std::to_string(l.lcore()) + "\"",
           l.conntrack_entries());
  family("skiff_dpdk_lcore_events_total", "counter", "Events by kind");
  for (const v1::LcoreStats& l : stats.lcores()) {
    for (int i = 0; i < l.events_size() && static_cast<size_t>(i) < kEventCount; ++i)
      sample("skiff_dpdk_lcore_events_total",
             "lcore=\"" + std::to_string(l.lcore()) + "\",event=\"" +
                 std::string(toString(static_cast<Event>(i))) + "\"",
             l.events(i));
  }
  family("skiff_dpdk_service_packets_total", "counter", "Packets forwarded, both directions");
  for (const v1::ServiceStats& s : stats.services())
    sample("skiff_dpdk_service_packets_total", "service=\"" + label(s.id()) + "\"", s.packets());
  family("skiff_dpdk_service_bytes_total", "counter", "Bytes forwarded, both directions");
  for (const v1::ServiceStats& s : stats.services())
    sample("skiff_dpdk_service_bytes_total", "service=\"" + label(s.id()) + "\"", s.bytes());
  family("skiff_dpdk_service_new_flows_total", "counter", "New flows");
  for (const v1::ServiceStats& s : stats.services())
    sample("skiff_dpdk_service_new_flows_total", "service=\"" + label(s.id()) + "\"",
           s.new_flows());
  family("skiff_dpdk_service_drops_total", "counter", "Packets dropped, by reason");
  for (const v1::ServiceStats& s : stats.services()) {
    for (int i = 0; i < s.drops_size() && static_cast<size_t>(i) < kDropReasonCount; ++i)
      sample("skiff_dpdk_service_drops_total",
             "service=\"" + label(s.id()) + "\",reason=\"" +
                 std::string(toString(static_cast<DropReason>(i))) + "\"",
             s.drops(i));
  }
  family("skiff_dpdk_backend_packets_total", "counter", "Packets forwarded to or from a backend");
  for (const v1::ServiceStats& s : stats.services()) {
    for (const v1::BackendStats& b : s.backends()) {
      auto a = addressFrom(b.address());
      const std::string key =
          BackendKey{a.value_or(IpAddress()), static_cast<uint16_t>(b.port())}.toString();
      sample("skiff_dpdk_backend_packets_total",
             "service=\"" + label(s.id()) + "\",backend=\"" + label(key) + "\"", b.packets());
    }
  }
  family("skiff_dpdk_drops_total", "counter", "Drops no service is charged with, by reason");
  for (int i = 0; i < stats.unattributed_drops_size() && static_cast<size_t>(i) < kDropReasonCount;
       ++i)
    sample("skiff_dpdk_drops_total",
           "reason=\"" + std::string(toString(static_cast<DropReason>(i))) + "\"",
           stats.unattributed_drops(i));
  family("skiff_dpdk_failed_updates_total", "counter", "Table updates that failed");
  sample("skiff_dpdk_failed_updates_total", "", stats.failed_updates());
  return o;
}

Status writeMessage(int fd, const google::protobuf::MessageLite& message) {
  std::string body;
  if (!message.SerializeToString(&body)) return Status::failure("control socket: cannot encode");
  if (body.size() > kMaxControlMessage) return Status::failure("control socket: message too large");
  const auto n = static_cast<uint32_t>(body.size());
  const char header[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                          static_cast<char>(n >> 8), static_cast<char>(n)};
  if (Status s = writeAll(fd, header, 4); !s.ok()) return s;
  return writeAll(fd, body.data(), body.size());
}

Status readMessage(int fd, google::protobuf::MessageLite& message) {
  unsigned char header[4];
  if (Status s = readAll(fd, reinterpret_cast<char*>(header), 4); !s.ok()) return s;
  const uint32_t n =
      uint32_t{header[0]} << 24 | uint32_t{header[1]} << 16 | uint32_t{header[2]} << 8 | header[3];
  if (n > kMaxControlMessage)
    return Status::failure("control socket: message of " + std::to_string(n) +
                           " bytes exceeds the limit of " + std::to_string(kMaxControlMessage));
  std::string body(n, '\0');
  if (Status s = readAll(fd, body.data(), n); !s.ok()) return s;
  if (!message.ParseFromString(body)) return Status::failure("control socket: malformed message");
  return {};
}

}  // namespace skiff::dataplane::dpdk

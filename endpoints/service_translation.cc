#include "endpoints/service_translation.h"

#include <map>
#include <set>
#include <string_view>

namespace skiff::endpoints {
namespace {

namespace core = api::core::v1;
namespace discovery = api::discovery::v1;
using dataplane::AddressFamily;
using dataplane::Backend;
using dataplane::Frontend;
using dataplane::FrontendKind;
using dataplane::IpAddress;
using dataplane::Status;

std::string serviceKey(const core::Service& service) {
  return service.metadata().namespace_() + "/" + service.metadata().name();
}

Status fail(const core::Service& service, const std::string& what) {
  return Status::failure("service \"" + serviceKey(service) + "\": " + what);
}

std::string trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  return std::string(text);
}

// "a.b.c.d/n" or a bare address (a /32 or /128), as kube-proxy's source-range parsing accepts.
std::optional<dataplane::IpPrefix> parseRange(std::string_view text) {
  if (auto prefix = dataplane::IpPrefix::parse(text)) return prefix;
  return std::nullopt;
}

bool sliceEndpointLess(const discovery::EndpointSlice* a, const discovery::EndpointSlice* b) {
  return a->metadata().name() < b->metadata().name();
}

}  // namespace

std::vector<IpAddress> nodePortAddresses(const core::Node& node) {
  std::vector<IpAddress> out;
  std::set<IpAddress> seen;
  for (std::string_view type : {"InternalIP", "ExternalIP"}) {
    for (const auto& address : node.status().addresses()) {
      if (address.type() != type) continue;
      auto ip = IpAddress::parse(address.address());
      if (ip && !ip->isUnspecified() && seen.insert(*ip).second) out.push_back(*ip);
    }
  }
  return out;
}

bool shouldSkipService(const core::Service& service) {
  if (service.spec().type() == "ExternalName") return true;
  const std::string& ip = service.spec().cluster_ip();
  return ip.empty() || ip == "None";
}

dataplane::Result<Translation> translate(const core::Service& service,
                                         const std::vector<const discovery::EndpointSlice*>& slices,
                                         const NodeInfo& node) {
  Translation out;
  if (shouldSkipService(service)) return out;
  const auto& spec = service.spec();
  const std::string key = serviceKey(service);

  // Addresses shared by every port.
  std::vector<IpAddress> clusterIPs;
  std::vector<std::string> clusterIPTexts(spec.cluster_ips().begin(), spec.cluster_ips().end());
  if (clusterIPTexts.empty()) clusterIPTexts.push_back(spec.cluster_ip());
  for (size_t i = 0; i < clusterIPTexts.size(); ++i) {
    auto ip = IpAddress::parse(clusterIPTexts[i]);
    if (!ip || ip->isUnspecified()) {
      return fail(service, "spec.clusterIPs[" + std::to_string(i) + "]: \"" + clusterIPTexts[i] +
                               "\" is not an IP address");
    }
    clusterIPs.push_back(*ip);
  }
  std::set<AddressFamily> families;
  for (const auto& ip : clusterIPs)
    families.insert(ip.family());

  std::vector<IpAddress> externalIPs;
  for (int i = 0; i < spec.external_ips_size(); ++i) {
    auto ip = IpAddress::parse(spec.external_ips(i));
    if (!ip || ip->isUnspecified()) {
      return fail(service, "spec.externalIPs[" + std::to_string(i) + "]: \"" +
                               spec.external_ips(i) + "\" is not an IP address");
    }
    externalIPs.push_back(*ip);
  }
  std::vector<IpAddress> ingressIPs;
  if (spec.type() == "LoadBalancer") {
    const auto& ingress = service.status().load_balancer().ingress();
    for (int i = 0; i < ingress.size(); ++i) {
      if (ingress[i].ip().empty() || ingress[i].ip_mode() == "Proxy") continue;
      auto ip = IpAddress::parse(ingress[i].ip());
      if (!ip || ip->isUnspecified()) {
        return fail(service, "status.loadBalancer.ingress[" + std::to_string(i) + "].ip: \"" +
                                 ingress[i].ip() + "\" is not an IP address");
      }
      ingressIPs.push_back(*ip);
    }
  }
  std::vector<dataplane::IpPrefix> sourceRanges;
  for (int i = 0; i < spec.load_balancer_source_ranges_size(); ++i) {
    std::string text = trim(spec.load_balancer_source_ranges(i));
    auto range = parseRange(text);
    if (!range) {
      // Never drop a range and open the service to everyone: refuse the whole service.
      return fail(service, "spec.loadBalancerSourceRanges[" + std::to_string(i) + "]: \"" + text +
                               "\" is not a CIDR");
    }
    sourceRanges.push_back(*range);
  }
  dataplane::SessionAffinity affinity = dataplane::SessionAffinity::kNone;
  uint32_t affinityTimeout = dataplane::kDefaultAffinityTimeoutSeconds;
  if (spec.session_affinity() == "ClientIP") {
    affinity = dataplane::SessionAffinity::kClientIP;
    if (spec.session_affinity_config().client_ip().has_timeout_seconds()) {
      int32_t t = spec.session_affinity_config().client_ip().timeout_seconds();
      if (t <= 0 || static_cast<uint32_t>(t) > dataplane::kMaxAffinityTimeoutSeconds) {
        return fail(service, "spec.sessionAffinityConfig.clientIP.timeoutSeconds: " +
                                 std::to_string(t) + " is not in 1..86400");
      }
      affinityTimeout = static_cast<uint32_t>(t);
    }
  }
  const auto etp = spec.external_traffic_policy() == "Local" ? dataplane::TrafficPolicy::kLocal
                                                             : dataplane::TrafficPolicy::kCluster;
  const auto itp = spec.internal_traffic_policy() == "Local" ? dataplane::TrafficPolicy::kLocal
                                                             : dataplane::TrafficPolicy::kCluster;

  std::vector<const discovery::EndpointSlice*> sorted = slices;
  std::sort(sorted.begin(), sorted.end(), sliceEndpointLess);

  for (int p = 0; p < spec.ports_size(); ++p) {
    const auto& port = spec.ports(p);
    const std::string protocolText = port.protocol().empty() ? "TCP" : port.protocol();
    auto protocol = dataplane::parseL4Protocol(protocolText);
    if (!protocol) {
      return fail(service, "spec.ports[" + std::to_string(p) + "].protocol: \"" + protocolText +
                               "\" is not TCP, UDP or SCTP");
    }
    if (port.port() <= 0 || port.port() > 65535) {
      return fail(service, "spec.ports[" + std::to_string(p) +
                               "].port: " + std::to_string(port.port()) + " is not in 1..65535");
    }
    const auto servicePort = static_cast<uint16_t>(port.port());
    dataplane::Service svc;
    svc.id = key + ":" + port.name();
    svc.affinity = affinity;
    svc.affinityTimeoutSeconds = affinityTimeout;
    svc.externalTrafficPolicy = etp;
    svc.internalTrafficPolicy = itp;
    svc.loadBalancerSourceRanges = sourceRanges;

    std::set<dataplane::FrontendKey> seen;
    auto addFrontend = [&](const IpAddress& address, uint16_t number, FrontendKind kind) {
      Frontend f{{address, number, *protocol}, kind};
      if (seen.insert(f.key).second) svc.frontends.push_back(f);
    };
    for (const auto& ip : clusterIPs)
      addFrontend(ip, servicePort, FrontendKind::kClusterIP);
    if (port.node_port() > 0 && port.node_port() <= 65535 &&
        (spec.type() == "NodePort" || spec.type() == "LoadBalancer")) {
      const auto nodePort = static_cast<uint16_t>(port.node_port());
      if (node.addresses.empty()) {
        for (AddressFamily family : families) {
          addFrontend(family == AddressFamily::kIPv4 ? IpAddress() : IpAddress::v6({}), nodePort,
                      FrontendKind::kNodePort);
        }
      } else {
        for (const auto& ip : node.addresses) {
          if (families.count(ip.family()) != 0) addFrontend(ip, nodePort, FrontendKind::kNodePort);
        }
      }
    }
    for (const auto& ip : externalIPs)
      addFrontend(ip, servicePort, FrontendKind::kExternalIP);
    for (const auto& ip : ingressIPs)
      addFrontend(ip, servicePort, FrontendKind::kLoadBalancer);

    // Backends: the slices' endpoints for this port's name and protocol.
    std::map<dataplane::BackendKey, size_t> index;
    for (const auto* slice : sorted) {
      const std::string& type = slice->address_type();
      if (type != "IPv4" && type != "IPv6") continue;  // FQDN slices are not for proxies
      const auto family = type == "IPv4" ? AddressFamily::kIPv4 : AddressFamily::kIPv6;
      int32_t targetPort = 0;
      for (const auto& sp : slice->ports()) {
        const std::string spProtocol = sp.protocol().empty() ? "TCP" : sp.protocol();
        if (sp.name() == port.name() && spProtocol == protocolText) {
          targetPort = sp.port();
          break;
        }
      }
      if (targetPort <= 0 || targetPort > 65535) continue;
      for (const auto& endpoint : slice->endpoints()) {
        if (endpoint.addresses_size() == 0) continue;
        auto ip = IpAddress::parse(endpoint.addresses(0));
        if (!ip || ip->isUnspecified() || ip->family() != family) {
          out.warnings.push_back(key + ": endpoint \"" + endpoint.addresses(0) + "\" of slice " +
                                 slice->metadata().name() + ": not an " + type + " address");
          continue;
        }
        Backend b;
        b.address = *ip;
        b.port = static_cast<uint16_t>(targetPort);
        const auto& c = endpoint.conditions();
        b.ready = !c.has_ready() || c.ready();
        b.serving = !c.has_serving() || c.serving();
        b.terminating = c.has_terminating() && c.terminating();
        b.local = endpoint.has_node_name() && endpoint.node_name() == node.name;
        b.zone = endpoint.zone();
        auto [it, inserted] = index.try_emplace(b.key(), svc.backends.size());
        if (inserted) {
          svc.backends.push_back(std::move(b));
        } else if (b.local) {
          svc.backends[it->second] = std::move(b);
        }
      }
    }
    std::sort(svc.backends.begin(), svc.backends.end(),
              [](const Backend& a, const Backend& b) { return a.key() < b.key(); });
    if (Status s = dataplane::validate(svc); !s.ok()) return s;
    out.services.push_back(std::move(svc));
  }
  return out;
}

}  // namespace skiff::endpoints

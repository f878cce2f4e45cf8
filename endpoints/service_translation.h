#pragma once

// From Kubernetes objects to the LB model: a Service and its EndpointSlices, seen from one node,
// become one dataplane::Service per service port (kube-proxy's ServicePortName). This is the only
// place where API types meet dataplane/.

#include <string>
#include <vector>

#include "dataplane/address.h"
#include "dataplane/service.h"
#include "dataplane/status.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/discovery_v1.pb.h"

namespace skiff::endpoints {

// What the proxier knows of its own node.
struct NodeInfo {
  // Endpoints with this nodeName are local (the Local traffic policies keep to them).
  std::string name;
  // The addresses NodePorts are served on (kube-proxy's --nodeport-addresses). Empty: one
  // unspecified address (0.0.0.0, ::) per family of the service, which a data path matches on the
  // port alone.
  std::vector<dataplane::IpAddress> addresses;

  friend bool operator==(const NodeInfo&, const NodeInfo&) = default;
};

// The node's InternalIP and ExternalIP addresses (status.addresses), in that order, deduplicated;
// unparsable ones are left out.
std::vector<dataplane::IpAddress> nodePortAddresses(const api::core::v1::Node& node);

// kube-proxy's ShouldSkipService: ExternalName services and headless ones (no ClusterIP) get no
// data-path state.
bool shouldSkipService(const api::core::v1::Service& service);

struct Translation {
  // One per service port, ids "namespace/name:portname", in the service's port order.
  std::vector<dataplane::Service> services;
  // Endpoints left out, with why ("default/web: endpoint \"x\" of slice web-abc: not an IP
  // address"): they cost that endpoint only, never the service.
  std::vector<std::string> warnings;
};

// Translates one Service with the EndpointSlices labelled with its name:
// - frontends: every ClusterIP (clusterIPs) on the service port; the NodePort on each of the
//   node's addresses of the service's families; every externalIP; every LoadBalancer ingress IP
//   (not those with ipMode Proxy: the load balancer proxies, so the node never sees that address);
// - backends: every endpoint of an IPv4/IPv6 slice whose ports carry this service port's name and
//   protocol, first address, with its conditions (ready defaults to true, serving to ready,
//   terminating to false), local when its nodeName is the node's; duplicates across slices are
//   merged (the local one wins). Endpoints that are not ready stay listed: established flows to
//   them keep going, and selection (dataplane/selection.h) gives them no new ones;
// - sessionAffinity ClientIP with its timeout (default 10800 s), both traffic policies,
//   loadBalancerSourceRanges.
// Fails, naming the service and field, on input the data path cannot be given safely: a ClusterIP,
// externalIP or source range that does not parse, an affinity timeout out of range, a protocol the
// model does not know. Skipped services (shouldSkipService) translate to no services.
dataplane::Result<Translation> translate(
    const api::core::v1::Service& service,
    const std::vector<const api::discovery::v1::EndpointSlice*>& slices, const NodeInfo& node);

}  // namespace skiff::endpoints

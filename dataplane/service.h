#pragma once

// The LB model both data paths share: services, their frontends and their backends, as the node
// proxier derives them from Services and EndpointSlices. Plain values, no Kubernetes API types.
//
// One Service here is one Kubernetes service port ("ns/name:portname"), so all its frontends have
// one protocol; a dual-stack service has frontends and backends of both families.

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/address.h"
#include "dataplane/status.h"

namespace skiff::dataplane {

// IANA protocol numbers, so that a value can go into a packet-facing key as it is.
enum class L4Protocol : uint8_t { kTcp = 6, kUdp = 17, kSctp = 132 };
// "TCP", "UDP", "SCTP": Kubernetes' spelling.
std::string_view toString(L4Protocol protocol);
std::optional<L4Protocol> parseL4Protocol(std::string_view text);

// How a frontend is reached. ClusterIP is in-cluster traffic; the other three are "external"
// (externalTrafficPolicy applies to them, internalTrafficPolicy to ClusterIP).
enum class FrontendKind : uint8_t { kClusterIP, kNodePort, kExternalIP, kLoadBalancer };
std::string_view toString(FrontendKind kind);  // "ClusterIP", "NodePort", ...
constexpr bool isExternal(FrontendKind kind) {
  return kind != FrontendKind::kClusterIP;
}

enum class TrafficPolicy : uint8_t { kCluster, kLocal };
std::string_view toString(TrafficPolicy policy);  // "Cluster", "Local"

enum class SessionAffinity : uint8_t { kNone, kClientIP };
std::string_view toString(SessionAffinity affinity);  // "None", "ClientIP"

// Kubernetes' default and maximum for sessionAffinityConfig.clientIP.timeoutSeconds.
inline constexpr uint32_t kDefaultAffinityTimeoutSeconds = 10800;
inline constexpr uint32_t kMaxAffinityTimeoutSeconds = 86400;

// What a packet is matched on.
struct FrontendKey {
  IpAddress address;
  uint16_t port = 0;
  L4Protocol protocol = L4Protocol::kTcp;

  std::string toString() const;  // "10.96.0.1:443/TCP", "[fd00::1]:53/UDP"
  friend bool operator==(const FrontendKey&, const FrontendKey&) = default;
  friend auto operator<=>(const FrontendKey&, const FrontendKey&) = default;
};

// NodePort frontends: the proxier gives one per node address (as kube-proxy's
// --nodeport-addresses selects them). An unspecified address (0.0.0.0, ::) stands for every
// address of the node, for a data path that matches NodePorts on the port alone (Cilium's
// "surrogate" frontend). Every other kind needs a specified address.
struct Frontend {
  FrontendKey key;
  FrontendKind kind = FrontendKind::kClusterIP;

  friend bool operator==(const Frontend&, const Frontend&) = default;
};

// A backend's identity within a service. Maglev derives a backend's table preferences from it, so
// a backend keeps its slots whatever its place in the list.
struct BackendKey {
  IpAddress address;
  uint16_t port = 0;

  std::string toString() const;  // "10.0.0.1:8080", "[fd00::1]:8080"
  friend bool operator==(const BackendKey&, const BackendKey&) = default;
  friend auto operator<=>(const BackendKey&, const BackendKey&) = default;
};

// One endpoint of the service port. ready/serving/terminating are the EndpointSlice conditions:
// ready is false while terminating, serving is true whenever ready and says whether a terminating
// endpoint still answers.
struct Backend {
  IpAddress address;
  uint16_t port = 0;
  // Share of new flows relative to the other backends. 0 takes no new flows but keeps its
  // established ones (drained).
  uint32_t weight = 1;
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  // Runs on this node (endpoint.nodeName is this node): the Local traffic policies keep to these.
  bool local = false;
  // topology.kubernetes.io/zone of the endpoint; empty when unknown.
  std::string zone;

  BackendKey key() const { return {address, port}; }
  friend bool operator==(const Backend&, const Backend&) = default;
};

// The full desired state of one service port.
struct Service {
  // "namespace/name:portname" (":" with an empty port name for a single unnamed port).
  std::string id;
  std::vector<Frontend> frontends;
  std::vector<Backend> backends;
  SessionAffinity affinity = SessionAffinity::kNone;
  // With ClientIP affinity: how long a client stays with its backend after its last new flow.
  uint32_t affinityTimeoutSeconds = kDefaultAffinityTimeoutSeconds;
  // For NodePort, ExternalIP and LoadBalancer frontends.
  TrafficPolicy externalTrafficPolicy = TrafficPolicy::kCluster;
  // For ClusterIP frontends.
  TrafficPolicy internalTrafficPolicy = TrafficPolicy::kCluster;
  // Clients allowed on LoadBalancer frontends; empty allows every client.
  std::vector<IpPrefix> loadBalancerSourceRanges;
  // Maglev lookup table size: a prime up to kMaglevMaxTableSize, at least the number of backends;
  // 0 picks maglevTableSizeFor(backends.size()).
  uint32_t maglevTableSize = 0;

  friend bool operator==(const Service&, const Service&) = default;
};

// Checks what the data paths rely on: a non-empty id; at least one frontend, all of one protocol,
// non-zero ports, unique keys, and a specified address except on NodePort; backends with a
// specified address, a non-zero port and unique (address, port); an affinity timeout in
// 1..kMaxAffinityTimeoutSeconds under ClientIP; a valid Maglev table size.
Status validate(const Service& service);

// The Maglev table size to build for `service`: its own, or the one picked for its backend count.
uint32_t effectiveMaglevTableSize(const Service& service);

}  // namespace skiff::dataplane

template <>
struct std::hash<skiff::dataplane::FrontendKey> {
  size_t operator()(const skiff::dataplane::FrontendKey& k) const;
};

template <>
struct std::hash<skiff::dataplane::BackendKey> {
  size_t operator()(const skiff::dataplane::BackendKey& k) const;
};

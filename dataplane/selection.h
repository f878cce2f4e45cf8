#pragma once

// The rules that decide where a flow may go, as kube-proxy applies them
// (pkg/proxy/topology.go CategorizeEndpoints, pkg/proxy/conntrack) and Cilium follows. Pure
// functions of the model: both data paths build their tables from them, and the data-path tests
// check packets against them.

#include <cstdint>
#include <vector>

#include "dataplane/address.h"
#include "dataplane/service.h"

namespace skiff::dataplane {

// Where a new flow comes from.
enum class TrafficOrigin : uint8_t {
  // Arrived on the node's interface (XDP, tc, DPDK).
  kExternal,
  // From a pod or from this node itself (the socket LB sees only these).
  kInCluster,
};

// Which backends a frontend's new flows may use.
enum class BackendScope : uint8_t { kCluster, kNodeLocal };

// ClusterIP frontends follow internalTrafficPolicy; NodePort, ExternalIP and LoadBalancer
// frontends follow externalTrafficPolicy, except for in-cluster clients, which kube-proxy sends to
// the cluster-wide backends anyway (Local only exists to keep an external client's address and
// avoid a second hop, and neither applies to them).
BackendScope backendScope(const Service& service, FrontendKind kind, TrafficOrigin origin);

enum class Selection : uint8_t {
  // The ready backends in scope.
  kReady,
  // No ready backend in scope: the ones that are serving and terminating, so that a rolling
  // update does not drop traffic (kube-proxy's terminating-endpoint fallback).
  kServingTerminating,
  // No usable backend of this family anywhere: reject new flows (ICMP unreachable, TCP RST).
  kNoBackends,
  // Node-local scope and no usable backend on this node, though there are some elsewhere: drop
  // new flows silently (the external load balancer's health check steers clients away).
  kNoLocalBackends,
};
std::string_view toString(Selection selection);

struct EligibleBackends {
  Selection selection = Selection::kNoBackends;
  // Indices into service.backends, ascending. Empty for kNoBackends and kNoLocalBackends.
  std::vector<uint32_t> indices;

  friend bool operator==(const EligibleBackends&, const EligibleBackends&) = default;
};

// The backends new flows to a frontend of `family` may go to. Only backends of that family with a
// weight above zero count. Cluster scope: the ready ones, or if there are none the serving
// terminating ones. Node-local scope: the same choice made among this node's backends alone (a
// ready backend elsewhere does not stop the fallback to a local terminating one).
EligibleBackends eligibleBackends(const Service& service, AddressFamily family, BackendScope scope);

// loadBalancerSourceRanges: they apply to LoadBalancer frontends only, and an empty list allows
// every source. A range of the other family never matches.
bool sourceAllowed(const Service& service, FrontendKind kind, const IpAddress& source);

enum class EstablishedFlow : uint8_t {
  // Keep sending the flow to its backend.
  kKeep,
  // Forget the flow's backend and treat the next packet as a new flow.
  kReselect,
};

// What happens to a flow (a conntrack entry) already going to `backend` after the service
// changed. It keeps its backend as long as the backend is listed, whatever its conditions:
// terminating backends drain, and readiness only steers new flows. Two exceptions: a backend no
// longer listed (the entry is stale), and for UDP, which has no connection to finish, a backend
// that stopped serving (kube-proxy deletes those conntrack entries).
EstablishedFlow establishedFlow(const Service& service, L4Protocol protocol,
                                const BackendKey& backend);

// Whether ClientIP session affinity sends a client's new flow to `backend`, the backend of its
// last new flow `idleSeconds` ago: affinity is ClientIP, the entry is younger than the timeout, and
// the backend is still eligible (else the flow goes through Maglev and the entry is replaced).
bool affinityHolds(const Service& service, const EligibleBackends& eligible,
                   const BackendKey& backend, uint64_t idleSeconds);

}  // namespace skiff::dataplane

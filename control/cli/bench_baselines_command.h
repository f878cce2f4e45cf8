#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace skiff::cli {

// `skiff bench baselines [--services N] [--endpoints-per-service E] [--seconds S] [--quick]
// [--modes iptables-legacy,iptables-nft,nftables,ebpf] [--json]`: kube-proxy's data paths beside
// Skiff's, on one topology, all inside network namespaces this command makes (never the host's
// tables).
//
// Rule sets in kube-proxy's shape for the same services: iptables (nat table: KUBE-SERVICES ->
// KUBE-SVC-* -> KUBE-SEP-*, `-m statistic --mode random --probability`, DNAT, the KUBE-MARK-MASQ /
// KUBE-POSTROUTING masquerade chains), loaded with `iptables-restore --noflush` of both backends
// (iptables-legacy: x_tables; iptables-nft: nf_tables, Debian 12's default); nftables (table ip
// kube-proxy: a `service-ips` verdict map, per-service chains with `numgen random mod N vmap`,
// per-endpoint DNAT chains), loaded with `nft -f`. Skiff's eBPF socket LB (EbpfDataplane attached
// to a cgroup of its own) programmed with the same services.
//
// Measured per mode: (a) sync time of a full sync of 1,000 and of 10,000 services (--quick: 1,000;
// or N) into empty tables, and of one endpoint change among the largest count (kube-proxy's
// partial sync: KUBE-SERVICES in full plus the changed chains; nft: the changed chains only), K
// samples; (b) requests/s and p99 latency of HTTP requests from a client netns to the ClusterIP of
// the first and of the last service, answered by a server in a backend netns behind a veth pair,
// with a new connection per request (short) and with keep-alive connections.
// Metrics (mode keys iptables_legacy, iptables_nft, nftables, ebpf): <mode>_sync_ms_<N>,
// <mode>_change_ms_<N> (median), <mode>_change_p99_ms_<N>,
// <mode>_<short|keepalive>_<rps|p50_ms|p99_ms>_<first|last>, ebpf_to_<mode>_short_rps_last and
// <mode>_to_ebpf_change_ms_<N> ratios; the JSON also has "samples" (every change sync in ms).
// Needs root; without it exits 77 (cannot run here), as does a machine without `ip`.
void addBenchBaselinesCommand(CLI::App& app, int& exit_code);

// The rule sets, exposed for tests. Service i (0-based) is default/svc-i:http, ClusterIP
// 10.96.0.0 + i + 1 (in 10.96.0.0/12) port 80/TCP; its endpoint e is 10.224.0.0 + i*E + e + 1
// (in 10.224.0.0/11) port 8080, except that generation g > 0 of a service moves its first
// endpoint to 10.240.0.0 + g.
namespace baselines {

inline constexpr uint16_t kServicePort = 80;
inline constexpr uint16_t kEndpointPort = 8080;
inline constexpr const char* kEndpointRange = "10.224.0.0/11";

struct ServiceSet {
  int services = 0;
  int endpointsPerService = 2;
  std::vector<uint32_t> generation;  // one per service (0: as first made)

  ServiceSet(int n, int e) : services(n), endpointsPerService(e), generation(n, 0) {}
};

std::string ipv4(uint32_t address);
uint32_t clusterIp(int service);
uint32_t endpointIp(const ServiceSet& set, int service, int endpoint);
std::string serviceName(int service);  // "svc-<i>"

// kube-proxy's chain names: "KUBE-SVC-" / "KUBE-SEP-" and 16 base32 characters of a hash of the
// service port name and protocol (and the endpoint).
std::string iptablesServiceChain(int service);
std::string iptablesEndpointChain(int service, uint32_t endpoint);

// `iptables-restore --noflush` input of a full sync (nat table).
std::string iptablesFullSync(const ServiceSet& set);
// One changed service after `set.generation[service]` moved on from `previousEndpoint` (its old
// first endpoint): KUBE-SERVICES in full, the service's chain, its new endpoint chain, and -X of
// the old one (declared, so flushed, first).
std::string iptablesPartialSync(const ServiceSet& set, int service, uint32_t previousEndpoint);

// `nft -f` input of a full sync (table ip kube-proxy: add, flush, then everything).
std::string nftablesFullSync(const ServiceSet& set);
std::string nftablesServiceChain(int service);
std::string nftablesEndpointChain(int service, uint32_t endpoint);
// The changed service's chain and its new endpoint chain; `staleChain` (the endpoint chain an
// earlier partial sync left, as kube-proxy deletes stale chains one sync later) is deleted when
// not empty.
std::string nftablesPartialSync(const ServiceSet& set, int service, const std::string& staleChain);

}  // namespace baselines
}  // namespace skiff::cli

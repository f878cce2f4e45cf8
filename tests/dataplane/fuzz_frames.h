#pragma once

// What the data-path fuzz targets share (dpdk/pipeline_fuzz.cc, tests/ebpf/xdp_fuzz.cc): the
// services they program (so both reach NAT, rejects, affinity, NodePorts and source ranges), the
// input format (up to 8 frames, each after a 2-byte big-endian length) and the checks of a frame
// sent back out.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "dataplane/dataplane.h"
#include "dataplane/service.h"

namespace skiff::dataplane::fuzz {

inline IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

inline Service service(const char* id, FrontendKey key, FrontendKind kind,
                       std::vector<Backend> backends) {
  Service s;
  s.id = id;
  s.frontends = {{key, kind}};
  s.backends = std::move(backends);
  return s;
}

inline Backend backend(const char* address, uint16_t port) {
  Backend b;
  b.address = ip(address);
  b.port = port;
  b.local = true;
  return b;
}

// ClusterIP TCP with three backends, UDP without backends (rejects), IPv6 with ClientIP affinity,
// a wildcard NodePort, a LoadBalancer with source ranges.
inline ServiceDelta fuzzServices() {
  ServiceDelta delta;
  delta.upserted.push_back(
      service("default/web:", {ip("10.96.0.10"), 80, L4Protocol::kTcp}, FrontendKind::kClusterIP,
              {backend("10.0.1.1", 8080), backend("10.0.1.2", 8080), backend("10.0.1.3", 8080)}));
  delta.upserted.push_back(service("default/dns:", {ip("10.96.0.11"), 53, L4Protocol::kUdp},
                                   FrontendKind::kClusterIP, {}));
  Service six =
      service("default/web6:", {ip("fd00::10"), 443, L4Protocol::kTcp}, FrontendKind::kClusterIP,
              {backend("fd00:1::1", 8443), backend("fd00:1::2", 8443)});
  six.affinity = SessionAffinity::kClientIP;
  delta.upserted.push_back(six);
  Service np = service("default/np:", {ip("0.0.0.0"), 30080, L4Protocol::kTcp},
                       FrontendKind::kNodePort, {backend("10.0.2.1", 80)});
  delta.upserted.push_back(np);
  Service lb = service("default/lb:", {ip("192.0.2.10"), 80, L4Protocol::kUdp},
                       FrontendKind::kLoadBalancer, {backend("10.0.3.1", 5000)});
  lb.loadBalancerSourceRanges = {*IpPrefix::parse("198.51.100.0/24")};
  delta.upserted.push_back(lb);
  return delta;
}

// Splits an input into its frames.
inline std::vector<std::vector<uint8_t>> splitFrames(const uint8_t* data, size_t size) {
  std::vector<std::vector<uint8_t>> frames;
  while (size >= 2 && frames.size() < 8) {
    const size_t n = std::min<size_t>(static_cast<size_t>(data[0] << 8 | data[1]), size - 2);
    frames.emplace_back(data + 2, data + 2 + n);
    data += 2 + n;
    size -= 2 + n;
  }
  return frames;
}

// Offset of the IP header after Ethernet and up to two VLAN tags, or 0.
inline size_t ipOffset(const uint8_t* p, size_t len, uint16_t* ethertype) {
  size_t off = 12;
  for (int tags = 0; tags <= 2; ++tags) {
    if (len < off + 2) return 0;
    const uint16_t t = static_cast<uint16_t>(p[off] << 8 | p[off + 1]);
    if (t == 0x8100 || t == 0x88a8) {
      off += 4;
      continue;
    }
    *ethertype = t;
    return off + 2;
  }
  return 0;
}

// True when the frame is IPv4 with a whole header whose checksum is right.
inline bool ipv4ChecksumOk(const uint8_t* p, size_t len) {
  uint16_t type = 0;
  const size_t off = ipOffset(p, len, &type);
  if (off == 0 || type != 0x0800 || len < off + 20) return false;
  const size_t ihl = (p[off] & 0x0f) * 4u;
  if ((p[off] >> 4) != 4 || ihl < 20 || len < off + ihl) return false;
  uint32_t sum = 0;
  for (size_t i = 0; i < ihl; i += 2)
    sum += static_cast<uint32_t>(p[off + i] << 8 | p[off + i + 1]);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

}  // namespace skiff::dataplane::fuzz

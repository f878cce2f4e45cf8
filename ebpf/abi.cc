#include "ebpf/abi.h"

#include <array>
#include <cstring>

#include "dataplane/flow_hash.h"
#include "dataplane/hash.h"

namespace skiff::ebpf {

void copyAddress(const dataplane::IpAddress& address, uint8_t (&out)[16]) {
  const auto& b = address.bytes();
  std::memcpy(out, b.data(), b.size());
}

dataplane::IpAddress addressFromKey(const uint8_t (&bytes)[16], uint8_t family) {
  if (family == SKIFF_AF_INET)
    return dataplane::IpAddress::v4({bytes[0], bytes[1], bytes[2], bytes[3]});
  std::array<uint8_t, 16> a{};
  std::memcpy(a.data(), bytes, a.size());
  return dataplane::IpAddress::v6(a);
}

skiff_frontend_key frontendKey(const dataplane::FrontendKey& key) {
  skiff_frontend_key k{};
  copyAddress(key.address, k.addr);
  k.port = toNetwork16(key.port);
  k.family = static_cast<uint8_t>(key.address.family());
  k.proto = static_cast<uint8_t>(key.protocol);
  return k;
}

uint8_t kindCode(dataplane::FrontendKind kind) {
  switch (kind) {
    case dataplane::FrontendKind::kClusterIP:
      return SKIFF_KIND_CLUSTER_IP;
    case dataplane::FrontendKind::kNodePort:
      return SKIFF_KIND_NODE_PORT;
    case dataplane::FrontendKind::kExternalIP:
      return SKIFF_KIND_EXTERNAL_IP;
    case dataplane::FrontendKind::kLoadBalancer:
      return SKIFF_KIND_LOAD_BALANCER;
  }
  return SKIFF_KIND_CLUSTER_IP;
}

uint8_t selectionCode(dataplane::Selection selection) {
  switch (selection) {
    case dataplane::Selection::kReady:
      return SKIFF_SEL_READY;
    case dataplane::Selection::kServingTerminating:
      return SKIFF_SEL_SERVING_TERMINATING;
    case dataplane::Selection::kNoBackends:
      return SKIFF_SEL_NO_BACKENDS;
    case dataplane::Selection::kNoLocalBackends:
      return SKIFF_SEL_NO_LOCAL_BACKENDS;
  }
  return SKIFF_SEL_NO_BACKENDS;
}

size_t dropIndex(int code) {
  return static_cast<size_t>(-code - 1);
}

uint64_t flowHash(const skiff_ct_key& forward) {
  return dataplane::flowHash(forward.saddr, forward.daddr, forward.sport, forward.dport,
                             forward.proto, forward.family);
}

uint64_t sockHash(uint64_t cookie, const skiff_frontend_key& frontend) {
  const std::array<uint64_t, 2> words{cookie, static_cast<uint64_t>(frontend.port) |
                                                  static_cast<uint64_t>(frontend.proto) << 32 |
                                                  static_cast<uint64_t>(frontend.family) << 40};
  return dataplane::hashWords(words, SKIFF_FLOW_HASH_SEED);
}

}  // namespace skiff::ebpf

#pragma once

// The flow hash both data paths use to pick a new flow's Maglev position (flowHash % ring size).
// XDP computes it in the kernel (ebpf/bpf/lib/hash.h), DPDK in user space (dataplane/dpdk/): the
// two must agree bit for bit, so that one flow lands on the same backend whichever path sees it.
// The definition is ebpf/bpf/lb_abi.h's (SKIFF_FLOW_HASH_SEED): hashWords over five words.

#include <array>
#include <cstdint>

#include "dataplane/hash.h"

namespace skiff::dataplane {

inline constexpr uint64_t kFlowHashSeed = 0x736b696666666c77ULL;  // "skiffflw"

namespace detail {
// A little-endian load of 8 bytes, whatever the host's byte order (BPF is little-endian here).
constexpr uint64_t loadLe64(const uint8_t* bytes) {
  uint64_t w = 0;
  for (int i = 0; i < 8; ++i)
    w |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  return w;
}
}  // namespace detail

// The hash of a client's tuple to a frontend. Addresses are 16 bytes in network order (IPv4 in the
// first 4, the rest zero); ports are the 16-bit values as the packet carries them (network order)
// loaded as host integers on a little-endian machine, i.e. exactly the bytes of the packet;
// `family` is 4 or 6 (AddressFamily).
constexpr uint64_t flowHash(const uint8_t (&saddr)[16], const uint8_t (&daddr)[16],
                            uint16_t sportWire, uint16_t dportWire, uint8_t proto, uint8_t family) {
  const std::array<uint64_t, 5> words{
      detail::loadLe64(saddr), detail::loadLe64(saddr + 8), detail::loadLe64(daddr),
      detail::loadLe64(daddr + 8),
      static_cast<uint64_t>(sportWire) | static_cast<uint64_t>(dportWire) << 16 |
          static_cast<uint64_t>(proto) << 32 | static_cast<uint64_t>(family) << 40};
  return hashWords(words, kFlowHashSeed);
}

}  // namespace skiff::dataplane

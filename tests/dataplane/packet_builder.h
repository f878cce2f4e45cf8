#pragma once

// Builds and checks Ethernet frames for the data-path tests: checksums are computed in full
// here, so comparing a program's output with a frame built here checks its incremental updates.

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "dataplane/address.h"

namespace skiff::dataplane::testing {

using Bytes = std::vector<uint8_t>;

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpAck = 0x10;

struct PacketSpec {
  IpAddress src;
  IpAddress dst;
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint8_t proto = 6;  // 6 TCP, 17 UDP
  uint8_t tcpFlags = kTcpSyn;
  Bytes payload = {'s', 'k', 'i', 'f', 'f'};
  // 802.1Q tags before the IP header.
  int vlanTags = 0;
  // IPv4 UDP without a checksum (0).
  bool udpNoChecksum = false;
  // IPv4 flags and fragment offset in host order (0x2000 is More Fragments).
  uint16_t fragment = 0;
  uint8_t ttl = 64;
};

// The frame: Ethernet (02:00:00:00:00:01 -> 02:00:00:00:00:02), optional VLAN tags, IP, L4,
// payload, every checksum right.
Bytes buildPacket(const PacketSpec& spec);

// The IP packet inside the frame (from the IP header on).
Bytes ipPart(const Bytes& frame, int vlanTags = 0);

// An ICMPv4 error (type, code) from `src` to `dst` quoting the first `quoteLength` bytes of
// `quoted` (an IPv4 packet as ipPart gives it; 28: a 20-byte header and 8 bytes).
Bytes buildIcmp4Error(const IpAddress& src, const IpAddress& dst, uint8_t type, uint8_t code,
                      const Bytes& quoted, size_t quoteLength = 28);

// An ICMPv6 error (type, code) from `src` to `dst` quoting the first 48 bytes of `quoted` (an
// IPv6 packet as ipPart gives it).
Bytes buildIcmp6Error(const IpAddress& src, const IpAddress& dst, uint8_t type, uint8_t code,
                      const Bytes& quoted);

// The one's complement sum of `data` folded to 16 bits, not complemented, in network order.
uint16_t onesComplementSum(std::span<const uint8_t> data, uint32_t initial = 0);

// Recomputes every checksum of `frame` from scratch (IPv4 header, TCP/UDP with the pseudo
// header, ICMPv4 and a quoted IPv4 header): true if all are right.
bool checksumsValid(const Bytes& frame, int vlanTags = 0);

// The addresses and ports of the outermost IP and L4 headers.
struct Tuple {
  IpAddress src;
  IpAddress dst;
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint8_t proto = 0;
};
std::optional<Tuple> parseTuple(const Bytes& frame, int vlanTags = 0);

}  // namespace skiff::dataplane::testing

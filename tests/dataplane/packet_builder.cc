#include "tests/dataplane/packet_builder.h"

#include <algorithm>
#include <array>

namespace skiff::dataplane::testing {
namespace {

constexpr size_t kEthLen = 14;
constexpr size_t kVlanLen = 4;

void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}

uint16_t get16(const Bytes& b, size_t at) {
  return static_cast<uint16_t>(b[at] << 8 | b[at + 1]);
}

void append(Bytes& b, std::span<const uint8_t> more) {
  b.insert(b.end(), more.begin(), more.end());
}

uint16_t finish(uint16_t sum) {
  return static_cast<uint16_t>(~sum);
}

// The pseudo header's sum for an L4 segment of `length` bytes.
uint32_t pseudoSum(const IpAddress& src, const IpAddress& dst, uint8_t proto, size_t length) {
  Bytes p;
  append(p, src.octets());
  append(p, dst.octets());
  if (src.isV4()) {
    p.insert(p.end(), {0, proto, static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length)});
  } else {
    p.insert(p.end(),
             {static_cast<uint8_t>(length >> 24), static_cast<uint8_t>(length >> 16),
              static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length), 0, 0, 0, proto});
  }
  return onesComplementSum(p);
}

size_t l3Offset(int vlanTags) {
  return kEthLen + kVlanLen * static_cast<size_t>(vlanTags);
}

Bytes ethernet(int vlanTags, uint16_t etherType) {
  Bytes b = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};
  for (int i = 0; i < vlanTags; ++i)
    b.insert(b.end(), {0x81, 0x00, 0x00, static_cast<uint8_t>(10 + i)});
  b.insert(b.end(), {static_cast<uint8_t>(etherType >> 8), static_cast<uint8_t>(etherType)});
  return b;
}

Bytes ipv4Header(const IpAddress& src, const IpAddress& dst, uint8_t proto, size_t payloadLength,
                 uint16_t fragment, uint8_t ttl) {
  Bytes h(20, 0);
  h[0] = 0x45;
  put16(h, 2, static_cast<uint16_t>(20 + payloadLength));
  put16(h, 4, 0x1234);
  put16(h, 6, fragment);
  h[8] = ttl;
  h[9] = proto;
  for (size_t i = 0; i < 4; ++i) {
    h[12 + i] = src.octets()[i];
    h[16 + i] = dst.octets()[i];
  }
  put16(h, 10, finish(onesComplementSum(h)));
  return h;
}

Bytes ipv6Header(const IpAddress& src, const IpAddress& dst, uint8_t proto, size_t payloadLength,
                 uint8_t ttl) {
  Bytes h(8, 0);
  h[0] = 0x60;
  put16(h, 4, static_cast<uint16_t>(payloadLength));
  h[6] = proto;
  h[7] = ttl;
  append(h, src.octets());
  append(h, dst.octets());
  return h;
}

}  // namespace

uint16_t onesComplementSum(std::span<const uint8_t> data, uint32_t initial) {
  uint64_t sum = initial;
  for (size_t i = 0; i + 1 < data.size(); i += 2)
    sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (data.size() % 2 != 0) sum += static_cast<uint32_t>(data.back() << 8);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

Bytes buildPacket(const PacketSpec& spec) {
  Bytes l4;
  if (spec.proto == 6) {
    l4.assign(20, 0);
    put16(l4, 0, spec.sport);
    put16(l4, 2, spec.dport);
    put16(l4, 4, 0x0102);  // sequence number
    put16(l4, 6, 0x0304);
    l4[12] = 5 << 4;
    l4[13] = spec.tcpFlags;
    put16(l4, 14, 0xffff);  // window
  } else {
    l4.assign(8, 0);
    put16(l4, 0, spec.sport);
    put16(l4, 2, spec.dport);
    put16(l4, 4, static_cast<uint16_t>(8 + spec.payload.size()));
  }
  append(l4, spec.payload);
  const size_t checkAt = spec.proto == 6 ? 16 : 6;
  if (!(spec.proto == 17 && spec.udpNoChecksum && spec.src.isV4())) {
    uint16_t c =
        finish(onesComplementSum(l4, pseudoSum(spec.src, spec.dst, spec.proto, l4.size())));
    if (spec.proto == 17 && c == 0) c = 0xffff;
    put16(l4, checkAt, c);
  }
  Bytes frame = ethernet(spec.vlanTags, spec.src.isV4() ? 0x0800 : 0x86dd);
  if (spec.src.isV4()) {
    append(frame, ipv4Header(spec.src, spec.dst, spec.proto, l4.size(), spec.fragment, spec.ttl));
  } else {
    append(frame, ipv6Header(spec.src, spec.dst, spec.proto, l4.size(), spec.ttl));
  }
  append(frame, l4);
  return frame;
}

Bytes ipPart(const Bytes& frame, int vlanTags) {
  return Bytes(frame.begin() + static_cast<std::ptrdiff_t>(l3Offset(vlanTags)), frame.end());
}

Bytes buildIcmp4Error(const IpAddress& src, const IpAddress& dst, uint8_t type, uint8_t code,
                      const Bytes& quoted, size_t quoteLength) {
  Bytes icmp = {type, code, 0, 0, 0, 0, 0, 0};
  icmp.insert(
      icmp.end(), quoted.begin(),
      quoted.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(quoteLength, quoted.size())));
  put16(icmp, 2, finish(onesComplementSum(icmp)));
  Bytes frame = ethernet(0, 0x0800);
  append(frame, ipv4Header(src, dst, 1, icmp.size(), 0, 64));
  append(frame, icmp);
  return frame;
}

Bytes buildIcmp6Error(const IpAddress& src, const IpAddress& dst, uint8_t type, uint8_t code,
                      const Bytes& quoted) {
  Bytes icmp = {type, code, 0, 0, 0, 0, 0, 0};
  icmp.insert(icmp.end(), quoted.begin(),
              quoted.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(48, quoted.size())));
  put16(icmp, 2, finish(onesComplementSum(icmp, pseudoSum(src, dst, 58, icmp.size()))));
  Bytes frame = ethernet(0, 0x86dd);
  append(frame, ipv6Header(src, dst, 58, icmp.size(), 64));
  append(frame, icmp);
  return frame;
}

bool checksumsValid(const Bytes& frame, int vlanTags) {
  const size_t l3 = l3Offset(vlanTags);
  auto tuple = parseTuple(frame, vlanTags);
  if (!tuple) return false;
  std::span<const uint8_t> all(frame);
  if (tuple->src.isV4()) {
    const size_t hlen = (frame[l3] & 0xf) * 4u;
    if (onesComplementSum(all.subspan(l3, hlen)) != 0xffff) return false;
    const size_t total = get16(frame, l3 + 2);
    std::span<const uint8_t> l4 = all.subspan(l3 + hlen, total - hlen);
    if (tuple->proto == 1) {
      if (onesComplementSum(l4) != 0xffff) return false;
      // The quoted IPv4 header.
      const size_t qlen = (l4[8] & 0xf) * 4u;
      return onesComplementSum(l4.subspan(8, qlen)) == 0xffff;
    }
    if (tuple->proto == 17 && get16(frame, l3 + hlen + 6) == 0) return true;
    return onesComplementSum(l4, pseudoSum(tuple->src, tuple->dst, tuple->proto, l4.size())) ==
           0xffff;
  }
  const size_t payload = get16(frame, l3 + 4);
  std::span<const uint8_t> l4 = all.subspan(l3 + 40, payload);
  return onesComplementSum(l4, pseudoSum(tuple->src, tuple->dst, tuple->proto, l4.size())) ==
         0xffff;
}

std::optional<Tuple> parseTuple(const Bytes& frame, int vlanTags) {
  const size_t l3 = l3Offset(vlanTags);
  if (frame.size() < l3 + 20) return std::nullopt;
  Tuple t;
  size_t l4 = 0;
  if ((frame[l3] >> 4) == 4) {
    std::array<uint8_t, 4> s{}, d{};
    for (size_t i = 0; i < 4; ++i) {
      s[i] = frame[l3 + 12 + i];
      d[i] = frame[l3 + 16 + i];
    }
    t.src = IpAddress::v4(s);
    t.dst = IpAddress::v4(d);
    t.proto = frame[l3 + 9];
    l4 = l3 + (frame[l3] & 0xf) * 4u;
  } else {
    if (frame.size() < l3 + 40) return std::nullopt;
    std::array<uint8_t, 16> s{}, d{};
    for (size_t i = 0; i < 16; ++i) {
      s[i] = frame[l3 + 8 + i];
      d[i] = frame[l3 + 24 + i];
    }
    t.src = IpAddress::v6(s);
    t.dst = IpAddress::v6(d);
    t.proto = frame[l3 + 6];
    l4 = l3 + 40;
  }
  if (frame.size() < l4 + 4) return std::nullopt;
  if (t.proto == 6 || t.proto == 17) {
    t.sport = get16(frame, l4);
    t.dport = get16(frame, l4 + 2);
  }
  return t;
}

}  // namespace skiff::dataplane::testing

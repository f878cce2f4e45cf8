#include "dataplane/address.h"

#include <algorithm>

#include "dataplane/hash.h"

namespace skiff::dataplane {
namespace {

// Decimal 0..max without sign or leading zeros ("0" itself is fine).
std::optional<uint32_t> parseDecimal(std::string_view s, uint32_t max) {
  if (s.empty() || s.size() > 3 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

bool parseV4(std::string_view s, uint8_t* out) {
  for (int i = 0; i < 4; ++i) {
    size_t dot = s.find('.');
    if ((i < 3) != (dot != std::string_view::npos)) return false;
    std::optional<uint32_t> octet = parseDecimal(s.substr(0, dot), 255);
    if (!octet) return false;
    out[i] = static_cast<uint8_t>(*octet);
    if (i < 3) s.remove_prefix(dot + 1);
  }
  return true;
}

std::optional<uint16_t> parseHexGroup(std::string_view s) {
  if (s.empty() || s.size() > 4) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    uint32_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      d = static_cast<uint32_t>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    v = v << 4 | d;
  }
  return static_cast<uint16_t>(v);
}

bool parseV6(std::string_view s, std::array<uint8_t, 16>& out) {
  std::array<uint16_t, 8> groups{};
  int count = 0;
  int gap = -1;  // index in `groups` where "::" stands
  size_t i = 0;
  if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
    gap = 0;
    i = 2;
  } else if (!s.empty() && s[0] == ':') {
    return false;
  }
  while (i < s.size()) {
    if (count == 8) return false;
    size_t end = s.find(':', i);
    std::string_view token = s.substr(i, end == std::string_view::npos ? end : end - i);
    if (token.find('.') != std::string_view::npos) {
      // A dotted IPv4 tail fills the last two groups and ends the address.
      uint8_t v4[4];
      if (end != std::string_view::npos || count > 6 || !parseV4(token, v4)) return false;
      groups[count++] = static_cast<uint16_t>(v4[0] << 8 | v4[1]);
      groups[count++] = static_cast<uint16_t>(v4[2] << 8 | v4[3]);
      break;
    }
    std::optional<uint16_t> group = parseHexGroup(token);
    if (!group) return false;
    groups[count++] = *group;
    if (end == std::string_view::npos) break;
    i = end + 1;
    if (i == s.size()) return false;  // a lone trailing ':'
    if (s[i] == ':') {
      if (gap >= 0) return false;  // a second "::"
      gap = count;
      ++i;
    }
  }
  // "::" stands for at least one group.
  if (gap < 0 ? count != 8 : count > 7) return false;
  std::array<uint16_t, 8> full{};
  if (gap < 0) {
    full = groups;
  } else {
    int tail = count - gap;
    std::copy_n(groups.begin(), gap, full.begin());
    std::copy_n(groups.begin() + gap, tail, full.end() - tail);
  }
  for (size_t g = 0; g < 8; ++g) {
    out[2 * g] = static_cast<uint8_t>(full[g] >> 8);
    out[2 * g + 1] = static_cast<uint8_t>(full[g]);
  }
  return true;
}

void appendDecimal(std::string& out, uint32_t v) {
  char buf[10];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0)
    out.push_back(buf[--n]);
}

void appendV4(std::string& out, const uint8_t* octets) {
  for (int i = 0; i < 4; ++i) {
    if (i > 0) out.push_back('.');
    appendDecimal(out, octets[i]);
  }
}

void appendHexGroup(std::string& out, uint16_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  bool started = false;
  for (int shift = 12; shift >= 0; shift -= 4) {
    unsigned d = (v >> shift) & 0xf;
    if (d != 0 || started || shift == 0) {
      out.push_back(kDigits[d]);
      started = true;
    }
  }
}

std::string formatV6(const std::array<uint8_t, 16>& b) {
  std::array<uint16_t, 8> g;
  for (size_t i = 0; i < 8; ++i)
    g[i] = static_cast<uint16_t>(b[2 * i] << 8 | b[2 * i + 1]);
  std::string out;
  out.reserve(41);

  // ::ffff:0:0/96, IPv4-mapped: RFC 5952 section 5 recommends the dotted tail.
  if (g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] == 0 && g[4] == 0 && g[5] == 0xffff) {
    out = "::ffff:";
    appendV4(out, b.data() + 12);
    return out;
  }

  // The longest run of zero groups (two or more), the first one on a tie.
  int bestStart = -1, bestLen = 0;
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0)
      ++j;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestStart = -1;

  for (int i = 0; i < 8; ++i) {
    if (i == bestStart) {
      out += "::";
      i += bestLen - 1;
      continue;
    }
    if (i > 0 && i != bestStart + bestLen) out.push_back(':');
    appendHexGroup(out, g[i]);
  }
  return out;
}

}  // namespace

std::string_view toString(AddressFamily family) {
  return family == AddressFamily::kIPv4 ? "IPv4" : "IPv6";
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.find(':') != std::string_view::npos) {
    std::array<uint8_t, 16> bytes{};
    if (!parseV6(text, bytes)) return std::nullopt;
    return v6(bytes);
  }
  std::array<uint8_t, 4> octets{};
  if (!parseV4(text, octets.data())) return std::nullopt;
  return v4(octets);
}

std::string IpAddress::toString() const {
  if (isV6()) return formatV6(bytes_);
  std::string out;
  out.reserve(15);
  appendV4(out, bytes_.data());
  return out;
}

bool IpAddress::isUnspecified() const {
  return std::all_of(bytes_.begin(), bytes_.end(), [](uint8_t b) { return b == 0; });
}

IpPrefix::IpPrefix(const IpAddress& address, uint8_t length) {
  const size_t width = address.isV4() ? 32 : 128;
  length_ = static_cast<uint8_t>(std::min<size_t>(length, width));
  std::array<uint8_t, 16> bytes = address.bytes();
  for (size_t i = 0; i < 16; ++i) {
    const size_t first = i * 8;  // first bit of byte i
    if (first >= length_) {
      bytes[i] = 0;
    } else if (first + 8 > length_) {
      bytes[i] &= static_cast<uint8_t>(0xff << (8 - (length_ - first)));
    }
  }
  if (address.isV4()) {
    address_ = IpAddress::v4({bytes[0], bytes[1], bytes[2], bytes[3]});
  } else {
    address_ = IpAddress::v6(bytes);
  }
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::optional<IpAddress> address = IpAddress::parse(text.substr(0, slash));
  if (!address) return std::nullopt;
  std::optional<uint32_t> length = parseDecimal(text.substr(slash + 1), address->isV4() ? 32 : 128);
  if (!length) return std::nullopt;
  return IpPrefix(*address, static_cast<uint8_t>(*length));
}

std::string IpPrefix::toString() const {
  std::string out = address_.toString();
  out.push_back('/');
  appendDecimal(out, length_);
  return out;
}

bool IpPrefix::contains(const IpAddress& address) const {
  if (address.family() != address_.family()) return false;
  const auto& a = address.bytes();
  const auto& p = address_.bytes();
  const size_t full = length_ / 8;
  for (size_t i = 0; i < full; ++i) {
    if (a[i] != p[i]) return false;
  }
  const size_t rest = length_ % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == p[full];
}

uint64_t hashAddress(const IpAddress& address) {
  const auto& b = address.bytes();
  uint64_t words[3] = {0, 0, static_cast<uint64_t>(address.family())};
  for (size_t i = 0; i < 16; ++i)
    words[i / 8] |= static_cast<uint64_t>(b[i]) << (8 * (i % 8));
  return hashWords(words, 0);
}

}  // namespace skiff::dataplane

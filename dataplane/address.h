#pragma once

// IPv4/IPv6 addresses and CIDR prefixes as plain values: the data paths key their tables on them.

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace skiff::dataplane {

enum class AddressFamily : uint8_t { kIPv4 = 4, kIPv6 = 6 };
std::string_view toString(AddressFamily family);  // "IPv4", "IPv6" (Kubernetes' ipFamilies)

// An IPv4 or IPv6 address: 16 bytes in network order plus the family. An IPv4 address sits in the
// first 4 bytes and the other 12 are zero (the layout of Katran's and Cilium's map keys), so the
// bytes can be copied into a BPF key as they are.
//
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) stay IPv6: a frontend or backend has one family.
//
// Ordered by family (IPv4 first), then bytes. Default: 0.0.0.0.
class IpAddress {
 public:
  constexpr IpAddress() = default;

  // `octets` in network order.
  static constexpr IpAddress v4(std::array<uint8_t, 4> octets) {
    IpAddress a;
    for (size_t i = 0; i < 4; ++i)
      a.bytes_[i] = octets[i];
    return a;
  }
  // `hostOrder`: 0x0a000001 is 10.0.0.1.
  static constexpr IpAddress v4(uint32_t hostOrder) {
    return v4({static_cast<uint8_t>(hostOrder >> 24), static_cast<uint8_t>(hostOrder >> 16),
               static_cast<uint8_t>(hostOrder >> 8), static_cast<uint8_t>(hostOrder)});
  }
  static constexpr IpAddress v6(const std::array<uint8_t, 16>& bytes) {
    IpAddress a;
    a.family_ = AddressFamily::kIPv6;
    a.bytes_ = bytes;
    return a;
  }

  // Dotted-quad IPv4 (four decimal octets, no leading zeros, as Go's net.ParseIP since 1.17) or
  // RFC 4291 IPv6 text (hex groups, one "::", an optional dotted IPv4 tail). No zones ("%eth0"),
  // no brackets, no whitespace. Nullopt on anything else.
  static std::optional<IpAddress> parse(std::string_view text);

  // IPv4: dotted quad. IPv6: RFC 5952 (lowercase, no leading zeros, the longest run of two or more
  // zero groups as "::", leftmost on a tie), and ::ffff:a.b.c.d for IPv4-mapped addresses.
  std::string toString() const;

  AddressFamily family() const { return family_; }
  bool isV4() const { return family_ == AddressFamily::kIPv4; }
  bool isV6() const { return family_ == AddressFamily::kIPv6; }
  // 0.0.0.0 or ::.
  bool isUnspecified() const;

  // All 16 bytes (an IPv4 address: 4 octets, then zeros).
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  // The address's own octets: 4 for IPv4, 16 for IPv6.
  std::span<const uint8_t> octets() const {
    return std::span<const uint8_t>(bytes_.data(), isV4() ? 4 : 16);
  }
  // Only for IPv4: the address as a number (10.0.0.1 is 0x0a000001).
  uint32_t v4HostOrder() const {
    return static_cast<uint32_t>(bytes_[0]) << 24 | static_cast<uint32_t>(bytes_[1]) << 16 |
           static_cast<uint32_t>(bytes_[2]) << 8 | bytes_[3];
  }

  friend constexpr bool operator==(const IpAddress&, const IpAddress&) = default;
  friend constexpr auto operator<=>(const IpAddress&, const IpAddress&) = default;

 private:
  // Declared in comparison order.
  AddressFamily family_ = AddressFamily::kIPv4;
  std::array<uint8_t, 16> bytes_{};
};

// A CIDR prefix ("10.0.0.0/8", "2001:db8::/32"), as in loadBalancerSourceRanges. The host bits of
// the address are cleared on construction ("10.1.2.3/8" is 10.0.0.0/8, as Go's net.ParseCIDR
// gives it), so equal prefixes compare equal.
class IpPrefix {
 public:
  // 0.0.0.0/0.
  IpPrefix() = default;
  // `length` is clamped to the family's width (32 or 128).
  IpPrefix(const IpAddress& address, uint8_t length);

  // "address/length": the length in decimal, no leading zeros, at most 32 (IPv4) or 128 (IPv6).
  static std::optional<IpPrefix> parse(std::string_view text);
  std::string toString() const;

  const IpAddress& address() const { return address_; }
  uint8_t length() const { return length_; }
  AddressFamily family() const { return address_.family(); }

  // Same family and the first length() bits equal. An address of the other family is never
  // inside (no IPv4-mapped matching).
  bool contains(const IpAddress& address) const;

  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
  friend auto operator<=>(const IpPrefix&, const IpPrefix&) = default;

 private:
  IpAddress address_;
  uint8_t length_ = 0;
};

// A stable 64-bit hash of an address (family and all 16 bytes), also behind std::hash.
uint64_t hashAddress(const IpAddress& address);

}  // namespace skiff::dataplane

template <>
struct std::hash<skiff::dataplane::IpAddress> {
  size_t operator()(const skiff::dataplane::IpAddress& a) const {
    return static_cast<size_t>(skiff::dataplane::hashAddress(a));
  }
};

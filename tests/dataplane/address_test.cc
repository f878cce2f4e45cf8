#include "dataplane/address.h"

#include <string>
#include <unordered_set>

#include <gtest/gtest.h>

namespace skiff::dataplane {
namespace {

struct RoundTrip {
  std::string input;
  std::string canonical;
};

TEST(IpAddressTest, ParsesAndFormatsIPv4) {
  const RoundTrip cases[] = {
      {"0.0.0.0", "0.0.0.0"},
      {"10.96.0.1", "10.96.0.1"},
      {"255.255.255.255", "255.255.255.255"},
      {"192.168.0.10", "192.168.0.10"},
      {"1.2.3.4", "1.2.3.4"},
  };
  for (const auto& c : cases) {
    std::optional<IpAddress> a = IpAddress::parse(c.input);
    ASSERT_TRUE(a.has_value()) << c.input;
    EXPECT_TRUE(a->isV4()) << c.input;
    EXPECT_EQ(a->toString(), c.canonical);
  }
  const IpAddress a = *IpAddress::parse("10.96.0.1");
  EXPECT_EQ(a.v4HostOrder(), 0x0a600001u);
  EXPECT_EQ(a, IpAddress::v4(0x0a600001u));
  EXPECT_EQ(a, IpAddress::v4({10, 96, 0, 1}));
  EXPECT_EQ(a.octets().size(), 4u);
  // The first four bytes, then zeros: the BPF key layout.
  const std::array<uint8_t, 16> bytes{10, 96, 0, 1};
  EXPECT_EQ(a.bytes(), bytes);
}

TEST(IpAddressTest, ParsesAndFormatsIPv6) {
  const RoundTrip cases[] = {
      {"::", "::"},
      {"::1", "::1"},
      {"1::", "1::"},
      {"2001:db8::1", "2001:db8::1"},
      {"2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
      {"fd00:0:0:1::a", "fd00:0:0:1::a"},
      // The longest run of zeros is compressed, the first one on a tie.
      {"1:0:0:2:0:0:0:3", "1:0:0:2::3"},
      {"1:0:0:2:0:0:3:4", "1::2:0:0:3:4"},
      // A single zero group is not compressed.
      {"1:2:3:4:5:6:0:8", "1:2:3:4:5:6:0:8"},
      {"1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"},
      {"::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"},
      {"0:0:0:0:0:0:0:0", "::"},
      {"fe80::0001:0020:0300:4000", "fe80::1:20:300:4000"},
      // Dotted tails.
      {"::ffff:10.0.0.1", "::ffff:10.0.0.1"},
      {"::FFFF:0a00:0001", "::ffff:10.0.0.1"},
      {"64:ff9b::192.0.2.33", "64:ff9b::c000:221"},
      {"::1.2.3.4", "::102:304"},
      {"1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"},
  };
  for (const auto& c : cases) {
    std::optional<IpAddress> a = IpAddress::parse(c.input);
    ASSERT_TRUE(a.has_value()) << c.input;
    EXPECT_TRUE(a->isV6()) << c.input;
    EXPECT_EQ(a->toString(), c.canonical) << c.input;
    EXPECT_EQ(IpAddress::parse(a->toString()), a) << c.input;
  }
  const IpAddress a = *IpAddress::parse("2001:db8::ff01");
  const std::array<uint8_t, 16> bytes{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,    0,
                                      0,    0,    0,    0,    0, 0, 0xff, 0x01};
  EXPECT_EQ(a.bytes(), bytes);
  EXPECT_EQ(a.octets().size(), 16u);
}

TEST(IpAddressTest, RejectsMalformedText) {
  for (const char* bad : {"",
                          " ",
                          "1.2.3",
                          "1.2.3.4.5",
                          "1.2.3.256",
                          "01.2.3.4",
                          "1.2.3.04",
                          "1..3.4",
                          "1.2.3.4 ",
                          " 1.2.3.4",
                          "-1.2.3.4",
                          "1.2.3.a",
                          "0x1.2.3.4",
                          "1.2.3.",
                          ".1.2.3",
                          "1.2.3.1000",
                          ":",
                          ":::",
                          "1:2",
                          "1:2:3:4:5:6:7",
                          "1:2:3:4:5:6:7:8:9",
                          "1::2::3",
                          "1:::2",
                          ":1::2",
                          "1::2:",
                          "1:2:3:4:5:6:7:8::",
                          "::1:2:3:4:5:6:7:8",
                          "12345::",
                          "g::1",
                          "fe80::1%eth0",
                          "[::1]",
                          "1.2.3.4::",
                          "::1.2.3.4:5",
                          "::1.2.3",
                          "::256.1.1.1",
                          "1:2:3:4:5:6:7:1.2.3.4",
                          "::ffff:01.2.3.4"}) {
    EXPECT_FALSE(IpAddress::parse(bad).has_value()) << '"' << bad << '"';
  }
}

TEST(IpAddressTest, UnspecifiedFamilyAndOrder) {
  EXPECT_TRUE(IpAddress().isUnspecified());
  EXPECT_TRUE(IpAddress().isV4());
  EXPECT_TRUE(IpAddress::parse("::")->isUnspecified());
  EXPECT_FALSE(IpAddress::parse("0.0.0.1")->isUnspecified());
  EXPECT_EQ(toString(AddressFamily::kIPv4), "IPv4");
  EXPECT_EQ(toString(AddressFamily::kIPv6), "IPv6");

  // The same bytes in the other family are another address; IPv4 sorts first.
  const IpAddress v4 = IpAddress::v4(0x0a000001);
  const IpAddress v6 = IpAddress::v6(v4.bytes());
  EXPECT_NE(v4, v6);
  EXPECT_LT(v4, v6);
  EXPECT_LT(*IpAddress::parse("255.255.255.255"), *IpAddress::parse("::"));
  EXPECT_LT(*IpAddress::parse("10.0.0.2"), *IpAddress::parse("10.0.0.10"));
  EXPECT_LT(*IpAddress::parse("fd00::2"), *IpAddress::parse("fd00::10"));

  std::unordered_set<IpAddress> set{v4, v6, *IpAddress::parse("10.0.0.1")};
  EXPECT_EQ(set.size(), 2u);
  EXPECT_NE(hashAddress(v4), hashAddress(v6));
}

TEST(IpPrefixTest, ParsesAndClearsHostBits) {
  const RoundTrip cases[] = {
      {"10.0.0.0/8", "10.0.0.0/8"},
      {"10.1.2.3/8", "10.0.0.0/8"},
      {"192.168.1.129/25", "192.168.1.128/25"},
      {"192.168.1.255/31", "192.168.1.254/31"},
      {"1.2.3.4/32", "1.2.3.4/32"},
      {"1.2.3.4/0", "0.0.0.0/0"},
      {"2001:db8::1/32", "2001:db8::/32"},
      {"2001:db8:ffff::/33", "2001:db8:8000::/33"},
      {"::/0", "::/0"},
      {"fd00::1/128", "fd00::1/128"},
      {"fd00::ff/121", "fd00::80/121"},
  };
  for (const auto& c : cases) {
    std::optional<IpPrefix> p = IpPrefix::parse(c.input);
    ASSERT_TRUE(p.has_value()) << c.input;
    EXPECT_EQ(p->toString(), c.canonical) << c.input;
  }
  EXPECT_EQ(IpPrefix::parse("10.1.2.3/8"), IpPrefix::parse("10.0.0.0/8"));
  EXPECT_EQ(IpPrefix::parse("192.168.1.129/25")->length(), 25);
  // The constructor clamps to the family's width.
  EXPECT_EQ(IpPrefix(*IpAddress::parse("10.0.0.1"), 99).toString(), "10.0.0.1/32");
}

TEST(IpPrefixTest, RejectsMalformedText) {
  for (const char* bad :
       {"", "10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/08", "10.0.0.0/-1", "10.0.0.0/8/8",
        "10.0.0/8", "/8", "::/129", "::/1000", "fd00::/64 ", "10.0.0.0/a"}) {
    EXPECT_FALSE(IpPrefix::parse(bad).has_value()) << '"' << bad << '"';
  }
}

TEST(IpPrefixTest, Contains) {
  struct Case {
    const char* prefix;
    const char* address;
    bool inside;
  };
  const Case cases[] = {
      {"10.0.0.0/8", "10.255.255.255", true},
      {"10.0.0.0/8", "11.0.0.0", false},
      {"10.0.0.0/8", "9.255.255.255", false},
      {"192.168.1.128/25", "192.168.1.128", true},
      {"192.168.1.128/25", "192.168.1.127", false},
      {"192.168.1.128/25", "192.168.1.255", true},
      {"192.168.1.5/32", "192.168.1.5", true},
      {"192.168.1.5/32", "192.168.1.4", false},
      {"0.0.0.0/0", "203.0.113.7", true},
      {"0.0.0.0/0", "::1", false},  // other family
      {"::/0", "10.0.0.1", false},
      {"::/0", "2001:db8::1", true},
      {"2001:db8::/32", "2001:db8:ffff::1", true},
      {"2001:db8::/32", "2001:db9::1", false},
      {"fd00::80/121", "fd00::ff", true},
      {"fd00::80/121", "fd00::7f", false},
      {"fd00::80/121", "fd00::100", false},
      // An IPv4-mapped address is IPv6, not inside an IPv4 range.
      {"10.0.0.0/8", "::ffff:10.0.0.1", false},
      {"::ffff:0:0/96", "::ffff:10.0.0.1", true},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(IpPrefix::parse(c.prefix)->contains(*IpAddress::parse(c.address)), c.inside)
        << c.prefix << " contains " << c.address;
  }
}

}  // namespace
}  // namespace skiff::dataplane

// The C++ side of the BPF ABI: conversions from the LB model and the flow hash's definition.

#include <gtest/gtest.h>

#include <array>

#include "dataplane/hash.h"
#include "ebpf/abi.h"
#include "ebpf/map_writer.h"

namespace skiff::ebpf {
namespace {

using dataplane::IpAddress;

TEST(AbiTest, FrontendKeyHasNetworkOrderAddressAndPort) {
  const auto key = frontendKey({*IpAddress::parse("10.96.0.1"), 443, dataplane::L4Protocol::kUdp});
  EXPECT_EQ(key.addr[0], 10);
  EXPECT_EQ(key.addr[1], 96);
  EXPECT_EQ(key.addr[3], 1);
  for (size_t i = 4; i < 16; ++i)
    EXPECT_EQ(key.addr[i], 0) << i;
  const auto* port = reinterpret_cast<const uint8_t*>(&key.port);
  EXPECT_EQ(port[0], 443 >> 8);
  EXPECT_EQ(port[1], 443 & 0xff);
  EXPECT_EQ(key.family, SKIFF_AF_INET);
  EXPECT_EQ(key.proto, 17);
}

TEST(AbiTest, AddressRoundTrips) {
  for (const char* text : {"192.0.2.1", "2001:db8::1", "::"}) {
    const IpAddress a = *IpAddress::parse(text);
    uint8_t bytes[16];
    copyAddress(a, bytes);
    EXPECT_EQ(addressFromKey(bytes, static_cast<uint8_t>(a.family())), a) << text;
  }
}

TEST(AbiTest, FlowHashIsHashWordsOverTheDocumentedWords) {
  skiff_ct_key k{};
  copyAddress(*IpAddress::parse("198.51.100.7"), k.saddr);
  copyAddress(*IpAddress::parse("203.0.113.10"), k.daddr);
  k.sport = toNetwork16(40000);
  k.dport = toNetwork16(80);
  k.proto = 6;
  k.family = SKIFF_AF_INET;
  // saddr 198.51.100.7 as a little-endian load: 0x076433c6.
  const std::array<uint64_t, 5> words{0x076433c6u, 0, 0x0a7100cbu, 0,
                                      uint64_t{toNetwork16(40000)} |
                                          uint64_t{toNetwork16(80)} << 16 | uint64_t{6} << 32 |
                                          uint64_t{4} << 40};
  EXPECT_EQ(flowHash(k), dataplane::hashWords(words, SKIFF_FLOW_HASH_SEED));
  // Every field counts.
  skiff_ct_key other = k;
  other.sport = toNetwork16(40001);
  EXPECT_NE(flowHash(k), flowHash(other));
  other = k;
  other.dir = SKIFF_CT_REPLY;  // not part of the hash
  EXPECT_EQ(flowHash(k), flowHash(other));
}

TEST(AbiTest, SourceRangeKeyCountsServiceAndFamilyBits) {
  const auto key = sourceRangeKey(7, *dataplane::IpPrefix::parse("192.0.2.0/24"));
  EXPECT_EQ(key.prefixlen, 64u + 24u);
  EXPECT_EQ(key.svc_id, 7u);
  EXPECT_EQ(key.family, SKIFF_AF_INET);
  EXPECT_EQ(key.addr[2], 2);
}

TEST(AbiTest, DropIndicesFollowDropReason) {
  EXPECT_EQ(dropIndex(SKIFF_DROP_NO_BACKEND),
            static_cast<size_t>(dataplane::DropReason::kNoBackend));
  EXPECT_EQ(dropIndex(SKIFF_DROP_NO_LOCAL_BACKEND),
            static_cast<size_t>(dataplane::DropReason::kNoLocalBackend));
  EXPECT_EQ(dropIndex(SKIFF_DROP_SOURCE_RANGE),
            static_cast<size_t>(dataplane::DropReason::kSourceRangeDenied));
  EXPECT_EQ(dropIndex(SKIFF_DROP_CT_FULL),
            static_cast<size_t>(dataplane::DropReason::kConntrackFull));
  EXPECT_EQ(dropIndex(SKIFF_DROP_MALFORMED),
            static_cast<size_t>(dataplane::DropReason::kMalformedPacket));
  EXPECT_EQ(dropIndex(SKIFF_DROP_TX_FAILED), static_cast<size_t>(dataplane::DropReason::kTxFailed));
}

}  // namespace
}  // namespace skiff::ebpf

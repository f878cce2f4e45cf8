// The control protocol's conversions: the model survives a round trip; out-of-range fields are
// refused with their path; framing rejects oversized lengths; the Prometheus text is well formed.

#include "dataplane/dpdk/control_codec.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/dataplane/packet_cases.h"

namespace skiff::dataplane::dpdk {
namespace {

using namespace dataplane::testing;  // NOLINT(google-build-using-namespace): the case vocabulary

TEST(ControlCodecTest, DeltaRoundTrips) {
  ServiceDelta d;
  Service a = toService({.affinity = SessionAffinity::kClientIP,
                         .affinityTimeout = 100,
                         .externalPolicy = TrafficPolicy::kLocal,
                         .sourceRanges = {*IpPrefix::parse("192.0.2.0/24")}});
  a.backends[1].zone = "z1";
  a.backends[2].weight = 0;
  d.upserted.push_back(a);
  d.upserted.push_back(toService(
      {.svcId = 2, .frontend = {kVip6, 443, L4Protocol::kUdp}, .backends = v6Backends()}));
  d.removed = {"ns/gone:"};
  v1::ApplyRequest p;
  toProto(d, p);
  auto back = fromProto(p);
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->upserted, d.upserted);
  EXPECT_EQ(back->removed, d.removed);
  EXPECT_EQ(back->replaceAll, d.replaceAll);
}

TEST(ControlCodecTest, FieldsOutOfRangeNameTheirPath) {
  ServiceDelta d;
  d.upserted.push_back(toService({}));
  v1::ApplyRequest p;
  toProto(d, p);
  v1::ApplyRequest q = p;
  q.mutable_upserted(0)->mutable_backends(1)->set_address("abc");
  EXPECT_EQ(fromProto(q).message(), "upserted[0].backends[1].address: not 4 or 16 bytes");
  q = p;
  q.mutable_upserted(0)->mutable_frontends(0)->set_port(70000);
  EXPECT_EQ(fromProto(q).message(), "upserted[0].frontends[0].port: 70000 > 65535");
  q = p;
  q.mutable_upserted(0)->set_affinity(7);
  EXPECT_FALSE(fromProto(q).ok());
}

TEST(ControlCodecTest, FramingRefusesOversizedMessages) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  v1::Request req;
  req.mutable_stats();
  ASSERT_TRUE(writeMessage(fds[0], req).ok());
  v1::Request got;
  ASSERT_TRUE(readMessage(fds[1], got).ok());
  EXPECT_TRUE(got.has_stats());
  const unsigned char huge[4] = {0x7f, 0xff, 0xff, 0xff};
  ASSERT_EQ(write(fds[0], huge, 4), 4);
  const Status s = readMessage(fds[1], got);
  EXPECT_NE(s.message().find("exceeds the limit"), std::string::npos) << s.message();
  close(fds[0]);
  EXPECT_NE(readMessage(fds[1], got).message().find("closed"), std::string::npos);
  close(fds[1]);
}

TEST(ControlCodecTest, PrometheusTextHasTypesAndEscapedLabels) {
  DataplaneStats st;
  ServiceStats s;
  s.id = "ns/we\"b:http";
  s.packets = 7;
  s.drops[static_cast<size_t>(DropReason::kNoBackend)] = 2;
  st.services.push_back(s);
  v1::Stats p;
  toProto(st, p);
  const std::string text = prometheusText(p);
  EXPECT_NE(text.find("# TYPE skiff_dpdk_service_packets_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("skiff_dpdk_service_packets_total{service=\"ns/we\\\"b:http\"} 7\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("skiff_dpdk_service_drops_total{service=\"ns/we\\\"b:http\",reason="
                      "\"NoBackend\"} 2\n"),
            std::string::npos);
  EXPECT_EQ(fromProto(p), st);
}

}  // namespace
}  // namespace skiff::dataplane::dpdk

// The DPDK pipeline against the shared packet-case table (tests/dataplane/packet_cases.h), the
// same cases tests/ebpf/xdp_test.cc runs through the XDP program: same verdicts, same output
// bytes, same counters. No EAL: the pipeline works on byte buffers. Then the pipeline's own
// cases: every truncation of valid frames, and bursts that give what single packets give.

#include "dataplane/dpdk/pipeline.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "dataplane/dpdk/tables.h"
#include "tests/dataplane/dpdk/case_env.h"
#include "tests/dataplane/packet_cases.h"

namespace skiff::dataplane::dpdk {
namespace {

using namespace dataplane::testing;  // NOLINT(google-build-using-namespace): the case vocabulary

class DpdkCaseTest : public ::testing::TestWithParam<PacketCase> {};

TEST_P(DpdkCaseTest, Run) {
  const PacketCase& tc = GetParam();
  DpdkCaseEnv env(tc.options ? tc.options() : EnvOptions{});
  runCase(tc, env);
}

INSTANTIATE_TEST_SUITE_P(Packets, DpdkCaseTest, ::testing::ValuesIn(packetCases()),
                         [](const ::testing::TestParamInfo<PacketCase>& param) {
                           return param.param.name;
                         });

// Every prefix of valid frames (IPv4/IPv6, TCP/UDP, VLAN, ICMP errors) ends in PASS or DROP, and
// only the whole frame is translated.
TEST(DpdkPipelineTest, EveryTruncationIsHandled) {
  DpdkCaseEnv env(EnvOptions{});
  env.program({});
  env.program({.svcId = 2, .frontend = {kVip6, 443, L4Protocol::kTcp}, .backends = v6Backends()});
  env.program(
      {.svcId = 3, .frontend = {kVip, 53, L4Protocol::kUdp}, .backends = {{31, ip("10.0.3.1")}}});
  env.mustForward(buildPacket(syn(40000)));
  const PacketSpec first6 = syn(40000, kClient6, kVip6, 443);
  env.mustForward(buildPacket(first6));
  const CaseBackend b6 = backendById(v6Backends(), env.maglevPick(2, first6));
  const PacketSpec delivered6 = syn(40000, kClient6, b6.address, b6.port);
  PacketSpec udp = syn(40000, kClient, kVip, 53);
  udp.proto = 17;
  PacketSpec vlan = syn(40002);
  vlan.vlanTags = 1;
  PacketSpec delivered = syn(40000);
  delivered.dst = backendById(threeBackends(), env.maglevPick(1, syn(40000))).address;
  delivered.dport = 8080;
  const std::vector<Bytes> frames = {
      buildPacket(syn(40001)),
      buildPacket(syn(40001, kClient6, kVip6, 443)),
      buildPacket(udp),
      buildPacket(vlan),
      buildIcmp4Error(delivered.dst, kClient, 3, 4, ipPart(buildPacket(delivered))),
      buildIcmp6Error(ip("fd00::1"), kClient6, 1, 4, ipPart(buildPacket(delivered6))),
  };
  for (const Bytes& full : frames) {
    for (size_t len = 0; len <= full.size(); ++len) {
      Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
      const RunResult r = env.run(cut);
      ASSERT_TRUE(r.ok);
      if (len < full.size()) {
        EXPECT_NE(r.verdict, testing::Verdict::kTx) << "length " << len << " of " << full.size();
      } else {
        EXPECT_EQ(r.verdict, testing::Verdict::kTx);
      }
    }
  }
}

// A burst holding a new flow's first two packets, a reply and traffic for no service gives what
// the packets one by one give: one new flow, the second packet established, and the bulk
// conntrack lookup does not hide the entry the first packet created.
TEST(DpdkPipelineTest, BurstMatchesSinglePackets) {
  const CaseService def;
  std::vector<Bytes> frames;
  frames.push_back(buildPacket(syn(41000)));
  PacketSpec ack = syn(41000);
  ack.tcpFlags = kTcpAck;
  frames.push_back(buildPacket(ack));
  frames.push_back(buildPacket(syn(41001, kClient, kVip, 81)));  // no service
  frames.push_back(buildPacket(syn(41002)));

  DpdkCaseEnv single(EnvOptions{});
  single.program(def);
  std::vector<RunResult> one;
  for (const Bytes& f : frames)
    one.push_back(single.run(f));

  DpdkCaseEnv burst(EnvOptions{});
  burst.program(def);
  const std::vector<RunResult> many = burst.runBurst(frames);
  ASSERT_EQ(many.size(), one.size());
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(toString(many[i].verdict), toString(one[i].verdict)) << i;
    EXPECT_EQ(many[i].out, one[i].out) << i;
  }
  EXPECT_EQ(burst.serviceStats(1).newFlows, 2u);
  EXPECT_EQ(burst.serviceStats(1).packets, 3u);
  EXPECT_EQ(single.serviceStats(1).newFlows, 2u);
}

// Flows outlive snapshots: a table rebuilt for an unrelated change keeps every flow where it was.
TEST(DpdkPipelineTest, FlowsSurviveNewSnapshots) {
  DpdkCaseEnv env(EnvOptions{});
  env.program({});
  env.mustForward(buildPacket(syn(42000)));
  const uint32_t first = env.maglevPick(1, syn(42000));
  env.program({.svcId = 2, .frontend = {kVip6, 443, L4Protocol::kTcp}, .backends = v6Backends()});
  PacketSpec ack = syn(42000);
  ack.tcpFlags = kTcpAck;
  const RunResult r = env.run(buildPacket(ack));
  EXPECT_EQ(r.verdict, testing::Verdict::kTx);
  EXPECT_EQ(r.out, dnatTo(ack, backendById(threeBackends(), first)));
  EXPECT_EQ(env.serviceStats(1).newFlows, 1u);
}

}  // namespace
}  // namespace skiff::dataplane::dpdk

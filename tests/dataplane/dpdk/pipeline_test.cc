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

// Bursts equal single packets while conntrack churns: a table of 8 entries with LRU, 20 flows
// (new, established, FIN, replies from every backend) in bursts of 32, so that inserts in a burst
// evict entries that later packets of the same burst had found in the bulk lookup. Both sides
// see the same clock per burst, so LRU picks the same victims.
TEST(DpdkPipelineTest, BurstsMatchSinglePacketsUnderEviction) {
  EnvOptions opts;
  opts.conntrack = 8;
  opts.conntrackLru = true;
  const PipelineConfig cfg = caseConfig(opts);
  TableBuilder builder(cfg.capacities);
  ServiceDelta delta;
  delta.upserted.push_back(toService(CaseService{}));
  ASSERT_TRUE(builder.apply(delta).ok());
  const std::unique_ptr<Tables> tables = builder.build();
  Pipeline single(cfg);
  Pipeline burst(cfg);

  // Groups of four: a client packet of flow (g * 7) % 20, then a reply to it from each of the
  // three backends (only the flow's own is translated).
  std::vector<Bytes> frames;
  for (uint32_t g = 0; g < 80; ++g) {
    const auto sport = static_cast<uint16_t>(43000 + (g * 7) % 20);
    PacketSpec spec = syn(sport);
    if (g % 5 == 1) spec.tcpFlags = kTcpAck;
    if (g % 23 == 22) spec.tcpFlags = kTcpAck | 0x01;  // FIN
    frames.push_back(buildPacket(spec));
    for (const CaseBackend& b : threeBackends()) {
      PacketSpec reply{.src = b.address, .dst = kClient, .sport = b.port, .dport = sport};
      reply.tcpFlags = kTcpAck;
      frames.push_back(buildPacket(reply));
    }
  }
  size_t translated = 0, replies = 0;
  for (size_t base = 0; base < frames.size(); base += 32) {
    const uint64_t now = 1000000000ULL + base * 1000;
    std::vector<Bytes> one, many;
    std::vector<PacketRef> refs;
    std::vector<Verdict> vOne, vMany(32);
    for (size_t i = base; i < base + 32; ++i) {
      one.emplace_back(frames[i].size() + 64, 0);
      many.emplace_back(frames[i].size() + 64, 0);
      std::copy(frames[i].begin(), frames[i].end(), one.back().begin());
      std::copy(frames[i].begin(), frames[i].end(), many.back().begin());
    }
    for (size_t i = 0; i < 32; ++i) {
      PacketRef r{one[i].data(), static_cast<uint32_t>(frames[base + i].size()),
                  static_cast<uint32_t>(one[i].size())};
      vOne.push_back(single.process(*tables, r, now));
      refs.push_back({many[i].data(), r.len, static_cast<uint32_t>(many[i].size())});
    }
    burst.processBurst(*tables, refs.data(), vMany.data(), refs.size(), now);
    for (size_t i = 0; i < 32; ++i) {
      ASSERT_EQ(static_cast<int>(vMany[i]), static_cast<int>(vOne[i])) << "packet " << base + i;
      EXPECT_EQ(many[i], one[i]) << "packet " << base + i;
      translated += vOne[i] == Verdict::kTx;
      replies += vOne[i] == Verdict::kTx && (base + i) % 4 != 0;
    }
  }
  EXPECT_GT(single.conntrack().evictions(), 20u);  // the churn the test is about
  EXPECT_EQ(burst.conntrack().evictions(), single.conntrack().evictions());
  EXPECT_EQ(burst.conntrack().size(), single.conntrack().size());
  EXPECT_GT(translated, 100u);
  EXPECT_GT(replies, 40u);
  const LcoreCounters& a = single.counters();
  const LcoreCounters& b = burst.counters();
  for (size_t e = 0; e < kEventCount; ++e)
    EXPECT_EQ(b.events[e].get(), a.events[e].get()) << toString(static_cast<Event>(e));
  EXPECT_EQ(b.rxPackets.get(), 320u);
  EXPECT_EQ(b.txPackets.get(), a.txPackets.get());
  EXPECT_EQ(b.passPackets.get(), a.passPackets.get());
  EXPECT_EQ(b.services[1].newFlows.get(), a.services[1].newFlows.get());
  EXPECT_EQ(b.services[1].packets.get(), a.services[1].packets.get());
}

// Conntrack full (no LRU): a burst of 32 new flows is forwarded by Maglev alone, each to the
// backend Maglev picks, with one failed insert per untracked flow; the same flows' next packets
// go to the same backends.
TEST(DpdkPipelineTest, FullConntrackForwardsBurstsByMaglevAlone) {
  EnvOptions opts;
  opts.conntrack = 2;  // one flow
  opts.conntrackLru = false;
  DpdkCaseEnv env(opts);
  env.program({});
  std::vector<Bytes> syns, acks;
  std::vector<Bytes> wantSyn, wantAck;
  for (uint16_t i = 0; i < 32; ++i) {
    const PacketSpec s = syn(static_cast<uint16_t>(44000 + i));
    PacketSpec a = s;
    a.tcpFlags = kTcpAck;
    const CaseBackend b = backendById(threeBackends(), env.maglevPick(1, s));
    syns.push_back(buildPacket(s));
    acks.push_back(buildPacket(a));
    wantSyn.push_back(dnatTo(s, b));
    wantAck.push_back(dnatTo(a, b));
  }
  const std::vector<RunResult> first = env.runBurst(syns);
  for (size_t i = 0; i < 32; ++i) {
    EXPECT_EQ(first[i].verdict, testing::Verdict::kTx) << i;
    EXPECT_EQ(first[i].out, wantSyn[i]) << i;
  }
  EXPECT_EQ(env.event(CaseEvent::kCtInsertFailed), 31u);
  EXPECT_EQ(env.pipeline().conntrack().size(), 2u);
  const std::vector<RunResult> second = env.runBurst(acks);
  for (size_t i = 0; i < 32; ++i) {
    EXPECT_EQ(second[i].verdict, testing::Verdict::kTx) << i;
    EXPECT_EQ(second[i].out, wantAck[i]) << i;
  }
  EXPECT_EQ(env.event(CaseEvent::kCtInsertFailed), 62u);
  EXPECT_EQ(env.serviceStats(1).packets, 64u);
  EXPECT_EQ(env.serviceStats(1).newFlows, 63u);  // the tracked flow was new once
}

}  // namespace
}  // namespace skiff::dataplane::dpdk

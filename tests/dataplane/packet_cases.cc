#include "tests/dataplane/packet_cases.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <span>

#include "dataplane/flow_hash.h"
#include "dataplane/selection.h"

namespace skiff::dataplane::testing {

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

const IpAddress kClient = ip("198.51.100.7");
const IpAddress kVip = ip("203.0.113.10");
const IpAddress kClient6 = ip("2001:db8:1::7");
const IpAddress kVip6 = ip("2001:db8:ff::10");

std::vector<CaseBackend> fourBackends() {
  return {{11, ip("10.0.1.1")}, {12, ip("10.0.1.2")}, {13, ip("10.0.1.3")}, {14, ip("10.0.1.4")}};
}

std::vector<CaseBackend> threeBackends() {
  auto b = fourBackends();
  b.pop_back();
  return b;
}

std::vector<CaseBackend> v6Backends() {
  return {{21, ip("fd00::1"), 8443}, {22, ip("fd00::2"), 8443}, {23, ip("fd00::3"), 8443}};
}

Service toService(const CaseService& def) {
  Service s;
  s.id = "cases/svc" + std::to_string(def.svcId) + ":";
  s.frontends = {{def.frontend, def.kind}};
  for (const CaseBackend& b : def.backends) {
    Backend m;
    m.address = b.address;
    m.port = b.port;
    m.ready = b.state == BackendState::kReady || b.state == BackendState::kRemote;
    m.serving = b.state != BackendState::kGone;
    m.terminating = b.state == BackendState::kTerminating || b.state == BackendState::kGone;
    m.local = b.state != BackendState::kRemote;
    s.backends.push_back(m);
  }
  s.affinity = def.affinity;
  s.affinityTimeoutSeconds = def.affinityTimeout;
  s.externalTrafficPolicy = def.externalPolicy;
  s.loadBalancerSourceRanges = def.sourceRanges;
  s.maglevTableSize = kCaseRingSize;
  return s;
}

EligibleBackends caseEligible(const CaseService& def) {
  const Service s = toService(def);
  return eligibleBackends(s, def.frontend.address.family(),
                          backendScope(s, def.kind, TrafficOrigin::kExternal));
}

std::string_view toString(Verdict v) {
  switch (v) {
    case Verdict::kPass:
      return "PASS";
    case Verdict::kDrop:
      return "DROP";
    case Verdict::kTx:
      return "TX";
  }
  return "?";
}

void CaseEnv::mustForward(const Bytes& frame) {
  const RunResult r = run(frame);
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.verdict, Verdict::kTx);
}

void CaseEnv::recordProgram(const CaseService& def) {
  const EligibleBackends el = caseEligible(def);
  std::vector<MaglevBackend> mb;
  for (uint32_t i : el.indices) {
    const CaseBackend& b = def.backends[i];
    mb.push_back({{b.address, b.port}, 1, b.id});
  }
  auto table = buildMaglevTable(mb, kCaseRingSize);
  ASSERT_TRUE(table.ok()) << table.message();
  tables_[def.svcId] = std::move(*table);
}

uint32_t CaseEnv::maglevPick(uint32_t svcId, const PacketSpec& spec) const {
  return pickIn(tables_.at(svcId), spec);
}

uint32_t CaseEnv::pickIn(const MaglevTable& table, const PacketSpec& spec) {
  uint8_t s[16], d[16];
  std::copy(spec.src.bytes().begin(), spec.src.bytes().end(), s);
  std::copy(spec.dst.bytes().begin(), spec.dst.bytes().end(), d);
  const uint8_t sp[2] = {static_cast<uint8_t>(spec.sport >> 8), static_cast<uint8_t>(spec.sport)};
  const uint8_t dp[2] = {static_cast<uint8_t>(spec.dport >> 8), static_cast<uint8_t>(spec.dport)};
  uint16_t sport, dport;
  std::memcpy(&sport, sp, 2);
  std::memcpy(&dport, dp, 2);
  const uint64_t h =
      flowHash(s, d, sport, dport, spec.proto, static_cast<uint8_t>(spec.src.family()));
  return table[h % table.size()];
}

PacketSpec syn(uint16_t sport, const IpAddress& client, const IpAddress& vip, uint16_t dport) {
  return PacketSpec{.src = client, .dst = vip, .sport = sport, .dport = dport};
}

Bytes swapMacs(Bytes frame) {
  std::swap_ranges(frame.begin(), frame.begin() + 6, frame.begin() + 6);
  return frame;
}

// A copy: callers pass temporary lists.
CaseBackend backendById(const std::vector<CaseBackend>& list, uint32_t id) {
  for (const CaseBackend& b : list) {
    if (b.id == id) return b;
  }
  ADD_FAILURE() << "no backend " << id;
  return {};
}

// The frame a DNAT of `spec` to backend `b` gives (MACs swapped: XDP_TX).
Bytes dnatTo(PacketSpec spec, const CaseBackend& b) {
  spec.dst = b.address;
  spec.dport = b.port;
  return swapMacs(buildPacket(spec));
}

namespace {

// The frame with 4 bytes of IPv4 options (NOPs) after the 20-byte header.
Bytes withIpOptions(Bytes frame) {
  frame.insert(frame.begin() + 34, {1, 1, 1, 1});
  frame[14] = 0x46;
  const auto total = static_cast<uint16_t>((frame[16] << 8 | frame[17]) + 4);
  frame[16] = static_cast<uint8_t>(total >> 8);
  frame[17] = static_cast<uint8_t>(total);
  frame[24] = 0;
  frame[25] = 0;
  const auto check =
      static_cast<uint16_t>(~onesComplementSum(std::span<const uint8_t>(frame).subspan(14, 24)));
  frame[24] = static_cast<uint8_t>(check >> 8);
  frame[25] = static_cast<uint8_t>(check);
  return frame;
}

// A port whose new flow lands on `want(old, new)` (for cases that need a flow whose position
// changes owner, or that would have gone to a given backend).
template <class Pred>
uint16_t findPort(Pred pred, const IpAddress& client = kClient) {
  for (uint32_t p = 40000; p < 60000; ++p) {
    if (pred(syn(static_cast<uint16_t>(p), client))) return static_cast<uint16_t>(p);
  }
  ADD_FAILURE() << "no port found";
  return 40000;
}

MaglevTable tableOf(const std::vector<CaseBackend>& backends) {
  std::vector<MaglevBackend> mb;
  for (const CaseBackend& b : backends) {
    if (b.state == BackendState::kReady) mb.push_back({{b.address, b.port}, 1, b.id});
  }
  return *buildMaglevTable(mb, kCaseRingSize);
}

}  // namespace

std::vector<PacketCase> packetCases() {
  std::vector<PacketCase> c;

  c.push_back({
      .name = "NewTcpFlow",
      .description = "a new TCP flow is DNATed to the Maglev pick",
      .setup = [](CaseEnv& e) { e.program({}); },
      .input = [](CaseEnv&) { return buildPacket(syn(40000)); },
      .expected =
          [](CaseEnv& e) {
            e.backend = e.maglevPick(1, syn(40000));
            return Expected{Verdict::kTx,
                            dnatTo(syn(40000), backendById(threeBackends(), e.backend))};
          },
      .after =
          [](CaseEnv& e) {
            const auto s = e.serviceStats(1);
            EXPECT_EQ(s.newFlows, 1u);
            EXPECT_EQ(s.packets, 1u);
            EXPECT_EQ(e.backendStats(e.backend).packets, 1u);
            EXPECT_EQ(e.backendStats(e.backend).newFlows, 1u);
          },
  });

  c.push_back({
      .name = "EstablishedFlowKeepsBackend",
      .description = "an established flow keeps its backend when a new backend takes its slot",
      .setup =
          [](CaseEnv& e) {
            const auto before = tableOf(threeBackends());
            const auto after = tableOf(fourBackends());
            e.port = findPort([&](const PacketSpec& s) {
              return CaseEnv::pickIn(before, s) != CaseEnv::pickIn(after, s);
            });
            e.backend = CaseEnv::pickIn(before, syn(e.port));
            e.program({});
            e.mustForward(buildPacket(syn(e.port)));
            CaseService grown;
            grown.backends = fourBackends();
            e.program(grown);
            EXPECT_NE(e.maglevPick(1, syn(e.port)), e.backend);
          },
      .input =
          [](CaseEnv& e) {
            auto s = syn(e.port);
            s.tcpFlags = kTcpAck;
            return buildPacket(s);
          },
      .expected =
          [](CaseEnv& e) {
            auto s = syn(e.port);
            s.tcpFlags = kTcpAck;
            return Expected{Verdict::kTx, dnatTo(s, backendById(fourBackends(), e.backend))};
          },
      .after = [](CaseEnv& e) { EXPECT_EQ(e.serviceStats(1).newFlows, 1u); },
  });

  c.push_back({
      .name = "ReplyReverseNat",
      .description = "a reply from the backend leaves with the frontend as its source",
      .setup =
          [](CaseEnv& e) {
            e.program({});
            e.backend = e.maglevPick(1, syn(40000));
            e.mustForward(buildPacket(syn(40000)));
          },
      .input =
          [](CaseEnv& e) {
            const CaseBackend b = backendById(threeBackends(), e.backend);
            return buildPacket({.src = b.address,
                                .dst = kClient,
                                .sport = b.port,
                                .dport = 40000,
                                .tcpFlags = kTcpSyn | kTcpAck});
          },
      .expected =
          [](CaseEnv&) {
            return Expected{Verdict::kTx, swapMacs(buildPacket({.src = kVip,
                                                                .dst = kClient,
                                                                .sport = 80,
                                                                .dport = 40000,
                                                                .tcpFlags = kTcpSyn | kTcpAck}))};
          },
      .after =
          [](CaseEnv& e) {
            EXPECT_EQ(e.event(CaseEvent::kReplyTranslated), 1u);
            EXPECT_EQ(e.serviceStats(1).packets, 2u);
            EXPECT_EQ(e.backendStats(e.backend).packets, 2u);
          },
  });

  c.push_back({
      .name = "TerminatingBackendKeepsFlow",
      .description = "a flow to a backend that starts terminating stays with it",
      .setup =
          [](CaseEnv& e) {
            e.program({});
            e.backend = e.maglevPick(1, syn(40000));
            e.mustForward(buildPacket(syn(40000)));
            CaseService d;
            for (auto& b : d.backends) {
              if (b.id == e.backend) b.state = BackendState::kTerminating;
            }
            e.program(d);
            EXPECT_NE(e.maglevPick(1, syn(40000)), e.backend);
          },
      .input =
          [](CaseEnv&) {
            auto s = syn(40000);
            s.tcpFlags = kTcpAck;
            return buildPacket(s);
          },
      .expected =
          [](CaseEnv& e) {
            auto s = syn(40000);
            s.tcpFlags = kTcpAck;
            return Expected{Verdict::kTx, dnatTo(s, backendById(threeBackends(), e.backend))};
          },
  });

  c.push_back({
      .name = "NewFlowAvoidsTerminatingBackend",
      .description = "a new flow that would hash to a terminating backend goes elsewhere",
      .setup =
          [](CaseEnv& e) {
            const auto all = tableOf(threeBackends());
            e.port = findPort([&](const PacketSpec& s) { return CaseEnv::pickIn(all, s) == 12; });
            CaseService d;
            d.backends[1].state = BackendState::kTerminating;  // id 12
            e.program(d);
            e.backend = e.maglevPick(1, syn(e.port));
            EXPECT_NE(e.backend, 12u);
          },
      .input = [](CaseEnv& e) { return buildPacket(syn(e.port)); },
      .expected =
          [](CaseEnv& e) {
            return Expected{Verdict::kTx,
                            dnatTo(syn(e.port), backendById(threeBackends(), e.backend))};
          },
  });

  c.push_back({
      .name = "SourceRangeDenied",
      .description = "a client outside loadBalancerSourceRanges is dropped and counted",
      .setup =
          [](CaseEnv& e) {
            CaseService d;
            d.sourceRanges = {*IpPrefix::parse("192.0.2.0/24")};
            e.program(d);
          },
      .input = [](CaseEnv&) { return buildPacket(syn(40000)); },
      .expected =
          [](CaseEnv&) {
            return Expected{Verdict::kDrop, std::nullopt};
          },
      .after =
          [](CaseEnv& e) {
            const auto s = e.serviceStats(1);
            EXPECT_EQ(s.drop(DropReason::kSourceRangeDenied), 1u);
            EXPECT_EQ(s.newFlows, 0u);
          },
  });

  c.push_back({
      .name = "SourceRangeAllowed",
      .description = "a client inside loadBalancerSourceRanges is load-balanced",
      .setup =
          [](CaseEnv& e) {
            CaseService d;
            d.sourceRanges = {*IpPrefix::parse("192.0.2.0/24"), *IpPrefix::parse("2001:db8::/32")};
            e.program(d);
          },
      .input = [](CaseEnv&) { return buildPacket(syn(40000, ip("192.0.2.9"))); },
      .expected =
          [](CaseEnv& e) {
            const auto s = syn(40000, ip("192.0.2.9"));
            return Expected{Verdict::kTx,
                            dnatTo(s, backendById(threeBackends(), e.maglevPick(1, s)))};
          },
  });

  c.push_back({
      .name = "Ipv6NewFlow",
      .description = "an IPv6 TCP flow is DNATed with the L4 checksum fixed",
      .setup =
          [](CaseEnv& e) {
            e.program({.frontend = {kVip6, 443, L4Protocol::kTcp}, .backends = v6Backends()});
          },
      .input = [](CaseEnv&) { return buildPacket(syn(40000, kClient6, kVip6, 443)); },
      .expected =
          [](CaseEnv& e) {
            const auto s = syn(40000, kClient6, kVip6, 443);
            return Expected{Verdict::kTx, dnatTo(s, backendById(v6Backends(), e.maglevPick(1, s)))};
          },
  });

  c.push_back({
      .name = "Ipv6Reply",
      .description = "an IPv6 reply is reverse-NATed",
      .setup =
          [](CaseEnv& e) {
            e.program({.frontend = {kVip6, 443, L4Protocol::kTcp}, .backends = v6Backends()});
            const auto s = syn(40000, kClient6, kVip6, 443);
            e.backend = e.maglevPick(1, s);
            e.mustForward(buildPacket(s));
          },
      .input =
          [](CaseEnv& e) {
            const CaseBackend b = backendById(v6Backends(), e.backend);
            return buildPacket({.src = b.address,
                                .dst = kClient6,
                                .sport = b.port,
                                .dport = 40000,
                                .tcpFlags = kTcpAck});
          },
      .expected =
          [](CaseEnv&) {
            return Expected{Verdict::kTx, swapMacs(buildPacket({.src = kVip6,
                                                                .dst = kClient6,
                                                                .sport = 443,
                                                                .dport = 40000,
                                                                .tcpFlags = kTcpAck}))};
          },
  });

  const auto udpSpec = [](bool noChecksum) {
    PacketSpec s = syn(40000, kClient, kVip, 53);
    s.proto = 17;
    s.udpNoChecksum = noChecksum;
    return s;
  };
  const CaseService udpService{.frontend = {kVip, 53, L4Protocol::kUdp}};
  for (bool noChecksum : {false, true}) {
    c.push_back({
        .name = noChecksum ? "UdpWithoutChecksum" : "UdpNewFlow",
        .description = noChecksum ? "an IPv4 UDP datagram without a checksum keeps none"
                                  : "a UDP datagram is DNATed with its checksum fixed",
        .setup = [=](CaseEnv& e) { e.program(udpService); },
        .input = [=](CaseEnv&) { return buildPacket(udpSpec(noChecksum)); },
        .expected =
            [=](CaseEnv& e) {
              const auto s = udpSpec(noChecksum);
              return Expected{Verdict::kTx,
                              dnatTo(s, backendById(threeBackends(), e.maglevPick(1, s)))};
            },
    });
  }

  c.push_back({
      .name = "UdpLeavesBackendThatStoppedServing",
      .description = "a UDP flow whose backend stopped serving is reselected",
      .setup =
          [=](CaseEnv& e) {
            e.program(udpService);
            e.backend = e.maglevPick(1, udpSpec(false));
            e.mustForward(buildPacket(udpSpec(false)));
            CaseService d = udpService;
            for (auto& b : d.backends) {
              if (b.id == e.backend) b.state = BackendState::kGone;
            }
            e.program(d);
          },
      .input = [=](CaseEnv&) { return buildPacket(udpSpec(false)); },
      .expected =
          [=](CaseEnv& e) {
            const uint32_t now = e.maglevPick(1, udpSpec(false));
            EXPECT_NE(now, e.backend);
            return Expected{Verdict::kTx,
                            dnatTo(udpSpec(false), backendById(threeBackends(), now))};
          },
      .after = [](CaseEnv& e) { EXPECT_EQ(e.event(CaseEvent::kCtReselected), 1u); },
  });

  c.push_back({
      .name = "RemovedBackendFlowReselected",
      .description = "a TCP flow whose backend left the service is reselected",
      .setup =
          [](CaseEnv& e) {
            e.program({});
            e.backend = e.maglevPick(1, syn(40000));
            e.mustForward(buildPacket(syn(40000)));
            CaseService d;
            std::erase_if(d.backends, [&](const CaseBackend& b) { return b.id == e.backend; });
            e.program(d);
          },
      .input = [](CaseEnv&) { return buildPacket(syn(40000)); },
      .expected =
          [](CaseEnv& e) {
            const uint32_t now = e.maglevPick(1, syn(40000));
            EXPECT_NE(now, e.backend);
            return Expected{Verdict::kTx, dnatTo(syn(40000), backendById(threeBackends(), now))};
          },
  });

  c.push_back({
      .name = "VlanTagged",
      .description = "a frame with two VLAN tags is translated behind its tags",
      .setup = [](CaseEnv& e) { e.program({}); },
      .input =
          [](CaseEnv&) {
            auto s = syn(40000);
            s.vlanTags = 2;
            return buildPacket(s);
          },
      .expected =
          [](CaseEnv& e) {
            auto s = syn(40000);
            s.vlanTags = 2;
            return Expected{Verdict::kTx,
                            dnatTo(s, backendById(threeBackends(), e.maglevPick(1, s)))};
          },
      .vlanTags = 2,
  });

  for (bool fromBackend : {true, false}) {
    c.push_back({
        .name = fromBackend ? "IcmpErrorFromBackend" : "IcmpErrorFromRouter",
        .description = fromBackend
                           ? "an ICMP error from the backend about a tracked flow looks as if the "
                             "frontend sent it"
                           : "an ICMP error from a router quotes the frontend, keeps its source",
        .setup =
            [](CaseEnv& e) {
              e.program({});
              e.backend = e.maglevPick(1, syn(40000));
              e.mustForward(buildPacket(syn(40000)));
            },
        .input =
            [=](CaseEnv& e) {
              const CaseBackend b = backendById(threeBackends(), e.backend);
              PacketSpec delivered = syn(40000);
              delivered.dst = b.address;
              delivered.dport = b.port;
              return buildIcmp4Error(fromBackend ? b.address : ip("10.9.9.9"), kClient, 3, 3,
                                     ipPart(buildPacket(delivered)));
            },
        .expected =
            [=](CaseEnv&) {
              return Expected{Verdict::kTx,
                              swapMacs(buildIcmp4Error(fromBackend ? kVip : ip("10.9.9.9"), kClient,
                                                       3, 3, ipPart(buildPacket(syn(40000)))))};
            },
        .after = [](CaseEnv& e) { EXPECT_EQ(e.event(CaseEvent::kIcmpTranslated), 1u); },
    });
  }

  for (bool fromBackend : {true, false}) {
    c.push_back({
        .name = fromBackend ? "Icmp6ErrorFromBackend" : "Icmp6ErrorFromRouter",
        .description = "an ICMPv6 error about a tracked flow quotes the frontend (and comes from "
                       "it when the backend sent it)",
        .setup =
            [](CaseEnv& e) {
              e.program({.frontend = {kVip6, 443, L4Protocol::kTcp}, .backends = v6Backends()});
              const auto s = syn(40000, kClient6, kVip6, 443);
              e.backend = e.maglevPick(1, s);
              e.mustForward(buildPacket(s));
            },
        .input =
            [=](CaseEnv& e) {
              const CaseBackend b = backendById(v6Backends(), e.backend);
              PacketSpec delivered = syn(40000, kClient6, b.address, b.port);
              return buildIcmp6Error(fromBackend ? b.address : ip("fd00:99::1"), kClient6, 2, 0,
                                     ipPart(buildPacket(delivered)));
            },
        .expected =
            [=](CaseEnv&) {
              return Expected{
                  Verdict::kTx,
                  swapMacs(buildIcmp6Error(fromBackend ? kVip6 : ip("fd00:99::1"), kClient6, 2, 0,
                                           ipPart(buildPacket(syn(40000, kClient6, kVip6, 443)))))};
            },
        .after = [](CaseEnv& e) { EXPECT_EQ(e.event(CaseEvent::kIcmpTranslated), 1u); },
    });
  }

  c.push_back({
      .name = "IcmpErrorAboutReply",
      .description = "an ICMP error sent to the frontend about a reply reaches the backend",
      .setup =
          [](CaseEnv& e) {
            e.program({});
            e.backend = e.maglevPick(1, syn(40000));
            e.mustForward(buildPacket(syn(40000)));
          },
      .input =
          [](CaseEnv&) {
            // The client got the reverse-NATed reply (frontend -> client) and cannot take it.
            PacketSpec reply{
                .src = kVip, .dst = kClient, .sport = 80, .dport = 40000, .tcpFlags = kTcpAck};
            return buildIcmp4Error(kClient, kVip, 3, 3, ipPart(buildPacket(reply)));
          },
      .expected =
          [](CaseEnv& e) {
            const CaseBackend b = backendById(threeBackends(), e.backend);
            PacketSpec reply{.src = b.address,
                             .dst = kClient,
                             .sport = b.port,
                             .dport = 40000,
                             .tcpFlags = kTcpAck};
            return Expected{Verdict::kTx, swapMacs(buildIcmp4Error(kClient, b.address, 3, 3,
                                                                   ipPart(buildPacket(reply))))};
          },
  });

  c.push_back({
      .name = "IcmpErrorUntracked",
      .description = "an ICMP error about an unknown flow passes unchanged",
      .setup = [](CaseEnv& e) { e.program({}); },
      .input =
          [](CaseEnv&) {
            PacketSpec s = syn(40000);
            s.dst = ip("10.0.1.1");
            return buildIcmp4Error(ip("10.0.1.1"), kClient, 3, 3, ipPart(buildPacket(s)));
          },
      .expected =
          [](CaseEnv&) {
            return Expected{Verdict::kPass, std::nullopt};
          },
  });

  for (uint16_t fragment : {uint16_t{0x2000}, uint16_t{0x0005}}) {
    c.push_back({
        .name = fragment == 0x2000 ? "FirstFragment" : "LaterFragment",
        .description = "an IPv4 fragment to a frontend is passed to the kernel and counted",
        .setup = [](CaseEnv& e) { e.program({}); },
        .input =
            [=](CaseEnv&) {
              auto s = syn(40000);
              s.fragment = fragment;
              return buildPacket(s);
            },
        .expected =
            [](CaseEnv&) {
              return Expected{Verdict::kPass, std::nullopt};
            },
        .after = [](CaseEnv& e) { EXPECT_EQ(e.event(CaseEvent::kFragmentPassed), 1u); },
    });
  }

  c.push_back({
      .name = "Ipv6Fragment",
      .description = "an IPv6 fragment header is passed to the kernel and counted",
      .setup = [](CaseEnv& e) { e.program({}); },
      .input =
          [](CaseEnv&) {
            auto f = buildPacket(syn(40000, kClient6, kVip6, 443));
            f[14 + 6] = 44;  // next header: fragment
            return f;
          },
      .expected =
          [](CaseEnv&) {
            return Expected{Verdict::kPass, std::nullopt};
          },
      .after = [](CaseEnv& e) { EXPECT_EQ(e.event(CaseEvent::kFragmentPassed), 1u); },
  });

  struct Malformed {
    const char* name;
    const char* description;
    std::function<Bytes()> build;
  };
  const std::vector<Malformed> malformed = {
      {"ShortIhl", "an IPv4 header length below 20 bytes",
       [] {
         auto f = buildPacket(syn(40000));
         f[14] = 0x44;
         return f;
       }},
      {"TotalLengthBeyondFrame", "an IPv4 total length beyond the frame",
       [] {
         auto f = buildPacket(syn(40000));
         f.resize(14 + 20 + 12);
         return f;
       }},
      {"TruncatedTcpHeader", "a TCP header cut short with a consistent IPv4 length",
       [] {
         auto f = buildPacket(syn(40000));
         f.resize(14 + 20 + 10);
         f[16] = 0;
         f[17] = 30;
         return f;
       }},
      {"EthernetOnly", "an IPv4 EtherType and nothing after the Ethernet header",
       [] {
         auto f = buildPacket(syn(40000));
         f.resize(14);
         return f;
       }},
      {"TruncatedIpv6", "an IPv6 header cut short",
       [] {
         auto f = buildPacket(syn(40000, kClient6, kVip6, 443));
         f.resize(14 + 30);
         return f;
       }},
      {"BadTcpDataOffset", "a TCP data offset below 5",
       [] {
         auto f = buildPacket(syn(40000));
         f[14 + 20 + 12] = 0x30;
         return f;
       }},
  };
  for (const Malformed& m : malformed) {
    c.push_back({
        .name = m.name,
        .description = std::string(m.description) + " is dropped and counted",
        .setup = [](CaseEnv& e) { e.program({}); },
        .input = [b = m.build](CaseEnv&) { return b(); },
        .expected =
            [](CaseEnv&) {
              return Expected{Verdict::kDrop, std::nullopt};
            },
        .after =
            [](CaseEnv& e) {
              EXPECT_EQ(e.event(CaseEvent::kCtInsertFailed), 0u);
              EXPECT_EQ(e.unattributedDrops(DropReason::kMalformedPacket), 1u);
            },
    });
  }

  c.push_back({
      .name = "NotIp",
      .description = "an ARP frame passes unchanged",
      .setup = [](CaseEnv& e) { e.program({}); },
      .input =
          [](CaseEnv&) {
            Bytes f = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06};
            f.resize(60, 0);
            return f;
          },
      .expected =
          [](CaseEnv&) {
            return Expected{Verdict::kPass, std::nullopt};
          },
  });

  c.push_back({
      .name = "NotAService",
      .description = "traffic to an address:port that is no frontend passes unchanged",
      .setup = [](CaseEnv& e) { e.program({}); },
      .input = [](CaseEnv&) { return buildPacket(syn(40000, kClient, kVip, 81)); },
      .expected =
          [](CaseEnv&) {
            return Expected{Verdict::kPass, std::nullopt};
          },
  });

  c.push_back({
      .name = "NoBackends",
      .description = "a service without backends rejects a new flow with an ICMP port "
                     "unreachable from the frontend, and counts the drop",
      .setup = [](CaseEnv& e) { e.program({.backends = {}}); },
      .input = [](CaseEnv&) { return buildPacket(syn(40000)); },
      .expected =
          [](CaseEnv&) {
            return Expected{
                Verdict::kTx,
                swapMacs(buildIcmp4Error(kVip, kClient, 3, 3, ipPart(buildPacket(syn(40000)))))};
          },
      .after = [](CaseEnv& e) { EXPECT_EQ(e.serviceStats(1).drop(DropReason::kNoBackend), 1u); },
  });

  c.push_back({
      .name = "NoBackendsUdpWithIpOptions",
      .description = "the reject quotes the whole IPv4 header, options included, and 8 bytes",
      .setup =
          [](CaseEnv& e) {
            e.program({.frontend = {kVip, 53, L4Protocol::kUdp}, .backends = {}});
          },
      .input =
          [](CaseEnv&) {
            PacketSpec s = syn(40000, kClient, kVip, 53);
            s.proto = 17;
            return withIpOptions(buildPacket(s));
          },
      .expected =
          [](CaseEnv&) {
            PacketSpec s = syn(40000, kClient, kVip, 53);
            s.proto = 17;
            const Bytes quoted = ipPart(withIpOptions(buildPacket(s)));
            return Expected{Verdict::kTx,
                            swapMacs(buildIcmp4Error(kVip, kClient, 3, 3, quoted, 32))};
          },
  });

  c.push_back({
      .name = "NoBackendsIpv6",
      .description = "an IPv6 flow to a service without backends gets an ICMPv6 port unreachable",
      .setup =
          [](CaseEnv& e) {
            e.program({.frontend = {kVip6, 443, L4Protocol::kTcp}, .backends = {}});
          },
      .input = [](CaseEnv&) { return buildPacket(syn(40000, kClient6, kVip6, 443)); },
      .expected =
          [](CaseEnv&) {
            return Expected{
                Verdict::kTx,
                swapMacs(buildIcmp6Error(kVip6, kClient6, 1, 4,
                                         ipPart(buildPacket(syn(40000, kClient6, kVip6, 443)))))};
          },
      .after = [](CaseEnv& e) { EXPECT_EQ(e.serviceStats(1).drop(DropReason::kNoBackend), 1u); },
  });

  c.push_back({
      .name = "NoBackendsTagged",
      .description = "a tagged frame to a service without backends is dropped, not answered",
      .setup = [](CaseEnv& e) { e.program({.backends = {}}); },
      .input =
          [](CaseEnv&) {
            auto s = syn(40000);
            s.vlanTags = 1;
            return buildPacket(s);
          },
      .expected =
          [](CaseEnv&) {
            return Expected{Verdict::kDrop, std::nullopt};
          },
  });

  c.push_back({
      .name = "NoLocalBackends",
      .description = "Local traffic policy without a local backend drops, counted apart",
      .setup =
          [](CaseEnv& e) {
            CaseService d;
            for (auto& b : d.backends)
              b.state = BackendState::kRemote;  // none is on this node
            d.externalPolicy = TrafficPolicy::kLocal;
            e.program(d);
          },
      .input = [](CaseEnv&) { return buildPacket(syn(40000)); },
      .expected =
          [](CaseEnv&) {
            return Expected{Verdict::kDrop, std::nullopt};
          },
      .after =
          [](CaseEnv& e) { EXPECT_EQ(e.serviceStats(1).drop(DropReason::kNoLocalBackend), 1u); },
  });

  c.push_back({
      .name = "ConntrackFullStillForwards",
      .description = "with conntrack full a new flow is still forwarded by Maglev alone",
      .options =
          [] {
            EnvOptions o;
            o.conntrackLru = false;
            o.conntrack = 2;  // one flow: its forward and reply entries
            return o;
          },
      .setup =
          [](CaseEnv& e) {
            e.program({});
            e.mustForward(buildPacket(syn(40000)));
            e.mustForward(buildPacket(syn(40001)));
            EXPECT_EQ(e.event(CaseEvent::kCtInsertFailed), 1u);
          },
      .input =
          [](CaseEnv&) {
            auto s = syn(40001);
            s.tcpFlags = kTcpAck;
            return buildPacket(s);
          },
      .expected =
          [](CaseEnv& e) {
            auto s = syn(40001);
            s.tcpFlags = kTcpAck;
            return Expected{Verdict::kTx,
                            dnatTo(s, backendById(threeBackends(), e.maglevPick(1, s)))};
          },
      .after =
          [](CaseEnv& e) {
            EXPECT_EQ(e.event(CaseEvent::kCtInsertFailed), 2u);
            EXPECT_EQ(e.serviceStats(1).drop(DropReason::kConntrackFull), 0u);
          },
  });

  c.push_back({
      .name = "ClientIpAffinity",
      .description = "ClientIP affinity sends a client's next new flow to its last backend",
      .setup =
          [](CaseEnv& e) {
            CaseService d;
            d.affinity = SessionAffinity::kClientIP;
            d.affinityTimeout = 100;
            e.program(d);
            e.backend = e.maglevPick(1, syn(40000));
            e.mustForward(buildPacket(syn(40000)));
            const uint32_t first = e.backend;
            e.port = findPort([&](const PacketSpec& s) { return e.maglevPick(1, s) != first; });
          },
      .input = [](CaseEnv& e) { return buildPacket(syn(e.port)); },
      .expected =
          [](CaseEnv& e) {
            return Expected{Verdict::kTx,
                            dnatTo(syn(e.port), backendById(threeBackends(), e.backend))};
          },
  });

  c.push_back({
      .name = "WildcardNodePort",
      .description = "a NodePort on every node address is DNATed, and its reply comes back from "
                     "the address the client used",
      .setup =
          [](CaseEnv& e) {
            e.program({.frontend = {IpAddress(), 30080, L4Protocol::kTcp},
                       .kind = FrontendKind::kNodePort});
            const auto s = syn(40000, kClient, ip("192.168.7.5"), 30080);
            e.backend = e.maglevPick(1, s);
            e.mustForward(buildPacket(s));
          },
      .input =
          [](CaseEnv& e) {
            const CaseBackend b = backendById(threeBackends(), e.backend);
            return buildPacket({.src = b.address,
                                .dst = kClient,
                                .sport = b.port,
                                .dport = 40000,
                                .tcpFlags = kTcpAck});
          },
      .expected =
          [](CaseEnv&) {
            return Expected{Verdict::kTx, swapMacs(buildPacket({.src = ip("192.168.7.5"),
                                                                .dst = kClient,
                                                                .sport = 30080,
                                                                .dport = 40000,
                                                                .tcpFlags = kTcpAck}))};
          },
  });

  return c;
}

void runCase(const PacketCase& tc, CaseEnv& env) {
  SCOPED_TRACE(tc.description);
  if (tc.setup) tc.setup(env);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const Bytes in = tc.input(env);
  const Expected want = tc.expected(env);
  const RunResult got = env.run(in);
  ASSERT_TRUE(got.ok);
  EXPECT_EQ(toString(got.verdict), toString(want.verdict));
  EXPECT_EQ(got.out, want.output.value_or(in));
  if (want.verdict == Verdict::kTx) {
    EXPECT_TRUE(checksumsValid(got.out, tc.vlanTags));
  }
  if (tc.after) tc.after(env);
}

}  // namespace skiff::dataplane::testing

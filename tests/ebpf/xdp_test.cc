// The XDP load balancer against a table of packet cases: each case sets up the maps through the
// MapWriter, builds a frame, runs the program with BPF_PROG_TEST_RUN and checks the verdict, the
// output bytes (built from scratch here, so the program's incremental checksums are checked
// against full ones) and the counters.

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "dataplane/maglev.h"
#include "ebpf/abi.h"
#include "ebpf/loader.h"
#include "ebpf/map_writer.h"
#include "tests/ebpf/packet.h"

namespace skiff::ebpf {
namespace {

using dataplane::FrontendKey;
using dataplane::IpAddress;
using dataplane::IpPrefix;
using dataplane::L4Protocol;
using testing::Bytes;
using testing::PacketSpec;

constexpr uint32_t kRingSize = 1021;
constexpr uint8_t kReady =
    SKIFF_BE_F_READY | SKIFF_BE_F_SERVING | SKIFF_BE_F_ELIGIBLE_CLUSTER | SKIFF_BE_F_ELIGIBLE_LOCAL;
constexpr uint8_t kTerminating = SKIFF_BE_F_SERVING | SKIFF_BE_F_TERMINATING;
constexpr uint8_t kGone = SKIFF_BE_F_TERMINATING;  // neither ready nor serving

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

const IpAddress kClient = ip("198.51.100.7");
const IpAddress kVip = ip("203.0.113.10");
const IpAddress kClient6 = ip("2001:db8:1::7");
const IpAddress kVip6 = ip("2001:db8:ff::10");

struct BackendDef {
  uint32_t id = 0;
  IpAddress address;
  uint16_t port = 8080;
  uint8_t flags = kReady;
};

std::vector<BackendDef> fourBackends() {
  return {{11, ip("10.0.1.1")}, {12, ip("10.0.1.2")}, {13, ip("10.0.1.3")}, {14, ip("10.0.1.4")}};
}

std::vector<BackendDef> threeBackends() {
  auto b = fourBackends();
  b.pop_back();
  return b;
}

std::vector<BackendDef> v6Backends() {
  return {{21, ip("fd00::1"), 8443}, {22, ip("fd00::2"), 8443}, {23, ip("fd00::3"), 8443}};
}

struct ServiceDef {
  uint32_t svcId = 1;
  FrontendKey frontend{kVip, 80, L4Protocol::kTcp};
  uint8_t kind = SKIFF_KIND_LOAD_BALANCER;
  std::vector<BackendDef> backends = threeBackends();
  uint32_t flags = 0;
  uint32_t affinityTimeout = 0;
  // Overrides the selection that the eligible backends imply.
  std::optional<uint8_t> selection;
};

Bytes swapMacs(Bytes frame) {
  std::swap_ranges(frame.begin(), frame.begin() + 6, frame.begin() + 6);
  return frame;
}

PacketSpec syn(uint16_t sport, const IpAddress& client = kClient, const IpAddress& vip = kVip,
               uint16_t dport = 80) {
  return PacketSpec{.src = client, .dst = vip, .sport = sport, .dport = dport};
}

// One loaded copy of the programs with its maps, and what the test wrote into them.
class XdpEnv {
 public:
  explicit XdpEnv(const LoadOptions& options) {
    auto loaded = Programs::load(options);
    if (!loaded.ok()) {
      error_ = loaded.message();
      return;
    }
    programs_ = std::move(*loaded);
    writer_ = std::make_unique<MapWriter>(programs_->maps());
  }

  const std::string& error() const { return error_; }
  MapWriter& writer() { return *writer_; }
  const MapFds& maps() const { return programs_->maps(); }

  struct Run {
    int err = 0;
    uint32_t verdict = 0;
    Bytes out;
  };

  Run run(const Bytes& in) {
    Run r;
    r.out.assign(in.size() + 512, 0);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = r.out.data(),
                .data_size_in = static_cast<uint32_t>(in.size()),
                .data_size_out = static_cast<uint32_t>(r.out.size()), .repeat = 1);
    r.err = bpf_prog_test_run_opts(programs_->xdpProgram(), &opts);
    r.verdict = opts.retval;
    r.out.resize(opts.data_size_out);
    return r;
  }

  // Runs a frame that must be translated, for the steps before the packet under test.
  void mustForward(const Bytes& in) {
    Run r = run(in);
    ASSERT_EQ(r.err, 0);
    ASSERT_EQ(r.verdict, static_cast<uint32_t>(XDP_TX));
  }

  // Programs one service with one frontend: backends, the Maglev ring of the eligible ones (only
  // the positions that changed since the last call), the frontend.
  void program(const ServiceDef& def) {
    std::vector<dataplane::MaglevBackend> eligible;
    for (const BackendDef& b : def.backends) {
      skiff_backend v{};
      copyAddress(b.address, v.addr);
      v.port = toNetwork16(b.port);
      v.family = static_cast<uint8_t>(b.address.family());
      v.flags = b.flags;
      v.svc_id = def.svcId;
      ASSERT_TRUE(writer_->putBackend(b.id, v).ok());
      if (b.flags & SKIFF_BE_F_ELIGIBLE_CLUSTER) {
        eligible.push_back({{b.address, b.port}, 1, b.id});
      }
    }
    for (uint32_t id : listed_[def.svcId]) {
      const bool still = std::any_of(def.backends.begin(), def.backends.end(),
                                     [&](const BackendDef& b) { return b.id == id; });
      if (!still) {
        ASSERT_TRUE(writer_->clearBackend(id).ok());
      }
    }
    listed_[def.svcId].clear();
    for (const BackendDef& b : def.backends)
      listed_[def.svcId].push_back(b.id);

    skiff_service svc{};
    svc.svc_id = def.svcId;
    svc.frontend_id = def.svcId;
    svc.kind = def.kind;
    svc.flags = def.flags;
    svc.affinity_timeout_s = def.affinityTimeout;
    auto table = dataplane::buildMaglevTable(eligible, kRingSize);
    ASSERT_TRUE(table.ok()) << table.message();
    const uint32_t ringId = def.svcId;
    if (!eligible.empty()) {
      auto& old = tables_[def.svcId];
      const auto changed = dataplane::changedPositions(old, *table);
      ASSERT_TRUE(writer_->putRing(ringId, *table, changed).ok());
    }
    tables_[def.svcId] = *table;
    for (int origin = 0; origin < SKIFF_ORIGIN_COUNT; ++origin) {
      svc.ring_id[origin] = eligible.empty() ? SKIFF_ID_NONE : ringId;
      svc.ring_size[origin] = eligible.empty() ? 0 : kRingSize;
      svc.backend_count[origin] = static_cast<uint16_t>(eligible.size());
      svc.selection[origin] =
          def.selection.value_or(eligible.empty() ? SKIFF_SEL_NO_BACKENDS : SKIFF_SEL_READY);
    }
    ASSERT_TRUE(writer_->putFrontend(frontendKey(def.frontend), svc).ok());
  }

  // The backend Maglev gives a new flow of `spec` in service `svcId`'s current table.
  uint32_t maglevPick(uint32_t svcId, const PacketSpec& spec) const {
    return pickIn(tables_.at(svcId), spec);
  }

  static uint32_t pickIn(const dataplane::MaglevTable& table, const PacketSpec& spec) {
    skiff_ct_key key{};
    copyAddress(spec.src, key.saddr);
    copyAddress(spec.dst, key.daddr);
    key.sport = toNetwork16(spec.sport);
    key.dport = toNetwork16(spec.dport);
    key.proto = spec.proto;
    key.family = static_cast<uint8_t>(spec.src.family());
    return table[flowHash(key) % table.size()];
  }

  skiff_svc_stats serviceStats(uint32_t svcId) const {
    auto s = readServiceStats(maps().svcStats, svcId);
    EXPECT_TRUE(s.ok()) << s.message();
    return s.ok() ? *s : skiff_svc_stats{};
  }
  skiff_be_stats backendStats(uint32_t id) const {
    auto s = readBackendStats(maps().backendStats, id);
    EXPECT_TRUE(s.ok()) << s.message();
    return s.ok() ? *s : skiff_be_stats{};
  }
  uint64_t global(uint32_t index) const {
    auto s = readGlobal(maps().global, index);
    EXPECT_TRUE(s.ok()) << s.message();
    return s.ok() ? *s : 0;
  }

  // Scratch space for a case's steps.
  uint16_t port = 40000;
  uint32_t backend = 0;

 private:
  std::string error_;
  std::unique_ptr<Programs> programs_;
  std::unique_ptr<MapWriter> writer_;
  std::map<uint32_t, dataplane::MaglevTable> tables_;
  std::map<uint32_t, std::vector<uint32_t>> listed_;
};

// A copy: callers pass temporary lists.
BackendDef backendById(const std::vector<BackendDef>& list, uint32_t id) {
  for (const BackendDef& b : list) {
    if (b.id == id) return b;
  }
  ADD_FAILURE() << "no backend " << id;
  return {};
}

// The frame a DNAT of `spec` to backend `b` gives (MACs swapped: XDP_TX).
Bytes dnatTo(PacketSpec spec, const BackendDef& b) {
  spec.dst = b.address;
  spec.dport = b.port;
  return swapMacs(testing::buildPacket(spec));
}

// The frame with 4 bytes of IPv4 options (NOPs) after the 20-byte header.
Bytes withIpOptions(Bytes frame) {
  frame.insert(frame.begin() + 34, {1, 1, 1, 1});
  frame[14] = 0x46;
  const auto total = static_cast<uint16_t>((frame[16] << 8 | frame[17]) + 4);
  frame[16] = static_cast<uint8_t>(total >> 8);
  frame[17] = static_cast<uint8_t>(total);
  frame[24] = 0;
  frame[25] = 0;
  const auto check = static_cast<uint16_t>(
      ~testing::onesComplementSum(std::span<const uint8_t>(frame).subspan(14, 24)));
  frame[24] = static_cast<uint8_t>(check >> 8);
  frame[25] = static_cast<uint8_t>(check);
  return frame;
}

struct Expected {
  uint32_t verdict = XDP_PASS;
  // The output frame; nullopt: the input unchanged.
  std::optional<Bytes> output;
};

struct XdpCase {
  std::string name;
  std::string description;
  std::function<LoadOptions()> options;
  std::function<void(XdpEnv&)> setup;
  std::function<Bytes(XdpEnv&)> input;
  std::function<Expected(XdpEnv&)> expected;
  std::function<void(XdpEnv&)> after;
  int vlanTags = 0;
};

LoadOptions testOptions() {
  LoadOptions o;
  o.fwdMode = SKIFF_FWD_TX;
  o.frontends = 64;
  o.services = 64;
  o.backends = 256;
  o.rings = 64;
  o.conntrack = 4096;
  o.sockRevNat = 64;
  o.affinity = 64;
  o.sourceRanges = 64;
  o.withSocketLb = false;
  return o;
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

dataplane::MaglevTable tableOf(const std::vector<BackendDef>& backends) {
  std::vector<dataplane::MaglevBackend> mb;
  for (const BackendDef& b : backends) {
    if (b.flags & SKIFF_BE_F_ELIGIBLE_CLUSTER) mb.push_back({{b.address, b.port}, 1, b.id});
  }
  return *dataplane::buildMaglevTable(mb, kRingSize);
}

std::vector<XdpCase> cases() {
  std::vector<XdpCase> c;

  c.push_back({
      .name = "NewTcpFlow",
      .description = "a new TCP flow is DNATed to the Maglev pick",
      .setup = [](XdpEnv& e) { e.program({}); },
      .input = [](XdpEnv&) { return testing::buildPacket(syn(40000)); },
      .expected =
          [](XdpEnv& e) {
            e.backend = e.maglevPick(1, syn(40000));
            return Expected{XDP_TX, dnatTo(syn(40000), backendById(threeBackends(), e.backend))};
          },
      .after =
          [](XdpEnv& e) {
            const auto s = e.serviceStats(1);
            EXPECT_EQ(s.new_flows, 1u);
            EXPECT_EQ(s.packets, 1u);
            EXPECT_EQ(e.backendStats(e.backend).packets, 1u);
            EXPECT_EQ(e.backendStats(e.backend).new_flows, 1u);
          },
  });

  c.push_back({
      .name = "EstablishedFlowKeepsBackend",
      .description = "an established flow keeps its backend when a new backend takes its slot",
      .setup =
          [](XdpEnv& e) {
            const auto before = tableOf(threeBackends());
            const auto after = tableOf(fourBackends());
            e.port = findPort([&](const PacketSpec& s) {
              return XdpEnv::pickIn(before, s) != XdpEnv::pickIn(after, s);
            });
            e.backend = XdpEnv::pickIn(before, syn(e.port));
            e.program({});
            e.mustForward(testing::buildPacket(syn(e.port)));
            ServiceDef grown;
            grown.backends = fourBackends();
            e.program(grown);
            EXPECT_NE(e.maglevPick(1, syn(e.port)), e.backend);
          },
      .input =
          [](XdpEnv& e) {
            auto s = syn(e.port);
            s.tcpFlags = testing::kTcpAck;
            return testing::buildPacket(s);
          },
      .expected =
          [](XdpEnv& e) {
            auto s = syn(e.port);
            s.tcpFlags = testing::kTcpAck;
            return Expected{XDP_TX, dnatTo(s, backendById(fourBackends(), e.backend))};
          },
      .after = [](XdpEnv& e) { EXPECT_EQ(e.serviceStats(1).new_flows, 1u); },
  });

  c.push_back({
      .name = "ReplyReverseNat",
      .description = "a reply from the backend leaves with the frontend as its source",
      .setup =
          [](XdpEnv& e) {
            e.program({});
            e.backend = e.maglevPick(1, syn(40000));
            e.mustForward(testing::buildPacket(syn(40000)));
          },
      .input =
          [](XdpEnv& e) {
            const BackendDef b = backendById(threeBackends(), e.backend);
            return testing::buildPacket({.src = b.address,
                                         .dst = kClient,
                                         .sport = b.port,
                                         .dport = 40000,
                                         .tcpFlags = testing::kTcpSyn | testing::kTcpAck});
          },
      .expected =
          [](XdpEnv&) {
            return Expected{
                XDP_TX,
                swapMacs(testing::buildPacket({.src = kVip,
                                               .dst = kClient,
                                               .sport = 80,
                                               .dport = 40000,
                                               .tcpFlags = testing::kTcpSyn | testing::kTcpAck}))};
          },
      .after =
          [](XdpEnv& e) {
            EXPECT_EQ(e.global(SKIFF_GLOBAL_REPLY_TRANSLATED), 1u);
            EXPECT_EQ(e.serviceStats(1).packets, 2u);
            EXPECT_EQ(e.backendStats(e.backend).packets, 2u);
          },
  });

  c.push_back({
      .name = "TerminatingBackendKeepsFlow",
      .description = "a flow to a backend that starts terminating stays with it",
      .setup =
          [](XdpEnv& e) {
            e.program({});
            e.backend = e.maglevPick(1, syn(40000));
            e.mustForward(testing::buildPacket(syn(40000)));
            ServiceDef d;
            for (auto& b : d.backends) {
              if (b.id == e.backend) b.flags = kTerminating;
            }
            e.program(d);
            EXPECT_NE(e.maglevPick(1, syn(40000)), e.backend);
          },
      .input =
          [](XdpEnv&) {
            auto s = syn(40000);
            s.tcpFlags = testing::kTcpAck;
            return testing::buildPacket(s);
          },
      .expected =
          [](XdpEnv& e) {
            auto s = syn(40000);
            s.tcpFlags = testing::kTcpAck;
            return Expected{XDP_TX, dnatTo(s, backendById(threeBackends(), e.backend))};
          },
  });

  c.push_back({
      .name = "NewFlowAvoidsTerminatingBackend",
      .description = "a new flow that would hash to a terminating backend goes elsewhere",
      .setup =
          [](XdpEnv& e) {
            const auto all = tableOf(threeBackends());
            e.port = findPort([&](const PacketSpec& s) { return XdpEnv::pickIn(all, s) == 12; });
            ServiceDef d;
            d.backends[1].flags = kTerminating;  // id 12
            e.program(d);
            e.backend = e.maglevPick(1, syn(e.port));
            EXPECT_NE(e.backend, 12u);
          },
      .input = [](XdpEnv& e) { return testing::buildPacket(syn(e.port)); },
      .expected =
          [](XdpEnv& e) {
            return Expected{XDP_TX, dnatTo(syn(e.port), backendById(threeBackends(), e.backend))};
          },
  });

  c.push_back({
      .name = "SourceRangeDenied",
      .description = "a client outside loadBalancerSourceRanges is dropped and counted",
      .setup =
          [](XdpEnv& e) {
            ServiceDef d;
            d.flags = SKIFF_SVC_F_SRC_RANGES;
            e.program(d);
            ASSERT_TRUE(e.writer().putSourceRange(1, *IpPrefix::parse("192.0.2.0/24")).ok());
          },
      .input = [](XdpEnv&) { return testing::buildPacket(syn(40000)); },
      .expected =
          [](XdpEnv&) {
            return Expected{XDP_DROP, std::nullopt};
          },
      .after =
          [](XdpEnv& e) {
            const auto s = e.serviceStats(1);
            EXPECT_EQ(s.drops[dropIndex(SKIFF_DROP_SOURCE_RANGE)], 1u);
            EXPECT_EQ(s.new_flows, 0u);
          },
  });

  c.push_back({
      .name = "SourceRangeAllowed",
      .description = "a client inside loadBalancerSourceRanges is load-balanced",
      .setup =
          [](XdpEnv& e) {
            ServiceDef d;
            d.flags = SKIFF_SVC_F_SRC_RANGES;
            e.program(d);
            ASSERT_TRUE(e.writer().putSourceRange(1, *IpPrefix::parse("192.0.2.0/24")).ok());
            ASSERT_TRUE(e.writer().putSourceRange(1, *IpPrefix::parse("2001:db8::/32")).ok());
          },
      .input = [](XdpEnv&) { return testing::buildPacket(syn(40000, ip("192.0.2.9"))); },
      .expected =
          [](XdpEnv& e) {
            const auto s = syn(40000, ip("192.0.2.9"));
            return Expected{XDP_TX, dnatTo(s, backendById(threeBackends(), e.maglevPick(1, s)))};
          },
  });

  c.push_back({
      .name = "Ipv6NewFlow",
      .description = "an IPv6 TCP flow is DNATed with the L4 checksum fixed",
      .setup =
          [](XdpEnv& e) {
            e.program({.frontend = {kVip6, 443, L4Protocol::kTcp}, .backends = v6Backends()});
          },
      .input = [](XdpEnv&) { return testing::buildPacket(syn(40000, kClient6, kVip6, 443)); },
      .expected =
          [](XdpEnv& e) {
            const auto s = syn(40000, kClient6, kVip6, 443);
            return Expected{XDP_TX, dnatTo(s, backendById(v6Backends(), e.maglevPick(1, s)))};
          },
  });

  c.push_back({
      .name = "Ipv6Reply",
      .description = "an IPv6 reply is reverse-NATed",
      .setup =
          [](XdpEnv& e) {
            e.program({.frontend = {kVip6, 443, L4Protocol::kTcp}, .backends = v6Backends()});
            const auto s = syn(40000, kClient6, kVip6, 443);
            e.backend = e.maglevPick(1, s);
            e.mustForward(testing::buildPacket(s));
          },
      .input =
          [](XdpEnv& e) {
            const BackendDef b = backendById(v6Backends(), e.backend);
            return testing::buildPacket({.src = b.address,
                                         .dst = kClient6,
                                         .sport = b.port,
                                         .dport = 40000,
                                         .tcpFlags = testing::kTcpAck});
          },
      .expected =
          [](XdpEnv&) {
            return Expected{XDP_TX, swapMacs(testing::buildPacket({.src = kVip6,
                                                                   .dst = kClient6,
                                                                   .sport = 443,
                                                                   .dport = 40000,
                                                                   .tcpFlags = testing::kTcpAck}))};
          },
  });

  const auto udpSpec = [](bool noChecksum) {
    PacketSpec s = syn(40000, kClient, kVip, 53);
    s.proto = 17;
    s.udpNoChecksum = noChecksum;
    return s;
  };
  const ServiceDef udpService{.frontend = {kVip, 53, L4Protocol::kUdp}};
  for (bool noChecksum : {false, true}) {
    c.push_back({
        .name = noChecksum ? "UdpWithoutChecksum" : "UdpNewFlow",
        .description = noChecksum ? "an IPv4 UDP datagram without a checksum keeps none"
                                  : "a UDP datagram is DNATed with its checksum fixed",
        .setup = [=](XdpEnv& e) { e.program(udpService); },
        .input = [=](XdpEnv&) { return testing::buildPacket(udpSpec(noChecksum)); },
        .expected =
            [=](XdpEnv& e) {
              const auto s = udpSpec(noChecksum);
              return Expected{XDP_TX, dnatTo(s, backendById(threeBackends(), e.maglevPick(1, s)))};
            },
    });
  }

  c.push_back({
      .name = "UdpLeavesBackendThatStoppedServing",
      .description = "a UDP flow whose backend stopped serving is reselected",
      .setup =
          [=](XdpEnv& e) {
            e.program(udpService);
            e.backend = e.maglevPick(1, udpSpec(false));
            e.mustForward(testing::buildPacket(udpSpec(false)));
            ServiceDef d = udpService;
            for (auto& b : d.backends) {
              if (b.id == e.backend) b.flags = kGone;
            }
            e.program(d);
          },
      .input = [=](XdpEnv&) { return testing::buildPacket(udpSpec(false)); },
      .expected =
          [=](XdpEnv& e) {
            const uint32_t now = e.maglevPick(1, udpSpec(false));
            EXPECT_NE(now, e.backend);
            return Expected{XDP_TX, dnatTo(udpSpec(false), backendById(threeBackends(), now))};
          },
      .after = [](XdpEnv& e) { EXPECT_EQ(e.global(SKIFF_GLOBAL_CT_RESELECTED), 1u); },
  });

  c.push_back({
      .name = "RemovedBackendFlowReselected",
      .description = "a TCP flow whose backend left the service is reselected",
      .setup =
          [](XdpEnv& e) {
            e.program({});
            e.backend = e.maglevPick(1, syn(40000));
            e.mustForward(testing::buildPacket(syn(40000)));
            ServiceDef d;
            std::erase_if(d.backends, [&](const BackendDef& b) { return b.id == e.backend; });
            e.program(d);
          },
      .input = [](XdpEnv&) { return testing::buildPacket(syn(40000)); },
      .expected =
          [](XdpEnv& e) {
            const uint32_t now = e.maglevPick(1, syn(40000));
            EXPECT_NE(now, e.backend);
            return Expected{XDP_TX, dnatTo(syn(40000), backendById(threeBackends(), now))};
          },
  });

  c.push_back({
      .name = "VlanTagged",
      .description = "a frame with two VLAN tags is translated behind its tags",
      .setup = [](XdpEnv& e) { e.program({}); },
      .input =
          [](XdpEnv&) {
            auto s = syn(40000);
            s.vlanTags = 2;
            return testing::buildPacket(s);
          },
      .expected =
          [](XdpEnv& e) {
            auto s = syn(40000);
            s.vlanTags = 2;
            return Expected{XDP_TX, dnatTo(s, backendById(threeBackends(), e.maglevPick(1, s)))};
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
            [](XdpEnv& e) {
              e.program({});
              e.backend = e.maglevPick(1, syn(40000));
              e.mustForward(testing::buildPacket(syn(40000)));
            },
        .input =
            [=](XdpEnv& e) {
              const BackendDef b = backendById(threeBackends(), e.backend);
              PacketSpec delivered = syn(40000);
              delivered.dst = b.address;
              delivered.dport = b.port;
              return testing::buildIcmp4Error(fromBackend ? b.address : ip("10.9.9.9"), kClient, 3,
                                              3, testing::ipPart(testing::buildPacket(delivered)));
            },
        .expected =
            [=](XdpEnv&) {
              return Expected{XDP_TX, swapMacs(testing::buildIcmp4Error(
                                          fromBackend ? kVip : ip("10.9.9.9"), kClient, 3, 3,
                                          testing::ipPart(testing::buildPacket(syn(40000)))))};
            },
        .after = [](XdpEnv& e) { EXPECT_EQ(e.global(SKIFF_GLOBAL_ICMP_TRANSLATED), 1u); },
    });
  }

  for (bool fromBackend : {true, false}) {
    c.push_back({
        .name = fromBackend ? "Icmp6ErrorFromBackend" : "Icmp6ErrorFromRouter",
        .description = "an ICMPv6 error about a tracked flow quotes the frontend (and comes from "
                       "it when the backend sent it)",
        .setup =
            [](XdpEnv& e) {
              e.program({.frontend = {kVip6, 443, L4Protocol::kTcp}, .backends = v6Backends()});
              const auto s = syn(40000, kClient6, kVip6, 443);
              e.backend = e.maglevPick(1, s);
              e.mustForward(testing::buildPacket(s));
            },
        .input =
            [=](XdpEnv& e) {
              const BackendDef b = backendById(v6Backends(), e.backend);
              PacketSpec delivered = syn(40000, kClient6, b.address, b.port);
              return testing::buildIcmp6Error(fromBackend ? b.address : ip("fd00:99::1"), kClient6,
                                              2, 0,
                                              testing::ipPart(testing::buildPacket(delivered)));
            },
        .expected =
            [=](XdpEnv&) {
              return Expected{
                  XDP_TX,
                  swapMacs(testing::buildIcmp6Error(
                      fromBackend ? kVip6 : ip("fd00:99::1"), kClient6, 2, 0,
                      testing::ipPart(testing::buildPacket(syn(40000, kClient6, kVip6, 443)))))};
            },
        .after = [](XdpEnv& e) { EXPECT_EQ(e.global(SKIFF_GLOBAL_ICMP_TRANSLATED), 1u); },
    });
  }

  c.push_back({
      .name = "IcmpErrorAboutReply",
      .description = "an ICMP error sent to the frontend about a reply reaches the backend",
      .setup =
          [](XdpEnv& e) {
            e.program({});
            e.backend = e.maglevPick(1, syn(40000));
            e.mustForward(testing::buildPacket(syn(40000)));
          },
      .input =
          [](XdpEnv&) {
            // The client got the reverse-NATed reply (frontend -> client) and cannot take it.
            PacketSpec reply{.src = kVip,
                             .dst = kClient,
                             .sport = 80,
                             .dport = 40000,
                             .tcpFlags = testing::kTcpAck};
            return testing::buildIcmp4Error(kClient, kVip, 3, 3,
                                            testing::ipPart(testing::buildPacket(reply)));
          },
      .expected =
          [](XdpEnv& e) {
            const BackendDef b = backendById(threeBackends(), e.backend);
            PacketSpec reply{.src = b.address,
                             .dst = kClient,
                             .sport = b.port,
                             .dport = 40000,
                             .tcpFlags = testing::kTcpAck};
            return Expected{XDP_TX, swapMacs(testing::buildIcmp4Error(
                                        kClient, b.address, 3, 3,
                                        testing::ipPart(testing::buildPacket(reply))))};
          },
  });

  c.push_back({
      .name = "IcmpErrorUntracked",
      .description = "an ICMP error about an unknown flow passes unchanged",
      .setup = [](XdpEnv& e) { e.program({}); },
      .input =
          [](XdpEnv&) {
            PacketSpec s = syn(40000);
            s.dst = ip("10.0.1.1");
            return testing::buildIcmp4Error(ip("10.0.1.1"), kClient, 3, 3,
                                            testing::ipPart(testing::buildPacket(s)));
          },
      .expected =
          [](XdpEnv&) {
            return Expected{XDP_PASS, std::nullopt};
          },
  });

  for (uint16_t fragment : {uint16_t{0x2000}, uint16_t{0x0005}}) {
    c.push_back({
        .name = fragment == 0x2000 ? "FirstFragment" : "LaterFragment",
        .description = "an IPv4 fragment to a frontend is passed to the kernel and counted",
        .setup = [](XdpEnv& e) { e.program({}); },
        .input =
            [=](XdpEnv&) {
              auto s = syn(40000);
              s.fragment = fragment;
              return testing::buildPacket(s);
            },
        .expected =
            [](XdpEnv&) {
              return Expected{XDP_PASS, std::nullopt};
            },
        .after = [](XdpEnv& e) { EXPECT_EQ(e.global(SKIFF_GLOBAL_FRAGMENT_PASSED), 1u); },
    });
  }

  c.push_back({
      .name = "Ipv6Fragment",
      .description = "an IPv6 fragment header is passed to the kernel and counted",
      .setup = [](XdpEnv& e) { e.program({}); },
      .input =
          [](XdpEnv&) {
            auto f = testing::buildPacket(syn(40000, kClient6, kVip6, 443));
            f[14 + 6] = 44;  // next header: fragment
            return f;
          },
      .expected =
          [](XdpEnv&) {
            return Expected{XDP_PASS, std::nullopt};
          },
      .after = [](XdpEnv& e) { EXPECT_EQ(e.global(SKIFF_GLOBAL_FRAGMENT_PASSED), 1u); },
  });

  struct Malformed {
    const char* name;
    const char* description;
    std::function<Bytes()> build;
  };
  const std::vector<Malformed> malformed = {
      {"ShortIhl", "an IPv4 header length below 20 bytes",
       [] {
         auto f = testing::buildPacket(syn(40000));
         f[14] = 0x44;
         return f;
       }},
      {"TotalLengthBeyondFrame", "an IPv4 total length beyond the frame",
       [] {
         auto f = testing::buildPacket(syn(40000));
         f.resize(14 + 20 + 12);
         return f;
       }},
      {"TruncatedTcpHeader", "a TCP header cut short with a consistent IPv4 length",
       [] {
         auto f = testing::buildPacket(syn(40000));
         f.resize(14 + 20 + 10);
         f[16] = 0;
         f[17] = 30;
         return f;
       }},
      {"EthernetOnly", "an IPv4 EtherType and nothing after the Ethernet header",
       [] {
         auto f = testing::buildPacket(syn(40000));
         f.resize(14);
         return f;
       }},
      {"TruncatedIpv6", "an IPv6 header cut short",
       [] {
         auto f = testing::buildPacket(syn(40000, kClient6, kVip6, 443));
         f.resize(14 + 30);
         return f;
       }},
      {"BadTcpDataOffset", "a TCP data offset below 5",
       [] {
         auto f = testing::buildPacket(syn(40000));
         f[14 + 20 + 12] = 0x30;
         return f;
       }},
  };
  for (const Malformed& m : malformed) {
    c.push_back({
        .name = m.name,
        .description = std::string(m.description) + " is dropped and counted",
        .setup = [](XdpEnv& e) { e.program({}); },
        .input = [b = m.build](XdpEnv&) { return b(); },
        .expected =
            [](XdpEnv&) {
              return Expected{XDP_DROP, std::nullopt};
            },
        .after =
            [](XdpEnv& e) {
              EXPECT_EQ(e.global(SKIFF_GLOBAL_CT_INSERT_FAILED), 0u);
              EXPECT_EQ(e.global(static_cast<uint32_t>(dropIndex(SKIFF_DROP_MALFORMED))), 1u);
            },
    });
  }

  c.push_back({
      .name = "NotIp",
      .description = "an ARP frame passes unchanged",
      .setup = [](XdpEnv& e) { e.program({}); },
      .input =
          [](XdpEnv&) {
            Bytes f = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06};
            f.resize(60, 0);
            return f;
          },
      .expected =
          [](XdpEnv&) {
            return Expected{XDP_PASS, std::nullopt};
          },
  });

  c.push_back({
      .name = "NotAService",
      .description = "traffic to an address:port that is no frontend passes unchanged",
      .setup = [](XdpEnv& e) { e.program({}); },
      .input = [](XdpEnv&) { return testing::buildPacket(syn(40000, kClient, kVip, 81)); },
      .expected =
          [](XdpEnv&) {
            return Expected{XDP_PASS, std::nullopt};
          },
  });

  c.push_back({
      .name = "NoBackends",
      .description = "a service without backends rejects a new flow with an ICMP port "
                     "unreachable from the frontend, and counts the drop",
      .setup = [](XdpEnv& e) { e.program({.backends = {}}); },
      .input = [](XdpEnv&) { return testing::buildPacket(syn(40000)); },
      .expected =
          [](XdpEnv&) {
            return Expected{XDP_TX, swapMacs(testing::buildIcmp4Error(
                                        kVip, kClient, 3, 3,
                                        testing::ipPart(testing::buildPacket(syn(40000)))))};
          },
      .after =
          [](XdpEnv& e) {
            EXPECT_EQ(e.serviceStats(1).drops[dropIndex(SKIFF_DROP_NO_BACKEND)], 1u);
          },
  });

  c.push_back({
      .name = "NoBackendsUdpWithIpOptions",
      .description = "the reject quotes the whole IPv4 header, options included, and 8 bytes",
      .setup =
          [](XdpEnv& e) {
            e.program({.frontend = {kVip, 53, L4Protocol::kUdp}, .backends = {}});
          },
      .input =
          [](XdpEnv&) {
            PacketSpec s = syn(40000, kClient, kVip, 53);
            s.proto = 17;
            return withIpOptions(testing::buildPacket(s));
          },
      .expected =
          [](XdpEnv&) {
            PacketSpec s = syn(40000, kClient, kVip, 53);
            s.proto = 17;
            const Bytes quoted = testing::ipPart(withIpOptions(testing::buildPacket(s)));
            return Expected{XDP_TX,
                            swapMacs(testing::buildIcmp4Error(kVip, kClient, 3, 3, quoted, 32))};
          },
  });

  c.push_back({
      .name = "NoBackendsIpv6",
      .description = "an IPv6 flow to a service without backends gets an ICMPv6 port unreachable",
      .setup =
          [](XdpEnv& e) {
            e.program({.frontend = {kVip6, 443, L4Protocol::kTcp}, .backends = {}});
          },
      .input = [](XdpEnv&) { return testing::buildPacket(syn(40000, kClient6, kVip6, 443)); },
      .expected =
          [](XdpEnv&) {
            return Expected{
                XDP_TX,
                swapMacs(testing::buildIcmp6Error(
                    kVip6, kClient6, 1, 4,
                    testing::ipPart(testing::buildPacket(syn(40000, kClient6, kVip6, 443)))))};
          },
      .after =
          [](XdpEnv& e) {
            EXPECT_EQ(e.serviceStats(1).drops[dropIndex(SKIFF_DROP_NO_BACKEND)], 1u);
          },
  });

  c.push_back({
      .name = "NoBackendsTagged",
      .description = "a tagged frame to a service without backends is dropped, not answered",
      .setup = [](XdpEnv& e) { e.program({.backends = {}}); },
      .input =
          [](XdpEnv&) {
            auto s = syn(40000);
            s.vlanTags = 1;
            return testing::buildPacket(s);
          },
      .expected =
          [](XdpEnv&) {
            return Expected{XDP_DROP, std::nullopt};
          },
  });

  c.push_back({
      .name = "NoLocalBackends",
      .description = "Local traffic policy without a local backend drops, counted apart",
      .setup =
          [](XdpEnv& e) {
            ServiceDef d;
            for (auto& b : d.backends)
              b.flags = SKIFF_BE_F_READY | SKIFF_BE_F_SERVING;  // none is on this node
            d.flags = SKIFF_SVC_F_LOCAL_EXTERNAL;
            d.selection = SKIFF_SEL_NO_LOCAL_BACKENDS;
            e.program(d);
          },
      .input = [](XdpEnv&) { return testing::buildPacket(syn(40000)); },
      .expected =
          [](XdpEnv&) {
            return Expected{XDP_DROP, std::nullopt};
          },
      .after =
          [](XdpEnv& e) {
            EXPECT_EQ(e.serviceStats(1).drops[dropIndex(SKIFF_DROP_NO_LOCAL_BACKEND)], 1u);
          },
  });

  c.push_back({
      .name = "ConntrackFullStillForwards",
      .description = "with conntrack full a new flow is still forwarded by Maglev alone",
      .options =
          [] {
            LoadOptions o = testOptions();
            o.conntrackWithoutLru = true;
            o.conntrack = 2;  // one flow: its forward and reply entries
            return o;
          },
      .setup =
          [](XdpEnv& e) {
            e.program({});
            e.mustForward(testing::buildPacket(syn(40000)));
            e.mustForward(testing::buildPacket(syn(40001)));
            EXPECT_EQ(e.global(SKIFF_GLOBAL_CT_INSERT_FAILED), 1u);
          },
      .input =
          [](XdpEnv&) {
            auto s = syn(40001);
            s.tcpFlags = testing::kTcpAck;
            return testing::buildPacket(s);
          },
      .expected =
          [](XdpEnv& e) {
            auto s = syn(40001);
            s.tcpFlags = testing::kTcpAck;
            return Expected{XDP_TX, dnatTo(s, backendById(threeBackends(), e.maglevPick(1, s)))};
          },
      .after =
          [](XdpEnv& e) {
            EXPECT_EQ(e.global(SKIFF_GLOBAL_CT_INSERT_FAILED), 2u);
            EXPECT_EQ(e.serviceStats(1).drops[dropIndex(SKIFF_DROP_CT_FULL)], 0u);
          },
  });

  c.push_back({
      .name = "ClientIpAffinity",
      .description = "ClientIP affinity sends a client's next new flow to its last backend",
      .setup =
          [](XdpEnv& e) {
            ServiceDef d;
            d.flags = SKIFF_SVC_F_AFFINITY;
            d.affinityTimeout = 100;
            e.program(d);
            e.backend = e.maglevPick(1, syn(40000));
            e.mustForward(testing::buildPacket(syn(40000)));
            const uint32_t first = e.backend;
            e.port = findPort([&](const PacketSpec& s) { return e.maglevPick(1, s) != first; });
          },
      .input = [](XdpEnv& e) { return testing::buildPacket(syn(e.port)); },
      .expected =
          [](XdpEnv& e) {
            return Expected{XDP_TX, dnatTo(syn(e.port), backendById(threeBackends(), e.backend))};
          },
  });

  c.push_back({
      .name = "WildcardNodePort",
      .description = "a NodePort on every node address is DNATed, and its reply comes back from "
                     "the address the client used",
      .setup =
          [](XdpEnv& e) {
            e.program({.frontend = {IpAddress(), 30080, L4Protocol::kTcp},
                       .kind = SKIFF_KIND_NODE_PORT,
                       .flags = SKIFF_SVC_F_WILDCARD});
            const auto s = syn(40000, kClient, ip("192.168.7.5"), 30080);
            e.backend = e.maglevPick(1, s);
            e.mustForward(testing::buildPacket(s));
          },
      .input =
          [](XdpEnv& e) {
            const BackendDef b = backendById(threeBackends(), e.backend);
            return testing::buildPacket({.src = b.address,
                                         .dst = kClient,
                                         .sport = b.port,
                                         .dport = 40000,
                                         .tcpFlags = testing::kTcpAck});
          },
      .expected =
          [](XdpEnv&) {
            return Expected{XDP_TX, swapMacs(testing::buildPacket({.src = ip("192.168.7.5"),
                                                                   .dst = kClient,
                                                                   .sport = 30080,
                                                                   .dport = 40000,
                                                                   .tcpFlags = testing::kTcpAck}))};
          },
  });

  return c;
}

void PrintTo(const XdpCase& c, std::ostream* os) {
  *os << c.name;
}

class XdpCaseTest : public ::testing::TestWithParam<XdpCase> {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF)";
  }
};

TEST_P(XdpCaseTest, Run) {
  const XdpCase& tc = GetParam();
  SCOPED_TRACE(tc.description);
  XdpEnv env(tc.options ? tc.options() : testOptions());
  ASSERT_EQ(env.error(), "");
  if (tc.setup) tc.setup(env);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const Bytes in = tc.input(env);
  const Expected want = tc.expected(env);
  const XdpEnv::Run got = env.run(in);
  ASSERT_EQ(got.err, 0);
  EXPECT_EQ(got.verdict, want.verdict);
  EXPECT_EQ(got.out, want.output.value_or(in));
  if (want.verdict == XDP_TX) {
    EXPECT_TRUE(testing::checksumsValid(got.out, tc.vlanTags));
  }
  if (tc.after) tc.after(env);
}

INSTANTIATE_TEST_SUITE_P(Packets, XdpCaseTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<XdpCase>& param) {
                           return param.param.name;
                         });

class XdpRobustnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF)";
  }
};

// Every prefix of valid frames (IPv4/IPv6, TCP/UDP, VLAN, ICMP error) runs without an error and
// ends in PASS or DROP, or TX only for the whole frame.
TEST_F(XdpRobustnessTest, EveryTruncationIsHandled) {
  XdpEnv env(testOptions());
  ASSERT_EQ(env.error(), "");
  env.program({});
  env.program({.svcId = 2, .frontend = {kVip6, 443, L4Protocol::kTcp}, .backends = v6Backends()});
  env.program(
      {.svcId = 3, .frontend = {kVip, 53, L4Protocol::kUdp}, .backends = {{31, ip("10.0.3.1")}}});
  env.mustForward(testing::buildPacket(syn(40000)));
  const PacketSpec first6 = syn(40000, kClient6, kVip6, 443);
  env.mustForward(testing::buildPacket(first6));
  const BackendDef b6 = backendById(v6Backends(), env.maglevPick(2, first6));
  const PacketSpec delivered6 = syn(40000, kClient6, b6.address, b6.port);
  PacketSpec udp = syn(40000, kClient, kVip, 53);
  udp.proto = 17;
  PacketSpec vlan = syn(40002);
  vlan.vlanTags = 1;
  PacketSpec delivered = syn(40000);
  delivered.dst = backendById(threeBackends(), env.maglevPick(1, syn(40000))).address;
  delivered.dport = 8080;
  const std::vector<Bytes> frames = {
      testing::buildPacket(syn(40001)),
      testing::buildPacket(syn(40001, kClient6, kVip6, 443)),
      testing::buildPacket(udp),
      testing::buildPacket(vlan),
      testing::buildIcmp4Error(delivered.dst, kClient, 3, 4,
                               testing::ipPart(testing::buildPacket(delivered))),
      testing::buildIcmp6Error(ip("fd00::1"), kClient6, 1, 4,
                               testing::ipPart(testing::buildPacket(delivered6))),
  };
  for (const Bytes& full : frames) {
    for (size_t len = 14; len <= full.size(); ++len) {
      Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
      const XdpEnv::Run r = env.run(cut);
      ASSERT_EQ(r.err, 0) << len;
      if (len < full.size()) {
        EXPECT_TRUE(r.verdict == XDP_PASS || r.verdict == XDP_DROP)
            << "length " << len << " of " << full.size() << ": verdict " << r.verdict;
      } else {
        EXPECT_EQ(r.verdict, static_cast<uint32_t>(XDP_TX));
      }
    }
  }
}

// In the default mode the program hands translated packets to the kernel (XDP_PASS).
TEST_F(XdpRobustnessTest, PassModeHandsTranslatedPacketsToTheKernel) {
  LoadOptions o = testOptions();
  o.fwdMode = SKIFF_FWD_PASS;
  XdpEnv env(o);
  ASSERT_EQ(env.error(), "");
  env.program({});
  const XdpEnv::Run r = env.run(testing::buildPacket(syn(40000)));
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.verdict, static_cast<uint32_t>(XDP_PASS));
  PacketSpec s = syn(40000);
  const BackendDef b = backendById(threeBackends(), env.maglevPick(1, s));
  s.dst = b.address;
  s.dport = b.port;
  EXPECT_EQ(r.out, testing::buildPacket(s));
}

}  // namespace
}  // namespace skiff::ebpf

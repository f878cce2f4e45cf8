// The node-port load balancer against the shared table of packet cases
// (tests/dataplane/packet_cases.h, which the DPDK pipeline passes too), once through the XDP entry
// and once through the tc ingress entry (the same C code, lib/nodeport.h, over the other
// context): each case sets up the maps through the MapWriter, builds a frame, runs the program
// with BPF_PROG_TEST_RUN and checks the verdict, the output bytes (built from scratch, so the
// program's incremental checksums are checked against full ones) and the counters. Then the
// hooks' own cases: every truncation of valid frames, PASS mode, and the tc egress entry (reverse
// NAT only).

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
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
#include "tests/dataplane/packet_cases.h"

namespace skiff::ebpf {
namespace {

using dataplane::IpPrefix;
using dataplane::L4Protocol;

using namespace dataplane::testing;  // NOLINT(google-build-using-namespace): the case vocabulary

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

LoadOptions loadOptions(const EnvOptions& env) {
  LoadOptions o = testOptions();
  o.conntrack = env.conntrack;
  o.conntrackWithoutLru = !env.conntrackLru;
  return o;
}

// Whether the kernel refuses `frame` as the input of an skb test run (BPF_PROG_TEST_RUN of a tc
// program answers EINVAL for an IPv4 or IPv6 EtherType followed by less than its header: the
// test run reads the addresses before the program runs). XDP takes any frame.
bool skbTestRunRefuses(const Bytes& frame) {
  if (frame.size() < 14) return true;
  const unsigned type = (unsigned{frame[12]} << 8) | frame[13];
  return (type == 0x0800 && frame.size() < 14 + 20) || (type == 0x86dd && frame.size() < 14 + 40);
}

// `frame` with an 802.1Q tag (VLAN 1) after the MAC addresses, and back.
Bytes withVlanTag(const Bytes& frame) {
  Bytes out(frame.begin(), frame.begin() + 12);
  out.insert(out.end(), {0x81, 0x00, 0x00, 0x01});
  out.insert(out.end(), frame.begin() + 12, frame.end());
  return out;
}
Bytes withoutVlanTag(const Bytes& frame) {
  if (frame.size() < 16) return frame;
  Bytes out(frame.begin(), frame.begin() + 12);
  out.insert(out.end(), frame.begin() + 16, frame.end());
  return out;
}

// Which entry of the node-port object a test runs.
enum class Hook { kXdp, kTcIngress, kTcEgress };

const char* hookName(Hook h) {
  return h == Hook::kXdp ? "Xdp" : h == Hook::kTcIngress ? "TcIngress" : "TcEgress";
}

// One loaded copy of the programs with its maps, programmed through the MapWriter as the
// control plane does: backend ids are the cases' own, each service's ring an extent of the ring
// memory. Packets go through the entry `hook`.
class XdpEnv : public CaseEnv {
 public:
  explicit XdpEnv(const LoadOptions& options, Hook hook = Hook::kXdp) : hook_(hook) {
    auto loaded = Programs::load(options);
    if (!loaded.ok()) {
      error_ = loaded.message();
      return;
    }
    programs_ = std::move(*loaded);
    writer_ = std::make_unique<MapWriter>(programs_->maps());
  }

  const std::string& error() const { return error_; }
  const MapFds& maps() const { return programs_->maps(); }
  Hook hook() const { return hook_; }

  // The hook's own verdict codes.
  uint32_t passCode() const { return hook_ == Hook::kXdp ? XDP_PASS : TC_ACT_OK; }
  uint32_t dropCode() const { return hook_ == Hook::kXdp ? XDP_DROP : TC_ACT_SHOT; }
  // Sent back out (XDP_TX; tc: bpf_redirect to the interface it came in on).
  uint32_t txCode() const { return hook_ == Hook::kXdp ? XDP_TX : TC_ACT_REDIRECT; }

  struct Run {
    int err = 0;
    uint32_t verdict = 0;
    Bytes out;
  };

  Run runRaw(const Bytes& in) { return runAs(hook_, in); }

  Run runAs(Hook hook, const Bytes& in) {
    Run r;
    r.out.assign(in.size() + 512, 0);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = r.out.data(),
                .data_size_in = static_cast<uint32_t>(in.size()),
                .data_size_out = static_cast<uint32_t>(r.out.size()), .repeat = 1);
    const int prog = hook == Hook::kXdp         ? programs_->xdpProgram()
                     : hook == Hook::kTcIngress ? programs_->tcIngressProgram()
                                                : programs_->tcEgressProgram();
    r.err = bpf_prog_test_run_opts(prog, &opts);
    r.verdict = opts.retval;
    r.out.resize(opts.data_size_out);
    return r;
  }

  RunResult run(const Bytes& in) override {
    // A frame the skb test run refuses (a truncated IP header, which a driver can deliver to
    // tc) goes in behind a VLAN tag, which the test run takes and the program parses past, and
    // comes out without it.
    const bool tagged = hook_ != Hook::kXdp && skbTestRunRefuses(in);
    Run r = runRaw(tagged ? withVlanTag(in) : in);
    if (tagged) r.out = withoutVlanTag(r.out);
    RunResult out;
    out.ok =
        r.err == 0 && (r.verdict == txCode() || r.verdict == passCode() || r.verdict == dropCode());
    out.verdict = r.verdict == txCode()     ? Verdict::kTx
                  : r.verdict == dropCode() ? Verdict::kDrop
                                            : Verdict::kPass;
    out.out = r.out;
    return out;
  }

  // Backends with their EndpointSlice conditions and eligibility (dataplane::eligibleBackends
  // for both scopes), the Maglev ring of the frontend's scope (a new extent when it changed
  // since the last call), source ranges, the frontend.
  void program(const CaseService& def) override {
    recordProgram(def);
    const dataplane::Service model = toService(def);
    const auto family = def.frontend.address.family();
    const auto cluster =
        dataplane::eligibleBackends(model, family, dataplane::BackendScope::kCluster);
    const auto local =
        dataplane::eligibleBackends(model, family, dataplane::BackendScope::kNodeLocal);
    const auto scope =
        dataplane::backendScope(model, def.kind, dataplane::TrafficOrigin::kExternal);
    const auto& eligible = scope == dataplane::BackendScope::kNodeLocal ? local : cluster;
    auto in = [](const dataplane::EligibleBackends& el, size_t i) {
      return std::find(el.indices.begin(), el.indices.end(), i) != el.indices.end();
    };
    std::vector<dataplane::MaglevBackend> ring;
    for (size_t i = 0; i < def.backends.size(); ++i) {
      const CaseBackend& b = def.backends[i];
      const dataplane::Backend& m = model.backends[i];
      skiff_backend v{};
      copyAddress(b.address, v.addr);
      v.port = toNetwork16(b.port);
      v.family = static_cast<uint8_t>(b.address.family());
      v.flags = static_cast<uint8_t>(
          (m.ready ? SKIFF_BE_F_READY : 0) | (m.serving ? SKIFF_BE_F_SERVING : 0) |
          (m.terminating ? SKIFF_BE_F_TERMINATING : 0) | (m.local ? SKIFF_BE_F_LOCAL : 0) |
          (in(cluster, i) ? SKIFF_BE_F_ELIGIBLE_CLUSTER : 0) |
          (in(local, i) ? SKIFF_BE_F_ELIGIBLE_LOCAL : 0));
      v.svc_id = def.svcId;
      ASSERT_TRUE(writer_->putBackend(b.id, v).ok());
      if (in(eligible, i)) ring.push_back({{b.address, b.port}, 1, b.id});
    }
    for (uint32_t id : listed_[def.svcId]) {
      const bool still = std::any_of(def.backends.begin(), def.backends.end(),
                                     [&](const CaseBackend& b) { return b.id == id; });
      if (!still) {
        ASSERT_TRUE(writer_->clearBackend(id).ok());
      }
    }
    listed_[def.svcId].clear();
    for (const CaseBackend& b : def.backends)
      listed_[def.svcId].push_back(b.id);

    skiff_service svc{};
    svc.svc_id = def.svcId;
    svc.frontend_id = def.svcId;
    svc.kind = kindCode(def.kind);
    svc.affinity_timeout_s = def.affinityTimeout;
    if (def.affinity == dataplane::SessionAffinity::kClientIP) svc.flags |= SKIFF_SVC_F_AFFINITY;
    if (scope == dataplane::BackendScope::kNodeLocal) svc.flags |= SKIFF_SVC_F_LOCAL_EXTERNAL;
    if (def.kind == dataplane::FrontendKind::kNodePort && def.frontend.address.isUnspecified())
      svc.flags |= SKIFF_SVC_F_WILDCARD;
    if (def.kind == dataplane::FrontendKind::kLoadBalancer && !def.sourceRanges.empty()) {
      svc.flags |= SKIFF_SVC_F_SRC_RANGES;
      for (const IpPrefix& p : def.sourceRanges)
        ASSERT_TRUE(writer_->putSourceRange(def.svcId, p).ok());
    }
    auto table = dataplane::buildMaglevTable(ring, kCaseRingSize);
    ASSERT_TRUE(table.ok()) << table.message();
    // A changed ring goes into a new extent; the old one is released once the frontend no
    // longer names it (as EbpfDataplane does).
    const uint32_t oldStart = ringStarts_[def.svcId];
    uint32_t start = SKIFF_ID_NONE;
    if (!ring.empty()) {
      auto put = writer_->putRing(oldStart, *table);
      ASSERT_TRUE(put.ok()) << put.message();
      start = *put;
    }
    ringStarts_[def.svcId] = start;
    for (int origin = 0; origin < SKIFF_ORIGIN_COUNT; ++origin) {
      svc.ring_start[origin] = start;
      svc.ring_size[origin] = ring.empty() ? 0 : kCaseRingSize;
      svc.backend_count[origin] = static_cast<uint16_t>(ring.size());
      svc.selection[origin] = selectionCode(eligible.selection);
    }
    ASSERT_TRUE(writer_->putFrontend(frontendKey(def.frontend), svc).ok());
    if (oldStart != SKIFF_ID_NONE && oldStart != start) writer_->releaseRing(oldStart);
  }

  CaseServiceStats serviceStats(uint32_t svcId) override {
    auto s = readServiceStats(maps().svcStats, svcId);
    EXPECT_TRUE(s.ok()) << s.message();
    CaseServiceStats out;
    if (!s.ok()) return out;
    out.packets = s->packets;
    out.newFlows = s->new_flows;
    for (size_t i = 0; i < dataplane::kDropReasonCount; ++i)
      out.drops[i] = s->drops[i];
    return out;
  }
  CaseBackendStats backendStats(uint32_t id) override {
    auto s = readBackendStats(maps().backendStats, id);
    EXPECT_TRUE(s.ok()) << s.message();
    return s.ok() ? CaseBackendStats{s->packets, s->new_flows} : CaseBackendStats{};
  }
  uint64_t event(CaseEvent e) override {
    switch (e) {
      case CaseEvent::kCtInsertFailed:
        return global(SKIFF_GLOBAL_CT_INSERT_FAILED);
      case CaseEvent::kFragmentPassed:
        return global(SKIFF_GLOBAL_FRAGMENT_PASSED);
      case CaseEvent::kIcmpTranslated:
        return global(SKIFF_GLOBAL_ICMP_TRANSLATED);
      case CaseEvent::kReplyTranslated:
        return global(SKIFF_GLOBAL_REPLY_TRANSLATED);
      case CaseEvent::kCtReselected:
        return global(SKIFF_GLOBAL_CT_RESELECTED);
    }
    return 0;
  }
  uint64_t unattributedDrops(dataplane::DropReason r) override {
    return global(static_cast<uint32_t>(r));
  }

 private:
  uint64_t global(uint32_t index) const {
    auto s = readGlobal(maps().global, index);
    EXPECT_TRUE(s.ok()) << s.message();
    return s.ok() ? *s : 0;
  }

  Hook hook_;
  std::string error_;
  std::unique_ptr<Programs> programs_;
  std::unique_ptr<MapWriter> writer_;
  std::map<uint32_t, uint32_t> ringStarts_;  // service id -> its ring's extent
  std::map<uint32_t, std::vector<uint32_t>> listed_;
};

class XdpCaseTest : public ::testing::TestWithParam<PacketCase> {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF)";
  }
};

TEST_P(XdpCaseTest, Run) {
  const PacketCase& tc = GetParam();
  LoadOptions options = tc.options ? loadOptions(tc.options()) : testOptions();
  options.withTc = false;  // the XDP entry alone: the tc entries' verification is TcCaseTest's
  XdpEnv env(options);
  ASSERT_EQ(env.error(), "");
  runCase(tc, env);
}

INSTANTIATE_TEST_SUITE_P(Packets, XdpCaseTest, ::testing::ValuesIn(packetCases()),
                         [](const ::testing::TestParamInfo<PacketCase>& param) {
                           return param.param.name;
                         });

// The same table through the tc ingress entry: same verdicts (TX is a redirect out the ingress
// interface), same output bytes, same counters.
class TcCaseTest : public XdpCaseTest {};

TEST_P(TcCaseTest, Run) {
  const PacketCase& tc = GetParam();
  LoadOptions options = tc.options ? loadOptions(tc.options()) : testOptions();
  options.withXdp = false;  // the tc entries alone
  XdpEnv env(options, Hook::kTcIngress);
  ASSERT_EQ(env.error(), "");
  runCase(tc, env);
}

INSTANTIATE_TEST_SUITE_P(Packets, TcCaseTest, ::testing::ValuesIn(packetCases()),
                         [](const ::testing::TestParamInfo<PacketCase>& param) {
                           return param.param.name;
                         });

class XdpRobustnessTest : public ::testing::TestWithParam<Hook> {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF)";
  }
};

// Every prefix of valid frames (IPv4/IPv6, TCP/UDP, VLAN, ICMP error) runs without an error and
// ends in PASS or DROP, or TX only for the whole frame.
TEST_P(XdpRobustnessTest, EveryTruncationIsHandled) {
  XdpEnv env(testOptions(), GetParam());
  ASSERT_EQ(env.error(), "");
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
    for (size_t len = 14; len <= full.size(); ++len) {
      Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
      const XdpEnv::Run r = env.runRaw(cut);
      if (env.hook() != Hook::kXdp && skbTestRunRefuses(cut)) {
        // Not the program's: the kernel refuses the input (the VLAN frames cover these
        // truncations behind a tag).
        EXPECT_EQ(r.err, -EINVAL) << len;
        continue;
      }
      ASSERT_EQ(r.err, 0) << len;
      if (len < full.size()) {
        EXPECT_TRUE(r.verdict == env.passCode() || r.verdict == env.dropCode())
            << "length " << len << " of " << full.size() << ": verdict " << r.verdict;
      } else {
        EXPECT_EQ(r.verdict, env.txCode());
      }
    }
  }
}

// In the default mode the program hands translated packets to the kernel (XDP_PASS, TC_ACT_OK).
TEST_P(XdpRobustnessTest, PassModeHandsTranslatedPacketsToTheKernel) {
  LoadOptions o = testOptions();
  o.fwdMode = SKIFF_FWD_PASS;
  XdpEnv env(o, GetParam());
  ASSERT_EQ(env.error(), "");
  env.program({});
  const XdpEnv::Run r = env.runRaw(buildPacket(syn(40000)));
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.verdict, env.passCode());
  PacketSpec s = syn(40000);
  const CaseBackend b = backendById(threeBackends(), env.maglevPick(1, s));
  s.dst = b.address;
  s.dport = b.port;
  EXPECT_EQ(r.out, buildPacket(s));
}

INSTANTIATE_TEST_SUITE_P(Hooks, XdpRobustnessTest, ::testing::Values(Hook::kXdp, Hook::kTcIngress),
                         [](const ::testing::TestParamInfo<Hook>& param) {
                           return std::string(hookName(param.param));
                         });

// tc egress translates replies only: a packet the node sends to a frontend leaves as it is (the
// socket LB balances the node's own connections), a backend's reply to a client tracked at
// ingress leaves with the frontend as its source, byte for byte as tc ingress would write it, and
// even in TX mode it continues on its way out (TC_ACT_OK).
TEST(TcEgressTest, ReverseTranslatesRepliesOnly) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF)";
  // One object: the egress entry shares the ingress entry's maps (and conntrack).
  XdpEnv env(testOptions(), Hook::kTcIngress);
  ASSERT_EQ(env.error(), "");
  env.program({});
  const PacketSpec first = syn(40000);
  const XdpEnv::Run in = env.runRaw(buildPacket(first));
  ASSERT_EQ(in.err, 0);
  ASSERT_EQ(in.verdict, env.txCode());

  const CaseBackend b = backendById(threeBackends(), env.maglevPick(1, first));
  PacketSpec reply = first;
  reply.src = b.address;
  reply.sport = b.port;
  reply.dst = first.src;
  reply.dport = first.sport;
  reply.tcpFlags = 0x12;  // SYN+ACK
  PacketSpec translated = reply;
  translated.src = first.dst;
  translated.sport = first.dport;
  const XdpEnv::Run out = env.runAs(Hook::kTcEgress, buildPacket(reply));
  ASSERT_EQ(out.err, 0);
  EXPECT_EQ(out.verdict, static_cast<uint32_t>(TC_ACT_OK));
  EXPECT_EQ(out.out, buildPacket(translated));

  // The node's own packet to the frontend: untouched, and no new flow.
  const Bytes toFrontend = buildPacket(syn(40001));
  const XdpEnv::Run own = env.runAs(Hook::kTcEgress, toFrontend);
  ASSERT_EQ(own.err, 0);
  EXPECT_EQ(own.verdict, static_cast<uint32_t>(TC_ACT_OK));
  EXPECT_EQ(own.out, toFrontend);
  EXPECT_EQ(env.serviceStats(1).newFlows, 1u);
}

// DSR (SKIFF_LB_DSR, `--lb-mode dsr`): the entry node's side (a new flow and an established one
// to a remote backend leave inside an IPIP header, the client's packet untouched; local backends,
// IPv6 and SNAT mode keep DNAT) and the backend node's (an IPIP packet for a local backend is
// decapsulated and DNATed, and tc egress gives the reply the frontend as its source).

constexpr uint8_t kNodeA[4] = {192, 0, 2, 1};  // the entry node's address (outer source)
constexpr uint8_t kNodeB[4] = {192, 0, 2, 9};  // another node's (outer source at the backend)

uint32_t v4Word(const uint8_t (&a)[4]) {
  uint32_t w = 0;
  std::memcpy(&w, a, 4);
  return w;
}

LoadOptions dsrOptions(Hook hook) {
  LoadOptions o = testOptions();
  o.lbMode = SKIFF_LB_DSR;
  o.dsrSourceV4 = v4Word(kNodeA);
  o.withXdp = hook == Hook::kXdp;
  return o;
}

// `list` on other nodes, with ids from `firstId` on if given (ids are per service).
std::vector<CaseBackend> remote(std::vector<CaseBackend> list, uint32_t firstId = 0) {
  for (CaseBackend& b : list) {
    b.state = BackendState::kRemote;
    if (firstId != 0) b.id = firstId++;
  }
  return list;
}

// `inner` (an untagged frame) inside an outer IPv4 header from `src` to `dst`: protocol 4, the
// identification `id`, DF, TTL 64, the inner TOS; the Ethernet header stays in front.
Bytes ipipFrame(const uint8_t (&src)[4], const dataplane::IpAddress& dst, uint16_t id,
                const Bytes& inner) {
  Bytes out(inner.begin(), inner.begin() + 14);
  const size_t innerLen = inner.size() - 14;
  Bytes h(20, 0);
  h[0] = 0x45;
  h[1] = inner[15];
  h[2] = static_cast<uint8_t>((innerLen + 20) >> 8);
  h[3] = static_cast<uint8_t>(innerLen + 20);
  h[4] = static_cast<uint8_t>(id >> 8);
  h[5] = static_cast<uint8_t>(id);
  h[6] = 0x40;
  h[8] = 64;
  h[9] = 4;
  std::copy(src, src + 4, h.begin() + 12);
  std::copy(dst.octets().begin(), dst.octets().begin() + 4, h.begin() + 16);
  const uint16_t c = static_cast<uint16_t>(~onesComplementSum(h));
  h[10] = static_cast<uint8_t>(c >> 8);
  h[11] = static_cast<uint8_t>(c);
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), inner.begin() + 14, inner.end());
  return out;
}

// The conntrack slot holding `key` (dir included), if any.
std::optional<skiff_ct_slot> findCt(int fd, uint32_t slots, const skiff_ct_key& key) {
  for (uint32_t i = 0; i < slots; ++i) {
    skiff_ct_slot s{};
    if (bpf_map_lookup_elem(fd, &i, &s) != 0) continue;
    if (std::memcmp(&s.key, &key, sizeof(key)) == 0) return s;
  }
  return std::nullopt;
}

skiff_ct_key ctKey(const dataplane::IpAddress& src, uint16_t sport, const dataplane::IpAddress& dst,
                   uint16_t dport, uint8_t dir) {
  skiff_ct_key k{};
  copyAddress(src, k.saddr);
  copyAddress(dst, k.daddr);
  k.sport = toNetwork16(sport);
  k.dport = toNetwork16(dport);
  k.proto = 6;
  k.family = SKIFF_AF_INET;
  k.dir = dir;
  return k;
}

class DsrTest : public ::testing::TestWithParam<Hook> {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF)";
  }
};

// A SYN to a frontend whose backends are on other nodes leaves as IPIP: outer header from the
// node's address to the backend's, the backend's port in the identification, DF; the inner
// frame byte for byte the client's (its checksums as they were); conntrack holds the flow.
// The next packet of the flow goes the same way to the same backend without a new flow.
TEST_P(DsrTest, RemoteBackendGetsTheClientPacketInIpip) {
  const LoadOptions options = dsrOptions(GetParam());
  XdpEnv env(options, GetParam());
  ASSERT_EQ(env.error(), "");
  env.program({.backends = remote(threeBackends())});

  const PacketSpec first = syn(40000);
  const CaseBackend b = backendById(threeBackends(), env.maglevPick(1, first));
  const Bytes in = buildPacket(first);
  const XdpEnv::Run r = env.runRaw(in);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.verdict, env.txCode());
  EXPECT_EQ(r.out, swapMacs(ipipFrame(kNodeA, b.address, b.port, in)));
  ASSERT_GE(r.out.size(), 34u);
  EXPECT_EQ(onesComplementSum(std::span<const uint8_t>(r.out).subspan(14, 20)), 0xffff);
  Bytes inner(r.out.begin(), r.out.begin() + 14);
  inner.insert(inner.end(), r.out.begin() + 34, r.out.end());
  EXPECT_TRUE(checksumsValid(inner));

  const auto fwd = findCt(env.maps().conntrack, options.conntrack,
                          ctKey(kClient, 40000, kVip, 80, SKIFF_CT_FORWARD));
  ASSERT_TRUE(fwd.has_value());
  EXPECT_EQ(fwd->entry.backend_id, b.id);
  EXPECT_EQ(fwd->entry.svc_id, 1u);

  PacketSpec ack = first;
  ack.tcpFlags = 0x10;
  const Bytes next = buildPacket(ack);
  const XdpEnv::Run r2 = env.runRaw(next);
  ASSERT_EQ(r2.err, 0);
  EXPECT_EQ(r2.verdict, env.txCode());
  EXPECT_EQ(r2.out, swapMacs(ipipFrame(kNodeA, b.address, b.port, next)));
  const CaseServiceStats stats = env.serviceStats(1);
  EXPECT_EQ(stats.packets, 2u);
  EXPECT_EQ(stats.newFlows, 1u);
  EXPECT_EQ(env.backendStats(b.id).newFlows, 1u);
  auto encap = readGlobal(env.maps().global, SKIFF_GLOBAL_DSR_ENCAP);
  ASSERT_TRUE(encap.ok());
  EXPECT_EQ(*encap, 2u);
}

// What DSR leaves to DNAT: a backend on this node (the node-local logic as it is), an IPv6
// service, a VLAN-tagged frame; and SNAT mode (the default) DNATs a remote backend too.
TEST_P(DsrTest, LocalBackendsIpv6TaggedFramesAndSnatModeKeepDnat) {
  XdpEnv env(dsrOptions(GetParam()), GetParam());
  ASSERT_EQ(env.error(), "");
  env.program({});  // three local backends
  const PacketSpec first = syn(40000);
  const CaseBackend b = backendById(threeBackends(), env.maglevPick(1, first));
  PacketSpec dnat = first;
  dnat.dst = b.address;
  dnat.dport = b.port;
  XdpEnv::Run r = env.runRaw(buildPacket(first));
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.verdict, env.txCode());
  EXPECT_EQ(r.out, swapMacs(buildPacket(dnat)));

  env.program(
      {.svcId = 2, .frontend = {kVip6, 443, L4Protocol::kTcp}, .backends = remote(v6Backends())});
  const PacketSpec six = syn(40000, kClient6, kVip6, 443);
  const CaseBackend b6 = backendById(v6Backends(), env.maglevPick(2, six));
  PacketSpec dnat6 = six;
  dnat6.dst = b6.address;
  dnat6.dport = b6.port;
  r = env.runRaw(buildPacket(six));
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.out, swapMacs(buildPacket(dnat6)));

  env.program({.svcId = 3,
               .frontend = {kVip, 81, L4Protocol::kTcp},
               .backends = remote(threeBackends(), 31)});
  PacketSpec tagged = syn(40001, kClient, kVip, 81);
  tagged.vlanTags = 1;
  const CaseBackend bt = backendById(remote(threeBackends(), 31), env.maglevPick(3, tagged));
  PacketSpec taggedOut = tagged;
  taggedOut.dst = bt.address;
  taggedOut.dport = bt.port;
  r = env.runRaw(buildPacket(tagged));
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.out, swapMacs(buildPacket(taggedOut)));

  LoadOptions snat = dsrOptions(GetParam());
  snat.lbMode = SKIFF_LB_SNAT;
  XdpEnv plain(snat, GetParam());
  ASSERT_EQ(plain.error(), "");
  plain.program({.backends = remote(threeBackends())});
  const CaseBackend bs = backendById(threeBackends(), plain.maglevPick(1, first));
  PacketSpec dnatRemote = first;
  dnatRemote.dst = bs.address;
  dnatRemote.dport = bs.port;
  r = plain.runRaw(buildPacket(first));
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.out, swapMacs(buildPacket(dnatRemote)));
}

// The backend's node: an IPIP packet whose inner destination is a frontend and whose outer
// destination is a local backend (its port in the identification) comes out without the outer
// header, DNATed to the backend; conntrack holds (backend -> client) with the frontend, and tc
// egress turns the backend's reply into one from the frontend. Established packets reuse the
// entry (one new flow). IPIP packets for no frontend or without a port, and every IPIP packet in
// SNAT mode, pass as they are.
TEST_P(DsrTest, BackendNodeDecapsulatesAndTheReplyComesFromTheFrontend) {
  LoadOptions options = dsrOptions(GetParam());
  options.withTc = true;  // tc egress rewrites the replies
  XdpEnv env(options, GetParam());
  ASSERT_EQ(env.error(), "");
  env.program({});  // the backends are this node's
  const CaseBackend b = threeBackends()[1];
  const PacketSpec first = syn(40000);
  PacketSpec delivered = first;
  delivered.dst = b.address;
  delivered.dport = b.port;
  const Bytes in = ipipFrame(kNodeB, b.address, b.port, buildPacket(first));
  XdpEnv::Run r = env.runRaw(in);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.verdict, env.txCode());
  EXPECT_EQ(r.out, swapMacs(buildPacket(delivered)));
  EXPECT_TRUE(checksumsValid(r.out));

  const auto rev = findCt(env.maps().conntrack, options.conntrack,
                          ctKey(b.address, b.port, kClient, 40000, SKIFF_CT_REPLY));
  ASSERT_TRUE(rev.has_value());
  dataplane::IpAddress frontend = addressFromKey(rev->entry.frontend_addr, SKIFF_AF_INET);
  EXPECT_EQ(frontend, kVip);
  EXPECT_EQ(fromNetwork16(rev->entry.frontend_port), 80);
  EXPECT_EQ(rev->entry.svc_id, 1u);

  PacketSpec reply = delivered;
  std::swap(reply.src, reply.dst);
  std::swap(reply.sport, reply.dport);
  reply.tcpFlags = 0x12;
  PacketSpec translated = reply;
  translated.src = kVip;
  translated.sport = 80;
  const XdpEnv::Run out = env.runAs(Hook::kTcEgress, buildPacket(reply));
  ASSERT_EQ(out.err, 0);
  EXPECT_EQ(out.verdict, static_cast<uint32_t>(TC_ACT_OK));
  EXPECT_EQ(out.out, buildPacket(translated));

  PacketSpec ack = first;
  ack.tcpFlags = 0x10;
  PacketSpec ackDelivered = delivered;
  ackDelivered.tcpFlags = 0x10;
  r = env.runRaw(ipipFrame(kNodeB, b.address, b.port, buildPacket(ack)));
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.out, swapMacs(buildPacket(ackDelivered)));
  EXPECT_EQ(env.serviceStats(1).newFlows, 1u);
  auto decap = readGlobal(env.maps().global, SKIFF_GLOBAL_DSR_DECAP);
  ASSERT_TRUE(decap.ok());
  EXPECT_EQ(*decap, 2u);

  const Bytes notAService =
      ipipFrame(kNodeB, b.address, b.port, buildPacket(syn(40002, kClient, kVip, 81)));
  r = env.runRaw(notAService);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.verdict, env.passCode());
  EXPECT_EQ(r.out, notAService);
  const Bytes noPort = ipipFrame(kNodeB, b.address, 0, buildPacket(syn(40003)));
  r = env.runRaw(noPort);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.verdict, env.passCode());
  EXPECT_EQ(r.out, noPort);

  LoadOptions snat = dsrOptions(GetParam());
  snat.lbMode = SKIFF_LB_SNAT;
  XdpEnv plain(snat, GetParam());
  ASSERT_EQ(plain.error(), "");
  plain.program({});
  r = plain.runRaw(in);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.verdict, plain.passCode());
  EXPECT_EQ(r.out, in);
}

// Every prefix of an IPIP frame (and of a frame to a remote backend) is handled: no error,
// PASS or DROP unless whole.
TEST_P(DsrTest, EveryTruncationIsHandled) {
  XdpEnv env(dsrOptions(GetParam()), GetParam());
  ASSERT_EQ(env.error(), "");
  env.program({});
  env.program({.svcId = 2,
               .frontend = {kVip, 81, L4Protocol::kTcp},
               .backends = remote(fourBackends(), 41)});
  const CaseBackend b = threeBackends()[0];
  const std::vector<Bytes> frames = {
      ipipFrame(kNodeB, b.address, b.port, buildPacket(syn(40000))),
      buildPacket(syn(40001, kClient, kVip, 81)),
  };
  for (const Bytes& full : frames) {
    for (size_t len = 14; len <= full.size(); ++len) {
      Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
      const XdpEnv::Run r = env.runRaw(cut);
      if (env.hook() != Hook::kXdp && skbTestRunRefuses(cut)) continue;
      ASSERT_EQ(r.err, 0) << len;
      if (len < full.size()) {
        EXPECT_TRUE(r.verdict == env.passCode() || r.verdict == env.dropCode())
            << "length " << len << " of " << full.size() << ": verdict " << r.verdict;
      } else {
        EXPECT_EQ(r.verdict, env.txCode());
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Hooks, DsrTest, ::testing::Values(Hook::kXdp, Hook::kTcIngress),
                         [](const ::testing::TestParamInfo<Hook>& param) {
                           return std::string(hookName(param.param));
                         });

}  // namespace
}  // namespace skiff::ebpf

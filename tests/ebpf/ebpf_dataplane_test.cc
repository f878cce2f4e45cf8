// The EbpfDataplane as the proxier drives it: deltas in, map writes out, checked by running
// packets through the XDP program and by reading stats().

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ebpf/ebpf_dataplane.h"
#include "ebpf/map_reader.h"
#include "tests/ebpf/packet.h"

namespace skiff::ebpf {
namespace {

using dataplane::Backend;
using dataplane::DropReason;
using dataplane::FrontendKind;
using dataplane::IpAddress;
using dataplane::L4Protocol;
using dataplane::Service;
using dataplane::ServiceDelta;
using testing::Bytes;
using testing::PacketSpec;

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

const IpAddress kClient = ip("198.51.100.7");
const IpAddress kVip = ip("203.0.113.10");

Service web() {
  Service s;
  s.id = "default/web:http";
  s.frontends = {{{kVip, 80, L4Protocol::kTcp}, FrontendKind::kLoadBalancer},
                 {{ip("10.96.0.10"), 80, L4Protocol::kTcp}, FrontendKind::kClusterIP}};
  s.backends = {Backend{.address = ip("10.0.1.1"), .port = 8080},
                Backend{.address = ip("10.0.1.2"), .port = 8080},
                Backend{.address = ip("10.0.1.3"), .port = 8080}};
  s.maglevTableSize = 251;
  return s;
}

PacketSpec syn(uint16_t sport, const IpAddress& client = kClient) {
  return PacketSpec{.src = client, .dst = kVip, .sport = sport, .dport = 80};
}

// The XDP-only data path the tests load: forwarding by XDP_TX, room for 64 frontends, 16 services,
// 64 backends, 64 rings and 1024 flows.
EbpfDataplaneOptions smallDataplane() {
  EbpfDataplaneOptions options;
  options.load.fwdMode = SKIFF_FWD_TX;
  options.load.frontends = 64;
  options.load.services = 16;
  options.load.backends = 64;
  options.load.rings = 64;
  options.load.conntrack = 1024;
  options.load.withSocketLb = false;
  return options;
}

class EbpfDataplaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF)";
    auto created = EbpfDataplane::create(smallDataplane());
    ASSERT_TRUE(created.ok()) << created.message();
    dp_ = std::move(*created);
  }

  struct Run {
    uint32_t verdict = 0;
    Bytes out;
  };
  Run run(const Bytes& in) {
    Run r;
    r.out.assign(in.size() + 256, 0);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = r.out.data(),
                .data_size_in = static_cast<uint32_t>(in.size()),
                .data_size_out = static_cast<uint32_t>(r.out.size()), .repeat = 1);
    EXPECT_EQ(bpf_prog_test_run_opts(dp_->programs().xdpProgram(), &opts), 0);
    r.verdict = opts.retval;
    r.out.resize(opts.data_size_out);
    return r;
  }
  // The backend a translated frame went to.
  std::string backendOf(const Run& r) {
    auto t = testing::parseTuple(r.out);
    if (!t) return "?";
    return t->dst.toString() + ":" + std::to_string(t->dport);
  }
  const dataplane::ServiceStats* statsOf(const dataplane::DataplaneStats& s,
                                         const std::string& id) {
    for (const auto& x : s.services) {
      if (x.id == id) return &x;
    }
    return nullptr;
  }
  void apply(std::vector<Service> upserted, std::vector<std::string> removed = {},
             bool replaceAll = false) {
    ServiceDelta d;
    d.upserted = std::move(upserted);
    d.removed = std::move(removed);
    d.replaceAll = replaceAll;
    const auto st = dp_->apply(d);
    ASSERT_TRUE(st.ok()) << st.message();
  }

  std::unique_ptr<EbpfDataplane> dp_;
};

TEST_F(EbpfDataplaneTest, NewFlowIsCountedPerServiceAndBackend) {
  apply({web()});
  const Run r = run(testing::buildPacket(syn(40000)));
  ASSERT_EQ(r.verdict, static_cast<uint32_t>(XDP_TX));
  EXPECT_TRUE(testing::checksumsValid(r.out));
  auto stats = dp_->stats();
  ASSERT_TRUE(stats.ok()) << stats.message();
  const auto* s = statsOf(*stats, "default/web:http");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->newFlows, 1u);
  EXPECT_EQ(s->packets, 1u);
  ASSERT_EQ(s->backends.size(), 3u);
  uint64_t total = 0;
  for (const auto& b : s->backends) {
    total += b.packets;
    if (b.packets == 1) {
      EXPECT_EQ(b.backend.toString(), backendOf(r));
    }
  }
  EXPECT_EQ(total, 1u);
  EXPECT_EQ(stats->failedUpdates, 0u);
}

TEST_F(EbpfDataplaneTest, RemovedBackendLosesItsFlowsOthersKeepTheirs) {
  apply({web()});
  std::vector<std::string> before;
  for (uint16_t p = 40000; p < 40040; ++p)
    before.push_back(backendOf(run(testing::buildPacket(syn(p)))));
  const std::string gone = before[0];
  Service changed = web();
  std::erase_if(changed.backends, [&](const Backend& b) { return b.key().toString() == gone; });
  ASSERT_EQ(changed.backends.size(), 2u);
  apply({changed});
  for (uint16_t p = 40000; p < 40040; ++p) {
    auto s = syn(p);
    s.tcpFlags = testing::kTcpAck;
    const std::string now = backendOf(run(testing::buildPacket(s)));
    if (before[p - 40000] == gone) {
      EXPECT_NE(now, gone) << p;
    } else {
      EXPECT_EQ(now, before[p - 40000]) << p;  // established: conntrack keeps it
    }
  }
  auto stats = dp_->stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(statsOf(*stats, "default/web:http")->backends.size(), 2u);
}

TEST_F(EbpfDataplaneTest, WritesOnlyWhatChanged) {
  apply({web()});
  const uint64_t first = dp_->writer().calls();
  EXPECT_GT(first, 0u);
  apply({web()});
  EXPECT_EQ(dp_->writer().calls(), first);
  apply({web()}, {}, true);  // a resync of the same state
  EXPECT_EQ(dp_->writer().calls(), first);
  // One more backend: one batch with its entry (a never-used id on fresh maps needs no stats
  // reset), one copy of the new ring (IPv4, cluster scope) into a free extent, and one batch
  // with the two frontends (their backend count and ring changed).
  Service grown = web();
  grown.backends.push_back(Backend{.address = ip("10.0.1.4"), .port = 8080});
  apply({grown});
  EXPECT_EQ(dp_->writer().calls() - first, 3u);
  EXPECT_EQ(dp_->writer().failedUpdates(), 0u);
}

// The ring start the frontend `key` names for the external origin.
uint32_t ringStartOf(const EbpfDataplane& dp, const dataplane::FrontendKey& key) {
  const skiff_frontend_key k = frontendKey(key);
  skiff_service v{};
  if (bpf_map_lookup_elem(dp.maps().services, &k, &v) != 0) return 0;
  return v.ring_start[SKIFF_ORIGIN_EXTERNAL];
}

// A changed ring is written whole into another extent and both frontends switch to it (a packet
// sees the old ring or the new one, never a mix); the old extent is released; the new ring names
// only the backends left.
TEST_F(EbpfDataplaneTest, ChangedRingGoesToANewExtentAndFrontendsSwitch) {
  apply({web()});
  const uint32_t before = ringStartOf(*dp_, web().frontends[0].key);
  ASSERT_NE(before, 0u);
  EXPECT_EQ(ringStartOf(*dp_, web().frontends[1].key), before) << "one ring per scope";
  ASSERT_EQ(dp_->writer().ring(before).size(), 251u);
  Service fewer = web();
  fewer.backends.pop_back();
  apply({fewer});
  const uint32_t after = ringStartOf(*dp_, fewer.frontends[0].key);
  EXPECT_NE(after, before);
  EXPECT_EQ(ringStartOf(*dp_, fewer.frontends[1].key), after);
  EXPECT_EQ(dp_->writer().ringsInUse(), 1u) << "the old extent is released";
  EXPECT_EQ(dp_->writer().inPlaceRingWrites(), 0u);
  auto rings = readRings(dp_->maps().rings, dp_->maps().services);
  ASSERT_TRUE(rings.ok()) << rings.message();
  ASSERT_EQ(rings->size(), 1u);
  const uint32_t gone = dp_->backendId("default/web:http", web().backends[2].key());
  EXPECT_EQ(gone, 0u);
  std::set<uint32_t> named((*rings)[0].table.begin(), (*rings)[0].table.end());
  EXPECT_EQ(named.size(), 2u);
  for (uint16_t p = 40000; p < 40020; ++p) {
    const Run r = run(testing::buildPacket(syn(p)));
    ASSERT_EQ(r.verdict, static_cast<uint32_t>(XDP_TX));
    EXPECT_NE(backendOf(r), "10.0.1.3:8080");
  }
}

// With no room for a second copy, a ring of the same size is rewritten in place.
TEST(EbpfDataplaneRingMemory, NoRoomForASecondCopyRewritesInPlace) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF)";
  EbpfDataplaneOptions options = smallDataplane();
  options.load.ringEntries = SKIFF_RING_ALIGN + 256;  // one ring of 251, aligned
  auto created = EbpfDataplane::create(options);
  ASSERT_TRUE(created.ok()) << created.message();
  EbpfDataplane& dp = **created;
  ServiceDelta d;
  d.upserted = {web()};
  ASSERT_TRUE(dp.apply(d).ok());
  const uint32_t before = ringStartOf(dp, web().frontends[0].key);
  Service fewer = web();
  fewer.backends.pop_back();
  d.upserted = {fewer};
  ASSERT_TRUE(dp.apply(d).ok());
  EXPECT_EQ(ringStartOf(dp, fewer.frontends[0].key), before);
  EXPECT_EQ(dp.writer().inPlaceRingWrites(), 1u);
  auto rings = readRings(dp.maps().rings, dp.maps().services);
  ASSERT_TRUE(rings.ok()) << rings.message();
  ASSERT_EQ(rings->size(), 1u);
  std::set<uint32_t> named((*rings)[0].table.begin(), (*rings)[0].table.end());
  EXPECT_EQ(named.size(), 2u);
  // A second service does not fit: a clear error.
  Service other = web();
  other.id = "default/other:http";
  other.frontends = {{{ip("203.0.113.11"), 80, L4Protocol::kTcp}, FrontendKind::kLoadBalancer}};
  d.upserted = {other};
  const auto st = dp.apply(d);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no room for a Maglev ring"), std::string::npos) << st.message();
}

// putRing with backend ids: a table of indices goes into the ring as ids (empty entries stay
// empty); an index that names no backend fails before anything is written.
TEST(EbpfDataplaneRingMemory, TableOfIndicesIsWrittenAsIds) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF)";
  EbpfDataplaneOptions options = smallDataplane();
  options.load.ringEntries = SKIFF_RING_ALIGN + 4 * 256;
  auto created = EbpfDataplane::create(options);
  ASSERT_TRUE(created.ok()) << created.message();
  // Only this writer writes these maps (the dataplane is never applied).
  MapWriter writer((*created)->maps(), 64);
  const std::vector<uint32_t> ids = {41, 7, 1000};
  std::vector<uint32_t> table(251);
  for (size_t i = 0; i < table.size(); ++i)
    table[i] = i % 5 == 4 ? dataplane::kMaglevEmpty : static_cast<uint32_t>(i % 3);
  auto start = writer.putRing(SKIFF_ID_NONE, table, ids);
  ASSERT_TRUE(start.ok()) << start.message();
  std::span<const uint32_t> ring = writer.ring(*start);
  ASSERT_EQ(ring.size(), table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    const uint32_t want =
        table[i] == dataplane::kMaglevEmpty ? dataplane::kMaglevEmpty : ids[table[i]];
    ASSERT_EQ(ring[i], want) << "position " << i;
  }
  // The same table again: nothing written, same extent.
  auto again = writer.putRing(*start, table, ids);
  ASSERT_TRUE(again.ok()) << again.message();
  EXPECT_EQ(*again, *start);
  EXPECT_EQ(writer.ringsInUse(), 1u);
  // Index 3 of 3 backends.
  table[100] = 3;
  auto bad = writer.putRing(SKIFF_ID_NONE, table, ids);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("names index 3 of 3 backends"), std::string::npos) << bad.message();
  EXPECT_EQ(writer.ringsInUse(), 1u);
}

// A resync of the same state builds no table, but a ring something else wrote into is found (its
// hash no longer matches) and rewritten as a rebuild would: the frontends get the service's table
// back.
TEST_F(EbpfDataplaneTest, ResyncRepairsARingSomethingElseWrote) {
  apply({web()});
  const uint32_t start = ringStartOf(*dp_, web().frontends[0].key);
  ASSERT_NE(start, 0u);
  EXPECT_TRUE(dp_->writer().ringIntact(start));
  const std::span<const uint32_t> ring = dp_->writer().ring(start);
  const std::vector<uint32_t> good(ring.begin(), ring.end());
  apply({web()}, {}, true);
  EXPECT_EQ(ringStartOf(*dp_, web().frontends[0].key), start) << "same state, same ring";

  const uint32_t first = dp_->backendId("default/web:http", web().backends[0].key());
  skiff_ring_block bogus{};
  for (uint32_t& id : bogus.backend_id)
    id = first;
  ASSERT_FALSE(std::equal(good.begin(), good.begin() + SKIFF_RING_ALIGN, bogus.backend_id));
  const uint32_t block = start / SKIFF_RING_ALIGN;
  ASSERT_EQ(bpf_map_update_elem(dp_->maps().rings, &block, &bogus, BPF_ANY), 0);
  ASSERT_EQ(dp_->writer().ring(start)[0], first) << "the mapping shows the other write";
  EXPECT_FALSE(dp_->writer().ringIntact(start));

  apply({web()}, {}, true);
  const uint32_t repaired = ringStartOf(*dp_, web().frontends[0].key);
  ASSERT_NE(repaired, 0u);
  EXPECT_EQ(ringStartOf(*dp_, web().frontends[1].key), repaired);
  const std::span<const uint32_t> now = dp_->writer().ring(repaired);
  EXPECT_EQ(std::vector<uint32_t>(now.begin(), now.end()), good);
  EXPECT_TRUE(dp_->writer().ringIntact(repaired));
  EXPECT_EQ(dp_->writer().failedUpdates(), 0u);
}

// A ring change that fails half way (the IPv4 ring written, no room for the IPv6 one) leaves the
// rings the frontends name and gives the new extent back: the service's previous state programs
// again without room for more.
TEST(EbpfDataplaneRingMemory, FailedRingChangeKeepsTheRingsTheFrontendsName) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF)";
  EbpfDataplaneOptions options = smallDataplane();
  options.load.rings = 3;  // the two rings and one more
  auto created = EbpfDataplane::create(options);
  ASSERT_TRUE(created.ok()) << created.message();
  EbpfDataplane& dp = **created;
  Service dual = web();
  dual.frontends.push_back({{ip("fd00:96::10"), 80, L4Protocol::kTcp}, FrontendKind::kClusterIP});
  dual.backends.push_back(Backend{.address = ip("fd00:1::1"), .port = 8080});
  dual.backends.push_back(Backend{.address = ip("fd00:1::2"), .port = 8080});
  ServiceDelta d;
  d.upserted = {dual};
  ASSERT_TRUE(dp.apply(d).ok());
  ASSERT_EQ(dp.writer().ringsInUse(), 2u);
  const uint32_t v4 = ringStartOf(dp, dual.frontends[0].key);
  const uint32_t v6 = ringStartOf(dp, dual.frontends[2].key);
  ASSERT_NE(v4, 0u);
  ASSERT_NE(v6, 0u);
  ASSERT_NE(v4, v6);

  Service resized = dual;
  resized.maglevTableSize = 241;  // both rings change size: no rewrite in place
  d.upserted = {resized};
  const auto st = dp.apply(d);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no room for a Maglev ring"), std::string::npos) << st.message();
  EXPECT_EQ(ringStartOf(dp, dual.frontends[0].key), v4);
  EXPECT_EQ(ringStartOf(dp, dual.frontends[2].key), v6);

  d.upserted = {dual};
  const auto again = dp.apply(d);
  ASSERT_TRUE(again.ok()) << again.message();
  EXPECT_EQ(ringStartOf(dp, dual.frontends[0].key), v4);
  EXPECT_EQ(ringStartOf(dp, dual.frontends[2].key), v6);
  EXPECT_EQ(dp.writer().ringSize(v4), 251u);
  EXPECT_EQ(dp.writer().ringSize(v6), 251u);
  EXPECT_EQ(dp.writer().ringsInUse(), 2u);
}

// A delta of many services (computed in chunks by several threads, programmed while the next
// chunk is computed) programs every service's ring as its own Maglev table of its backends' ids,
// and a second full sync of the same services writes nothing.
TEST(EbpfDataplaneLargeDelta, EveryRingIsItsServicesTable) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF)";
  constexpr uint32_t kServices = 700;  // chunks of 256: three, the last partial
  EbpfDataplaneOptions options;
  options.load.fwdMode = SKIFF_FWD_TX;
  options.load.frontends = kServices + 16;
  options.load.services = kServices + 16;
  options.load.backends = kServices * 4 + 16;
  options.load.rings = 2 * kServices;
  options.load.conntrack = 1024;
  options.load.withSocketLb = false;
  options.load.ringEntries = 2 * kServices * 256;
  auto created = EbpfDataplane::create(options);
  ASSERT_TRUE(created.ok()) << created.message();
  EbpfDataplane& dp = **created;
  ServiceDelta d;
  d.replaceAll = true;
  for (uint32_t i = 0; i < kServices; ++i) {
    Service s;
    s.id = "default/svc-" + std::to_string(i) + ":http";
    s.frontends = {
        {{IpAddress::v4(0xc6120000u + i + 1), 80, L4Protocol::kTcp}, FrontendKind::kExternalIP}};
    for (uint32_t b = 0; b < 1 + i % 4; ++b) {
      s.backends.push_back(
          Backend{.address = IpAddress::v4(0x0a000000u + i * 8 + b + 1), .port = 8080});
    }
    s.maglevTableSize = i % 2 == 0 ? 251 : 241;
    d.upserted.push_back(std::move(s));
  }
  ASSERT_TRUE(dp.apply(d).ok());
  for (const Service& s : d.upserted) {
    const uint32_t start = ringStartOf(dp, s.frontends[0].key);
    ASSERT_NE(start, 0u) << s.id;
    std::vector<dataplane::MaglevBackend> members;
    for (const Backend& b : s.backends)
      members.push_back({b.key(), b.weight, dp.backendId(s.id, b.key())});
    const auto expected = dataplane::buildMaglevTable(members, s.maglevTableSize);
    ASSERT_TRUE(expected.ok());
    const auto ring = dp.writer().ring(start);
    ASSERT_EQ(std::vector<uint32_t>(ring.begin(), ring.end()), *expected) << s.id;
  }
  const uint64_t calls = dp.writer().calls();
  ASSERT_TRUE(dp.apply(d).ok());
  EXPECT_EQ(dp.writer().calls(), calls);
  EXPECT_EQ(dp.writer().failedUpdates(), 0u);
}

TEST_F(EbpfDataplaneTest, RingSizeChangeSwapsTheRing) {
  apply({web()});
  Service bigger = web();
  bigger.maglevTableSize = 1021;
  apply({bigger});
  const Run r = run(testing::buildPacket(syn(40000)));
  EXPECT_EQ(r.verdict, static_cast<uint32_t>(XDP_TX));
  EXPECT_TRUE(testing::checksumsValid(r.out));
}

TEST_F(EbpfDataplaneTest, TerminatingFallbackServesNewFlows) {
  Service s = web();
  for (Backend& b : s.backends) {
    b.ready = false;
    b.terminating = true;
  }
  s.backends[2].serving = false;
  apply({s});
  for (uint16_t p = 40000; p < 40020; ++p) {
    const Run r = run(testing::buildPacket(syn(p)));
    ASSERT_EQ(r.verdict, static_cast<uint32_t>(XDP_TX));
    EXPECT_NE(backendOf(r), "10.0.1.3:8080");  // not serving: never picked
  }
}

TEST_F(EbpfDataplaneTest, NoServingBackendRejectsWithNoBackend) {
  Service s = web();
  for (Backend& b : s.backends) {
    b.ready = false;
    b.serving = false;
  }
  apply({s});
  const Run r = run(testing::buildPacket(syn(40000)));
  EXPECT_EQ(r.verdict, static_cast<uint32_t>(XDP_TX));
  auto reject = testing::parseTuple(r.out);
  ASSERT_TRUE(reject.has_value());
  EXPECT_EQ(reject->proto, 1);  // ICMP port unreachable from the frontend
  EXPECT_EQ(reject->src, kVip);
  EXPECT_TRUE(testing::checksumsValid(r.out));
  auto stats = dp_->stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(statsOf(*stats, "default/web:http")->drops[static_cast<size_t>(DropReason::kNoBackend)],
            1u);
}

TEST_F(EbpfDataplaneTest, ExternalTrafficPolicyLocalWithoutLocalBackendsDrops) {
  Service s = web();
  s.externalTrafficPolicy = dataplane::TrafficPolicy::kLocal;
  apply({s});
  EXPECT_EQ(run(testing::buildPacket(syn(40000))).verdict, static_cast<uint32_t>(XDP_DROP));
  s.backends[1].local = true;
  apply({s});
  for (uint16_t p = 40001; p < 40010; ++p) {
    const Run r = run(testing::buildPacket(syn(p)));
    ASSERT_EQ(r.verdict, static_cast<uint32_t>(XDP_TX));
    EXPECT_EQ(backendOf(r), "10.0.1.2:8080");
  }
  auto stats = dp_->stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(
      statsOf(*stats, "default/web:http")->drops[static_cast<size_t>(DropReason::kNoLocalBackend)],
      1u);
}

TEST_F(EbpfDataplaneTest, SourceRangesApplyToLoadBalancerFrontends) {
  Service s = web();
  s.loadBalancerSourceRanges = {*dataplane::IpPrefix::parse("192.0.2.0/24")};
  apply({s});
  EXPECT_EQ(run(testing::buildPacket(syn(40000))).verdict, static_cast<uint32_t>(XDP_DROP));
  EXPECT_EQ(run(testing::buildPacket(syn(40000, ip("192.0.2.5")))).verdict,
            static_cast<uint32_t>(XDP_TX));
  s.loadBalancerSourceRanges.clear();
  apply({s});
  EXPECT_EQ(run(testing::buildPacket(syn(40001))).verdict, static_cast<uint32_t>(XDP_TX));
}

TEST_F(EbpfDataplaneTest, ConflictingFrontendChangesNothing) {
  apply({web()});
  Service other = web();
  other.id = "default/other:http";
  ServiceDelta d;
  d.upserted = {other};
  EXPECT_FALSE(dp_->apply(d).ok());
  auto stats = dp_->stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->services.size(), 1u);
  EXPECT_EQ(run(testing::buildPacket(syn(40000))).verdict, static_cast<uint32_t>(XDP_TX));
}

TEST_F(EbpfDataplaneTest, FrontendMovesBetweenServicesInOneDelta) {
  Service a = web();
  a.frontends.resize(1);  // the LoadBalancer frontend only
  apply({a});
  Service b = web();
  b.id = "default/b:http";
  b.frontends = a.frontends;
  b.backends = {Backend{.address = ip("10.0.9.9"), .port = 9090}};
  Service aWithout = a;
  aWithout.frontends = {{{ip("203.0.113.12"), 80, L4Protocol::kTcp}, FrontendKind::kExternalIP}};
  apply({b, aWithout});  // b takes the frontend before a gives it up
  const Run r = run(testing::buildPacket(syn(40000)));
  ASSERT_EQ(r.verdict, static_cast<uint32_t>(XDP_TX));
  EXPECT_EQ(backendOf(r), "10.0.9.9:9090");
}

TEST_F(EbpfDataplaneTest, RemoveAndReplaceAll) {
  apply({web()});
  apply({}, {"default/web:http"});
  const Bytes in = testing::buildPacket(syn(40000));
  const Run r = run(in);
  EXPECT_EQ(r.verdict, static_cast<uint32_t>(XDP_PASS));
  EXPECT_EQ(r.out, in);
  EXPECT_EQ(dp_->stats()->services.size(), 0u);

  Service a = web();
  Service b = web();
  b.id = "default/b:http";
  b.frontends = {{{ip("203.0.113.11"), 80, L4Protocol::kTcp}, FrontendKind::kExternalIP}};
  apply({a, b});
  apply({b}, {}, true);  // resync: only b remains
  EXPECT_EQ(run(in).verdict, static_cast<uint32_t>(XDP_PASS));
  PacketSpec toB = syn(40000);
  toB.dst = ip("203.0.113.11");
  EXPECT_EQ(run(testing::buildPacket(toB)).verdict, static_cast<uint32_t>(XDP_TX));
  auto stats = dp_->stats();
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->services.size(), 1u);
  EXPECT_EQ(stats->services[0].id, "default/b:http");
}

}  // namespace
}  // namespace skiff::ebpf

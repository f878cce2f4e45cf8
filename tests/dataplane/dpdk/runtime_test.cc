// `skiff dataplane` end to end inside one process (EAL --no-huge --no-pci, a net_ring port): the
// Runtime on a worker lcore, the ControlServer on a unix socket in a temp dir, and the proxier's
// DpdkDataplane client programming it and reading its statistics; /metrics over HTTP; bad input
// over the socket answered with an error while the server stays up.

#include "dataplane/dpdk/runtime.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "dataplane/dpdk/control_codec.h"
#include "dataplane/dpdk/control_server.h"
#include "dataplane/dpdk/dpdk_dataplane.h"
#include "tests/dataplane/packet_cases.h"

namespace skiff::dataplane::dpdk {
namespace {

using namespace dataplane::testing;  // NOLINT(google-build-using-namespace): the case vocabulary

struct Rig {
  bool ok = false;
  std::string error;
  rte_ring* in = nullptr;
  rte_ring* out = nullptr;
  uint16_t port = 0;
};
Rig rig;

void setUpRig() {
  if (geteuid() != 0) {
    rig.error = "needs root (EAL)";
    return;
  }
  const std::string prefix = "skiff-dpdk-rt-" + std::to_string(getpid());
  std::vector<std::string> args = {"dpdk_runtime_test",
                                   "-l",
                                   "0-1",
                                   "--no-huge",
                                   "-m",
                                   "256",
                                   "--no-pci",
                                   "--no-telemetry",
                                   "--file-prefix",
                                   prefix,
                                   "--log-level",
                                   "lib.eal:error"};
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    rig.error = "rte_eal_init failed";
    return;
  }
  rig.in = rte_ring_create("rt_in", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
  rig.out = rte_ring_create("rt_out", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
  const int port = rte_eth_from_rings("skiff_rt", &rig.in, 1, &rig.out, 1, 0);
  if (!rig.in || !rig.out || port < 0) {
    rig.error = "net_ring port";
    return;
  }
  rig.port = static_cast<uint16_t>(port);
  rig.ok = true;
}

class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!rig.ok) GTEST_SKIP() << rig.error;
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-dpdk-rt-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    RuntimeOptions o;
    o.ports = {rig.port};
    o.pipeline.conntrackCapacity = 4096;
    o.pipeline.capacities = {64, 256};
    o.mbufsPerSocket = 2047;
    auto rt = Runtime::start(o);
    ASSERT_TRUE(rt.ok()) << rt.message();
    runtime_ = std::move(*rt);
    ControlHandlers h;
    h.request = [this](const v1::Request& r) { return runtime_->handle(r); };
    h.metrics = [this] { return prometheusText(runtime_->stats()); };
    auto server = ControlServer::listen((dir_ / "dp.sock").string(), "127.0.0.1", 0, h);
    ASSERT_TRUE(server.ok()) << server.message();
    server_ = std::move(*server);
    serving_ = std::thread([this] { server_->run(stop_); });
  }

  void TearDown() override {
    stop_.store(true);
    if (serving_.joinable()) serving_.join();
    server_.reset();
    runtime_.reset();
    void* m = nullptr;
    while (rig.out && rte_ring_dequeue(rig.out, &m) == 0)
      rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    std::filesystem::remove_all(dir_);
  }

  // Sends a frame into the port; the frame that comes out (empty: none within a second).
  Bytes roundTrip(const Bytes& frame) {
    rte_mempool* pool = rte_mempool_lookup("skiff_mbufs_s0");
    EXPECT_NE(pool, nullptr);
    if (!pool) return {};
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())), frame.data(),
                frame.size());
    EXPECT_EQ(rte_ring_enqueue(rig.in, m), 0);
    void* got = nullptr;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (rte_ring_dequeue(rig.out, &got) != 0) {
      if (std::chrono::steady_clock::now() > deadline) return {};
      std::this_thread::yield();
    }
    auto* om = static_cast<rte_mbuf*>(got);
    const auto* p = rte_pktmbuf_mtod(om, const uint8_t*);
    Bytes out(p, p + rte_pktmbuf_data_len(om));
    rte_pktmbuf_free(om);
    return out;
  }

  std::string socketPath() const { return (dir_ / "dp.sock").string(); }

  std::filesystem::path dir_;
  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<ControlServer> server_;
  std::atomic<bool> stop_{false};
  std::thread serving_;
};

TEST_F(RuntimeTest, ProxierProgramsAndReadsStatsThroughTheControlSocket) {
  DpdkDataplane dp(socketPath());
  EXPECT_EQ(dp.name(), "dpdk");
  const CaseService def;
  ServiceDelta delta;
  delta.upserted.push_back(toService(def));
  ASSERT_TRUE(dp.apply(delta).ok());

  // A new flow is DNATed to the backend Maglev picks (the same table the XDP path builds).
  const Service model = toService(def);
  std::vector<MaglevBackend> mb;
  for (const Backend& b : model.backends)
    mb.push_back({b.key(), 1, static_cast<uint32_t>(mb.size())});
  const MaglevTable table = *buildMaglevTable(mb, kCaseRingSize);
  const uint32_t pick = CaseEnv::pickIn(table, syn(40000));
  const Bytes out = roundTrip(buildPacket(syn(40000)));
  EXPECT_EQ(out, dnatTo(syn(40000), threeBackends()[pick]));

  auto stats = dp.stats();
  ASSERT_TRUE(stats.ok()) << stats.message();
  ASSERT_EQ(stats->services.size(), 1u);
  EXPECT_EQ(stats->services[0].id, model.id);
  EXPECT_EQ(stats->services[0].newFlows, 1u);
  EXPECT_EQ(stats->services[0].packets, 1u);
  uint64_t backendPackets = 0;
  for (const BackendStats& b : stats->services[0].backends)
    backendPackets += b.packets;
  EXPECT_EQ(backendPackets, 1u);

  auto full = dp.fullStats();
  ASSERT_TRUE(full.ok());
  ASSERT_EQ(full->ports_size(), 1);
  EXPECT_GE(full->ports(0).rx_packets(), 1u);
  ASSERT_EQ(full->lcores_size(), 1);
  EXPECT_EQ(full->lcores(0).tx_packets(), 1u);
  EXPECT_EQ(full->lcores(0).conntrack_entries(), 2u);

  // Removed: the counters go with it, and the frontend no longer matches (no TX).
  ServiceDelta removal;
  removal.removed.push_back(model.id);
  ASSERT_TRUE(dp.apply(removal).ok());
  stats = dp.stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_TRUE(stats->services.empty());
  PacketSpec other = syn(40001);
  EXPECT_TRUE(roundTrip(buildPacket(other)).empty());
}

TEST_F(RuntimeTest, BadDeltasChangeNothingAndSayWhy) {
  DpdkDataplane dp(socketPath());
  ServiceDelta good;
  good.upserted.push_back(toService({}));
  ASSERT_TRUE(dp.apply(good).ok());

  // A second service claiming the same frontend: refused by the data path, whole delta.
  CaseService clash{.svcId = 2};
  ServiceDelta bad;
  bad.upserted.push_back(toService({.svcId = 3, .frontend = {kVip, 81, L4Protocol::kTcp}}));
  bad.upserted.push_back(toService(clash));
  const Status s = dp.apply(bad);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("belongs to service"), std::string::npos) << s.message();
  auto stats = dp.stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->services.size(), 1u);  // svc3 was not half-applied

  // A field out of range in a raw request: the field's path in the error.
  v1::Request req;
  toProto(good, *req.mutable_apply());
  req.mutable_apply()->mutable_upserted(0)->mutable_frontends(0)->set_protocol(99);
  const v1::Response resp = runtime_->handle(req);
  EXPECT_FALSE(resp.ok());
  EXPECT_NE(resp.error().find("upserted[0].frontends[0].protocol"), std::string::npos)
      << resp.error();

  // Garbage on the socket: an error back, and the server still answers the next client.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socketPath().c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const char junk[] = {0, 0, 0, 4, '\xff', '\xff', '\xff', '\xff'};
  ASSERT_EQ(::send(fd, junk, sizeof(junk), 0), static_cast<ssize_t>(sizeof(junk)));
  v1::Response answer;
  ASSERT_TRUE(readMessage(fd, answer).ok());
  EXPECT_FALSE(answer.ok());
  EXPECT_NE(answer.error().find("malformed"), std::string::npos) << answer.error();
  ::close(fd);
  EXPECT_TRUE(dp.stats().ok());
}

TEST_F(RuntimeTest, MetricsAreServedAsPrometheusText) {
  DpdkDataplane dp(socketPath());
  ServiceDelta delta;
  delta.upserted.push_back(toService({}));
  ASSERT_TRUE(dp.apply(delta).ok());
  ASSERT_FALSE(roundTrip(buildPacket(syn(40000))).empty());

  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(static_cast<uint16_t>(server_->metricsPort()));
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&in), sizeof(in)), 0);
  const std::string get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, get.data(), get.size(), 0), static_cast<ssize_t>(get.size()));
  std::string body;
  char buf[4096];
  for (ssize_t r; (r = ::recv(fd, buf, sizeof(buf), 0)) > 0;)
    body.append(buf, static_cast<size_t>(r));
  ::close(fd);
  EXPECT_EQ(body.rfind("HTTP/1.1 200 OK", 0), 0u) << body.substr(0, 200);
  EXPECT_NE(body.find("skiff_dpdk_service_new_flows_total{service=\"cases/svc1:\"} 1"),
            std::string::npos);
  EXPECT_NE(body.find("skiff_dpdk_lcore_tx_packets_total{lcore=\"1\"} 1"), std::string::npos);
  EXPECT_NE(body.find("skiff_dpdk_port_rx_packets_total{port=\""), std::string::npos);
}

}  // namespace
}  // namespace skiff::dataplane::dpdk

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  skiff::dataplane::dpdk::setUpRig();
  const int rc = RUN_ALL_TESTS();
  if (skiff::dataplane::dpdk::rig.ok) rte_eal_cleanup();
  return rc;
}

// The lcore loop with EAL (--no-huge --no-pci, so root but no hugepages or NIC): the shared
// packet-case table through in-memory net_ring ports, a worker lcore running workerMain, tables
// published with RCU; and a table update under load that loses no packet of an established flow.
// EAL initialises once per process, so main() does it and every test shares the ports.

#include "dataplane/dpdk/worker.h"

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/dpdk/pipeline.h"
#include "dataplane/dpdk/port.h"
#include "dataplane/dpdk/rcu.h"
#include "dataplane/dpdk/tables.h"
#include "tests/dataplane/dpdk/case_env.h"
#include "tests/dataplane/packet_cases.h"

namespace skiff::dataplane::dpdk {
namespace {

using namespace dataplane::testing;  // NOLINT(google-build-using-namespace): the case vocabulary

// What main() set up: a port whose RX ring the test fills and whose TX ring it drains, and an
// exception port whose TX ring collects PASS verdicts.
struct Rig {
  bool ok = false;
  std::string error;
  unsigned workerLcore = 0;
  rte_mempool* pool = nullptr;
  rte_ring* in = nullptr;
  rte_ring* out = nullptr;
  rte_ring* excIn = nullptr;
  rte_ring* excOut = nullptr;
  uint16_t port = 0;
  uint16_t exceptionPort = 0;
};
Rig rig;

void setUpRig() {
  if (geteuid() != 0) {
    rig.error = "needs root (EAL)";
    return;
  }
  const std::string prefix = "skiff-dpdk-test-" + std::to_string(getpid());
  std::vector<std::string> args = {"dpdk_worker_test",
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
  rig.workerLcore = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
  if (rig.workerLcore >= RTE_MAX_LCORE) {
    rig.error = "no worker lcore";
    return;
  }
  auto pool = mbufPoolForSocket(SOCKET_ID_ANY, 8191);
  if (!pool.ok()) {
    rig.error = pool.message();
    return;
  }
  rig.pool = *pool;
  const unsigned socket = rte_socket_id();
  rig.in =
      rte_ring_create("case_in", 4096, static_cast<int>(socket), RING_F_SP_ENQ | RING_F_SC_DEQ);
  rig.out =
      rte_ring_create("case_out", 4096, static_cast<int>(socket), RING_F_SP_ENQ | RING_F_SC_DEQ);
  rig.excIn =
      rte_ring_create("exc_in", 64, static_cast<int>(socket), RING_F_SP_ENQ | RING_F_SC_DEQ);
  rig.excOut =
      rte_ring_create("exc_out", 4096, static_cast<int>(socket), RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (!rig.in || !rig.out || !rig.excIn || !rig.excOut) {
    rig.error = "rte_ring_create failed";
    return;
  }
  const int port = rte_eth_from_rings("skiff_case", &rig.in, 1, &rig.out, 1, socket);
  const int exc = rte_eth_from_rings("skiff_exc", &rig.excIn, 1, &rig.excOut, 1, socket);
  if (port < 0 || exc < 0) {
    rig.error = "rte_eth_from_rings failed";
    return;
  }
  rig.port = static_cast<uint16_t>(port);
  rig.exceptionPort = static_cast<uint16_t>(exc);
  for (uint16_t p : {rig.port, rig.exceptionPort}) {
    if (Status s = startPort(p, {}, rig.pool); !s.ok()) {
      rig.error = s.message();
      return;
    }
  }
  rig.ok = true;
}

// One case's data path: its own tables, pipeline and RCU state, a worker on the worker lcore.
class RingCaseEnv : public CaseEnv {
 public:
  explicit RingCaseEnv(const EnvOptions& options)
      : builder_(caseConfig(options).capacities), pipeline_(caseConfig(options)) {
    auto publisher = TablePublisher::create(1);
    EXPECT_TRUE(publisher.ok()) << publisher.message();
    publisher_ = std::move(*publisher);
    publisher_->registerWorker(0);
    publisher_->publish(builder_.build());
    ctx_.pipeline = &pipeline_;
    ctx_.publisher = publisher_.get();
    ctx_.rcuId = 0;
    ctx_.rx = {{rig.port, 0}};
    ctx_.txQueue = 0;
    ctx_.exceptionPort = rig.exceptionPort;
    ctx_.stop = &stop_;
    const Status s = prepareWorker(ctx_, rte_socket_id());
    EXPECT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(rte_eal_remote_launch(workerMain, &ctx_, rig.workerLcore), 0);
  }

  ~RingCaseEnv() override {
    stop_.store(true);
    rte_eal_wait_lcore(rig.workerLcore);
    releaseWorker(ctx_);
    publisher_->unregisterWorker(0);
    drain(rig.out);
    drain(rig.excOut);
  }

  void program(const CaseService& def) override {
    recordProgram(def);
    ServiceDelta delta;
    delta.upserted.push_back(toService(def));
    const Status s = builder_.apply(delta);
    ASSERT_TRUE(s.ok()) << s.message();
    publisher_->publish(builder_.build());
    modelIds_[def.svcId] = delta.upserted[0].id;
    for (const CaseBackend& b : def.backends)
      backends_[b.id] = {delta.upserted[0].id, BackendKey{b.address, b.port}};
  }

  // Sends the frame through the port and waits for the worker's verdict (its counters), then for
  // the frame on the ring that verdict sends it to.
  RunResult run(const Bytes& frame) override {
    RunResult r;
    const LcoreCounters& c = pipeline_.counters();
    const uint64_t done = c.txPackets.get() + c.passPackets.get() + c.dropPackets.get();
    const uint64_t tx = c.txPackets.get(), pass = c.passPackets.get();
    rte_mbuf* m = rte_pktmbuf_alloc(rig.pool);
    if (m == nullptr) return r;
    char* data = rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size()));
    if (data == nullptr && !frame.empty()) {
      rte_pktmbuf_free(m);
      return r;
    }
    if (!frame.empty()) std::memcpy(data, frame.data(), frame.size());
    if (rte_ring_enqueue(rig.in, m) != 0) {
      rte_pktmbuf_free(m);
      return r;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (c.txPackets.get() + c.passPackets.get() + c.dropPackets.get() == done) {
      if (std::chrono::steady_clock::now() > deadline) return r;
      std::this_thread::yield();
    }
    if (c.txPackets.get() == tx && c.passPackets.get() == pass) {
      r.ok = true;
      r.verdict = testing::Verdict::kDrop;
      r.out = frame;  // freed by the worker; the cases compare a dropped frame with its input
      return r;
    }
    r.verdict = c.txPackets.get() != tx ? testing::Verdict::kTx : testing::Verdict::kPass;
    rte_ring* ring = r.verdict == testing::Verdict::kTx ? rig.out : rig.excOut;
    void* got = nullptr;
    while (rte_ring_dequeue(ring, &got) != 0) {
      if (std::chrono::steady_clock::now() > deadline) return r;
      std::this_thread::yield();
    }
    auto* om = static_cast<rte_mbuf*>(got);
    const auto* p = rte_pktmbuf_mtod(om, const uint8_t*);
    r.out.assign(p, p + rte_pktmbuf_data_len(om));
    rte_pktmbuf_free(om);
    r.ok = true;
    return r;
  }

  CaseServiceStats serviceStats(uint32_t svcId) override {
    CaseServiceStats out;
    const uint32_t id = builder_.services().at(modelIds_.at(svcId)).svcId;
    const ServiceCounters& c = pipeline_.counters().services[id];
    out.packets = c.packets.get();
    out.newFlows = c.newFlows.get();
    for (size_t i = 0; i < kDropReasonCount; ++i)
      out.drops[i] = c.drops[i].get();
    return out;
  }
  CaseBackendStats backendStats(uint32_t backendId) override {
    const auto& [model, key] = backends_.at(backendId);
    const uint32_t id = builder_.services().at(model).backendIds.at(key);
    const BackendCounters& c = pipeline_.counters().backends[id];
    return {c.packets.get(), c.newFlows.get()};
  }
  uint64_t event(CaseEvent e) override {
    static constexpr Event map[] = {Event::kCtInsertFailed, Event::kFragmentPassed,
                                    Event::kIcmpTranslated, Event::kReplyTranslated,
                                    Event::kCtReselected};
    return pipeline_.counters().events[static_cast<size_t>(map[static_cast<size_t>(e)])].get();
  }
  uint64_t unattributedDrops(DropReason r) override {
    return pipeline_.counters().unattributed[static_cast<size_t>(r)].get();
  }

  TableBuilder& builder() { return builder_; }
  TablePublisher& publisher() { return *publisher_; }
  Pipeline& pipeline() { return pipeline_; }

 private:
  static void drain(rte_ring* ring) {
    void* m = nullptr;
    while (rte_ring_dequeue(ring, &m) == 0)
      rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
  }

  TableBuilder builder_;
  Pipeline pipeline_;
  std::unique_ptr<TablePublisher> publisher_;
  WorkerContext ctx_;
  std::atomic<bool> stop_{false};
  std::map<uint32_t, std::string> modelIds_;
  std::map<uint32_t, std::pair<std::string, BackendKey>> backends_;
};

class RingCaseTest : public ::testing::TestWithParam<PacketCase> {
 protected:
  void SetUp() override {
    if (!rig.ok) GTEST_SKIP() << rig.error;
  }
};

TEST_P(RingCaseTest, Run) {
  const PacketCase& tc = GetParam();
  RingCaseEnv env(tc.options ? tc.options() : EnvOptions{});
  runCase(tc, env);
}

INSTANTIATE_TEST_SUITE_P(Packets, RingCaseTest, ::testing::ValuesIn(packetCases()),
                         [](const ::testing::TestParamInfo<PacketCase>& param) {
                           return param.param.name;
                         });

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!rig.ok) GTEST_SKIP() << rig.error;
  }
};

// 200 established flows keep sending while the control thread publishes 50 new snapshots (other
// services come and go, the flows' own service gains a backend that takes over part of its Maglev
// table): every packet comes out, each flow on the backend it started with.
TEST_F(WorkerTest, TableUpdatesUnderLoadLoseNoEstablishedPacket) {
  RingCaseEnv env(EnvOptions{});
  env.program({});
  constexpr int kFlows = 200;
  std::vector<uint32_t> first(kFlows);
  for (int f = 0; f < kFlows; ++f) {
    const PacketSpec s = syn(static_cast<uint16_t>(30000 + f));
    first[f] = env.maglevPick(1, s);
    env.mustForward(buildPacket(s));
  }
  ASSERT_FALSE(HasFatalFailure());

  std::atomic<bool> done{false};
  std::thread control([&] {
    for (int i = 0; i < 50 && !done.load(); ++i) {
      ServiceDelta delta;
      CaseService other{
          .svcId = static_cast<uint32_t>(100 + i % 5),
          .frontend = {ip("203.0.113.99"), static_cast<uint16_t>(1000 + i % 5), L4Protocol::kTcp}};
      delta.upserted.push_back(toService(other));
      CaseService own;
      own.backends = i % 2 ? fourBackends() : threeBackends();
      delta.upserted.push_back(toService(own));
      if (!env.builder().apply(delta).ok()) break;
      env.publisher().publish(env.builder().build());
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });

  constexpr int kRounds = 20;
  size_t sent = 0, received = 0, wrong = 0;
  std::vector<rte_mbuf*> burst;
  for (int round = 0; round < kRounds; ++round) {
    for (int f = 0; f < kFlows; ++f) {
      PacketSpec s = syn(static_cast<uint16_t>(30000 + f));
      s.tcpFlags = kTcpAck;
      const Bytes frame = buildPacket(s);
      rte_mbuf* m = rte_pktmbuf_alloc(rig.pool);
      ASSERT_NE(m, nullptr);
      std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())), frame.data(),
                  frame.size());
      while (rte_ring_enqueue(rig.in, m) != 0)
        std::this_thread::yield();
      ++sent;
    }
    void* got = nullptr;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (received < sent && std::chrono::steady_clock::now() < deadline) {
      if (rte_ring_dequeue(rig.out, &got) != 0) {
        std::this_thread::yield();
        continue;
      }
      auto* m = static_cast<rte_mbuf*>(got);
      const auto* p = rte_pktmbuf_mtod(m, const uint8_t*);
      const Bytes out(p, p + rte_pktmbuf_data_len(m));
      rte_pktmbuf_free(m);
      ++received;
      const auto t = parseTuple(out);
      if (!t) {
        ++wrong;
        continue;
      }
      const uint32_t want = first[t->sport - 30000];
      if (t->dst != backendById(fourBackends(), want).address) ++wrong;
    }
  }
  done.store(true);
  control.join();
  EXPECT_EQ(received, sent);
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(env.serviceStats(1).newFlows, static_cast<uint64_t>(kFlows));
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

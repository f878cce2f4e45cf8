// Node registration, status and Lease against a real in-process apiserver.
#include "kubelet/agent/node_status.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "control/client/typed.h"
#include "tests/control/client/test_server.h"

namespace skiff::kubelet {
namespace {

using namespace std::chrono_literals;
using api::coordination::v1::Lease;
using api::core::v1::Node;

MachineInfo fakeMachine() {
  MachineInfo m;
  m.cpus = 4;
  m.memory_bytes = 8LL << 30;
  m.ephemeral_bytes = 100LL << 30;
  m.hostname = "box";
  m.internal_ip = "192.0.2.10";
  m.kernel_version = "6.1.0-test";
  m.os_image = "Debian GNU/Linux 12 (bookworm)";
  m.architecture = "amd64";
  m.machine_id = "abc";
  m.boot_id = "def";
  return m;
}

PressureSample healthy() {
  return {.memory_available_bytes = 4LL << 30,
          .disk_available_bytes = 50LL << 30,
          .disk_total_bytes = 100LL << 30,
          .pids_used = 500,
          .pids_max = 4194304};
}

const api::core::v1::NodeCondition* condition(const Node& node, const std::string& type) {
  for (const auto& c : node.status().conditions()) {
    if (c.type() == type) return &c;
  }
  return nullptr;
}

template <class F>
bool eventually(F f, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

class NodeStatusTest : public ::testing::Test {
 protected:
  NodeStatusTest() : server_(client::testing::ServerMode::kPlain), client_(server_.client()) {}

  NodeStatusOptions options(const std::string& name) {
    NodeStatusOptions o;
    o.node_name = name;
    o.pod_cidr = "10.244.7.0/24";
    o.container_runtime_version = "runc://1.1.12";
    o.machine = fakeMachine;
    o.pressure = [this] {
      std::lock_guard lock(mu_);
      return pressure_;
    };
    return o;
  }

  client::testing::TestApiServer server_;
  client::ClientPtr client_;
  std::mutex mu_;
  PressureSample pressure_ = healthy();
};

TEST(NodeConditionsTest, ThresholdsAsTheKubeletsHardEvictionDefaults) {
  PressureThresholds t;
  auto ok = nodeConditions(healthy(), t);
  ASSERT_EQ(ok.size(), 4u);
  EXPECT_EQ(ok[0].type(), "Ready");
  EXPECT_EQ(ok[0].status(), "True");
  EXPECT_EQ(ok[0].reason(), "KubeletReady");
  for (size_t i = 1; i < 4; ++i)
    EXPECT_EQ(ok[i].status(), "False") << ok[i].type();

  PressureSample low = healthy();
  low.memory_available_bytes = 99LL << 20;
  low.disk_available_bytes = 9LL << 30;
  low.pids_used = 4194304 - 1000;
  auto bad = nodeConditions(low, t, "runtime down");
  EXPECT_EQ(bad[0].status(), "False");
  EXPECT_EQ(bad[0].message(), "runtime down");
  EXPECT_EQ(bad[1].type(), "MemoryPressure");
  EXPECT_EQ(bad[1].status(), "True");
  EXPECT_EQ(bad[2].type(), "DiskPressure");
  EXPECT_EQ(bad[2].status(), "True");
  EXPECT_EQ(bad[3].type(), "PIDPressure");
  EXPECT_EQ(bad[3].status(), "True");
}

TEST(MachineInfoTest, ReadsThisMachine) {
  MachineInfo m = readMachineInfo("/tmp/does/not/exist/yet");
  EXPECT_GE(m.cpus, 1);
  EXPECT_GT(m.memory_bytes, 64LL << 20);
  EXPECT_GT(m.ephemeral_bytes, 0);
  EXPECT_FALSE(m.kernel_version.empty());
  EXPECT_FALSE(m.internal_ip.empty());
  PressureSample s = samplePressure("/tmp");
  EXPECT_GT(s.memory_available_bytes, 0);
  EXPECT_GT(s.pids_used, 0);
  EXPECT_GT(s.pids_max, s.pids_used);
}

TEST_F(NodeStatusTest, RegistersTheNodeWithStatusAndLease) {
  // What the apiserver does with a status sent on create: the agent posts it again either way.
  Node probe;
  probe.mutable_metadata()->set_name("probe");
  probe.mutable_status()->mutable_capacity()->operator[]("cpu").set_string("1");
  Node created = client::create(*client_, probe);
  std::cout << "apiserver keeps status on Node create: "
            << (created.status().capacity().contains("cpu") ? "yes" : "no") << std::endl;

  NodeStatusManager manager(*client_, options("node-a"));
  ASSERT_TRUE(manager.start());
  Node node = client::get<Node>(*client_, "", "node-a");
  EXPECT_EQ(node.metadata().labels().at("kubernetes.io/hostname"), "node-a");
  EXPECT_EQ(node.metadata().labels().at("kubernetes.io/os"), "linux");
  EXPECT_EQ(node.spec().pod_cidr(), "10.244.7.0/24");
  EXPECT_EQ(manager.podCidr(), "10.244.7.0/24");
  const auto& st = node.status();
  EXPECT_EQ(st.capacity().at("cpu").string(), "4");
  EXPECT_EQ(st.capacity().at("memory").string(), "8Gi");
  EXPECT_EQ(st.capacity().at("pods").string(), "110");
  EXPECT_EQ(st.capacity().at("ephemeral-storage").string(), "100Gi");
  EXPECT_EQ(st.allocatable().at("memory").string(), "8092Mi");  // less 100Mi
  EXPECT_EQ(st.allocatable().at("pods").string(), "110");
  ASSERT_EQ(st.addresses_size(), 2);
  EXPECT_EQ(st.addresses(0).type(), "InternalIP");
  EXPECT_EQ(st.addresses(0).address(), "192.0.2.10");
  EXPECT_EQ(st.addresses(1).type(), "Hostname");
  EXPECT_EQ(st.node_info().kernel_version(), "6.1.0-test");
  EXPECT_EQ(st.node_info().container_runtime_version(), "runc://1.1.12");
  EXPECT_EQ(st.node_info().kubelet_version().rfind("v1.", 0), 0u);
  EXPECT_EQ(st.node_info().os_image(), "Debian GNU/Linux 12 (bookworm)");
  ASSERT_NE(condition(node, "Ready"), nullptr);
  EXPECT_EQ(condition(node, "Ready")->status(), "True");
  EXPECT_TRUE(condition(node, "Ready")->has_last_heartbeat_time());
  for (const char* type : {"MemoryPressure", "DiskPressure", "PIDPressure"}) {
    ASSERT_NE(condition(node, type), nullptr) << type;
    EXPECT_EQ(condition(node, type)->status(), "False") << type;
  }

  Lease lease = client::get<Lease>(*client_, "kube-node-lease", "node-a");
  EXPECT_EQ(lease.spec().holder_identity(), "node-a");
  EXPECT_EQ(lease.spec().lease_duration_seconds(), 40);
  EXPECT_TRUE(lease.spec().has_renew_time());
  ASSERT_EQ(lease.metadata().owner_references_size(), 1);
  EXPECT_EQ(lease.metadata().owner_references(0).kind(), "Node");
  EXPECT_EQ(lease.metadata().owner_references(0).uid(), node.metadata().uid());
}

TEST_F(NodeStatusTest, AdoptsAnExistingNodeAndItsPodCidr) {
  Node existing;
  existing.mutable_metadata()->set_name("node-b");
  (*existing.mutable_metadata()->mutable_labels())["role"] = "edge";
  existing.mutable_spec()->set_pod_cidr("10.1.2.0/24");
  Node created = client::create(*client_, existing);

  NodeStatusManager manager(*client_, options("node-b"));
  ASSERT_TRUE(manager.start());
  Node node = client::get<Node>(*client_, "", "node-b");
  EXPECT_EQ(node.metadata().uid(), created.metadata().uid());
  EXPECT_EQ(node.metadata().labels().at("role"), "edge");
  EXPECT_EQ(node.metadata().labels().at("kubernetes.io/hostname"), "node-b");
  EXPECT_EQ(node.spec().pod_cidr(), "10.1.2.0/24");  // the spec wins over the flag
  EXPECT_EQ(manager.podCidr(), "10.1.2.0/24");
  EXPECT_EQ(condition(node, "Ready")->status(), "True");
}

TEST_F(NodeStatusTest, RenewsTheLease) {
  auto o = options("node-c");
  o.lease_renew_interval = 50ms;
  o.status_update_frequency = 1h;
  NodeStatusManager manager(*client_, o);
  ASSERT_TRUE(manager.start());
  Lease first = client::get<Lease>(*client_, "kube-node-lease", "node-c");
  ASSERT_TRUE(eventually([&] { return manager.leaseRenewals() >= 5; }));
  Lease later = client::get<Lease>(*client_, "kube-node-lease", "node-c");
  auto micros = [](const Lease& l) {
    return l.spec().renew_time().seconds() * 1000000 + l.spec().renew_time().nanos() / 1000;
  };
  EXPECT_GT(micros(later), micros(first));
  EXPECT_GT(std::stoll(later.metadata().resource_version()),
            std::stoll(first.metadata().resource_version()));

  // Someone else deleted it: the next renewal makes it again.
  client::remove<Lease>(*client_, "kube-node-lease", "node-c");
  ASSERT_TRUE(eventually([&] {
    try {
      client::get<Lease>(*client_, "kube-node-lease", "node-c");
      return true;
    } catch (const client::ApiError&) {
      return false;
    }
  }));
}

TEST_F(NodeStatusTest, PostsStatusOnlyWhenItChangedOrTheReportIsDue) {
  auto o = options("node-d");
  o.lease_renew_interval = 1h;
  o.status_update_frequency = 20ms;
  o.status_report_frequency = 1h;
  NodeStatusManager manager(*client_, o);
  ASSERT_TRUE(manager.start());
  EXPECT_EQ(manager.statusPosts(), 1u);
  std::this_thread::sleep_for(300ms);  // about 15 updates, none with a change
  EXPECT_EQ(manager.statusPosts(), 1u);

  {
    std::lock_guard lock(mu_);
    pressure_.memory_available_bytes = 10LL << 20;
  }
  ASSERT_TRUE(eventually([&] { return manager.statusPosts() == 2; }));
  Node node = client::get<Node>(*client_, "", "node-d");
  EXPECT_EQ(condition(node, "MemoryPressure")->status(), "True");
  EXPECT_EQ(condition(node, "MemoryPressure")->reason(), "KubeletHasInsufficientMemory");
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(manager.statusPosts(), 2u);

  // A status that is due is posted although nothing changed (lastHeartbeatTime moves on).
  auto o2 = options("node-e");
  o2.lease_renew_interval = 1h;
  o2.status_update_frequency = 20ms;
  o2.status_report_frequency = 50ms;
  NodeStatusManager due(*client_, o2);
  ASSERT_TRUE(due.start());
  ASSERT_TRUE(eventually([&] { return due.statusPosts() >= 3; }));
}

TEST_F(NodeStatusTest, RegistersAgainWhenTheNodeIsDeleted) {
  auto o = options("node-f");
  o.lease_renew_interval = 1h;
  o.status_update_frequency = 20ms;
  NodeStatusManager manager(*client_, o);
  ASSERT_TRUE(manager.start());
  std::string uid = manager.nodeUid();
  client::remove<Node>(*client_, "", "node-f");
  ASSERT_TRUE(eventually([&] {
    try {
      Node n = client::get<Node>(*client_, "", "node-f");
      return n.metadata().uid() != uid && condition(n, "Ready") != nullptr;
    } catch (const client::ApiError&) {
      return false;
    }
  }));
}

}  // namespace
}  // namespace skiff::kubelet

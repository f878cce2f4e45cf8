// Hollow nodes (the hollow PodSyncer under the real agent shell) against a real in-process
// apiserver: pods become Running and Ready with addresses from their node's podCIDR; deletes go
// through terminate and the kubelet's confirming delete.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "control/client/typed.h"
#include "kubelet/agent/agent.h"
#include "tests/control/client/test_server.h"

namespace skiff::kubelet {
namespace {

using namespace std::chrono_literals;
using api::core::v1::Node;
using api::core::v1::Pod;

template <class F>
bool eventually(F f, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

TEST(HollowIpPoolTest, HandsOutEachAddressOnce) {
  HollowIpPool pool("10.1.2.0/29");  // .2 .. .6
  std::set<std::string> got;
  for (int i = 0; i < 5; ++i)
    got.insert(pool.take());
  EXPECT_EQ(got,
            (std::set<std::string>{"10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"}));
  EXPECT_EQ(pool.take(), "");
  pool.give("10.1.2.4");
  EXPECT_EQ(pool.take(), "10.1.2.4");
  EXPECT_THROW(HollowIpPool("10.1.2.0"), std::invalid_argument);
  EXPECT_THROW(HollowIpPool("10.1.2.0/31"), std::invalid_argument);
  EXPECT_THROW(HollowIpPool("fd00::/64"), std::invalid_argument);
}

TEST(HollowNodesTest, SubnetsOfTheRange) {
  EXPECT_EQ(nthSubnet24("10.244.0.0/16", 0), "10.244.0.0/24");
  EXPECT_EQ(nthSubnet24("10.244.0.0/16", 3), "10.244.3.0/24");
  EXPECT_EQ(nthSubnet24("10.8.0.0/22", 3), "10.8.3.0/24");
  EXPECT_THROW(nthSubnet24("10.8.0.0/22", 4), std::invalid_argument);
  EXPECT_THROW(nthSubnet24("10.8.0.0/25", 0), std::invalid_argument);
}

TEST(HollowPodSyncerTest, RunningAndReadyThenSucceeded) {
  HollowPodSyncer syncer({.pod_cidr = [] { return std::string("10.9.0.0/24"); },
                          .host_ip = [] { return std::string("192.0.2.1"); }});
  Pod pod;
  pod.mutable_metadata()->set_uid("0123456789");
  pod.mutable_metadata()->set_name("p");
  pod.mutable_spec()->add_init_containers()->set_name("init");
  auto* c = pod.mutable_spec()->add_containers();
  c->set_name("web");
  c->set_image("busybox");
  PodSyncResult first = syncer.sync(pod);
  EXPECT_EQ(first.status.phase(), "Running");
  EXPECT_EQ(first.status.pod_ip(), "10.9.0.2");
  EXPECT_EQ(first.status.host_ip(), "192.0.2.1");
  ASSERT_EQ(first.status.container_statuses_size(), 1);
  EXPECT_TRUE(first.status.container_statuses(0).ready());
  EXPECT_TRUE(first.status.container_statuses(0).state().has_running());
  EXPECT_EQ(first.status.init_container_statuses(0).state().terminated().reason(), "Completed");
  EXPECT_EQ(first.events.size(), 3u);  // Pulled, Created, Started
  PodSyncResult again = syncer.sync(pod);
  EXPECT_EQ(again.status.pod_ip(), "10.9.0.2");
  EXPECT_TRUE(again.events.empty());
  EXPECT_EQ(syncer.knownPodUids(), std::vector<std::string>{"0123456789"});

  PodSyncResult done = syncer.terminate(pod, 0ms);
  EXPECT_EQ(done.status.phase(), "Succeeded");
  EXPECT_EQ(done.status.container_statuses(0).state().terminated().exit_code(), 0);
  EXPECT_TRUE(syncer.knownPodUids().empty());
  // The address is free again.
  pod.mutable_metadata()->set_uid("other");
  EXPECT_EQ(syncer.sync(pod).status.pod_ip(), "10.9.0.3");
  syncer.cleanupOrphan("other");
  EXPECT_EQ(syncer.runningPods(), 0u);
}

TEST(HollowNodesTest, PodsBecomeRunningAndReadyAndAreDeleted) {
  client::testing::TestApiServer server(client::testing::ServerMode::kPlain);
  auto client = server.client();
  HollowNodesOptions options;
  options.agent.lease_renew_interval = 100ms;
  options.agent.pod_workers = 2;
  auto nodes = runHollowNodes(*client, 2, options);
  ASSERT_NE(nodes, nullptr);
  ASSERT_EQ(nodes->size(), 2u);

  for (int i = 0; i < 2; ++i) {
    Node node = client::get<Node>(*client, "", "hollow-node-" + std::to_string(i));
    EXPECT_EQ(node.spec().pod_cidr(), "10.244." + std::to_string(i) + ".0/24");
    EXPECT_EQ(node.status().node_info().container_runtime_version().rfind("hollow://", 0), 0u);
  }
  for (int i = 0; i < 6; ++i) {
    Pod pod;
    pod.mutable_metadata()->set_name("p" + std::to_string(i));
    pod.mutable_metadata()->set_namespace_("default");
    pod.mutable_spec()->set_node_name("hollow-node-" + std::to_string(i % 2));
    auto* c = pod.mutable_spec()->add_containers();
    c->set_name("web");
    c->set_image("busybox");
    client::create(*client, pod);
  }
  auto all_ready = [&] {
    auto pods = client::list<Pod>(*client, "default");
    int ready = 0;
    for (const auto& p : pods) {
      for (const auto& c : p.status().conditions()) {
        if (c.type() == "Ready" && c.status() == "True") ++ready;
      }
    }
    return ready == 6;
  };
  ASSERT_TRUE(eventually(all_ready));
  std::set<std::string> ips;
  for (const auto& p : client::list<Pod>(*client, "default")) {
    EXPECT_EQ(p.status().phase(), "Running");
    std::string node_index = p.spec().node_name().substr(std::string("hollow-node-").size());
    EXPECT_EQ(p.status().pod_ip().rfind("10.244." + node_index + ".", 0), 0u)
        << p.status().pod_ip();
    ips.insert(p.status().pod_ip());
  }
  EXPECT_EQ(ips.size(), 6u);

  for (int i = 0; i < 6; ++i)
    client::remove<Pod>(*client, "default", "p" + std::to_string(i));
  ASSERT_TRUE(eventually([&] { return client::list<Pod>(*client, "default").empty(); }));
  EXPECT_EQ(nodes->syncer(0).runningPods() + nodes->syncer(1).runningPods(), 0u);
  nodes->stop();
}

}  // namespace
}  // namespace skiff::kubelet

namespace skiff::kubelet {
namespace {

// An apiserver that is not there: start() keeps retrying the registration until stop().
TEST(HollowNodesTest, StopEndsAStartThatIsStillRegistering) {
  auto client = client::makeRestClient(client::ClientConfig{.server = "http://127.0.0.1:1"});
  auto nodes = makeHollowNodes(*client, 2, {});
  std::atomic<int> started{-1};
  std::thread starter([&] { started = nodes->start() ? 1 : 0; });
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(started, -1);
  auto t0 = std::chrono::steady_clock::now();
  nodes->stop();
  starter.join();
  EXPECT_EQ(started, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);  // a request in flight finishes first
}

}  // namespace
}  // namespace skiff::kubelet

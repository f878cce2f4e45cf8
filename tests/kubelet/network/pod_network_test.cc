// Two pod sandboxes on a bridge that lives in a "node" network namespace made by the test (the
// machine's own interfaces are never touched): they ping each other and talk TCP with busybox nc,
// reach the gateway, and teardown removes every namespace, veth and IP.

#include "kubelet/network/pod_network.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "kubelet/network/netns.h"

namespace skiff::kubelet::network {
namespace {
namespace fs = std::filesystem;

class PodNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-podnet-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    node_ = dir_ + "/node";
    createNetns(node_);
    options_.pod_cidr = "10.251.7.0/24";
    options_.bridge = "skiff0";
    options_.node_netns = node_;
    options_.netns_dir = dir_ + "/netns";
    options_.ipam_dir = dir_ + "/ipam";
    manager_ = std::make_unique<PodNetworkManager>(options_);
  }
  void TearDown() override {
    for (const char* id : {"pod-a", "pod-b"}) {
      try {
        manager_->tearDown(id);
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    }
    deleteNetns(node_);
    fs::remove_all(dir_);
  }

  std::string links(const std::string& ns) {
    return runInNetns(ns, {"ip", "-o", "link", "show"}).out;
  }

  std::string dir_;
  std::string node_;
  PodNetworkOptions options_;
  std::unique_ptr<PodNetworkManager> manager_;
};

TEST_F(PodNetworkTest, TwoPodsTalkOverTheBridgeAndTeardownRemovesEverything) {
  const PodNetwork a = manager_->setUp("pod-a");
  const PodNetwork b = manager_->setUp("pod-b");
  EXPECT_NE(a.ip, b.ip);
  EXPECT_EQ(a.gateway, "10.251.7.1");
  EXPECT_EQ(a.prefix, 24);
  EXPECT_TRUE(fs::exists(a.netns_path));
  // The bridge and its ports are in the node namespace, not the machine's.
  EXPECT_NE(links(node_).find("skiff0"), std::string::npos);
  EXPECT_NE(links(node_).find(a.host_veth), std::string::npos);
  EXPECT_EQ(links("").find(a.host_veth), std::string::npos);
  // Inside a pod: lo and eth0 up, the default route via the bridge.
  EXPECT_NE(
      runInNetns(a.netns_path, {"ip", "-o", "addr", "show", "dev", "eth0"}).out.find(a.ip + "/24"),
      std::string::npos);
  EXPECT_NE(runInNetns(a.netns_path, {"ip", "route", "show", "default"}).out.find("via 10.251.7.1"),
            std::string::npos);
  EXPECT_TRUE(
      runInNetns(a.netns_path, {"busybox", "ping", "-c", "1", "-W", "2", "127.0.0.1"}).ok());

  EXPECT_TRUE(runInNetns(a.netns_path, {"busybox", "ping", "-c", "1", "-W", "2", b.ip}).ok());
  EXPECT_TRUE(runInNetns(b.netns_path, {"busybox", "ping", "-c", "1", "-W", "2", a.ip}).ok());
  EXPECT_TRUE(runInNetns(a.netns_path, {"busybox", "ping", "-c", "1", "-W", "2", a.gateway}).ok());

  // TCP with busybox nc: b listens, a sends a line.
  const std::string received = dir_ + "/received";
  std::thread server([&] {
    std::system(("nsenter --net=" + b.netns_path +
                 " -- busybox timeout 10 busybox nc -l -p 8080 > " + received)
                    .c_str());
  });
  bool sent = false;
  for (int i = 0; i < 50 && !sent; ++i) {
    sent = std::system(("echo hello-over-tcp | nsenter --net=" + a.netns_path +
                        " -- busybox nc -w 2 " + b.ip + " 8080 2>/dev/null")
                           .c_str()) == 0;
    if (!sent) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  server.join();
  EXPECT_TRUE(sent);
  std::ifstream in(received);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "hello-over-tcp");

  // setUp() again (a restarted kubelet) keeps the same sandbox.
  const PodNetwork again = manager_->setUp("pod-a");
  EXPECT_EQ(again.ip, a.ip);

  manager_->tearDown("pod-a");
  manager_->tearDown("pod-b");
  manager_->tearDown("pod-b");  // idempotent
  EXPECT_FALSE(fs::exists(a.netns_path));
  EXPECT_FALSE(fs::exists(b.netns_path));
  EXPECT_EQ(links(node_).find(a.host_veth), std::string::npos);
  EXPECT_EQ(links(node_).find(b.host_veth), std::string::npos);
  EXPECT_TRUE(manager_->allocator().list().empty());
}

TEST_F(PodNetworkTest, FailedSetupLeavesNothing) {
  // The bridge name is taken by a veth in the node namespace: adding ports to it fails.
  ASSERT_TRUE(runInNetns(node_, {"ip", "link", "add", "notabridge", "type", "veth", "peer", "name",
                                 "nab-peer"})
                  .ok());
  PodNetworkOptions o = options_;
  o.bridge = "notabridge";
  PodNetworkManager broken(o);
  EXPECT_THROW(broken.setUp("pod-a"), std::runtime_error);
  EXPECT_FALSE(fs::exists(broken.netnsPath("pod-a")));
  EXPECT_TRUE(broken.allocator().list().empty());
  EXPECT_EQ(links(node_).find(PodNetworkManager::hostVethName("pod-a")), std::string::npos);
}

}  // namespace
}  // namespace skiff::kubelet::network

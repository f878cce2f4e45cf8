#include "kubelet/network/ip_allocator.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <thread>

namespace skiff::kubelet::network {
namespace {
namespace fs = std::filesystem;

class IpAllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/ipam-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST(Ipv4CidrTest, Parse) {
  const Ipv4Cidr c = Ipv4Cidr::parse("10.244.1.7/24");
  EXPECT_EQ(c.str(), "10.244.1.0/24");
  EXPECT_EQ(formatIpv4(c.gateway()), "10.244.1.1");
  EXPECT_EQ(formatIpv4(c.broadcast()), "10.244.1.255");
  EXPECT_TRUE(c.contains(*parseIpv4("10.244.1.200")));
  EXPECT_FALSE(c.contains(*parseIpv4("10.244.2.1")));
  for (const char* bad : {"10.244.1.0", "10.244.1.0/31", "10.244.1/24", "x/24", "10.0.0.0/2a"}) {
    EXPECT_THROW(Ipv4Cidr::parse(bad), std::invalid_argument) << bad;
  }
}

TEST_F(IpAllocatorTest, NeverTwiceAlsoAfterARestart) {
  std::set<uint32_t> seen;
  {
    IpAllocator a(Ipv4Cidr::parse("10.9.0.0/29"), dir_);  // .2 .. .6: five pod addresses
    for (int i = 0; i < 3; ++i) {
      const uint32_t ip = a.allocate("pod-" + std::to_string(i));
      EXPECT_TRUE(seen.insert(ip).second);
      EXPECT_NE(formatIpv4(ip), "10.9.0.1");  // the gateway
      EXPECT_NE(formatIpv4(ip), "10.9.0.0");
    }
    EXPECT_EQ(a.allocate("pod-1"), *a.find("pod-1"));  // idempotent
  }
  IpAllocator b(Ipv4Cidr::parse("10.9.0.0/29"), dir_);  // "restart"
  EXPECT_EQ(b.list().size(), 3u);
  EXPECT_TRUE(seen.insert(b.allocate("pod-3")).second);
  EXPECT_TRUE(seen.insert(b.allocate("pod-4")).second);
  EXPECT_THROW(b.allocate("pod-5"), std::runtime_error);  // exhausted
  EXPECT_EQ(b.release("pod-0"), 1u);
  EXPECT_EQ(b.release("pod-0"), 0u);
  const uint32_t again = b.allocate("pod-5");
  EXPECT_EQ(formatIpv4(again), formatIpv4(*parseIpv4("10.9.0.2")));
  for (uint32_t ip : seen)
    EXPECT_NE(formatIpv4(ip), "10.9.0.7");  // broadcast
}

TEST_F(IpAllocatorTest, ConcurrentAllocatorsOnOneDirectory) {
  // Two processes' worth of allocators (separate objects, no shared mutex) race on one dir.
  IpAllocator a(Ipv4Cidr::parse("10.8.0.0/24"), dir_);
  IpAllocator b(Ipv4Cidr::parse("10.8.0.0/24"), dir_);
  std::vector<uint32_t> got_a, got_b;
  std::thread ta([&] {
    for (int i = 0; i < 100; ++i)
      got_a.push_back(a.allocate("a" + std::to_string(i)));
  });
  std::thread tb([&] {
    for (int i = 0; i < 100; ++i)
      got_b.push_back(b.allocate("b" + std::to_string(i)));
  });
  ta.join();
  tb.join();
  std::set<uint32_t> all(got_a.begin(), got_a.end());
  all.insert(got_b.begin(), got_b.end());
  EXPECT_EQ(all.size(), 200u);
}

}  // namespace
}  // namespace skiff::kubelet::network

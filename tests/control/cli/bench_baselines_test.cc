// The kube-proxy-shaped rule sets `skiff bench baselines` loads: chain names, the statistic
// probabilities that spread new connections evenly, DNAT targets, and what a partial sync writes.

#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "control/cli/bench_baselines_command.h"

namespace skiff::cli::baselines {
namespace {

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

TEST(BenchBaselinesTest, AddressesAndChainNamesHaveKubeProxysShape) {
  ServiceSet set(3, 2);
  EXPECT_EQ(ipv4(clusterIp(0)), "10.96.0.1");
  EXPECT_EQ(ipv4(endpointIp(set, 1, 1)), "10.224.0.4");
  set.generation[1] = 7;
  EXPECT_EQ(ipv4(endpointIp(set, 1, 0)), "10.240.0.7");
  EXPECT_EQ(ipv4(endpointIp(set, 1, 1)), "10.224.0.4");
  const std::regex chain("KUBE-(SVC|SEP)-[A-Z2-7]{16}");
  EXPECT_TRUE(std::regex_match(iptablesServiceChain(0), chain)) << iptablesServiceChain(0);
  EXPECT_TRUE(std::regex_match(iptablesEndpointChain(0, endpointIp(set, 0, 0)), chain));
  EXPECT_NE(iptablesServiceChain(0), iptablesServiceChain(1));
  EXPECT_NE(iptablesEndpointChain(0, 1), iptablesEndpointChain(0, 2));
  EXPECT_EQ(nftablesServiceChain(2).substr(0, 8), "service-");
  EXPECT_NE(nftablesServiceChain(2).find("-default/svc-2/tcp/http"), std::string::npos);
  EXPECT_NE(nftablesEndpointChain(2, endpointIp(set, 2, 0)).find("__10.224.0.5/8080"),
            std::string::npos);
}

TEST(BenchBaselinesTest, IptablesFullSyncChainsEveryServiceToItsEndpoints) {
  const ServiceSet set(4, 3);
  const std::string rules = iptablesFullSync(set);
  EXPECT_EQ(rules.rfind("*nat\n", 0), 0u);
  EXPECT_EQ(rules.substr(rules.size() - 7), "COMMIT\n");
  // One KUBE-SERVICES jump per service, and the nodeports rule last.
  EXPECT_EQ(count(rules, "-A KUBE-SERVICES "), 5u);
  const size_t nodeports = rules.find("-j KUBE-NODEPORTS");
  EXPECT_GT(nodeports, rules.find("-d 10.96.0.4/32 --dport 80 -j " + iptablesServiceChain(3)));
  // 3 endpoints: probabilities 1/3, 1/2, then the last without statistic.
  EXPECT_EQ(count(rules, "--mode random --probability 0.3333333333 -j KUBE-SEP-"), 4u);
  EXPECT_EQ(count(rules, "--mode random --probability 0.5000000000 -j KUBE-SEP-"), 4u);
  EXPECT_EQ(count(rules, "-j DNAT --to-destination 10.224.0."), 12u);
  EXPECT_NE(rules.find("-A " + iptablesEndpointChain(3, endpointIp(set, 3, 2)) +
                       " -m comment --comment default/svc-3:http -m tcp -p tcp -j DNAT "
                       "--to-destination 10.224.0.12:8080"),
            std::string::npos);
  EXPECT_EQ(count(rules, ":KUBE-SVC-"), 4u);
  EXPECT_EQ(count(rules, ":KUBE-SEP-"), 12u);
  EXPECT_NE(rules.find("-j MASQUERADE --random-fully"), std::string::npos);
}

TEST(BenchBaselinesTest, IptablesPartialSyncRewritesServicesAndTheChangedChainsOnly) {
  ServiceSet set(5, 2);
  const uint32_t previous = endpointIp(set, 2, 0);
  set.generation[2] = 1;
  const std::string rules = iptablesPartialSync(set, 2, previous);
  EXPECT_EQ(count(rules, "-A KUBE-SERVICES "), 6u);  // in full, as kube-proxy writes it
  EXPECT_EQ(count(rules, ":KUBE-SVC-"), 1u);
  EXPECT_NE(rules.find(":" + iptablesServiceChain(2) + " "), std::string::npos);
  EXPECT_NE(rules.find("--to-destination 10.240.0.1:8080"), std::string::npos);
  // The stale endpoint chain: declared (flushed) and then deleted.
  const std::string stale = iptablesEndpointChain(2, previous);
  EXPECT_LT(rules.find(":" + stale + " "), rules.find("-X " + stale + "\n"));
  EXPECT_EQ(rules.find("-A " + iptablesServiceChain(1)), std::string::npos);
}

TEST(BenchBaselinesTest, NftablesFullSyncUsesAVerdictMapAndNumgen) {
  const ServiceSet set(1500, 2);
  const std::string rules = nftablesFullSync(set);
  EXPECT_EQ(rules.rfind("add table ip kube-proxy", 0), 0u);
  EXPECT_NE(rules.find("flush table ip kube-proxy\n"), std::string::npos);
  EXPECT_NE(rules.find("ip daddr . meta l4proto . th dport vmap @service-ips"), std::string::npos);
  EXPECT_NE(rules.find("type nat hook output priority -100"), std::string::npos);
  EXPECT_EQ(count(rules, " numgen random mod 2 vmap { 0 : goto endpoint-"), 1500u);
  EXPECT_EQ(count(rules, " dnat to 10.2"), 3000u);
  // Map elements in lines of at most 1,000, each pointing at its service chain.
  EXPECT_EQ(count(rules, "add element ip kube-proxy service-ips {"), 2u);
  EXPECT_NE(rules.find("10.96.5.220 . tcp . 80 : goto " + nftablesServiceChain(1499)),
            std::string::npos);
}

TEST(BenchBaselinesTest, NftablesPartialSyncDeletesTheStaleChainOneSyncLater) {
  ServiceSet set(10, 2);
  const uint32_t previous = endpointIp(set, 4, 0);
  set.generation[4] = 3;
  const std::string first = nftablesPartialSync(set, 4, "");
  EXPECT_EQ(first.find("delete chain"), std::string::npos);
  EXPECT_NE(first.find("flush chain ip kube-proxy " + nftablesServiceChain(4)), std::string::npos);
  EXPECT_NE(first.find("dnat to 10.240.0.3:8080"), std::string::npos);
  EXPECT_EQ(first.find("service-ips"), std::string::npos);  // same ClusterIP: the map stays
  const std::string stale = nftablesEndpointChain(4, previous);
  const std::string next = nftablesPartialSync(set, 4, stale);
  EXPECT_NE(next.find("delete chain ip kube-proxy " + stale + "\n"), std::string::npos);
}

}  // namespace
}  // namespace skiff::cli::baselines

#include "dataplane/service.h"

#include <functional>
#include <string>
#include <unordered_set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace skiff::dataplane {
namespace {

using ::testing::HasSubstr;

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

// A valid dual-stack service with every kind of frontend.
Service webService() {
  Service s;
  s.id = "default/web:http";
  s.frontends = {
      {{ip("10.96.0.10"), 80, L4Protocol::kTcp}, FrontendKind::kClusterIP},
      {{ip("fd00:96::10"), 80, L4Protocol::kTcp}, FrontendKind::kClusterIP},
      {{ip("192.168.1.5"), 30080, L4Protocol::kTcp}, FrontendKind::kNodePort},
      {{ip("0.0.0.0"), 30080, L4Protocol::kTcp}, FrontendKind::kNodePort},
      {{ip("203.0.113.9"), 80, L4Protocol::kTcp}, FrontendKind::kExternalIP},
      {{ip("198.51.100.1"), 80, L4Protocol::kTcp}, FrontendKind::kLoadBalancer},
  };
  s.backends = {
      {.address = ip("10.244.0.5"), .port = 8080},
      {.address = ip("10.244.1.5"), .port = 8080, .weight = 2, .local = true, .zone = "a"},
      {.address = ip("fd00:244::5"), .port = 8080},
  };
  return s;
}

TEST(ServiceTest, EnumNames) {
  EXPECT_EQ(toString(L4Protocol::kTcp), "TCP");
  EXPECT_EQ(toString(L4Protocol::kUdp), "UDP");
  EXPECT_EQ(toString(L4Protocol::kSctp), "SCTP");
  EXPECT_EQ(parseL4Protocol("UDP"), L4Protocol::kUdp);
  EXPECT_EQ(parseL4Protocol("SCTP"), L4Protocol::kSctp);
  EXPECT_EQ(parseL4Protocol("udp"), std::nullopt);  // Kubernetes' names are upper case
  EXPECT_EQ(parseL4Protocol("ICMP"), std::nullopt);
  EXPECT_EQ(static_cast<int>(L4Protocol::kUdp), 17);  // IANA numbers

  EXPECT_EQ(toString(FrontendKind::kClusterIP), "ClusterIP");
  EXPECT_EQ(toString(FrontendKind::kNodePort), "NodePort");
  EXPECT_EQ(toString(FrontendKind::kExternalIP), "ExternalIP");
  EXPECT_EQ(toString(FrontendKind::kLoadBalancer), "LoadBalancer");
  EXPECT_FALSE(isExternal(FrontendKind::kClusterIP));
  EXPECT_TRUE(isExternal(FrontendKind::kNodePort));
  EXPECT_TRUE(isExternal(FrontendKind::kExternalIP));
  EXPECT_TRUE(isExternal(FrontendKind::kLoadBalancer));

  EXPECT_EQ(toString(TrafficPolicy::kLocal), "Local");
  EXPECT_EQ(toString(TrafficPolicy::kCluster), "Cluster");
  EXPECT_EQ(toString(SessionAffinity::kClientIP), "ClientIP");
  EXPECT_EQ(toString(SessionAffinity::kNone), "None");
}

TEST(ServiceTest, KeysFormatAndHash) {
  EXPECT_EQ((FrontendKey{ip("10.96.0.1"), 443, L4Protocol::kTcp}).toString(), "10.96.0.1:443/TCP");
  EXPECT_EQ((FrontendKey{ip("fd00::1"), 53, L4Protocol::kUdp}).toString(), "[fd00::1]:53/UDP");
  EXPECT_EQ((BackendKey{ip("10.0.0.1"), 8080}).toString(), "10.0.0.1:8080");
  EXPECT_EQ((BackendKey{ip("fd00::1"), 8080}).toString(), "[fd00::1]:8080");

  std::unordered_set<FrontendKey> frontends{
      {ip("10.96.0.1"), 53, L4Protocol::kTcp},
      {ip("10.96.0.1"), 53, L4Protocol::kUdp},
      {ip("10.96.0.1"), 54, L4Protocol::kUdp},
      {ip("10.96.0.1"), 53, L4Protocol::kUdp},
  };
  EXPECT_EQ(frontends.size(), 3u);
  std::unordered_set<BackendKey> backends{
      {ip("10.0.0.1"), 80}, {ip("10.0.0.1"), 81}, {ip("10.0.0.2"), 80}, {ip("10.0.0.1"), 80}};
  EXPECT_EQ(backends.size(), 3u);

  const Backend b{.address = ip("10.0.0.1"), .port = 80};
  EXPECT_EQ(b.key(), (BackendKey{ip("10.0.0.1"), 80}));
  EXPECT_EQ(b.weight, 1u);
  EXPECT_TRUE(b.ready && b.serving && !b.terminating && !b.local);
}

TEST(ServiceTest, ValidServicePasses) {
  const Status s = validate(webService());
  EXPECT_TRUE(s.ok()) << s.message();

  Service affinity = webService();
  affinity.affinity = SessionAffinity::kClientIP;
  affinity.affinityTimeoutSeconds = kMaxAffinityTimeoutSeconds;
  affinity.maglevTableSize = 65537;
  EXPECT_TRUE(validate(affinity).ok());

  Service noBackends = webService();
  noBackends.backends.clear();
  EXPECT_TRUE(validate(noBackends).ok());
}

TEST(ServiceTest, ValidationTable) {
  struct Case {
    const char* name;
    std::function<void(Service&)> change;
    const char* error;
  };
  const Case cases[] = {
      {"empty id", [](Service& s) { s.id.clear(); }, "empty id"},
      {"no frontends", [](Service& s) { s.frontends.clear(); }, "has no frontends"},
      {"mixed protocols", [](Service& s) { s.frontends[2].key.protocol = L4Protocol::kUdp; },
       "NodePort frontend 192.168.1.5:30080/UDP does not have the service's protocol TCP"},
      {"frontend port 0", [](Service& s) { s.frontends[0].key.port = 0; },
       "ClusterIP frontend 10.96.0.10:0/TCP has port 0"},
      {"unspecified ClusterIP", [](Service& s) { s.frontends[1].key.address = ip("::"); },
       "ClusterIP frontend [::]:80/TCP has an unspecified address"},
      {"unspecified LoadBalancer", [](Service& s) { s.frontends[5].key.address = ip("0.0.0.0"); },
       "has an unspecified address"},
      {"duplicate frontend",
       [](Service& s) {
         s.frontends.push_back(s.frontends[4]);
         s.frontends.back().kind = FrontendKind::kLoadBalancer;
       },
       "LoadBalancer frontend 203.0.113.9:80/TCP is listed twice"},
      {"backend port 0", [](Service& s) { s.backends[1].port = 0; },
       "backend 10.244.1.5:0 has port 0"},
      {"unspecified backend", [](Service& s) { s.backends[2].address = ip("::"); },
       "backend [::]:8080 has an unspecified address"},
      {"duplicate backend",
       [](Service& s) {
         s.backends.push_back(s.backends[0]);
         s.backends.back().weight = 5;
       },
       "backend 10.244.0.5:8080 is listed twice"},
      {"affinity timeout 0",
       [](Service& s) {
         s.affinity = SessionAffinity::kClientIP;
         s.affinityTimeoutSeconds = 0;
       },
       "ClientIP affinity timeout 0s is not in 1..86400"},
      {"affinity timeout too long",
       [](Service& s) {
         s.affinity = SessionAffinity::kClientIP;
         s.affinityTimeoutSeconds = 86401;
       },
       "timeout 86401s"},
      {"table size not prime", [](Service& s) { s.maglevTableSize = 16383; },
       "Maglev table size 16383 is not a prime up to 65537"},
      {"table size too big", [](Service& s) { s.maglevTableSize = 65539; }, "not a prime"},
      {"table size below backends", [](Service& s) { s.maglevTableSize = 2; },
       "Maglev table size 2 is below the 3 backends"},
  };
  for (const Case& c : cases) {
    Service s = webService();
    c.change(s);
    const Status status = validate(s);
    EXPECT_FALSE(status.ok()) << c.name;
    EXPECT_THAT(status.message(), HasSubstr(c.error)) << c.name;
    if (!s.id.empty()) {
      EXPECT_THAT(status.message(), HasSubstr("service \"default/web:http\"")) << c.name;
    }
  }

  // The timeout only matters with ClientIP affinity.
  Service none = webService();
  none.affinityTimeoutSeconds = 0;
  EXPECT_TRUE(validate(none).ok());
}

TEST(ServiceTest, EffectiveMaglevTableSize) {
  Service s = webService();
  EXPECT_EQ(effectiveMaglevTableSize(s), 1021u);  // up to 10 backends
  s.maglevTableSize = 16381;
  EXPECT_EQ(effectiveMaglevTableSize(s), 16381u);  // the service's own size wins
  s.maglevTableSize = 0;
  s.backends.clear();
  for (uint32_t i = 0; i < 300; ++i) {
    s.backends.push_back({.address = IpAddress::v4(0x0af40000u + i + 1), .port = 8080});
  }
  EXPECT_EQ(effectiveMaglevTableSize(s), 32749u);  // the step for 164 to 327 backends
}

}  // namespace
}  // namespace skiff::dataplane

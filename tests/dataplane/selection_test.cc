#include "dataplane/selection.h"

#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dataplane/maglev.h"

namespace skiff::dataplane {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

// Endpoint conditions as EndpointSlices carry them.
enum Conditions : unsigned {
  kReady = 1,               // ready, serving, not terminating
  kServingTerminating = 2,  // not ready, serving, terminating
  kTerminating = 4,         // not ready, not serving, terminating
  kNotReady = 8,            // not ready, not serving, not terminating (failing its probe)
  kLocal = 16,
  kDrained = 32,  // weight 0
};

Backend backend(const char* address, unsigned flags) {
  Backend b;
  b.address = ip(address);
  b.port = 8080;
  b.ready = (flags & kReady) != 0;
  b.serving = (flags & (kReady | kServingTerminating)) != 0;
  b.terminating = (flags & (kServingTerminating | kTerminating)) != 0;
  b.local = (flags & kLocal) != 0;
  b.weight = (flags & kDrained) != 0 ? 0 : 1;
  return b;
}

Service serviceWith(std::vector<Backend> backends) {
  Service s;
  s.id = "default/web:http";
  s.frontends = {{{ip("10.96.0.10"), 80, L4Protocol::kTcp}, FrontendKind::kClusterIP}};
  s.backends = std::move(backends);
  return s;
}

TEST(SelectionTest, BackendScope) {
  struct Case {
    TrafficPolicy internal;
    TrafficPolicy external;
    FrontendKind kind;
    TrafficOrigin origin;
    BackendScope want;
  };
  using enum FrontendKind;
  using enum TrafficOrigin;
  constexpr auto kC = TrafficPolicy::kCluster;
  constexpr auto kL = TrafficPolicy::kLocal;
  constexpr auto kAll = BackendScope::kCluster;
  constexpr auto kHere = BackendScope::kNodeLocal;
  const Case cases[] = {
      {kC, kC, kClusterIP, kInCluster, kAll},
      {kC, kC, kNodePort, kExternal, kAll},
      {kC, kC, kLoadBalancer, kExternal, kAll},
      // internalTrafficPolicy is for ClusterIP only, whoever sends.
      {kL, kC, kClusterIP, kInCluster, kHere},
      {kL, kC, kClusterIP, kExternal, kHere},
      {kL, kC, kNodePort, kExternal, kAll},
      {kL, kC, kLoadBalancer, kInCluster, kAll},
      // externalTrafficPolicy is for the other kinds, and only for external clients.
      {kC, kL, kClusterIP, kInCluster, kAll},
      {kC, kL, kNodePort, kExternal, kHere},
      {kC, kL, kExternalIP, kExternal, kHere},
      {kC, kL, kLoadBalancer, kExternal, kHere},
      {kC, kL, kNodePort, kInCluster, kAll},
      {kC, kL, kExternalIP, kInCluster, kAll},
      {kC, kL, kLoadBalancer, kInCluster, kAll},
      {kL, kL, kClusterIP, kInCluster, kHere},
      {kL, kL, kLoadBalancer, kInCluster, kAll},
  };
  for (const Case& c : cases) {
    Service s = serviceWith({});
    s.internalTrafficPolicy = c.internal;
    s.externalTrafficPolicy = c.external;
    EXPECT_EQ(backendScope(s, c.kind, c.origin), c.want)
        << "iTP=" << toString(c.internal) << " eTP=" << toString(c.external) << " "
        << toString(c.kind) << (c.origin == kExternal ? " from outside" : " from inside");
  }
}

TEST(SelectionTest, EligibleBackends) {
  struct Case {
    const char* name;
    std::vector<Backend> backends;
    AddressFamily family;
    BackendScope scope;
    Selection want;
    std::vector<uint32_t> indices;
  };
  constexpr auto kV4 = AddressFamily::kIPv4;
  constexpr auto kV6 = AddressFamily::kIPv6;
  constexpr auto kAll = BackendScope::kCluster;
  constexpr auto kHere = BackendScope::kNodeLocal;
  const std::vector<Case> cases = {
      {"no backends", {}, kV4, kAll, Selection::kNoBackends, {}},
      {"all ready",
       {backend("10.0.0.1", kReady), backend("10.0.0.2", kReady | kLocal)},
       kV4,
       kAll,
       Selection::kReady,
       {0, 1}},
      {"ready ones only",
       {backend("10.0.0.1", kNotReady), backend("10.0.0.2", kReady),
        backend("10.0.0.3", kServingTerminating), backend("10.0.0.4", kReady)},
       kV4,
       kAll,
       Selection::kReady,
       {1, 3}},
      {"no ready one: serving terminating ones",
       {backend("10.0.0.1", kNotReady), backend("10.0.0.2", kServingTerminating),
        backend("10.0.0.3", kTerminating), backend("10.0.0.4", kServingTerminating)},
       kV4,
       kAll,
       Selection::kServingTerminating,
       {1, 3}},
      {"terminating but not serving: nothing",
       {backend("10.0.0.1", kNotReady), backend("10.0.0.2", kTerminating)},
       kV4,
       kAll,
       Selection::kNoBackends,
       {}},
      {"the frontend's family only",
       {backend("10.0.0.1", kReady), backend("fd00::1", kReady), backend("fd00::2", kNotReady)},
       kV6,
       kAll,
       Selection::kReady,
       {1}},
      {"ready backends of the other family do not stop the fallback",
       {backend("10.0.0.1", kServingTerminating), backend("fd00::1", kReady)},
       kV4,
       kAll,
       Selection::kServingTerminating,
       {0}},
      {"no backend of the family",
       {backend("fd00::1", kReady)},
       kV4,
       kAll,
       Selection::kNoBackends,
       {}},
      {"drained backends take no new flows",
       {backend("10.0.0.1", kReady | kDrained), backend("10.0.0.2", kReady)},
       kV4,
       kAll,
       Selection::kReady,
       {1}},
      {"only drained ready ones: fall back",
       {backend("10.0.0.1", kReady | kDrained), backend("10.0.0.2", kServingTerminating)},
       kV4,
       kAll,
       Selection::kServingTerminating,
       {1}},
      {"cluster scope ignores locality",
       {backend("10.0.0.1", kReady | kLocal), backend("10.0.0.2", kReady)},
       kV4,
       kAll,
       Selection::kReady,
       {0, 1}},
      {"local: local ready ones",
       {backend("10.0.0.1", kReady), backend("10.0.0.2", kReady | kLocal),
        backend("10.0.0.3", kServingTerminating | kLocal), backend("10.0.0.4", kReady | kLocal)},
       kV4,
       kHere,
       Selection::kReady,
       {1, 3}},
      {"local: local serving terminating ones, though others are ready elsewhere",
       {backend("10.0.0.1", kReady), backend("10.0.0.2", kServingTerminating | kLocal),
        backend("10.0.0.3", kNotReady | kLocal)},
       kV4,
       kHere,
       Selection::kServingTerminating,
       {1}},
      {"local: none here, ready elsewhere: drop",
       {backend("10.0.0.1", kReady), backend("10.0.0.2", kNotReady | kLocal)},
       kV4,
       kHere,
       Selection::kNoLocalBackends,
       {}},
      {"local: none here, serving terminating elsewhere: drop",
       {backend("10.0.0.1", kServingTerminating), backend("10.0.0.2", kTerminating | kLocal)},
       kV4,
       kHere,
       Selection::kNoLocalBackends,
       {}},
      {"local: a drained local one does not count",
       {backend("10.0.0.1", kReady), backend("10.0.0.2", kReady | kLocal | kDrained)},
       kV4,
       kHere,
       Selection::kNoLocalBackends,
       {}},
      {"local: nothing usable anywhere: reject",
       {backend("10.0.0.1", kNotReady), backend("10.0.0.2", kTerminating | kLocal)},
       kV4,
       kHere,
       Selection::kNoBackends,
       {}},
      {"local: usable only in the other family: reject",
       {backend("fd00::1", kReady), backend("10.0.0.2", kNotReady | kLocal)},
       kV4,
       kHere,
       Selection::kNoBackends,
       {}},
      {"local: IPv6",
       {backend("fd00::1", kReady), backend("fd00::2", kReady | kLocal),
        backend("10.0.0.3", kReady | kLocal)},
       kV6,
       kHere,
       Selection::kReady,
       {1}},
  };
  for (const Case& c : cases) {
    const EligibleBackends got = eligibleBackends(serviceWith(c.backends), c.family, c.scope);
    EXPECT_EQ(got.selection, c.want) << c.name << ": got " << toString(got.selection);
    EXPECT_THAT(got.indices, ElementsAreArray(c.indices)) << c.name;
  }
}

TEST(SelectionTest, SelectionNames) {
  EXPECT_EQ(toString(Selection::kReady), "Ready");
  EXPECT_EQ(toString(Selection::kServingTerminating), "ServingTerminating");
  EXPECT_EQ(toString(Selection::kNoBackends), "NoBackends");
  EXPECT_EQ(toString(Selection::kNoLocalBackends), "NoLocalBackends");
}

TEST(SelectionTest, SourceRanges) {
  Service s = serviceWith({backend("10.0.0.1", kReady)});
  s.loadBalancerSourceRanges = {*IpPrefix::parse("10.0.0.0/8"), *IpPrefix::parse("2001:db8::/32")};
  struct Case {
    FrontendKind kind;
    const char* source;
    bool allowed;
  };
  using enum FrontendKind;
  const Case cases[] = {
      {kLoadBalancer, "10.1.2.3", true},
      {kLoadBalancer, "11.0.0.1", false},
      {kLoadBalancer, "2001:db8::5", true},
      {kLoadBalancer, "2001:db9::5", false},
      {kLoadBalancer, "::ffff:10.1.2.3", false},
      // The ranges are for LoadBalancer frontends only.
      {kNodePort, "11.0.0.1", true},
      {kExternalIP, "11.0.0.1", true},
      {kClusterIP, "11.0.0.1", true},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(sourceAllowed(s, c.kind, ip(c.source)), c.allowed)
        << toString(c.kind) << " from " << c.source;
  }
  s.loadBalancerSourceRanges.clear();
  EXPECT_TRUE(sourceAllowed(s, kLoadBalancer, ip("11.0.0.1")));
}

TEST(SelectionTest, EstablishedFlows) {
  const Service s = serviceWith({
      backend("10.0.0.1", kReady),
      backend("10.0.0.2", kServingTerminating),
      backend("10.0.0.3", kTerminating),
      backend("10.0.0.4", kNotReady),
      backend("10.0.0.5", kReady | kDrained),
  });
  struct Case {
    L4Protocol protocol;
    const char* backend;
    EstablishedFlow want;
  };
  using enum L4Protocol;
  using enum EstablishedFlow;
  const Case cases[] = {
      {kTcp, "10.0.0.1", kKeep},
      {kTcp, "10.0.0.2", kKeep},  // terminating backends drain their flows
      {kTcp, "10.0.0.3", kKeep},
      {kTcp, "10.0.0.4", kKeep},  // readiness only steers new flows
      {kTcp, "10.0.0.5", kKeep},
      {kTcp, "10.0.0.9", kReselect},  // gone
      {kUdp, "10.0.0.1", kKeep},
      {kUdp, "10.0.0.2", kKeep},
      {kUdp, "10.0.0.3", kReselect},  // stopped serving: kube-proxy clears these entries
      {kUdp, "10.0.0.4", kReselect},
      {kUdp, "10.0.0.5", kKeep},
      {kUdp, "10.0.0.9", kReselect},
      {kSctp, "10.0.0.3", kKeep},
      {kSctp, "10.0.0.9", kReselect},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(establishedFlow(s, c.protocol, {ip(c.backend), 8080}), c.want)
        << toString(c.protocol) << " flow to " << c.backend;
  }
  // Same address, another port: another backend.
  EXPECT_EQ(establishedFlow(s, kTcp, {ip("10.0.0.1"), 8081}), kReselect);
}

TEST(SelectionTest, SessionAffinity) {
  Service s = serviceWith({backend("10.0.0.1", kReady), backend("10.0.0.2", kServingTerminating),
                           backend("10.0.0.3", kReady)});
  s.affinity = SessionAffinity::kClientIP;
  s.affinityTimeoutSeconds = 600;
  const EligibleBackends eligible =
      eligibleBackends(s, AddressFamily::kIPv4, BackendScope::kCluster);
  ASSERT_THAT(eligible.indices, ElementsAre(0, 2));

  struct Case {
    const char* backend;
    uint64_t idleSeconds;
    bool holds;
  };
  const Case cases[] = {
      {"10.0.0.1", 0, true},   {"10.0.0.3", 599, true}, {"10.0.0.3", 600, false},  // expired
      {"10.0.0.2", 10, false},  // terminating: no longer eligible for new flows
      {"10.0.0.9", 10, false},  // gone
  };
  for (const Case& c : cases) {
    EXPECT_EQ(affinityHolds(s, eligible, {ip(c.backend), 8080}, c.idleSeconds), c.holds)
        << c.backend << " idle " << c.idleSeconds << "s";
  }
  s.affinity = SessionAffinity::kNone;
  EXPECT_FALSE(affinityHolds(s, eligible, {ip("10.0.0.1"), 8080}, 0));
}

// The whole path for one service: new flows spread by Maglev over the eligible backends, tracked
// as conntrack would; then one backend leaves and another starts terminating. No established flow
// to a surviving backend moves, and new flows avoid both.
TEST(SelectionTest, ChangesMoveNoEstablishedFlowToASurvivingBackend) {
  std::vector<Backend> backends;
  for (int i = 1; i <= 10; ++i) {
    backends.push_back(backend(("10.0.0." + std::to_string(i)).c_str(), kReady));
  }
  Service s = serviceWith(backends);
  const uint32_t m = effectiveMaglevTableSize(s);

  auto tableFor = [&](const Service& svc) {
    const EligibleBackends e = eligibleBackends(svc, AddressFamily::kIPv4, BackendScope::kCluster);
    std::vector<MaglevBackend> mb;
    for (uint32_t i : e.indices)
      mb.push_back({svc.backends[i].key(), svc.backends[i].weight, i});
    return *buildMaglevTable(mb, m);
  };

  // 5000 flows, each to the backend its hash picks.
  std::map<uint32_t, BackendKey> conntrack;
  const MaglevTable before = tableFor(s);
  for (uint32_t flow = 0; flow < 5000; ++flow) {
    conntrack[flow] = s.backends[before[(flow * 2654435761u) % m]].key();
  }

  const BackendKey gone = s.backends[3].key();
  const BackendKey draining = s.backends[6].key();
  s.backends.erase(s.backends.begin() + 3);
  for (Backend& b : s.backends) {
    if (b.key() == draining) b = backend("10.0.0.7", kServingTerminating);
  }

  size_t kept = 0, moved = 0;
  for (const auto& [flow, target] : conntrack) {
    const EstablishedFlow verdict = establishedFlow(s, L4Protocol::kTcp, target);
    if (target == gone) {
      EXPECT_EQ(verdict, EstablishedFlow::kReselect);
      ++moved;
    } else {
      EXPECT_EQ(verdict, EstablishedFlow::kKeep) << target.toString();
      ++kept;
    }
  }
  EXPECT_GT(kept, 4000u);
  EXPECT_GT(moved, 300u);

  // New flows reach neither the departed nor the terminating backend.
  const MaglevTable after = tableFor(s);
  for (uint32_t index : after) {
    ASSERT_NE(s.backends[index].key(), draining);
    ASSERT_NE(s.backends[index].key(), gone);
  }
  EXPECT_THAT(changedPositions(before, before), IsEmpty());
}

}  // namespace
}  // namespace skiff::dataplane

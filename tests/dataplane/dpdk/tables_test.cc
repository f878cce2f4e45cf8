// TableBuilder: ids that outlive snapshots, frontend lookups (exact and wildcard NodePort),
// eligibility bits and rings from the selection rules, and deltas that fail as a whole.

#include "dataplane/dpdk/tables.h"

#include <gtest/gtest.h>

#include "tests/dataplane/packet_cases.h"

namespace skiff::dataplane::dpdk {
namespace {

using namespace dataplane::testing;  // NOLINT(google-build-using-namespace): the case vocabulary

ServiceDelta upsert(std::vector<Service> services) {
  ServiceDelta d;
  d.upserted = std::move(services);
  return d;
}

TEST(TableBuilderTest, LooksUpFrontendsAndBackends) {
  TableBuilder b;
  ASSERT_TRUE(b.apply(upsert({toService({})})).ok());
  const auto t = b.build();
  const FrontendEntry* fe = t->lookup(wireKey({kVip, 80, L4Protocol::kTcp}), true);
  ASSERT_NE(fe, nullptr);
  EXPECT_EQ(fe->ringSize, kCaseRingSize);
  EXPECT_EQ(fe->backendCount, 3u);
  EXPECT_EQ(fe->selection, static_cast<uint8_t>(Selection::kReady));
  EXPECT_EQ(t->lookup(wireKey({kVip, 81, L4Protocol::kTcp}), true), nullptr);
  EXPECT_EQ(t->lookup(wireKey({kVip, 80, L4Protocol::kUdp}), true), nullptr);
  const uint32_t svc = b.services().begin()->second.svcId;
  for (const auto& [key, id] : b.services().begin()->second.backendIds) {
    const BackendEntry* be = t->listedBackend(id, svc, 4);
    ASSERT_NE(be, nullptr);
    EXPECT_TRUE(be->flags & kBackendEligibleCluster);
    EXPECT_EQ(t->listedBackend(id, svc + 1, 4), nullptr);  // another service's id
    EXPECT_EQ(t->listedBackend(id, svc, 6), nullptr);
  }
}

TEST(TableBuilderTest, WildcardNodePortMatchesAnyAddressOnlyWhenAsked) {
  TableBuilder b;
  ASSERT_TRUE(b.apply(upsert({toService({.frontend = {IpAddress(), 30080, L4Protocol::kTcp},
                                         .kind = FrontendKind::kNodePort})}))
                  .ok());
  const auto t = b.build();
  const auto key = wireKey({ip("192.168.7.5"), 30080, L4Protocol::kTcp});
  EXPECT_NE(t->lookup(key, true), nullptr);
  EXPECT_EQ(t->lookup(key, false), nullptr);
}

TEST(TableBuilderTest, IdsSurviveChangesAndAreReusedOnlyLater) {
  TableBuilder b;
  ASSERT_TRUE(b.apply(upsert({toService({})})).ok());
  const ProgrammedService before = b.services().begin()->second;
  CaseService grown;
  grown.backends = fourBackends();
  ASSERT_TRUE(b.apply(upsert({toService(grown)})).ok());
  const ProgrammedService& after = b.services().begin()->second;
  EXPECT_EQ(after.svcId, before.svcId);
  for (const auto& [key, id] : before.backendIds)
    EXPECT_EQ(after.backendIds.at(key), id) << key.toString();
  EXPECT_EQ(b.newBackendIds().size(), 1u);

  // Removed ids are not handed out by the very next apply (a snapshot may still name them).
  ServiceDelta removal;
  removal.removed.push_back(toService({}).id);
  ASSERT_TRUE(b.apply(removal).ok());
  EXPECT_EQ(b.freedServiceIds().size(), 1u);
  EXPECT_EQ(b.freedBackendIds().size(), 4u);
  ASSERT_TRUE(b.apply(upsert({toService({.svcId = 2})})).ok());
  EXPECT_NE(b.services().begin()->second.svcId, before.svcId);
}

TEST(TableBuilderTest, FailedDeltasChangeNothing) {
  TableBuilder b(Capacities{2, 8});
  ASSERT_TRUE(b.apply(upsert({toService({})})).ok());
  // Frontend held by another service.
  Status s = b.apply(upsert({toService({.svcId = 2})}));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("belongs to service \"cases/svc1:\""), std::string::npos)
      << s.message();
  // Capacity: a third service, and too many backends.
  s = b.apply(upsert({toService({.svcId = 2, .frontend = {kVip, 81, L4Protocol::kTcp}}),
                      toService({.svcId = 3, .frontend = {kVip, 82, L4Protocol::kTcp}})}));
  EXPECT_NE(s.message().find("too many services"), std::string::npos) << s.message();
  std::vector<CaseBackend> many;
  for (uint32_t i = 0; i < 6; ++i)
    many.push_back({i + 1, IpAddress::v4(0x0a000200 + i)});
  s = b.apply(upsert(
      {toService({.svcId = 2, .frontend = {kVip, 81, L4Protocol::kTcp}, .backends = many})}));
  EXPECT_NE(s.message().find("too many backends"), std::string::npos) << s.message();
  ASSERT_EQ(b.services().size(), 1u);
  EXPECT_EQ(b.build()->frontendCount(), 1u);
}

TEST(TableBuilderTest, LocalPolicyUsesTheNodeLocalRing) {
  CaseService def;
  def.externalPolicy = TrafficPolicy::kLocal;
  def.backends[0].state = BackendState::kRemote;
  TableBuilder b;
  ASSERT_TRUE(b.apply(upsert({toService(def)})).ok());
  const auto t = b.build();
  const FrontendEntry* fe = t->lookup(wireKey(def.frontend), true);
  ASSERT_NE(fe, nullptr);
  EXPECT_TRUE(fe->flags & kFrontendLocal);
  EXPECT_EQ(fe->backendCount, 2u);
}

}  // namespace
}  // namespace skiff::dataplane::dpdk

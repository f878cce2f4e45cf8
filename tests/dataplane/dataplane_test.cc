#include "dataplane/dataplane.h"

#include <functional>
#include <string>
#include <type_traits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace skiff::dataplane {
namespace {

using ::testing::HasSubstr;

Service service(const std::string& id, const char* clusterIp) {
  Service s;
  s.id = id;
  s.frontends = {{{*IpAddress::parse(clusterIp), 80, L4Protocol::kTcp}, FrontendKind::kClusterIP}};
  s.backends = {{.address = *IpAddress::parse("10.244.0.5"), .port = 8080}};
  return s;
}

// The interface is abstract and deleted through its base, as the proxier owns a DataplanePtr.
static_assert(std::is_abstract_v<Dataplane>);
static_assert(std::has_virtual_destructor_v<Dataplane>);

TEST(ServiceDeltaTest, ValidDeltas) {
  ServiceDelta delta;
  EXPECT_TRUE(validate(delta).ok());  // nothing to do
  delta.upserted = {service("a/web:http", "10.96.0.1"), service("a/api:http", "10.96.0.2")};
  delta.removed = {"a/old:http", "b/old:http"};
  const Status s = validate(delta);
  EXPECT_TRUE(s.ok()) << s.message();

  ServiceDelta full;
  full.replaceAll = true;
  full.upserted = delta.upserted;
  EXPECT_TRUE(validate(full).ok());
  full.upserted.clear();  // a resync to nothing removes everything
  EXPECT_TRUE(validate(full).ok());
}

TEST(ServiceDeltaTest, ValidationTable) {
  struct Case {
    const char* name;
    std::function<void(ServiceDelta&)> change;
    const char* error;
  };
  const Case cases[] = {
      {"invalid service", [](ServiceDelta& d) { d.upserted[0].frontends.clear(); },
       "service \"a/web:http\": has no frontends"},
      {"upserted twice",
       [](ServiceDelta& d) { d.upserted.push_back(service("a/web:http", "10.96.0.9")); },
       "service \"a/web:http\" is upserted twice"},
      {"upserted and removed", [](ServiceDelta& d) { d.removed.emplace_back("a/api:http"); },
       "service \"a/api:http\" is both upserted and removed"},
      {"removed twice", [](ServiceDelta& d) { d.removed.emplace_back("a/old:http"); },
       "service \"a/old:http\" is removed twice"},
      {"frontend in two services",
       [](ServiceDelta& d) { d.upserted.push_back(service("b/web:http", "10.96.0.2")); },
       "frontend 10.96.0.2:80/TCP belongs to both \"a/api:http\" and \"b/web:http\""},
      {"replaceAll with removals", [](ServiceDelta& d) { d.replaceAll = true; },
       "a replaceAll delta lists services to remove"},
  };
  for (const Case& c : cases) {
    ServiceDelta delta;
    delta.upserted = {service("a/web:http", "10.96.0.1"), service("a/api:http", "10.96.0.2")};
    delta.removed = {"a/old:http"};
    c.change(delta);
    const Status s = validate(delta);
    EXPECT_FALSE(s.ok()) << c.name;
    EXPECT_THAT(s.message(), HasSubstr(c.error)) << c.name;
  }

  // The same address and port under another protocol is another frontend.
  ServiceDelta udp;
  udp.upserted = {service("a/dns:tcp", "10.96.0.10"), service("a/dns:udp", "10.96.0.10")};
  udp.upserted[1].frontends[0].key.protocol = L4Protocol::kUdp;
  EXPECT_TRUE(validate(udp).ok());
}

TEST(DataplaneStatsTest, DropReasonsAndDefaults) {
  EXPECT_EQ(toString(DropReason::kNoBackend), "NoBackend");
  EXPECT_EQ(toString(DropReason::kNoLocalBackend), "NoLocalBackend");
  EXPECT_EQ(toString(DropReason::kSourceRangeDenied), "SourceRangeDenied");
  EXPECT_EQ(toString(DropReason::kConntrackFull), "ConntrackFull");
  EXPECT_EQ(toString(DropReason::kMalformedPacket), "MalformedPacket");
  EXPECT_EQ(toString(DropReason::kTxFailed), "TxFailed");
  // Every reason indexes DropCounters.
  EXPECT_EQ(static_cast<size_t>(DropReason::kTxFailed) + 1, kDropReasonCount);

  ServiceStats stats;
  for (uint64_t c : stats.drops)
    EXPECT_EQ(c, 0u);
  stats.drops[static_cast<size_t>(DropReason::kSourceRangeDenied)] += 3;
  DataplaneStats all;
  EXPECT_EQ(all.failedUpdates, 0u);
  all.services.push_back(stats);
  DataplaneStats copy = all;
  EXPECT_EQ(copy, all);
  copy.services[0].drops[0] = 1;
  EXPECT_NE(copy, all);
}

}  // namespace
}  // namespace skiff::dataplane

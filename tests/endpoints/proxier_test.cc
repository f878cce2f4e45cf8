#include "endpoints/proxier.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/api/codec.h"
#include "endpoints/endpointslice_reconciler.h"
#include "endpoints/trigger_time.h"
#include "tests/mocks/mock_dataplane.h"

namespace skiff::endpoints {
namespace {

namespace core = api::core::v1;
namespace discovery = api::discovery::v1;
using ::testing::_;
using ::testing::ElementsAre;
using ::testing::Invoke;
using ::testing::IsEmpty;
using ::testing::NiceMock;
using ::testing::Return;

ServicePtr svc(const std::string& name, const std::string& ip, const std::string& extra = "") {
  auto s = std::make_shared<core::Service>();
  const std::string ports =
      extra.find("ports:") == std::string::npos ? ", ports: [{name: http, port: 80}]" : "";
  api::decodeYaml("metadata: {name: " + name + ", namespace: default}\nspec: {clusterIP: " + ip +
                      ports + extra + "}",
                  *s);
  return s;
}

SlicePtr slice(const std::string& service, const std::string& name,
               const std::vector<std::string>& ips, const std::string& trigger = "") {
  auto s = std::make_shared<discovery::EndpointSlice>();
  s->mutable_metadata()->set_name(name);
  s->mutable_metadata()->set_namespace_("default");
  (*s->mutable_metadata()->mutable_labels())["kubernetes.io/service-name"] = service;
  if (!trigger.empty())
    (*s->mutable_metadata()->mutable_annotations())[std::string(kAnnotationLastChangeTriggerTime)] =
        trigger;
  s->set_address_type("IPv4");
  auto* port = s->add_ports();
  port->set_name("http");
  port->set_port(8080);
  port->set_protocol("TCP");
  for (const auto& ip : ips) {
    auto* e = s->add_endpoints();
    e->add_addresses(ip);
    e->mutable_conditions()->set_ready(true);
    e->set_node_name(ip == "10.0.0.1" ? "node-1" : "node-2");
  }
  return s;
}

std::vector<std::string> ids(const std::vector<dataplane::Service>& services) {
  std::vector<std::string> out;
  for (const auto& s : services)
    out.push_back(s.id);
  return out;
}

class ProxierTest : public ::testing::Test {
 protected:
  ProxierTest() {
    ON_CALL(dataplane_, apply(_)).WillByDefault(Invoke([this](const dataplane::ServiceDelta& d) {
      deltas_.push_back(d);
      if (Status s = dataplane::validate(d); !s.ok()) return s;
      return failNext_ ? (failNext_ = false, Status::failure("map full")) : Status();
    }));
  }
  using Status = dataplane::Status;

  Proxier make(ProxierOptions options = {}) {
    options.nodeName = "node-1";
    options.now = [this] { return now_; };
    return Proxier(dataplane_, options);
  }
  void synced(Proxier& p) {
    p.setServicesSynced();
    p.setEndpointSlicesSynced();
  }

  NiceMock<skiff::testing::MockDataplane> dataplane_;
  std::vector<dataplane::ServiceDelta> deltas_;
  bool failNext_ = false;
  api::Timestamp now_{1700000000, 0};
};

TEST_F(ProxierTest, NoSyncBeforeBothInformersSynced) {
  Proxier p = make();
  p.onServiceAdd(svc("web", "10.96.0.10"));
  EXPECT_FALSE(p.sync().ran);
  p.setServicesSynced();
  EXPECT_FALSE(p.sync().ran);
  p.setEndpointSlicesSynced();
  auto r = p.sync();
  EXPECT_TRUE(r.ran);
  EXPECT_TRUE(r.full);
  ASSERT_EQ(deltas_.size(), 1u);
  EXPECT_TRUE(deltas_[0].replaceAll);
  EXPECT_THAT(ids(deltas_[0].upserted), ElementsAre("default/web:http"));
}

TEST_F(ProxierTest, OnlyChangedServicesAreProgrammed) {
  Proxier p = make();
  synced(p);
  p.onServiceAdd(svc("a", "10.96.0.1"));
  p.onServiceAdd(svc("b", "10.96.0.2"));
  p.onSliceUpdate(slice("a", "a-1", {"10.0.0.1"}), false);
  p.onSliceUpdate(slice("b", "b-1", {"10.0.0.2"}), false);
  ASSERT_TRUE(p.sync().ok);
  deltas_.clear();

  // Nothing changed: no apply at all.
  EXPECT_TRUE(p.sync().ok);
  EXPECT_THAT(deltas_, IsEmpty());

  // One endpoint more in a: only a.
  p.onSliceUpdate(slice("a", "a-1", {"10.0.0.1", "10.0.0.3"}), false);
  auto r = p.sync();
  EXPECT_FALSE(r.full);
  ASSERT_EQ(deltas_.size(), 1u);
  EXPECT_FALSE(deltas_[0].replaceAll);
  ASSERT_THAT(ids(deltas_[0].upserted), ElementsAre("default/a:http"));
  EXPECT_EQ(deltas_[0].upserted[0].backends.size(), 2u);
  EXPECT_TRUE(deltas_[0].upserted[0].backends[0].local);
  EXPECT_FALSE(deltas_[0].upserted[0].backends[1].local);

  // A change that flips back before the sync costs nothing.
  deltas_.clear();
  p.onSliceUpdate(slice("b", "b-1", {"10.0.0.2", "10.0.0.9"}), false);
  p.onSliceUpdate(slice("b", "b-1", {"10.0.0.2"}), false);
  auto s1 = svc("a", "10.96.0.1");
  auto s2 = svc("a", "10.96.0.1", ", sessionAffinity: ClientIP");
  p.onServiceUpdate(s1, s2);
  p.onServiceUpdate(s2, s1);
  EXPECT_FALSE(p.hasPendingChanges());
  EXPECT_TRUE(p.sync().ok);
  EXPECT_THAT(deltas_, IsEmpty());

  // Deleting b removes its id.
  p.onServiceDelete(svc("b", "10.96.0.2"));
  p.sync();
  ASSERT_EQ(deltas_.size(), 1u);
  EXPECT_THAT(deltas_[0].removed, ElementsAre("default/b:http"));
  EXPECT_THAT(deltas_[0].upserted, IsEmpty());
  EXPECT_EQ(p.programmed().size(), 1u);
}

// A configured Maglev table size goes on every service whose backends fit in it; the others, and
// every service without one configured, get 0 (the data path sizes them by backend count).
TEST_F(ProxierTest, ConfiguredMaglevTableSizeGoesOnServicesThatFit) {
  for (uint32_t configured : {0u, 3u}) {
    deltas_.clear();
    ProxierOptions options;
    options.maglevTableSize = configured;
    Proxier p = make(options);
    synced(p);
    p.onServiceAdd(svc("a", "10.96.0.1"));
    p.onServiceAdd(svc("b", "10.96.0.2"));
    p.onSliceUpdate(slice("a", "a-1", {"10.0.0.1", "10.0.0.2"}), false);
    p.onSliceUpdate(slice("b", "b-1", {"10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}), false);
    ASSERT_TRUE(p.sync().ok);
    ASSERT_EQ(deltas_.size(), 1u);
    ASSERT_THAT(ids(deltas_[0].upserted), ElementsAre("default/a:http", "default/b:http"));
    EXPECT_EQ(deltas_[0].upserted[0].maglevTableSize, configured);
    EXPECT_EQ(deltas_[0].upserted[1].maglevTableSize, 0u) << "4 backends do not fit in 3 entries";
  }
}

TEST_F(ProxierTest, BadServiceKeepsLastGoodProgrammingOthersUnaffected) {
  Proxier p = make();
  synced(p);
  auto good = svc("a", "10.96.0.1");
  p.onServiceAdd(good);
  p.onServiceAdd(svc("b", "10.96.0.2"));
  ASSERT_TRUE(p.sync().ok);
  deltas_.clear();

  auto bad = svc("a", "10.96.0.1", ", loadBalancerSourceRanges: [nonsense]");
  p.onServiceUpdate(good, bad);
  p.onServiceAdd(svc("c", "10.96.0.3"));
  auto r = p.sync();
  EXPECT_TRUE(r.ok);
  EXPECT_THAT(r.rejected, ElementsAre("service \"default/a\": spec.loadBalancerSourceRanges[0]: "
                                      "\"nonsense\" is not a CIDR"));
  ASSERT_EQ(deltas_.size(), 1u);
  EXPECT_THAT(ids(deltas_[0].upserted), ElementsAre("default/c:http"));
  EXPECT_EQ(p.programmed().count("default/a:http"), 1u);
  EXPECT_EQ(p.rejectedServices(), 1u);

  // Retried on the next sync (still bad: still kept, counted again), fixed by a good update.
  EXPECT_EQ(p.sync().rejected.size(), 1u);
  p.onServiceUpdate(bad, svc("a", "10.96.0.1", ", sessionAffinity: ClientIP"));
  deltas_.clear();
  r = p.sync();
  EXPECT_THAT(r.rejected, IsEmpty());
  ASSERT_EQ(deltas_.size(), 1u);
  EXPECT_EQ(deltas_[0].upserted[0].affinity, dataplane::SessionAffinity::kClientIP);
}

TEST_F(ProxierTest, FrontendHeldByAnotherServiceIsRefused) {
  Proxier p = make();
  synced(p);
  p.onServiceAdd(svc("a", "10.96.0.1", ", externalIPs: [203.0.113.1]"));
  ASSERT_TRUE(p.sync().ok);
  p.onServiceAdd(svc("b", "10.96.0.2", ", externalIPs: [203.0.113.1]"));
  auto r = p.sync();
  EXPECT_TRUE(r.ok);
  EXPECT_THAT(r.rejected, ElementsAre("service \"default/b\": frontend 203.0.113.1:80/TCP "
                                      "belongs to service \"default/a\""));
  EXPECT_EQ(p.programmed().count("default/b:http"), 0u);
}

TEST_F(ProxierTest, FrontendStaysWithItsHolderWhenBothChangeInOneSync) {
  Proxier p = make();
  synced(p);
  p.onServiceAdd(svc("z", "10.96.0.26", ", externalIPs: [203.0.113.1]"));
  ASSERT_TRUE(p.sync().ok);
  // "a" sorts first and claims z's externalIP while z changes too: z keeps it.
  p.onServiceAdd(svc("a", "10.96.0.1", ", externalIPs: [203.0.113.1]"));
  p.onSliceUpdate(slice("z", "z-1", {"10.0.0.1"}), false);
  auto r = p.sync();
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_THAT(r.rejected, ElementsAre("service \"default/a\": frontend 203.0.113.1:80/TCP "
                                      "belongs to service \"default/z\""));
  EXPECT_EQ(p.programmed().at("default/z:http").backends.size(), 1u);
  // Once z lets it go, a gets it on its retry.
  p.onServiceUpdate(svc("z", "10.96.0.26", ", externalIPs: [203.0.113.1]"), svc("z", "10.96.0.26"));
  r = p.sync();
  EXPECT_THAT(r.rejected, IsEmpty());
  EXPECT_EQ(p.programmed().count("default/a:http"), 1u);
}

TEST_F(ProxierTest, FailedApplyIsRetriedAsAFullSync) {
  Proxier p = make();
  synced(p);
  p.onServiceAdd(svc("a", "10.96.0.1"));
  ASSERT_TRUE(p.sync().ok);
  failNext_ = true;
  p.onServiceAdd(svc("b", "10.96.0.2"));
  auto r = p.sync();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "map full");
  EXPECT_EQ(p.failedApplies(), 1u);
  EXPECT_EQ(p.programmed().count("default/b:http"), 0u);
  deltas_.clear();
  r = p.sync();
  EXPECT_TRUE(r.ok);
  EXPECT_TRUE(r.full);
  ASSERT_EQ(deltas_.size(), 1u);
  EXPECT_TRUE(deltas_[0].replaceAll);
  EXPECT_THAT(ids(deltas_[0].upserted), ElementsAre("default/a:http", "default/b:http"));
}

TEST_F(ProxierTest, PeriodicFullResync) {
  Proxier p = make({.fullSyncPeriod = std::chrono::milliseconds(0)});
  synced(p);
  p.onServiceAdd(svc("a", "10.96.0.1"));
  p.sync();
  p.sync();
  ASSERT_EQ(deltas_.size(), 2u);
  EXPECT_TRUE(deltas_[1].replaceAll);
  EXPECT_THAT(ids(deltas_[1].upserted), ElementsAre("default/a:http"));
  EXPECT_EQ(p.fullSyncs(), 2u);
}

TEST_F(ProxierTest, NodeAddressesDriveNodePortsAndAFullSync) {
  Proxier p = make();
  synced(p);
  p.onServiceAdd(svc("a", "10.96.0.1",
                     ", type: NodePort, ports: [{name: http, port: 80, "
                     "nodePort: 30080}]"));
  p.sync();
  ASSERT_EQ(deltas_.size(), 1u);
  ASSERT_EQ(deltas_[0].upserted[0].frontends.size(), 2u);
  EXPECT_EQ(deltas_[0].upserted[0].frontends[1].key.toString(), "0.0.0.0:30080/TCP");
  auto node = std::make_shared<core::Node>();
  api::decodeYaml(
      "metadata: {name: node-1}\nstatus: {addresses: [{type: InternalIP, address: "
      "192.168.1.10}]}",
      *node);
  p.onNodeUpdate(node);
  EXPECT_TRUE(p.hasPendingChanges());
  auto r = p.sync();
  EXPECT_TRUE(r.full);
  ASSERT_EQ(deltas_.size(), 2u);
  EXPECT_EQ(deltas_[1].upserted[0].frontends[1].key.toString(), "192.168.1.10:30080/TCP");
  // The same node again: no change.
  p.onNodeUpdate(node);
  EXPECT_FALSE(p.hasPendingChanges());
}

TEST_F(ProxierTest, ProgrammingLatencyFromTheTriggerTime) {
  Proxier p = make();
  synced(p);
  p.onServiceAdd(svc("a", "10.96.0.1"));
  p.sync();
  now_ = {1700000010, 0};
  // Triggered 20 ms before "now"; one from before the proxier started is not reported.
  p.onSliceUpdate(slice("a", "a-1", {"10.0.0.1"}, formatRfc3339Nano({1700000009, 980000000})),
                  false);
  p.onSliceUpdate(slice("a", "a-2", {"10.0.0.2"}, "2023-01-01T00:00:00Z"), false);
  p.sync();
  ASSERT_EQ(p.programmingLatency().count(), 1u);
  EXPECT_NEAR(p.programmingLatency().sum(), 0.020, 1e-6);
  // Not reported while the data path refuses it; reported once programmed.
  failNext_ = true;
  p.onSliceUpdate(slice("a", "a-1", {"10.0.0.1", "10.0.0.5"}, "2023-11-14T22:13:30Z"), false);
  now_ = {1700000010, 500000000};
  p.sync();
  EXPECT_EQ(p.programmingLatency().count(), 1u);
  now_ = {1700000011, 0};
  p.sync();
  EXPECT_EQ(p.programmingLatency().count(), 2u);
  EXPECT_NEAR(p.programmingLatency().sum(), 1.020, 1e-6);
  const std::string text = p.metricsText();
  EXPECT_NE(text.find("skiff_proxy_network_programming_duration_seconds_count 2\n"),
            std::string::npos);
  // The same histogram under kube-proxy's name: 20 ms falls in (0.01, 0.025], 1 s in (0.5, 1].
  EXPECT_NE(text.find("# TYPE kubeproxy_network_programming_duration_seconds histogram\n"),
            std::string::npos);
  EXPECT_NE(text.find("kubeproxy_network_programming_duration_seconds_bucket{le=\"0.01\"} 0\n"
                      "kubeproxy_network_programming_duration_seconds_bucket{le=\"0.025\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("kubeproxy_network_programming_duration_seconds_bucket{le=\"0.5\"} 1\n"
                      "kubeproxy_network_programming_duration_seconds_bucket{le=\"1\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("kubeproxy_network_programming_duration_seconds_count 2\n"),
            std::string::npos);
  // Four syncs ran, one refused; the last accepted one was at "now".
  EXPECT_NE(text.find("skiff_proxy_syncs_total 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("skiff_proxy_sync_failures_total 1\n"), std::string::npos);
  EXPECT_NE(text.find("kubeproxy_sync_proxy_rules_last_timestamp_seconds 1700000011\n"),
            std::string::npos);
  EXPECT_NE(text.find("skiff_proxy_last_successful_sync_timestamp_seconds 1700000011\n"),
            std::string::npos);
  EXPECT_NE(text.find("kubeproxy_sync_proxy_rules_duration_seconds_count 3\n"), std::string::npos);
}

TEST_F(ProxierTest, LocalEndpointsAndHealthCheckPorts) {
  Proxier p = make();
  synced(p);
  p.onServiceAdd(svc("a", "10.96.0.1",
                     ", type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: "
                     "32000, ports: [{name: http, port: 80, nodePort: 30080}]"));
  p.onSliceUpdate(slice("a", "a-1", {"10.0.0.1", "10.0.0.2"}), false);
  p.sync();
  EXPECT_EQ(p.localReadyEndpoints("default/a"), std::optional<size_t>(1));
  EXPECT_EQ(p.localReadyEndpoints("default/zzz"), std::nullopt);
  EXPECT_EQ(p.healthCheckNodePorts(), (std::map<std::string, uint16_t>{{"default/a", 32000}}));
}

}  // namespace
}  // namespace skiff::endpoints

#include "endpoints/proxy_health.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include <gtest/gtest.h>

#include "control/api/codec.h"
#include "tests/endpoints/http_get.h"

namespace skiff::endpoints {
namespace {

using namespace std::chrono_literals;
using testing::freePort;
using testing::httpGet;

class ProxierHealthTest : public ::testing::Test {
 protected:
  api::Timestamp now_{1700000000, 0};
  ProxierHealth health_{60s, [this] { return now_; }};
};

TEST_F(ProxierHealthTest, StaleWhenAQueuedUpdateWaitsLongerThanTheTimeout) {
  EXPECT_TRUE(health_.state().healthy);  // nothing queued yet
  health_.queuedUpdate();
  now_ = {1700000030, 0};
  health_.queuedUpdate();  // the oldest one counts
  now_ = {1700000059, 999000000};
  EXPECT_TRUE(health_.state().healthy);
  now_ = {1700000060, 0};
  EXPECT_FALSE(health_.state().healthy);
  HttpReply stale = health_.healthz();
  EXPECT_EQ(stale.status, 503);
  EXPECT_EQ(stale.contentType, "application/json");
  EXPECT_EQ(stale.body,
            "{\"lastUpdated\": \"1970-01-01T00:00:00Z\",\"currentTime\": \"2023-11-14T22:14:20Z\", "
            "\"nodeEligible\": true}");
  EXPECT_EQ(health_.livez().status, 503);

  // A successful sync: healthy again, lastUpdated is its time.
  now_ = {1700000061, 500000000};
  health_.updated();
  HttpReply fresh = health_.healthz();
  EXPECT_EQ(fresh.status, 200);
  EXPECT_EQ(fresh.body,
            "{\"lastUpdated\": \"2023-11-14T22:14:21.5Z\",\"currentTime\": "
            "\"2023-11-14T22:14:21.5Z\", \"nodeEligible\": true}");

  // A node being deleted is not eligible: /healthz 503, /livez still 200.
  health_.setNodeEligible(false);
  EXPECT_EQ(health_.healthz().status, 503);
  HttpReply live = health_.livez();
  EXPECT_EQ(live.status, 200);
  EXPECT_EQ(live.body.find("nodeEligible"), std::string::npos);

  const std::string metrics = health_.metricsText();
  EXPECT_NE(metrics.find("kubeproxy_proxy_healthz_total{code=\"200\"} 1\n"
                         "kubeproxy_proxy_healthz_total{code=\"503\"} 2\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("kubeproxy_proxy_livez_total{code=\"200\"} 1\n"
                         "kubeproxy_proxy_livez_total{code=\"503\"} 1\n"),
            std::string::npos);
  EXPECT_NE(metrics.find("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds 1700000030\n"),
            std::string::npos)
      << metrics;
}

TEST(NodeEligible, DeletionAndTheAutoscalerTaint) {
  api::core::v1::Node node;
  api::decodeYaml("metadata: {name: n}", node);
  EXPECT_TRUE(nodeEligible(node));
  api::core::v1::Node tainted = node;
  api::decodeYaml(
      "metadata: {name: n}\nspec: {taints: [{key: ToBeDeletedByClusterAutoscaler, effect: "
      "NoSchedule}]}",
      tainted);
  EXPECT_FALSE(nodeEligible(tainted));
  api::core::v1::Node deleting = node;
  deleting.mutable_metadata()->mutable_deletion_timestamp()->set_seconds(1700000000);
  EXPECT_FALSE(nodeEligible(deleting));
}

TEST(ServiceHealthBody, AsKubeProxyWritesIt) {
  EXPECT_EQ(serviceHealthBody("default", "web", 2, true),
            "{\n\t\"service\": {\n\t\t\"namespace\": \"default\",\n\t\t\"name\": \"web\"\n\t},\n"
            "\t\"localEndpoints\": 2,\n\t\"serviceProxyHealthy\": true\n}");
}

class ServiceHealthServerTest : public ::testing::Test {
 protected:
  void TearDown() override { listeners_.stop(); }

  HttpListeners listeners_;
  std::map<std::string, size_t> local_;  // "ns/name" -> local ready endpoints
  std::mutex mutex_;
  std::atomic<bool> healthy_{true};
  ServiceHealthServer server_{listeners_, "127.0.0.1",
                              [this](const std::string& key) -> std::optional<size_t> {
                                std::lock_guard lock(mutex_);
                                auto it = local_.find(key);
                                if (it == local_.end()) return std::nullopt;
                                return it->second;
                              },
                              [this] { return healthy_.load(); }};
};

TEST_F(ServiceHealthServerTest, AnswersWithTheNodesLocalEndpoints) {
  const uint16_t webPort = freePort();
  uint16_t dbPort = freePort();
  while (dbPort == webPort)
    dbPort = freePort();
  {
    std::lock_guard lock(mutex_);
    local_["default/web"] = 2;
    local_["prod/db"] = 0;
  }
  server_.sync({{"default/web", webPort}, {"prod/db", dbPort}});
  EXPECT_EQ(server_.serving(),
            (std::map<std::string, uint16_t>{{"default/web", webPort}, {"prod/db", dbPort}}));

  auto web = httpGet(webPort, "/");
  EXPECT_EQ(web.status, 200);
  EXPECT_EQ(web.body, serviceHealthBody("default", "web", 2, true));
  EXPECT_NE(web.head.find("Content-Type: application/json"), std::string::npos);
  EXPECT_NE(web.head.find("X-Load-Balancing-Endpoint-Weight: 2"), std::string::npos) << web.head;
  // Any path: load balancers probe whatever they were configured with.
  EXPECT_EQ(httpGet(webPort, "/healthz").status, 200);
  // No local endpoints: 503, so the load balancer leaves this node out.
  auto db = httpGet(dbPort, "/");
  EXPECT_EQ(db.status, 503);
  EXPECT_EQ(db.body, serviceHealthBody("prod", "db", 0, true));

  // Counts are read per request: the last local endpoint goes, then one comes back.
  {
    std::lock_guard lock(mutex_);
    local_["default/web"] = 0;
    local_["prod/db"] = 1;
  }
  EXPECT_EQ(httpGet(webPort, "/").status, 503);
  EXPECT_EQ(httpGet(dbPort, "/").status, 200);
  // A proxier that is not keeping up: 503 even with local endpoints.
  healthy_ = false;
  auto stale = httpGet(dbPort, "/");
  EXPECT_EQ(stale.status, 503);
  EXPECT_EQ(stale.body, serviceHealthBody("prod", "db", 1, false));
  healthy_ = true;

  // The web service leaves externalTrafficPolicy Local: its port closes; db moves to a new port.
  const uint16_t movedPort = freePort();
  server_.sync({{"prod/db", movedPort}});
  EXPECT_EQ(httpGet(webPort, "/").status, 0);
  EXPECT_EQ(httpGet(dbPort, "/").status, 0);
  EXPECT_EQ(httpGet(movedPort, "/").status, 200);
  EXPECT_EQ(server_.serving(), (std::map<std::string, uint16_t>{{"prod/db", movedPort}}));
  server_.stop();
  EXPECT_EQ(httpGet(movedPort, "/").status, 0);
}

TEST_F(ServiceHealthServerTest, APortInUseIsCountedAndRetried) {
  // Someone else holds the port.
  const int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(holder, 1), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(holder, reinterpret_cast<sockaddr*>(&addr), &len);
  const uint16_t port = ntohs(addr.sin_port);
  {
    std::lock_guard lock(mutex_);
    local_["default/web"] = 1;
  }
  server_.sync({{"default/web", port}});
  EXPECT_TRUE(server_.serving().empty());
  EXPECT_EQ(server_.bindFailures(), 1u);
  server_.sync({{"default/web", port}});
  EXPECT_EQ(server_.bindFailures(), 2u);
  ::close(holder);
  server_.sync({{"default/web", port}});
  EXPECT_EQ(server_.serving(), (std::map<std::string, uint16_t>{{"default/web", port}}));
  EXPECT_EQ(httpGet(port, "/").status, 200);
}

}  // namespace
}  // namespace skiff::endpoints

// The EndpointSlice controller and the node proxier against a real apiserver in this process (the
// embedded store in a temporary directory, plain HTTP on a free loopback port): Services and Pods
// written through the REST client, pod readiness set through the status subresource as a kubelet
// sets it, slices written by the controller, and the proxier programming a mock Dataplane from
// what it watches.

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/api/codec.h"
#include "control/apiserver/server.h"
#include "control/client/informer.h"
#include "control/client/rest_client.h"
#include "control/client/typed.h"
#include "endpoints/endpointslice_controller.h"
#include "endpoints/node_proxier.h"
#include "tests/endpoints/http_get.h"
#include "tests/mocks/mock_dataplane.h"

namespace skiff::endpoints {
namespace {

namespace core = api::core::v1;
namespace discovery = api::discovery::v1;
using namespace std::chrono_literals;
using ::testing::_;
using ::testing::NiceMock;
using ::testing::Return;

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

template <class T>
T yaml(const std::string& text) {
  T out;
  api::decodeYaml(text, out);
  return out;
}

class EndpointsIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-endpoints-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(dir_);
    server_ = std::make_unique<apiserver::ApiServer>(apiserver::ApiServerOptions{
        .data_dir = dir_.string(), .port = 0, .plain_http = true, .fsync = false});
    server_->start();
    client_ = client::makeRestClient({.server = server_->url()});
    ON_CALL(dataplane_, name()).WillByDefault(Return("mock"));
    ON_CALL(dataplane_, apply(_)).WillByDefault([this](const dataplane::ServiceDelta& delta) {
      ++applies_;
      if (failApplies_) return dataplane::Status::failure("injected failure");
      return dataplane::validate(delta);
    });
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  void makeNode(const std::string& name, const std::string& zone, const std::string& ip) {
    auto node = client::create(
        *client_, yaml<core::Node>("metadata: {name: " + name +
                                   ", labels: {topology.kubernetes.io/zone: " + zone + "}}"));
    auto* address = node.mutable_status()->add_addresses();
    address->set_type("InternalIP");
    address->set_address(ip);
    client::updateStatus(*client_, node);
  }
  void makePod(const std::string& name, const std::string& node) {
    client::create(*client_, yaml<core::Pod>("metadata: {name: " + name +
                                             ", namespace: default, labels: {app: web}}\n"
                                             "spec: {nodeName: " +
                                             node +
                                             ", containers: [{name: main, image: busybox, "
                                             "ports: [{name: http, containerPort: 8080}]}]}"));
  }
  // What a kubelet does: the pod's IP and its Ready condition, through the status subresource.
  void setPodStatus(const std::string& name, const std::string& ip, bool ready) {
    auto pod = client::get<core::Pod>(*client_, "default", name);
    auto* status = pod.mutable_status();
    status->set_phase("Running");
    status->set_pod_ip(ip);
    status->clear_pod_ips();
    status->add_pod_ips()->set_ip(ip);
    status->clear_conditions();
    auto* c = status->add_conditions();
    c->set_type("Ready");
    c->set_status(ready ? "True" : "False");
    auto now = api::now();
    c->mutable_last_transition_time()->set_seconds(now.seconds);
    client::updateStatus(*client_, pod);
  }
  // "10.0.0.1:8080/RS" per endpoint of every slice of `service`, sorted.
  std::set<std::string> sliceEndpoints(const std::string& service, size_t* slices = nullptr) {
    auto list = client::list<discovery::EndpointSlice>(
        *client_, "default", {.label_selector = "kubernetes.io/service-name=" + service});
    if (slices != nullptr) *slices = list.size();
    std::set<std::string> out;
    for (const auto& s : list) {
      for (const auto& e : s.endpoints()) {
        std::string flags = e.conditions().ready() ? "R" : "";
        if (e.conditions().serving()) flags += "S";
        if (e.conditions().terminating()) flags += "T";
        out.insert(e.addresses(0) + ":" + std::to_string(s.ports(0).port()) + "/" + flags + "@" +
                   e.node_name() + "/" + e.zone());
      }
    }
    return out;
  }
  std::set<std::string> programmedBackends(NodeProxier& proxier, const std::string& id) {
    auto programmed = proxier.proxier().programmed();
    auto it = programmed.find(id);
    if (it == programmed.end()) return {{"<absent>"}};
    std::set<std::string> out;
    for (const auto& b : it->second.backends)
      out.insert(b.key().toString() + (b.ready ? "/R" : "/-") + (b.local ? "L" : ""));
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<apiserver::ApiServer> server_;
  client::ClientPtr client_;
  NiceMock<skiff::testing::MockDataplane> dataplane_;
  std::atomic<int> applies_{0};
  std::atomic<bool> failApplies_{false};
};

TEST_F(EndpointsIntegration, PodsToSlicesToTheDataplane) {
  makeNode("node-1", "zone-a", "192.168.1.10");
  makeNode("node-2", "zone-b", "192.168.1.11");
  auto svc = client::create(*client_, yaml<core::Service>(R"(
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
)"));
  ASSERT_FALSE(svc.spec().cluster_ip().empty());
  makePod("web-1", "node-1");
  makePod("web-2", "node-2");
  makePod("web-3", "node-1");
  setPodStatus("web-1", "10.0.0.1", true);
  setPodStatus("web-2", "10.0.0.2", true);
  // web-3 has no IP yet: not an endpoint.

  // The server side: the controller.
  auto controllerClient = client::makeRestClient({.server = server_->url()});
  client::SharedInformerFactory serverInformers(*controllerClient);
  EndpointSliceController controller(*controllerClient, serverInformers,
                                     {.reconciler = {.maxEndpointsPerSlice = 2}});
  serverInformers.start();
  controller.start();

  // The node side: the proxier of node-1.
  auto agentClient = client::makeRestClient({.server = server_->url()});
  client::SharedInformerFactory agentInformers(*agentClient);
  NodeProxier proxier(agentInformers, dataplane_, {.proxier = {.nodeName = "node-1"}});
  agentInformers.start();
  proxier.start();

  EXPECT_TRUE(eventually([&] {
    return sliceEndpoints("web") == std::set<std::string>{"10.0.0.1:8080/RS@node-1/zone-a",
                                                          "10.0.0.2:8080/RS@node-2/zone-b"};
  })) << ::testing::PrintToString(sliceEndpoints("web"));
  EXPECT_TRUE(eventually([&] {
    return programmedBackends(proxier, "default/web:http") ==
           std::set<std::string>{"10.0.0.1:8080/RL", "10.0.0.2:8080/R"};
  })) << ::testing::PrintToString(programmedBackends(proxier, "default/web:http"));
  {
    auto programmed = proxier.proxier().programmed().at("default/web:http");
    ASSERT_EQ(programmed.frontends.size(), 2u);
    EXPECT_EQ(programmed.frontends[0].key.address.toString(), svc.spec().cluster_ip());
    EXPECT_EQ(programmed.frontends[1].key.toString(),
              "192.168.1.10:" + std::to_string(svc.spec().ports(0).node_port()) + "/TCP");
  }

  // web-3 gets an IP and turns ready: three endpoints in two slices (at most two per slice).
  setPodStatus("web-3", "10.0.0.3", true);
  size_t slices = 0;
  EXPECT_TRUE(eventually([&] { return sliceEndpoints("web", &slices).size() == 3; }));
  EXPECT_EQ(slices, 2u);
  EXPECT_TRUE(eventually([&] {
    return programmedBackends(proxier, "default/web:http") ==
           std::set<std::string>{"10.0.0.1:8080/RL", "10.0.0.2:8080/R", "10.0.0.3:8080/RL"};
  })) << ::testing::PrintToString(programmedBackends(proxier, "default/web:http"));
  EXPECT_EQ(proxier.proxier().localReadyEndpoints("default/web"), std::optional<size_t>(2));

  // web-2 turns unready: listed, not ready (no new flows, established ones kept).
  setPodStatus("web-2", "10.0.0.2", false);
  EXPECT_TRUE(eventually([&] {
    return programmedBackends(proxier, "default/web:http") ==
           std::set<std::string>{"10.0.0.1:8080/RL", "10.0.0.2:8080/-", "10.0.0.3:8080/RL"};
  })) << ::testing::PrintToString(programmedBackends(proxier, "default/web:http"));
  EXPECT_TRUE(sliceEndpoints("web").count("10.0.0.2:8080/@node-2/zone-b") == 1)
      << ::testing::PrintToString(sliceEndpoints("web"));

  // web-1 is deleted: while it terminates (the kubelet has not finished it) its endpoint stays,
  // serving and terminating, so that its established flows drain.
  client::remove<core::Pod>(*client_, "default", "web-1");
  EXPECT_TRUE(eventually([&] {
    return sliceEndpoints("web").count("10.0.0.1:8080/ST@node-1/zone-a") == 1;
  })) << ::testing::PrintToString(sliceEndpoints("web"));
  EXPECT_TRUE(eventually([&] {
    return programmedBackends(proxier, "default/web:http") ==
           std::set<std::string>{"10.0.0.1:8080/-L", "10.0.0.2:8080/-", "10.0.0.3:8080/RL"};
  })) << ::testing::PrintToString(programmedBackends(proxier, "default/web:http"));
  {
    auto terminating = proxier.proxier().programmed().at("default/web:http").backends[0];
    EXPECT_TRUE(terminating.terminating);
    EXPECT_TRUE(terminating.serving);
  }
  // Gone for good (grace period 0): the slices shrink.
  client::remove<core::Pod>(*client_, "default", "web-1", {.grace_period_seconds = 0});
  EXPECT_TRUE(eventually([&] {
    return sliceEndpoints("web") ==
           std::set<std::string>{"10.0.0.2:8080/@node-2/zone-b", "10.0.0.3:8080/RS@node-1/zone-a"};
  })) << ::testing::PrintToString(sliceEndpoints("web"));
  EXPECT_TRUE(eventually([&] {
    return programmedBackends(proxier, "default/web:http") ==
           std::set<std::string>{"10.0.0.2:8080/-", "10.0.0.3:8080/RL"};
  })) << ::testing::PrintToString(programmedBackends(proxier, "default/web:http"));

  // Every change was triggered by a pod transition and measured on its way to the data path.
  EXPECT_GT(proxier.proxier().programmingLatency().count(), 0u);
  EXPECT_NE(proxier.metricsText().find("skiff_proxy_network_programming_duration_seconds_count"),
            std::string::npos);

  // The service goes: its slices and its data-path state go.
  client::remove<core::Service>(*client_, "default", "web");
  EXPECT_TRUE(eventually([&] { return sliceEndpoints("web", &slices).empty() && slices == 0; }));
  EXPECT_TRUE(eventually([&] { return proxier.proxier().programmed().empty(); }));
  EXPECT_EQ(proxier.proxier().failedApplies(), 0u);

  proxier.stop();
  controller.stop();
  agentInformers.stop();
  serverInformers.stop();
}

TEST_F(EndpointsIntegration, SelectorlessServiceIsLeftAloneAndEmptyServiceGetsAPlaceholder) {
  auto controllerClient = client::makeRestClient({.server = server_->url()});
  client::SharedInformerFactory informers(*controllerClient);
  EndpointSliceController controller(*controllerClient, informers);
  informers.start();
  controller.start();
  client::create(*client_,
                 yaml<core::Service>("metadata: {name: manual, namespace: default}\nspec: {ports: "
                                     "[{port: 80}]}"));
  client::create(
      *client_, yaml<core::Service>("metadata: {name: empty, namespace: default}\nspec: {selector: "
                                    "{app: nothing}, ports: [{port: 80}]}"));
  size_t slices = 0;
  EXPECT_TRUE(eventually([&] {
    sliceEndpoints("empty", &slices);
    return slices == 1;
  }));
  auto placeholder = client::list<discovery::EndpointSlice>(
      *client_, "default", {.label_selector = "kubernetes.io/service-name=empty"});
  ASSERT_EQ(placeholder.size(), 1u);
  EXPECT_EQ(placeholder[0].ports_size(), 0);
  EXPECT_EQ(placeholder[0].endpoints_size(), 0);
  EXPECT_EQ(placeholder[0].metadata().labels().at("endpointslice.kubernetes.io/managed-by"),
            "endpointslice-controller.k8s.io");
  EXPECT_EQ(placeholder[0].metadata().owner_references(0).name(), "empty");
  sliceEndpoints("manual", &slices);
  EXPECT_EQ(slices, 0u);
  controller.stop();
  informers.stop();
}

// The proxier's HTTP side as kube-proxy has it: /metrics with the programming latency, /healthz
// that turns 503 while syncs fail, and the health-check node port that the apiserver allocates
// for a LoadBalancer Service with externalTrafficPolicy Local.
TEST_F(EndpointsIntegration, MetricsHealthzAndTheHealthCheckNodePort) {
  using testing::httpGet;
  makeNode("node-1", "zone-a", "192.168.1.10");
  makeNode("node-2", "zone-b", "192.168.1.11");
  auto svc = client::create(*client_, yaml<core::Service>(R"(
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
)"));
  const int hcPort = svc.spec().health_check_node_port();
  ASSERT_GE(hcPort, 30000) << "the apiserver allocates it from the node port range";
  ASSERT_LE(hcPort, 32767);
  ASSERT_NE(hcPort, svc.spec().ports(0).node_port());
  makePod("web-1", "node-1");
  makePod("web-2", "node-2");
  setPodStatus("web-1", "10.0.0.1", true);
  setPodStatus("web-2", "10.0.0.2", true);

  auto controllerClient = client::makeRestClient({.server = server_->url()});
  client::SharedInformerFactory serverInformers(*controllerClient);
  EndpointSliceController controller(*controllerClient, serverInformers);
  serverInformers.start();
  controller.start();
  auto agentClient = client::makeRestClient({.server = server_->url()});
  client::SharedInformerFactory agentInformers(*agentClient);
  NodeProxier proxier(agentInformers, dataplane_,
                      {.proxier = {.nodeName = "node-1"},
                       .retryInterval = 50ms,
                       .metricsBindAddress = "127.0.0.1:0",
                       .healthzBindAddress = "127.0.0.1:0",
                       .healthzTimeout = 300ms,
                       .healthCheckBindAddress = "127.0.0.1"});
  agentInformers.start();
  proxier.start();
  ASSERT_NE(proxier.metricsPort(), 0);
  ASSERT_NE(proxier.healthzPort(), 0);

  // node-1 has one ready local endpoint of web.
  const auto port = static_cast<uint16_t>(hcPort);
  EXPECT_TRUE(eventually([&] { return httpGet(port, "/").status == 200; }));
  auto hc = httpGet(port, "/");
  EXPECT_EQ(hc.body,
            "{\n\t\"service\": {\n\t\t\"namespace\": \"default\",\n\t\t\"name\": \"web\"\n\t},\n"
            "\t\"localEndpoints\": 1,\n\t\"serviceProxyHealthy\": true\n}");
  EXPECT_EQ(httpGet(proxier.healthzPort(), "/healthz").status, 200);
  EXPECT_EQ(httpGet(proxier.healthzPort(), "/livez").status, 200);
  EXPECT_EQ(httpGet(proxier.healthzPort(), "/nope").status, 404);

  // web-1 turns unready: no local endpoint, 503.
  setPodStatus("web-1", "10.0.0.1", false);
  EXPECT_TRUE(eventually([&] { return httpGet(port, "/").status == 503; }));
  EXPECT_NE(httpGet(port, "/").body.find("\"localEndpoints\": 0"), std::string::npos);

  // Every change was measured: the histogram under both names, on /metrics.
  auto metrics = httpGet(proxier.metricsPort(), "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.head.find("text/plain; version=0.0.4"), std::string::npos);
  for (const char* series :
       {"# TYPE skiff_proxy_network_programming_duration_seconds histogram",
        "# TYPE kubeproxy_network_programming_duration_seconds histogram",
        "# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram",
        "skiff_proxy_sync_failures_total 0", "kubeproxy_proxy_healthz_total{code=\"200\"} 1",
        "skiff_proxy_healthcheck_node_ports 1",
        "kubeproxy_sync_proxy_rules_last_timestamp_seconds "}) {
    EXPECT_NE(metrics.body.find(series), std::string::npos) << series << "\n" << metrics.body;
  }
  EXPECT_GT(proxier.proxier().programmingLatency().count(), 0u);
  EXPECT_EQ(metrics.body.find("skiff_proxy_network_programming_duration_seconds_count 0\n"),
            std::string::npos);

  // The data path refuses every sync: once a change has waited longer than the timeout,
  // /healthz and the health-check port say so.
  setPodStatus("web-1", "10.0.0.1", true);
  EXPECT_TRUE(eventually([&] { return httpGet(port, "/").status == 200; }));
  failApplies_ = true;
  setPodStatus("web-2", "10.0.0.2", false);
  EXPECT_TRUE(eventually([&] { return httpGet(proxier.healthzPort(), "/healthz").status == 503; }));
  auto stale = httpGet(port, "/");
  EXPECT_EQ(stale.status, 503);
  EXPECT_NE(stale.body.find("\"serviceProxyHealthy\": false"), std::string::npos) << stale.body;
  EXPECT_GT(proxier.proxier().failedApplies(), 0u);
  failApplies_ = false;
  EXPECT_TRUE(eventually([&] { return httpGet(proxier.healthzPort(), "/healthz").status == 200; }));
  EXPECT_EQ(httpGet(port, "/").status, 200);

  // The Service becomes ClusterIP: the apiserver drops the port, the proxier closes it.
  auto current = client::get<core::Service>(*client_, "default", "web");
  current.mutable_spec()->set_type("ClusterIP");
  current.mutable_spec()->clear_external_traffic_policy();
  for (auto& p : *current.mutable_spec()->mutable_ports())
    p.clear_node_port();
  auto updated = client::update(*client_, current);
  EXPECT_EQ(updated.spec().health_check_node_port(), 0);
  EXPECT_TRUE(eventually([&] { return httpGet(port, "/").status == 0; }));
  EXPECT_TRUE(proxier.healthCheckPortsServed().empty());

  proxier.stop();
  controller.stop();
  agentInformers.stop();
  serverInformers.stop();
}

}  // namespace
}  // namespace skiff::endpoints

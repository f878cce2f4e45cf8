#include "kubelet/pods/service_env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace skiff::kubelet {
namespace {

namespace core = api::core::v1;
using ::testing::IsEmpty;
using ::testing::Pair;

core::Service service(const std::string& ns, const std::string& name, const std::string& ip,
                      std::vector<std::tuple<std::string, int, std::string>> ports) {
  core::Service s;
  s.mutable_metadata()->set_namespace_(ns);
  s.mutable_metadata()->set_name(name);
  s.mutable_spec()->set_cluster_ip(ip);
  for (const auto& [port_name, port, protocol] : ports) {
    auto* p = s.mutable_spec()->add_ports();
    p->set_name(port_name);
    p->set_port(port);
    p->set_protocol(protocol);
  }
  return s;
}

core::Pod pod(const std::string& ns) {
  core::Pod p;
  p.mutable_metadata()->set_namespace_(ns);
  p.mutable_metadata()->set_name("p");
  return p;
}

std::map<std::string, std::string> asMap(
    const std::vector<std::pair<std::string, std::string>>& v) {
  return {v.begin(), v.end()};
}

const core::Service kKubernetes =
    service("default", "kubernetes", "10.96.0.1", {{"https", 443, "TCP"}});

TEST(ServiceEnvTest, KubernetesServiceAsKubernetesWritesIt) {
  auto vars = serviceEnvVars(pod("web"), {kKubernetes});
  EXPECT_THAT(vars, ::testing::ElementsAre(Pair("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
                                           Pair("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
                                           Pair("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
                                           Pair("KUBERNETES_PORT_443_TCP_PORT", "443"),
                                           Pair("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
                                           Pair("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
                                           Pair("KUBERNETES_SERVICE_PORT", "443"),
                                           Pair("KUBERNETES_SERVICE_PORT_HTTPS", "443")));
}

TEST(ServiceEnvTest, ServicesOfThePodsNamespaceWithEveryPort) {
  auto vars = asMap(serviceEnvVars(
      pod("web"),
      {kKubernetes,
       service("web", "my-db", "10.96.3.4", {{"", 5432, "TCP"}, {"metrics", 9187, "UDP"}}),
       service("other", "elsewhere", "10.96.9.9", {{"", 80, "TCP"}})}));
  EXPECT_EQ(vars["MY_DB_SERVICE_HOST"], "10.96.3.4");
  EXPECT_EQ(vars["MY_DB_SERVICE_PORT"], "5432");  // the first port, unnamed
  EXPECT_EQ(vars["MY_DB_SERVICE_PORT_METRICS"], "9187");
  EXPECT_EQ(vars.count("MY_DB_SERVICE_PORT_"), 0u);
  EXPECT_EQ(vars["MY_DB_PORT"], "tcp://10.96.3.4:5432");
  EXPECT_EQ(vars["MY_DB_PORT_9187_UDP"], "udp://10.96.3.4:9187");
  EXPECT_EQ(vars["MY_DB_PORT_9187_UDP_PROTO"], "udp");
  EXPECT_EQ(vars["MY_DB_PORT_9187_UDP_PORT"], "9187");
  EXPECT_EQ(vars["MY_DB_PORT_9187_UDP_ADDR"], "10.96.3.4");
  EXPECT_EQ(vars["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
  // Other namespaces' Services give nothing.
  for (const auto& [k, v] : vars)
    EXPECT_FALSE(k.starts_with("ELSEWHERE")) << k;
  EXPECT_EQ(vars.size(), 8u + 12u);
}

TEST(ServiceEnvTest, EnableServiceLinksFalseKeepsOnlyTheMasterService) {
  core::Pod p = pod("web");
  p.mutable_spec()->set_enable_service_links(false);
  auto vars = asMap(
      serviceEnvVars(p, {kKubernetes, service("web", "db", "10.96.3.4", {{"", 5432, "TCP"}})}));
  EXPECT_EQ(vars.count("DB_SERVICE_HOST"), 0u);
  EXPECT_EQ(vars["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
  EXPECT_EQ(vars.size(), 8u);
  // In the default namespace too: only the master service.
  core::Pod d = pod("default");
  d.mutable_spec()->set_enable_service_links(false);
  vars = asMap(
      serviceEnvVars(d, {kKubernetes, service("default", "db", "10.96.3.4", {{"", 5432, "TCP"}})}));
  EXPECT_EQ(vars.count("DB_SERVICE_HOST"), 0u);
  EXPECT_EQ(vars.size(), 8u);
}

TEST(ServiceEnvTest, HeadlessAndExternalNameServicesGiveNothing) {
  core::Service external = service("web", "ext", "", {});
  external.mutable_spec()->set_type("ExternalName");
  auto vars =
      serviceEnvVars(pod("web"), {service("web", "headless", "None", {{"", 80, "TCP"}}), external});
  EXPECT_THAT(vars, IsEmpty());
}

TEST(ServiceEnvTest, ANamespacesOwnKubernetesServiceWinsOverTheMasterOne) {
  auto vars = asMap(serviceEnvVars(
      pod("web"), {service("web", "kubernetes", "10.96.7.7", {{"", 8443, "TCP"}}), kKubernetes}));
  EXPECT_EQ(vars["KUBERNETES_SERVICE_HOST"], "10.96.7.7");
  EXPECT_EQ(vars["KUBERNETES_SERVICE_PORT"], "8443");
  EXPECT_EQ(vars.count("KUBERNETES_SERVICE_PORT_HTTPS"), 0u);
}

}  // namespace
}  // namespace skiff::kubelet

#include "endpoints/service_translation.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/api/codec.h"

namespace skiff::endpoints {
namespace {

namespace core = api::core::v1;
namespace discovery = api::discovery::v1;
using dataplane::FrontendKind;
using dataplane::IpAddress;
using ::testing::ElementsAre;

template <class T>
T yaml(const std::string& text) {
  T out;
  api::decodeYaml(text, out);
  return out;
}

std::string frontendsText(const dataplane::Service& s) {
  std::string out;
  for (const auto& f : s.frontends) {
    if (!out.empty()) out += " ";
    out += std::string(dataplane::toString(f.kind)) + "=" + f.key.toString();
  }
  return out;
}

// "10.0.0.1:8080 R|S|T|L zone"
std::string backendsText(const dataplane::Service& s) {
  std::string out;
  for (const auto& b : s.backends) {
    if (!out.empty()) out += " ";
    out += b.key().toString();
    std::string flags;
    if (b.ready) flags += "R";
    if (b.serving) flags += "S";
    if (b.terminating) flags += "T";
    if (b.local) flags += "L";
    out += "/" + flags;
    if (!b.zone.empty()) out += "@" + b.zone;
  }
  return out;
}

const NodeInfo kNode{"node-1", {*IpAddress::parse("192.168.1.10"), *IpAddress::parse("fd00::10")}};

const char* kSlice = R"(
metadata: {name: web-a, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}, {name: dns, port: 5353, protocol: UDP}]
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true, serving: true, terminating: false}
  nodeName: node-1
  zone: zone-a
- addresses: [10.0.0.2]
  conditions: {ready: false, serving: true, terminating: true}
  nodeName: node-2
- addresses: [10.0.0.3]
  conditions: {ready: false, serving: false, terminating: false}
  nodeName: node-2
- addresses: [10.0.0.4]
  nodeName: node-2
)";

struct Case {
  std::string description;
  std::string service;
  std::vector<std::string> slices = {kSlice};
  NodeInfo node = kNode;
  // Per dataplane service: id, frontends, backends.
  std::vector<std::string> ids;
  std::vector<std::string> frontends;
  std::vector<std::string> backends;
};

TEST(Translate, Table) {
  const std::vector<Case> cases = {
      {.description = "ClusterIP, one port per dataplane service; conditions and locality",
       .service = R"(
metadata: {name: web, namespace: default}
spec:
  type: ClusterIP
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, protocol: TCP}, {name: dns, port: 53, protocol: UDP}]
)",
       .ids = {"default/web:http", "default/web:dns"},
       .frontends = {"ClusterIP=10.96.0.10:80/TCP", "ClusterIP=10.96.0.10:53/UDP"},
       .backends = {"10.0.0.1:8080/RSL@zone-a 10.0.0.2:8080/ST 10.0.0.3:8080/ 10.0.0.4:8080/RS",
                    "10.0.0.1:5353/RSL@zone-a 10.0.0.2:5353/ST 10.0.0.3:5353/ 10.0.0.4:5353/RS"}},
      {.description = "NodePort on the node's addresses of the service's family",
       .service = R"(
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, nodePort: 30080}]
)",
       .ids = {"default/web:http"},
       .frontends = {"ClusterIP=10.96.0.10:80/TCP NodePort=192.168.1.10:30080/TCP"},
       .backends = {"10.0.0.1:8080/RSL@zone-a 10.0.0.2:8080/ST 10.0.0.3:8080/ 10.0.0.4:8080/RS"}},
      {.description = "no node addresses: NodePort on the unspecified address",
       .service = R"(
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, nodePort: 30080}]
)",
       .slices = {},
       .node = {"node-1", {}},
       .ids = {"default/web:http"},
       .frontends = {"ClusterIP=10.96.0.10:80/TCP NodePort=0.0.0.0:30080/TCP"},
       .backends = {""}},
      {.description = "LoadBalancer: NodePort, externalIPs and ingress IPs (not ipMode Proxy)",
       .service = R"(
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.10
  externalIPs: [203.0.113.5]
  ports: [{name: http, port: 80, nodePort: 30080}]
status:
  loadBalancer:
    ingress: [{ip: 198.51.100.1}, {ip: 198.51.100.2, ipMode: Proxy}, {hostname: lb.example}]
)",
       .slices = {},
       .ids = {"default/web:http"},
       .frontends = {"ClusterIP=10.96.0.10:80/TCP NodePort=192.168.1.10:30080/TCP "
                     "ExternalIP=203.0.113.5:80/TCP LoadBalancer=198.51.100.1:80/TCP"},
       .backends = {""}},
      {.description = "dual stack: both ClusterIPs, NodePorts on both families, both slices",
       .service = R"(
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, 'fd00:96::10']
  ports: [{name: http, port: 80, nodePort: 30080}]
)",
       .slices = {R"(
metadata: {name: web-6}
addressType: IPv6
ports: [{name: http, port: 8080}]
endpoints: [{addresses: ['fd00:1::1'], nodeName: node-1}]
)",
                  R"(
metadata: {name: web-4}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.0.0.9]}]
)"},
       .ids = {"default/web:http"},
       .frontends = {"ClusterIP=10.96.0.10:80/TCP ClusterIP=[fd00:96::10]:80/TCP "
                     "NodePort=192.168.1.10:30080/TCP NodePort=[fd00::10]:30080/TCP"},
       .backends = {"10.0.0.9:8080/RS [fd00:1::1]:8080/RSL"}},
      {.description = "a port name the slices do not carry gets no backends; FQDN slices ignored",
       .service = R"(
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: admin, port: 9000}]
)",
       .slices = {kSlice, R"(
metadata: {name: web-f}
addressType: FQDN
ports: [{name: admin, port: 9000}]
endpoints: [{addresses: [db.example]}]
)"},
       .ids = {"default/web:admin"},
       .frontends = {"ClusterIP=10.96.0.10:9000/TCP"},
       .backends = {""}},
      {.description = "duplicates across slices merge, the local copy wins",
       .service = R"(
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80}]
)",
       .slices = {R"(
metadata: {name: web-a}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.0.0.1], nodeName: node-2}, {addresses: [bogus]}]
)",
                  R"(
metadata: {name: web-b}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.0.0.1], nodeName: node-1}]
)"},
       .ids = {"default/web:http"},
       .frontends = {"ClusterIP=10.96.0.10:80/TCP"},
       .backends = {"10.0.0.1:8080/RSL"}},
      {.description = "headless and ExternalName services are skipped", .service = R"(
metadata: {name: web, namespace: default}
spec: {clusterIP: None, ports: [{name: http, port: 80}]}
)"},
      {.description = "ExternalName", .service = R"(
metadata: {name: web, namespace: default}
spec: {type: ExternalName, externalName: db.example}
)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.description);
    auto svc = yaml<core::Service>(c.service);
    std::vector<discovery::EndpointSlice> slices;
    for (const auto& s : c.slices)
      slices.push_back(yaml<discovery::EndpointSlice>(s));
    std::vector<const discovery::EndpointSlice*> ptrs;
    for (const auto& s : slices)
      ptrs.push_back(&s);
    auto got = translate(svc, ptrs, c.node);
    ASSERT_TRUE(got.ok()) << got.message();
    std::vector<std::string> ids, fronts, backs;
    for (const auto& s : got->services) {
      ids.push_back(s.id);
      fronts.push_back(frontendsText(s));
      backs.push_back(backendsText(s));
    }
    EXPECT_EQ(ids, c.ids);
    EXPECT_EQ(fronts, c.frontends);
    EXPECT_EQ(backs, c.backends);
  }
}

TEST(Translate, PoliciesAffinityAndSourceRanges) {
  auto svc = yaml<core::Service>(R"(
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.10
  ports: [{name: '', port: 80, nodePort: 30080}]
  externalTrafficPolicy: Local
  internalTrafficPolicy: Local
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  loadBalancerSourceRanges: [10.0.0.0/8, ' 192.168.0.0/16 ']
)");
  auto got = translate(svc, {}, kNode);
  ASSERT_TRUE(got.ok()) << got.message();
  ASSERT_EQ(got->services.size(), 1u);
  const auto& s = got->services[0];
  EXPECT_EQ(s.id, "default/web:");
  EXPECT_EQ(s.externalTrafficPolicy, dataplane::TrafficPolicy::kLocal);
  EXPECT_EQ(s.internalTrafficPolicy, dataplane::TrafficPolicy::kLocal);
  EXPECT_EQ(s.affinity, dataplane::SessionAffinity::kClientIP);
  EXPECT_EQ(s.affinityTimeoutSeconds, 60u);
  EXPECT_THAT(s.loadBalancerSourceRanges,
              ElementsAre(*dataplane::IpPrefix::parse("10.0.0.0/8"),
                          *dataplane::IpPrefix::parse("192.168.0.0/16")));

  svc.mutable_spec()->mutable_session_affinity_config()->clear_client_ip();
  got = translate(svc, {}, kNode);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->services[0].affinityTimeoutSeconds, 10800u);
}

TEST(Translate, BadInputFailsNamingTheField) {
  struct Bad {
    std::string service;
    std::string error;
  };
  const std::vector<Bad> cases = {
      {"metadata: {name: w, namespace: d}\nspec: {clusterIP: 10.96.0.300, ports: [{port: 80}]}",
       "service \"d/w\": spec.clusterIPs[0]: \"10.96.0.300\" is not an IP address"},
      {"metadata: {name: w, namespace: d}\nspec: {clusterIP: 10.96.0.1, externalIPs: [x], ports: "
       "[{port: 80}]}",
       "service \"d/w\": spec.externalIPs[0]: \"x\" is not an IP address"},
      {"metadata: {name: w, namespace: d}\nspec: {clusterIP: 10.96.0.1, "
       "loadBalancerSourceRanges: [10.0.0.0/33], ports: [{port: 80}]}",
       "service \"d/w\": spec.loadBalancerSourceRanges[0]: \"10.0.0.0/33\" is not a CIDR"},
      {"metadata: {name: w, namespace: d}\nspec: {clusterIP: 10.96.0.1, sessionAffinity: "
       "ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}, ports: [{port: 80}]}",
       "service \"d/w\": spec.sessionAffinityConfig.clientIP.timeoutSeconds: 0 is not in 1..86400"},
      {"metadata: {name: w, namespace: d}\nspec: {clusterIP: 10.96.0.1, ports: [{port: 80, "
       "protocol: ICMP}]}",
       "service \"d/w\": spec.ports[0].protocol: \"ICMP\" is not TCP, UDP or SCTP"},
  };
  for (const auto& c : cases) {
    auto got = translate(yaml<core::Service>(c.service), {}, kNode);
    ASSERT_FALSE(got.ok()) << c.service;
    EXPECT_EQ(got.message(), c.error);
  }
}

TEST(Translate, WarningsForBadEndpoints) {
  auto svc = yaml<core::Service>(
      "metadata: {name: web, namespace: default}\nspec: {clusterIP: 10.96.0.10, ports: [{name: "
      "http, port: 80}]}");
  auto slice = yaml<discovery::EndpointSlice>(R"(
metadata: {name: web-a}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: ['fd00::1']}, {addresses: [10.0.0.1]}]
)");
  auto got = translate(svc, {&slice}, kNode);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(backendsText(got->services[0]), "10.0.0.1:8080/RS");
  EXPECT_THAT(got->warnings,
              ElementsAre("default/web: endpoint \"fd00::1\" of slice web-a: not an IPv4 address"));
}

TEST(NodePortAddresses, InternalThenExternalDeduplicated) {
  auto node = yaml<core::Node>(R"(
metadata: {name: n}
status:
  addresses:
  - {type: Hostname, address: n}
  - {type: ExternalIP, address: 203.0.113.1}
  - {type: InternalIP, address: 192.168.1.10}
  - {type: ExternalIP, address: 192.168.1.10}
  - {type: InternalIP, address: nonsense}
)");
  auto got = nodePortAddresses(node);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].toString(), "192.168.1.10");
  EXPECT_EQ(got[1].toString(), "203.0.113.1");
}

}  // namespace
}  // namespace skiff::endpoints

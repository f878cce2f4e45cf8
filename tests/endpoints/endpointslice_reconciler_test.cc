#include "endpoints/endpointslice_reconciler.h"

#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/api/codec.h"

namespace skiff::endpoints {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

core::Service service(const std::string& yaml) {
  core::Service s;
  api::decodeYaml(yaml, s);
  return s;
}

const char* kWeb = R"(
metadata: {name: web, namespace: default, uid: svc-uid, labels: {app: web}}
spec:
  clusterIP: 10.96.0.10
  ipFamilies: [IPv4]
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http, protocol: TCP}
)";

struct PodSpec {
  std::string name;
  std::string ip;
  bool ready = true;
  std::string node = "node-1";
  bool deleting = false;
  int32_t httpPort = 8080;  // the container port named "http"; 0: none
  std::string phase = "Running";
};

core::Pod pod(const PodSpec& p) {
  core::Pod out;
  out.mutable_metadata()->set_name(p.name);
  out.mutable_metadata()->set_namespace_("default");
  out.mutable_metadata()->set_uid(p.name + "-uid");
  (*out.mutable_metadata()->mutable_labels())["app"] = "web";
  if (p.deleting) out.mutable_metadata()->mutable_deletion_timestamp()->set_seconds(100);
  out.mutable_spec()->set_node_name(p.node);
  auto* c = out.mutable_spec()->add_containers();
  c->set_name("main");
  if (p.httpPort != 0) {
    auto* port = c->add_ports();
    port->set_name("http");
    port->set_container_port(p.httpPort);
  }
  out.mutable_status()->set_phase(p.phase);
  if (!p.ip.empty()) {
    out.mutable_status()->set_pod_ip(p.ip);
    out.mutable_status()->add_pod_ips()->set_ip(p.ip);
  }
  auto* ready = out.mutable_status()->add_conditions();
  ready->set_type("Ready");
  ready->set_status(p.ready ? "True" : "False");
  return out;
}

core::Node node(const std::string& name, const std::string& zone) {
  core::Node n;
  n.mutable_metadata()->set_name(name);
  if (!zone.empty())
    (*n.mutable_metadata()->mutable_labels())[std::string(kLabelTopologyZone)] = zone;
  return n;
}

// "10.0.0.1" ready serving, "10.0.0.1/nr" not ready, "/t" terminating.
std::string endpointText(const discovery::Endpoint& e) {
  std::string out;
  for (const auto& a : e.addresses())
    out += a;
  if (!e.conditions().ready()) out += "/nr";
  if (!e.conditions().serving()) out += "/ns";
  if (e.conditions().terminating()) out += "/t";
  return out;
}

// "NAME IPv4 [http:8080/TCP] 10.0.0.1 10.0.0.2"
std::string sliceText(const discovery::EndpointSlice& s) {
  std::string out =
      s.metadata().name().empty() ? s.metadata().generate_name() + "*" : s.metadata().name();
  out += " " + s.address_type() + " [";
  for (int i = 0; i < s.ports_size(); ++i) {
    if (i > 0) out += ",";
    out +=
        s.ports(i).name() + ":" + std::to_string(s.ports(i).port()) + "/" + s.ports(i).protocol();
  }
  out += "]";
  for (const auto& e : s.endpoints())
    out += " " + endpointText(e);
  return out;
}

std::vector<std::string> texts(const std::vector<discovery::EndpointSlice>& slices) {
  std::vector<std::string> out;
  for (const auto& s : slices)
    out.push_back(sliceText(s));
  return out;
}

// An existing slice as the controller would have written it.
discovery::EndpointSlice existing(const core::Service& svc, const std::string& name,
                                  const std::vector<core::Pod>& pods,
                                  std::vector<discovery::EndpointPort> ports = {}) {
  discovery::EndpointSlice s;
  s.mutable_metadata()->set_name(name);
  s.mutable_metadata()->set_namespace_("default");
  s.mutable_metadata()->set_resource_version("7");
  for (const auto& [k, v] : sliceLabels(svc, kControllerName))
    (*s.mutable_metadata()->mutable_labels())[k] = v;
  auto* owner = s.mutable_metadata()->add_owner_references();
  owner->set_api_version("v1");
  owner->set_kind("Service");
  owner->set_name(svc.metadata().name());
  owner->set_uid(svc.metadata().uid());
  owner->set_controller(true);
  s.set_address_type("IPv4");
  if (ports.empty() && !pods.empty()) ports = endpointPorts(svc, pods.front());
  for (auto& p : ports)
    *s.add_ports() = p;
  const core::Node zoneA = node("node-1", "zone-a");  // where pod() puts pods
  for (const auto& p : pods)
    *s.add_endpoints() = podToEndpoint(p, &zoneA, svc, "IPv4");
  return s;
}

std::vector<core::Pod> pods(int first, int count, bool ready = true) {
  std::vector<core::Pod> out;
  for (int i = first; i < first + count; ++i)
    out.push_back(pod(
        {.name = "p" + std::to_string(i), .ip = "10.0.0." + std::to_string(i), .ready = ready}));
  return out;
}

struct Case {
  std::string description;
  std::vector<core::Pod> pods;
  std::vector<discovery::EndpointSlice> existing;
  int max = 100;
  std::vector<std::string> create, update, remove;
};

class ReconcileTable : public ::testing::Test {
 protected:
  SliceChanges run(const core::Service& svc, const std::vector<core::Pod>& ps,
                   const std::vector<discovery::EndpointSlice>& have, int max = 100) {
    std::vector<const core::Pod*> pp;
    for (const auto& p : ps)
      pp.push_back(&p);
    std::vector<const discovery::EndpointSlice*> ss;
    for (const auto& s : have)
      ss.push_back(&s);
    return reconcile(svc, pp, ss, lookup_, {.maxEndpointsPerSlice = max});
  }

  std::map<std::string, core::Node> nodes_{{"node-1", node("node-1", "zone-a")},
                                           {"node-2", node("node-2", "")}};
  NodeLookup lookup_ = [this](std::string_view name) -> const core::Node* {
    auto it = nodes_.find(std::string(name));
    return it == nodes_.end() ? nullptr : &it->second;
  };
};

TEST_F(ReconcileTable, Cases) {
  const core::Service web = service(kWeb);
  auto p = [](int first, int count, bool ready = true) { return pods(first, count, ready); };
  auto concat = [](std::vector<core::Pod> a, const std::vector<core::Pod>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  std::vector<core::Pod> mixed = p(1, 2);
  mixed.push_back(pod({.name = "p3", .ip = "10.0.0.3", .ready = false}));
  mixed.push_back(pod({.name = "p4", .ip = "10.0.0.4", .deleting = true}));
  mixed.push_back(pod({.name = "p5", .ip = "10.0.0.5", .ready = false, .deleting = true}));
  mixed.push_back(pod({.name = "p6", .ip = ""}));  // no IP yet
  mixed.push_back(pod({.name = "p7", .ip = "10.0.0.7", .phase = "Succeeded"}));
  mixed.push_back(pod({.name = "p8", .ip = "10.0.0.8", .node = "node-9"}));  // unknown node
  std::vector<core::Pod> otherPort = p(1, 1);
  otherPort.push_back(pod({.name = "p2", .ip = "10.0.0.2", .httpPort = 9090}));
  otherPort.push_back(pod({.name = "p3", .ip = "10.0.0.3", .httpPort = 0}));  // no "http" port

  const std::vector<Case> cases = {
      {.description = "no pods: one placeholder without ports", .create = {"web-* IPv4 []"}},
      {.description = "the placeholder is kept, not rewritten",
       .existing = {existing(web, "web-ph", {})}},
      {.description = "first pods fill the placeholder's name (an update, not create+delete)",
       .pods = p(1, 2),
       .existing = {existing(web, "web-ph", {})},
       .update = {"web-ph IPv4 [http:8080/TCP] 10.0.0.1 10.0.0.2"}},
      {.description = "conditions as Kubernetes computes them; pods without IP, terminal or on "
                      "an unknown node are left out",
       .pods = mixed,
       .create = {"web-* IPv4 [http:8080/TCP] 10.0.0.1 10.0.0.2 10.0.0.3/nr/ns 10.0.0.4/nr/t "
                  "10.0.0.5/nr/ns/t"}},
      {.description = "nothing changed: nothing written",
       .pods = p(1, 3),
       .existing = {existing(web, "web-a", p(1, 3))}},
      {.description = "a pod turns unready: only its endpoint's slice is updated",
       .pods = concat(p(1, 2), p(3, 1, false)),
       .existing = {existing(web, "web-a", p(1, 3))},
       .update = {"web-a IPv4 [http:8080/TCP] 10.0.0.1 10.0.0.2 10.0.0.3/nr/ns"}},
      {.description = "max 3 per slice: 7 endpoints make 3 slices",
       .pods = p(1, 7),
       .max = 3,
       .create = {"web-* IPv4 [http:8080/TCP] 10.0.0.1 10.0.0.2 10.0.0.3",
                  "web-* IPv4 [http:8080/TCP] 10.0.0.4 10.0.0.5 10.0.0.6",
                  "web-* IPv4 [http:8080/TCP] 10.0.0.7"}},
      {.description = "a new endpoint goes into the unchanged slice it fits best",
       .pods = p(1, 6),
       .existing = {existing(web, "web-a", p(1, 2)), existing(web, "web-b", p(3, 3))},
       .max = 4,
       .update = {"web-b IPv4 [http:8080/TCP] 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6"}},
      {.description = "new endpoints first fill the slice being updated anyway",
       .pods = concat(p(2, 1), p(5, 2)),
       .existing = {existing(web, "web-a", p(1, 2)), existing(web, "web-b", p(3, 1))},
       .max = 3,
       .update = {"web-a IPv4 [http:8080/TCP] 10.0.0.2 10.0.0.5 10.0.0.6"},
       .remove = {"web-b IPv4 [http:8080/TCP] 10.0.0.3"}},
      {.description = "all endpoints gone: the last slice becomes the placeholder",
       .existing = {existing(web, "web-a", p(1, 2))},
       .update = {"web-a IPv4 []"}},
      {.description = "named targetPorts resolve per pod: one slice per distinct port set",
       .pods = otherPort,
       .create = {"web-* IPv4 [] 10.0.0.3", "web-* IPv4 [http:8080/TCP] 10.0.0.1",
                  "web-* IPv4 [http:9090/TCP] 10.0.0.2"}},
      {.description = "a slice owned by another object (an old service of that name) goes",
       .pods = p(1, 1),
       .existing = {[&] {
         auto s = existing(web, "web-old", p(1, 1));
         s.mutable_metadata()->mutable_owner_references(0)->set_uid("old-uid");
         return s;
       }()},
       .create = {"web-* IPv4 [http:8080/TCP] 10.0.0.1"},
       .remove = {"web-old IPv4 [http:8080/TCP] 10.0.0.1"}},
      {.description = "a slice of an address type the service no longer has goes",
       .pods = p(1, 1),
       .existing = {existing(web, "web-a", p(1, 1)),
                    [&] {
                      auto s = existing(web, "web-v6", {});
                      s.set_address_type("IPv6");
                      return s;
                    }()},
       .remove = {"web-v6 IPv6 []"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.description);
    SliceChanges got = run(web, c.pods, c.existing, c.max);
    EXPECT_EQ(texts(got.create), c.create);
    EXPECT_EQ(texts(got.update), c.update);
    EXPECT_EQ(texts(got.remove), c.remove);
  }
}

TEST_F(ReconcileTable, UnknownNodeIsReportedForRetry) {
  const core::Service web = service(kWeb);
  auto got = run(web, {pod({.name = "p8", .ip = "10.0.0.8", .node = "node-9"})}, {});
  EXPECT_THAT(got.errors,
              ElementsAre("skipping Pod p8 for Service default/web: Node node-9 not found"));
  EXPECT_EQ(texts(got.create), std::vector<std::string>{"web-* IPv4 []"});
}

TEST_F(ReconcileTable, PublishNotReadyAddresses) {
  core::Service web = service(kWeb);
  web.mutable_spec()->set_publish_not_ready_addresses(true);
  auto got = run(web,
                 {pod({.name = "p1", .ip = "10.0.0.1", .ready = false}),
                  pod({.name = "p2", .ip = "10.0.0.2", .deleting = true}),
                  pod({.name = "p3", .ip = "10.0.0.3", .node = "node-9"})},
                 {});
  EXPECT_THAT(texts(got.create),
              ElementsAre("web-* IPv4 [http:8080/TCP] 10.0.0.1/ns 10.0.0.2/t 10.0.0.3"));
  EXPECT_THAT(got.errors, IsEmpty());
}

TEST_F(ReconcileTable, EndpointFieldsAndSliceMetadata) {
  core::Service web = service(kWeb);
  core::Pod p1 = pod({.name = "p1", .ip = "10.0.0.1"});
  p1.mutable_spec()->set_hostname("h1");
  p1.mutable_spec()->set_subdomain("web");
  core::Pod p2 = pod({.name = "p2", .ip = "10.0.0.2", .node = "node-2"});
  p2.mutable_spec()->set_hostname("h2");  // no subdomain: no hostname
  auto got = reconcile(web, {&p1, &p2}, {}, lookup_, {}, api::Timestamp{1700000000, 500000000});
  ASSERT_EQ(got.create.size(), 1u);
  const auto& s = got.create[0];
  EXPECT_EQ(s.metadata().generate_name(), "web-");
  EXPECT_EQ(s.metadata().namespace_(), "default");
  EXPECT_EQ(s.metadata().labels().at("kubernetes.io/service-name"), "web");
  EXPECT_EQ(s.metadata().labels().at("endpointslice.kubernetes.io/managed-by"),
            "endpointslice-controller.k8s.io");
  EXPECT_EQ(s.metadata().labels().at("app"), "web");
  EXPECT_EQ(s.metadata().labels().count("service.kubernetes.io/headless"), 0u);
  EXPECT_EQ(s.metadata().annotations().at("endpoints.kubernetes.io/last-change-trigger-time"),
            "2023-11-14T22:13:20.5Z");
  ASSERT_EQ(s.metadata().owner_references_size(), 1);
  const auto& owner = s.metadata().owner_references(0);
  EXPECT_EQ(owner.kind(), "Service");
  EXPECT_EQ(owner.api_version(), "v1");
  EXPECT_EQ(owner.name(), "web");
  EXPECT_EQ(owner.uid(), "svc-uid");
  EXPECT_TRUE(owner.controller());
  EXPECT_TRUE(owner.block_owner_deletion());
  ASSERT_EQ(s.endpoints_size(), 2);
  const auto& e1 = s.endpoints(0);
  EXPECT_EQ(e1.hostname(), "h1");
  EXPECT_EQ(e1.node_name(), "node-1");
  EXPECT_EQ(e1.zone(), "zone-a");
  EXPECT_EQ(e1.target_ref().kind(), "Pod");
  EXPECT_EQ(e1.target_ref().name(), "p1");
  EXPECT_EQ(e1.target_ref().uid(), "p1-uid");
  const auto& e2 = s.endpoints(1);
  EXPECT_FALSE(e2.has_hostname());
  EXPECT_EQ(e2.node_name(), "node-2");
  EXPECT_FALSE(e2.has_zone());
}

TEST_F(ReconcileTable, ServiceLabelChangeRewritesSlices) {
  core::Service web = service(kWeb);
  auto have = existing(web, "web-a", pods(1, 1));
  (*web.mutable_metadata()->mutable_labels())["tier"] = "front";
  auto got = run(web, pods(1, 1), {have});
  ASSERT_EQ(got.update.size(), 1u);
  EXPECT_EQ(got.update[0].metadata().labels().at("tier"), "front");
  EXPECT_EQ(got.update[0].metadata().resource_version(), "7");
}

TEST_F(ReconcileTable, DualStackMakesOneGroupPerFamily) {
  core::Service web = service(kWeb);
  web.mutable_spec()->clear_ip_families();
  web.mutable_spec()->add_ip_families("IPv4");
  web.mutable_spec()->add_ip_families("IPv6");
  core::Pod p1 = pod({.name = "p1", .ip = "10.0.0.1"});
  p1.mutable_status()->add_pod_ips()->set_ip("fd00::1");
  core::Pod p2 = pod({.name = "p2", .ip = "10.0.0.2"});  // IPv4 only
  auto got = run(web, {p1, p2}, {});
  EXPECT_THAT(texts(got.create), ElementsAre("web-* IPv4 [http:8080/TCP] 10.0.0.1 10.0.0.2",
                                             "web-* IPv6 [http:8080/TCP] fd00::1"));
}

TEST_F(ReconcileTable, HeadlessServiceGetsHeadlessLabelAndBothFamilies) {
  core::Service web = service(R"(
metadata: {name: db, namespace: default, uid: u}
spec: {clusterIP: None, selector: {app: web}}
)");
  auto got = run(web, pods(1, 1), {});
  EXPECT_THAT(texts(got.create), ElementsAre("db-* IPv4 [] 10.0.0.1", "db-* IPv6 []"));
  EXPECT_EQ(got.create[0].metadata().labels().at("service.kubernetes.io/headless"), "");
}

TEST_F(ReconcileTable, DeletingServiceGetsNoNewSlices) {
  core::Service web = service(kWeb);
  web.mutable_metadata()->mutable_deletion_timestamp()->set_seconds(1);
  auto got = run(web, pods(1, 2), {});
  EXPECT_THAT(got.create, IsEmpty());
}

TEST_F(ReconcileTable, PortDefaultsAndNumbers) {
  core::Service svc = service(R"(
metadata: {name: s, namespace: default, uid: u}
spec:
  clusterIP: 10.96.0.11
  selector: {app: web}
  ports:
  - {name: a, port: 53, protocol: UDP, targetPort: 5353}
  - {name: b, port: 80}
  - {name: c, port: 81, protocol: UDP, targetPort: http}
)");
  // "http" is a TCP port on the pod, so the UDP port c does not resolve.
  auto got = endpointPorts(svc, pod({.name = "p1", .ip = "10.0.0.1"}));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].name(), "a");
  EXPECT_EQ(got[0].port(), 5353);
  EXPECT_EQ(got[0].protocol(), "UDP");
  EXPECT_EQ(got[1].name(), "b");
  EXPECT_EQ(got[1].port(), 80);
  EXPECT_EQ(got[1].protocol(), "TCP");
}

TEST(AddressTypes, FromFamiliesOrClusterIP) {
  EXPECT_EQ(addressTypesForService(service("spec: {clusterIP: 'fd00::10'}")),
            (std::set<std::string>{"IPv6"}));
  EXPECT_EQ(addressTypesForService(service("spec: {clusterIP: 10.0.0.1, ipFamilies: [IPv6]}")),
            (std::set<std::string>{"IPv6"}));
  EXPECT_EQ(addressTypesForService(service("spec: {clusterIP: None}")),
            (std::set<std::string>{"IPv4", "IPv6"}));
}

TEST_F(ReconcileTable, ReconcilingTheResultAgainChangesNothing) {
  // Apply the diff as the apiserver would and reconcile again: a fixed point, for several sizes.
  const core::Service web = service(kWeb);
  std::vector<discovery::EndpointSlice> have;
  int names = 0;
  for (int n : {0, 5, 250, 120, 3, 0, 101}) {
    SCOPED_TRACE("pods: " + std::to_string(n));
    auto ps = pods(1, n);
    auto got = run(web, ps, have, 50);
    std::map<std::string, discovery::EndpointSlice> byName;
    for (auto& s : have)
      byName[s.metadata().name()] = s;
    for (auto& s : got.remove)
      byName.erase(s.metadata().name());
    for (auto& s : got.update)
      byName[s.metadata().name()] = s;
    for (auto s : got.create) {
      s.mutable_metadata()->set_name("web-" + std::to_string(names++));
      byName[s.metadata().name()] = s;
    }
    have.clear();
    size_t total = 0;
    for (auto& [name, s] : byName) {
      EXPECT_LE(s.endpoints_size(), 50);
      total += static_cast<size_t>(s.endpoints_size());
      have.push_back(s);
    }
    EXPECT_EQ(total, static_cast<size_t>(n));
    EXPECT_GE(have.size(), std::max<size_t>(1, (static_cast<size_t>(n) + 49) / 50));
    auto again = run(web, ps, have, 50);
    EXPECT_TRUE(again.empty()) << texts(again.create).size() << " " << texts(again.update).size();
  }
}

}  // namespace
}  // namespace skiff::endpoints

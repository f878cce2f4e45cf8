// A kubelet that authenticates with its node's client certificate (CN system:node:NAME, O
// system:nodes, from apiserver::ensureNodeCertificate as `skiff up` and `skiff node-kubeconfig`
// issue it) against the real apiserver over HTTPS, under the Node authorizer and NodeRestriction:
// the real agent shell (with the hollow pod syncer) registers its Node, renews its Lease, runs its
// pod and reports status and events; the reads of a kubelet and its proxier pass (its pod's secret
// and configmap, a token bound to its pod, Services, EndpointSlices); node b's pod, secret, Node,
// Lease and service account tokens are refused with Kubernetes' 403.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "control/api/json.h"
#include "control/apiserver/pki.h"
#include "control/apiserver/server.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"
#include "control/client/typed.h"
#include "kubelet/agent/agent.h"
#include "skiff/api/coordination_v1.pb.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/discovery_v1.pb.h"

namespace skiff::apiserver {
namespace {

using namespace std::chrono_literals;
namespace core = api::core::v1;

// The HTTP status a call ends with (200 for success).
template <typename F>
int status(F&& call) {
  try {
    call();
    return 200;
  } catch (const client::ApiError& e) {
    return e.code();
  }
}

template <typename F>
std::string message(F&& call) {
  try {
    call();
  } catch (const client::ApiError& e) {
    return e.what();
  }
  return "";
}

template <class F>
bool eventually(F f, std::chrono::milliseconds timeout = 15s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return f();
}

api::Value json(const std::string& text) {
  return api::parseJson(text);
}

std::string tokenRequestFor(const std::string& pod, const std::string& uid) {
  return R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{
      "audiences":["https://kubernetes.default.svc"],"expirationSeconds":3600,
      "boundObjectRef":{"apiVersion":"v1","kind":"Pod","name":")" +
         pod + R"(","uid":")" + uid + R"("}}})";
}

TEST(NodeCertificateApi, AKubeletWithItsCertificateRunsItsPodsAndTouchesNoOtherNode) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("skiff-node-certificate-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    ApiServer server({.data_dir = dir.string(), .port = 0, .fsync = false});
    server.start();
    client::ClientConfig admin_config =
        client::loadClientConfig({.kubeconfig = server.adminKubeconfig()});
    auto admin = client::makeRestClient(admin_config);
    // The node's credential: its certificate and key, no token.
    auto node_client = [&](const std::string& node) {
      NodeCertificate cert = ensureNodeCertificate(dir.string(), node);
      EXPECT_EQ(cert.cert_file, (dir / "pki" / "nodes" / (node + ".crt")).string());
      client::ClientConfig c = admin_config;
      c.token.clear();
      c.user_name = "system:node:" + node;
      c.client_cert_pem = cert.pem.cert_pem;
      c.client_key_pem = cert.pem.key_pem;
      return client::makeRestClient(c, {.max_retries = 0});
    };
    auto node_a = node_client("a");
    const auto& secrets = client::resourceTypeOf<core::Secret>();
    const auto& config_maps = client::resourceTypeOf<core::ConfigMap>();
    const auto& pods = client::resourceTypeOf<core::Pod>();
    const auto& nodes = client::resourceTypeOf<core::Node>();
    const auto& services = client::resourceTypeOf<core::Service>();
    const auto& slices = client::resourceTypeOf<api::discovery::v1::EndpointSlice>();
    const auto& leases = client::resourceTypeOf<api::coordination::v1::Lease>();

    // Who the certificate is (SelfSubjectReview, `kubectl auth whoami`).
    client::RawResponse who = node_a->raw(
        {.method = "POST",
         .path = "/apis/authentication.k8s.io/v1/selfsubjectreviews",
         .body = R"({"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"})",
         .content_type = "application/json"});
    ASSERT_EQ(who.status, 201) << who.body;
    EXPECT_NE(who.body.find("\"username\":\"system:node:a\""), std::string::npos) << who.body;
    EXPECT_NE(who.body.find("\"system:nodes\""), std::string::npos) << who.body;

    for (const char* name : {"a-secret", "b-secret", "unused"}) {
      admin->create(secrets, "default",
                    json(std::string(R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":")") +
                         name + R"("},"stringData":{"k":"v"}})"));
    }
    admin->create(config_maps, "default", json(R"({"apiVersion":"v1","kind":"ConfigMap",
        "metadata":{"name":"a-config"},"data":{"k":"v"}})"));
    admin->create(client::resourceTypeOf<core::ServiceAccount>(), "default",
                  json(R"({"apiVersion":"v1","kind":"ServiceAccount",
                           "metadata":{"name":"web"}})"));
    admin->create(services, "default", json(R"({"apiVersion":"v1","kind":"Service",
        "metadata":{"name":"web"},"spec":{"selector":{"app":"web"},"ports":[{"port":80}]}})"));
    admin->create(pods, "default", json(R"({"apiVersion":"v1","kind":"Pod",
        "metadata":{"name":"on-a","labels":{"app":"web"}},"spec":{"nodeName":"a",
        "serviceAccountName":"web",
        "volumes":[{"name":"s","secret":{"secretName":"a-secret"}}],
        "containers":[{"name":"c","image":"busybox",
                       "envFrom":[{"configMapRef":{"name":"a-config"}}]}]}})"));
    admin->create(pods, "default", json(R"({"apiVersion":"v1","kind":"Pod",
        "metadata":{"name":"on-b"},"spec":{"nodeName":"b","serviceAccountName":"web",
        "containers":[{"name":"c","image":"busybox",
          "env":[{"name":"X","valueFrom":{"secretKeyRef":{"name":"b-secret","key":"k"}}}]}]}})"));

    // The agent of node a, with node a's certificate only: registration, Lease, pod status and
    // events all pass the Node authorizer.
    kubelet::HollowNodesOptions options;
    options.agent.node_name = "a";
    options.agent.data_dir = (dir / "agent").string();
    options.agent.lease_renew_interval = 100ms;
    options.agent.node_status_update_frequency = 200ms;
    options.agent.pod_workers = 2;
    auto agent = kubelet::runHollowNodes(*node_a, 1, options);
    ASSERT_NE(agent, nullptr);
    ASSERT_EQ(agent->agent(0).nodeName(), "a");
    auto phase = [&](const std::string& pod) {
      return client::get<core::Pod>(*admin, "default", pod).status().phase();
    };
    ASSERT_TRUE(eventually([&] { return phase("on-a") == "Running"; })) << phase("on-a");
    auto node_ready = [&] {
      const core::Node node = client::get<core::Node>(*admin, "", "a");
      for (const auto& c : node.status().conditions()) {
        if (c.type() == "Ready") return c.status() == "True";
      }
      return false;
    };
    EXPECT_TRUE(eventually(node_ready));
    auto lease = client::get<api::coordination::v1::Lease>(*admin, "kube-node-lease", "a");
    EXPECT_EQ(lease.spec().holder_identity(), "a");
    const std::string renewed = lease.spec().renew_time().SerializeAsString();
    EXPECT_TRUE(eventually([&] {
      return client::get<api::coordination::v1::Lease>(*admin, "kube-node-lease", "a")
                 .spec()
                 .renew_time()
                 .SerializeAsString() != renewed;
    })) << "the node's Lease was not renewed";
    EXPECT_TRUE(eventually([&] {
      for (const auto& e : client::list<core::Event>(*admin, "default")) {
        if (e.involved_object().name() == "on-a" && e.source().host() == "a") return true;
      }
      return false;
    })) << "no event of node a about its pod";
    EXPECT_NE(phase("on-b"), "Running");  // nobody runs node b

    // A kubelet's and its proxier's reads.
    EXPECT_EQ(status([&] { node_a->get(secrets, "default", "a-secret"); }), 200);
    EXPECT_EQ(status([&] { node_a->get(config_maps, "default", "a-config"); }), 200);
    EXPECT_EQ(status([&] { node_a->list(services, ""); }), 200);
    EXPECT_EQ(status([&] { node_a->list(slices, ""); }), 200);
    EXPECT_EQ(status([&] { node_a->get(nodes, "", "a"); }), 200);
    const std::string uid_a = client::get<core::Pod>(*admin, "default", "on-a").metadata().uid();
    const std::string uid_b = client::get<core::Pod>(*admin, "default", "on-b").metadata().uid();
    auto token = [&](const std::string& pod, const std::string& uid) {
      return node_a->raw({.method = "POST",
                          .path = "/api/v1/namespaces/default/serviceaccounts/web/token",
                          .body = tokenRequestFor(pod, uid),
                          .content_type = "application/json"});
    };
    client::RawResponse own = token("on-a", uid_a);
    EXPECT_EQ(own.status, 201) << own.body;

    // Node b's objects: refused, in Kubernetes' words.
    std::string why = message([&] { node_a->get(secrets, "default", "b-secret"); });
    EXPECT_NE(why.find("secrets \"b-secret\" is forbidden: User \"system:node:a\" cannot get "
                       "resource \"secrets\" in API group \"\" in the namespace \"default\": no "
                       "relationship found between node 'a' and this object"),
              std::string::npos)
        << why;
    EXPECT_EQ(status([&] { node_a->get(secrets, "default", "unused"); }), 403);
    EXPECT_EQ(status([&] { node_a->list(secrets, "default"); }), 403);
    api::Value on_b = admin->get(pods, "default", "on-b");
    why = message([&] { node_a->updateStatus(pods, "default", on_b); });
    EXPECT_NE(why.find("node 'a' can only update pods bound to it"), std::string::npos) << why;
    EXPECT_EQ(status([&] { node_a->remove(pods, "default", "on-b"); }), 403);
    EXPECT_EQ(status([&] {
                node_a->create(
                    nodes, "",
                    json(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"b"}})"));
              }),
              403);
    EXPECT_EQ(status([&] {
                node_a->create(leases, "kube-node-lease",
                               json(R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
                                        "metadata":{"name":"b"},"spec":{"holderIdentity":"b"}})"));
              }),
              403);
    client::RawResponse other = token("on-b", uid_b);
    EXPECT_EQ(other.status, 403) << other.body;
    EXPECT_NE(other.body.find("node requested token bound to a pod scheduled on a different node"),
              std::string::npos)
        << other.body;
    // A node's certificate for another node does not make it node a.
    auto node_b = node_client("b");
    EXPECT_EQ(status([&] { node_b->get(secrets, "default", "a-secret"); }), 403);
    EXPECT_EQ(status([&] { node_b->get(secrets, "default", "b-secret"); }), 200);
    agent->stop();
    server.stop();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace skiff::apiserver

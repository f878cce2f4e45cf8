// The kubelet API's authentication and authorization against a real apiserver (HTTPS, RBAC, the
// Node authorizer): the apiserver's proxied logs with its client certificate
// (kube-apiserver-kubelet-client, ClusterRole system:kubelet-api-admin), ServiceAccount tokens
// reviewed by TokenReview and authorized by SubjectAccessReview straight at the kubelet, 401
// without credentials, and a certificate of another CA refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "control/api/json.h"
#include "kubelet/server/kubelet_server.h"
#include "tests/kubelet/server/kubelet_api_cluster.h"

namespace skiff::kubelet {
namespace {

namespace fs = std::filesystem;
namespace http = boost::beast::http;
using testutil::CallOptions;
using testutil::KubeletApiCluster;
using testutil::Reply;

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class KubeletAuthApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("skiff-kubelet-auth-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "logs" / "default_web_1234-abcd" / "app");
    std::ofstream(dir_ / "logs" / "default_web_1234-abcd" / "app" / "0.log")
        << "2026-01-01T00:00:01.000000000Z stdout F hello\n";
    cluster_ = std::make_unique<KubeletApiCluster>(dir_ / "server");
    kubelet_ = std::make_unique<KubeletServer>(cluster_->kubeletOptions((dir_ / "logs").string()));
    kubelet_->start();
    cluster_->registerNode(kubelet_->port());
    ASSERT_EQ(api(http::verb::post, "/api/v1/namespaces/default/pods",
                  R"({"metadata":{"name":"web"},"spec":{"nodeName":"n1",)"
                  R"("containers":[{"name":"app","image":"busybox"}]}})")
                  .status,
              201);
  }
  void TearDown() override {
    kubelet_.reset();
    cluster_.reset();
    fs::remove_all(dir_);
  }

  Reply api(http::verb method, const std::string& target, const std::string& body = "") {
    return cluster_->api(method, target, body);
  }
  // A ServiceAccount and a token for it (TokenRequest).
  std::string serviceAccountToken(const std::string& name) {
    Reply sa = api(http::verb::post, "/api/v1/namespaces/default/serviceaccounts",
                   R"({"metadata":{"name":")" + name + R"("}})");
    EXPECT_EQ(sa.status, 201) << sa.body;
    Reply token =
        api(http::verb::post, "/api/v1/namespaces/default/serviceaccounts/" + name + "/token",
            R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest",)"
            R"("spec":{"expirationSeconds":3600}})");
    EXPECT_EQ(token.status, 201) << token.body;
    return api::parseJson(token.body).find("status")->find("token")->text();
  }
  // A ClusterRole with `resources` of nodes (nodes are cluster-scoped: a Role cannot grant them)
  // bound to the ServiceAccount default/NAME.
  void grant(const std::string& sa, const std::string& resources) {
    Reply role = api(http::verb::post, "/apis/rbac.authorization.k8s.io/v1/clusterroles",
                     R"({"metadata":{"name":"kubelet-)" + sa +
                         R"("},"rules":[{"apiGroups":[""],)"
                         R"("resources":[)" +
                         resources + R"(],"verbs":["get","create"]}]})");
    ASSERT_EQ(role.status, 201) << role.body;
    Reply binding = api(http::verb::post, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                        R"({"metadata":{"name":"kubelet-)" + sa +
                            R"("},"roleRef":{"apiGroup":)"
                            R"("rbac.authorization.k8s.io","kind":"ClusterRole","name":"kubelet-)" +
                            sa + R"("},"subjects":[{"kind":"ServiceAccount","name":")" + sa +
                            R"(","namespace":"default"}]})");
    ASSERT_EQ(binding.status, 201) << binding.body;
  }
  Reply kubelet(http::verb method, const std::string& target, CallOptions o = {}) {
    o.ca_file = cluster_->pki().ca_cert;
    return testutil::httpCall(kubelet_->port(), method, target, o);
  }

  fs::path dir_;
  std::unique_ptr<KubeletApiCluster> cluster_;
  std::unique_ptr<KubeletServer> kubelet_;
};

TEST_F(KubeletAuthApiTest, TheApiserverProxiesWithItsClientCertificate) {
  Reply r = api(http::verb::get, "/api/v1/namespaces/default/pods/web/log");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "hello\n");
  // The same certificate straight at the kubelet: kube-apiserver-kubelet-client holds
  // system:kubelet-api-admin.
  const std::string cert = readFile(cluster_->pki().kubelet_client_cert);
  const std::string key = readFile(cluster_->pki().kubelet_client_key);
  Reply direct = kubelet(http::verb::get, "/containerLogs/default/web/app",
                         {.cert_pem = cert, .key_pem = key});
  EXPECT_EQ(direct.status, 200) << direct.body;
  EXPECT_EQ(direct.body, "hello\n");
  Reply missing = kubelet(http::verb::get, "/containerLogs/default/nope/app",
                          {.cert_pem = cert, .key_pem = key});
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("default/nope"), std::string::npos) << missing.body;
}

TEST_F(KubeletAuthApiTest, ServiceAccountTokensAreReviewedAndAuthorized) {
  const std::string reader = serviceAccountToken("reader");
  const std::string nobody = serviceAccountToken("nobody");
  grant("reader", R"("nodes/proxy")");
  Reply ok = kubelet(http::verb::get, "/containerLogs/default/web/app", {.token = reader});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.body, "hello\n");
  Reply denied = kubelet(http::verb::get, "/containerLogs/default/web/app", {.token = nobody});
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(denied.body,
            "Forbidden (user=system:serviceaccount:default:nobody, verb=get, resource=nodes, "
            "subresource(s)=[proxy])\n");
  // nodes/log only: /logs/ is authorized (and then not served), /containerLogs is nodes/proxy.
  const std::string logs_only = serviceAccountToken("logs-only");
  grant("logs-only", R"("nodes/log")");
  EXPECT_EQ(kubelet(http::verb::get, "/logs/", {.token = logs_only}).status, 404);
  EXPECT_EQ(kubelet(http::verb::get, "/containerLogs/default/web/app", {.token = logs_only}).status,
            403);
  // The admin (system:masters) may do anything.
  EXPECT_EQ(
      kubelet(http::verb::get, "/containerLogs/default/web/app", {.token = cluster_->adminToken()})
          .status,
      200);
}

TEST_F(KubeletAuthApiTest, NoOrBadCredentialsAre401AndHealthzIsOpen) {
  EXPECT_EQ(kubelet(http::verb::get, "/containerLogs/default/web/app").status, 401);
  Reply bad = kubelet(http::verb::get, "/containerLogs/default/web/app", {.token = "not-a-token"});
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(bad.body, "Unauthorized\n");
  Reply health = kubelet(http::verb::get, "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok");
}

TEST_F(KubeletAuthApiTest, ACertificateOfAnotherCaIsRefused) {
  const apiserver::CertKeyPem other = apiserver::generateCa("another-ca");
  const apiserver::CertKeyPem stranger =
      apiserver::issueClientCertificate(other, "kube-apiserver-kubelet-client", {});
  // Refused in the TLS handshake (TLS 1.3 may report it only at the first read), or else 401:
  // never served.
  int status = 0;
  try {
    status = kubelet(http::verb::get, "/containerLogs/default/web/app",
                     {.cert_pem = stranger.cert_pem, .key_pem = stranger.key_pem})
                 .status;
  } catch (const std::exception&) {
    status = -1;  // refused at TLS
  }
  EXPECT_TRUE(status == -1 || status == 401) << status;
  // A client certificate of the cluster CA for a user without RBAC: authenticated, then 403.
  const apiserver::CertKeyPem ca{readFile(cluster_->pki().ca_cert),
                                 readFile(cluster_->pki().ca_key)};
  const apiserver::CertKeyPem alice = apiserver::issueClientCertificate(ca, "alice", {"devs"});
  Reply r = kubelet(http::verb::post, "/exec/default/web/app?command=true&stdout=true",
                    {.cert_pem = alice.cert_pem, .key_pem = alice.key_pem});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body,
            "Forbidden (user=alice, verb=create, resource=nodes, subresource(s)=[proxy])\n");
}

TEST_F(KubeletAuthApiTest, APlainHttpKubeletReviewsTokens) {
  // Loopback HTTP (no client certificates possible): bearer tokens through TokenReview only.
  KubeletServer plain(cluster_->kubeletOptions((dir_ / "logs").string(), /*tls=*/false));
  plain.start();
  const auto call = [&](const std::string& token) {
    return testutil::httpCall(plain.port(), http::verb::get, "/containerLogs/default/web/app",
                              {.tls = false, .token = token});
  };
  EXPECT_EQ(call("").status, 401);
  Reply ok = call(cluster_->adminToken());
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.body, "hello\n");
}

}  // namespace
}  // namespace skiff::kubelet

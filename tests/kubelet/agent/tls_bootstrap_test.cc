// Kubelet TLS bootstrap end to end, on the real apiserver over HTTPS and the real controller
// manager (csrapproving, csrsigning with the cluster CA of DATA_DIR/pki):
//   - a bootstrap token (a Secret in kube-system) authenticates as system:bootstrap:<id>; an
//     expired one gets 401;
//   - the CertificateSigningRequest API: the requester recorded by the apiserver, approval only
//     through /approval, Approved and Denied exclusive, a denied CSR never signed;
//   - kubelet::ensureNodeKubeconfig with a bootstrap kubeconfig: a CSR auto-approved through
//     nodeclient and signed, a node kubeconfig whose requests the Node authorizer and
//     NodeRestriction treat as the node's; a kept certificate; a renewal through selfnodeclient.
#include "kubelet/agent/tls_bootstrap.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <thread>

#include "control/api/codec.h"
#include "control/api/json.h"
#include "control/api/time.h"
#include "control/apiserver/http_server.h"
#include "control/apiserver/pki.h"
#include "control/apiserver/server.h"
#include "control/certificates/x509.h"
#include "control/client/kubeconfig.h"
#include "control/client/rest_client.h"
#include "control/client/typed.h"
#include "control/controllers/controller_manager.h"
#include "kubelet/agent/serving_certificate.h"
#include "skiff/api/certificates_v1.pb.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/rbac_v1.pb.h"

namespace skiff::kubelet {
namespace {

using namespace std::chrono_literals;
using api::certificates::v1::CertificateSigningRequest;
namespace core = api::core::v1;

template <typename F>
int status(F&& call) {
  try {
    call();
    return 200;
  } catch (const client::ApiError& e) {
    return e.code();
  }
}

core::Secret bootstrapSecret(const std::string& id, const std::string& secret, int64_t expires_at) {
  core::Secret s;
  s.mutable_metadata()->set_name("bootstrap-token-" + id);
  s.mutable_metadata()->set_namespace_("kube-system");
  s.set_type("bootstrap.kubernetes.io/token");
  auto& d = *s.mutable_data();
  d["token-id"] = id;
  d["token-secret"] = secret;
  d["usage-bootstrap-authentication"] = "true";
  d["usage-bootstrap-signing"] = "true";
  d["expiration"] = api::formatRfc3339({.seconds = expires_at, .nanos = 0});
  d["auth-extra-groups"] = "system:bootstrappers:skiff:default-node-token";
  return s;
}

client::RawResponse put(client::Client& c, const std::string& path, const std::string& body) {
  return c.raw({.method = "PUT", .path = path, .body = body, .content_type = "application/json"});
}

class TlsBootstrapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-tls-bootstrap-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    server_ = std::make_unique<apiserver::ApiServer>(
        apiserver::ApiServerOptions{.data_dir = dir_.string(), .port = 0, .fsync = false});
    server_->start();
    admin_config_ = client::loadClientConfig({.kubeconfig = server_->adminKubeconfig()});
    admin_ = client::makeRestClient(admin_config_);
  }
  void TearDown() override {
    manager_.reset();
    if (server_) server_->stop();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  void startControllers() {
    controllers::ControllerManagerOptions options;
    options.controllers = {"csrapproving", "csrsigning"};
    options.cluster_signing_cert_file = (dir_ / "pki" / "ca.crt").string();
    options.cluster_signing_key_file = (dir_ / "pki" / "ca.key").string();
    options.record_events = false;
    manager_ = std::make_unique<controllers::ControllerManager>(*admin_, options);
    manager_->start();
  }
  // A client that presents nothing but `token`.
  client::ClientPtr tokenClient(const std::string& token) {
    client::ClientConfig c = admin_config_;
    c.client_cert_pem.clear();
    c.client_key_pem.clear();
    c.token = token;
    return client::makeRestClient(c, {.max_retries = 0});
  }
  std::string writeBootstrapKubeconfig(const std::string& token) {
    std::string path = (dir_ / "bootstrap.kubeconfig").string();
    client::writeKubeconfig(path, {.user_name = "tls-bootstrap-token-user",
                                   .server = admin_config_.server,
                                   .ca_pem = admin_config_.ca_pem,
                                   .token = token});
    return path;
  }

  std::filesystem::path dir_;
  std::unique_ptr<apiserver::ApiServer> server_;
  client::ClientConfig admin_config_;
  client::ClientPtr admin_;
  std::unique_ptr<controllers::ControllerManager> manager_;
};

TEST_F(TlsBootstrapTest, ABootstrapTokenGetsANodeCertificateThatTheNodeAuthorizerAccepts) {
  const int64_t now = api::now().seconds;
  client::create(*admin_, bootstrapSecret("abcdef", "0123456789abcdef", now + 3600));
  client::create(*admin_, bootstrapSecret("zzzzzz", "0123456789abcdef", now - 1));
  const std::string token = "abcdef.0123456789abcdef";
  auto bootstrap = tokenClient(token);

  // Who the token is.
  client::RawResponse who = bootstrap->raw(
      {.method = "POST",
       .path = "/apis/authentication.k8s.io/v1/selfsubjectreviews",
       .body = R"({"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"})",
       .content_type = "application/json"});
  ASSERT_EQ(who.status, 201) << who.body;
  EXPECT_NE(who.body.find(R"("username":"system:bootstrap:abcdef")"), std::string::npos);
  EXPECT_NE(who.body.find(R"("system:bootstrappers:skiff:default-node-token")"), std::string::npos);
  // Expired, or a wrong secret: 401. Nothing else for a bootstrap token: 403.
  EXPECT_EQ(status([&] {
              tokenClient("zzzzzz.0123456789abcdef")
                  ->get(client::resourceTypeOf<CertificateSigningRequest>(), "", "x");
            }),
            401);
  EXPECT_EQ(status([&] {
              tokenClient("abcdef.0123456789abcdee")
                  ->get(client::resourceTypeOf<CertificateSigningRequest>(), "", "x");
            }),
            401);
  EXPECT_EQ(status([&] { client::list<core::Secret>(*bootstrap, "kube-system"); }), 403);

  // A CSR before any controller runs: the requester is the token's user, whatever was sent.
  auto key = certificates::generateKeyAndRequest("system:node:denied", {"system:nodes"});
  CertificateSigningRequest csr;
  csr.mutable_metadata()->set_name("to-deny");
  csr.mutable_spec()->set_request(key.request_pem);
  csr.mutable_spec()->set_signer_name("kubernetes.io/kube-apiserver-client-kubelet");
  csr.mutable_spec()->add_usages("digital signature");
  csr.mutable_spec()->add_usages("client auth");
  csr.mutable_spec()->set_username("system:admin");
  auto created = client::create(*bootstrap, csr);
  EXPECT_EQ(created.spec().username(), "system:bootstrap:abcdef");
  ASSERT_GE(created.spec().groups_size(), 1);
  EXPECT_EQ(created.spec().groups(0), "system:bootstrappers");
  // The bootstrapper may not approve its own CSR.
  CertificateSigningRequest approve = created;
  auto* c = approve.mutable_status()->add_conditions();
  c->set_type("Approved");
  c->set_status("True");
  const std::string approval_path =
      "/apis/certificates.k8s.io/v1/certificatesigningrequests/to-deny/approval";
  EXPECT_EQ(put(*bootstrap, approval_path, api::encodeJson(approve)).status, 403);
  // Conditions written through the object or /status do not approve.
  approve.mutable_metadata()->clear_resource_version();
  client::update(*admin_, approve);
  client::updateStatus(*admin_, approve);
  auto stored = client::get<CertificateSigningRequest>(*admin_, "", "to-deny");
  EXPECT_EQ(stored.status().conditions_size(), 0);
  // Denied through /approval; then Approved is refused.
  CertificateSigningRequest deny = stored;
  c = deny.mutable_status()->add_conditions();
  c->set_type("Denied");
  c->set_status("True");
  c->set_reason("NotThisOne");
  auto answer = put(*admin_, approval_path, api::encodeJson(deny));
  ASSERT_EQ(answer.status, 200) << answer.body;
  auto denied = client::get<CertificateSigningRequest>(*admin_, "", "to-deny");
  ASSERT_EQ(denied.status().conditions_size(), 1);
  EXPECT_GT(denied.status().conditions(0).last_transition_time().seconds(), 0);
  CertificateSigningRequest both = denied;
  c = both.mutable_status()->add_conditions();
  c->set_type("Approved");
  c->set_status("True");
  answer = put(*admin_, approval_path, api::encodeJson(both));
  EXPECT_EQ(answer.status, 422) << answer.body;
  EXPECT_NE(answer.body.find("Approved and Denied conditions are mutually exclusive"),
            std::string::npos);

  startControllers();

  // The node bootstraps.
  const std::string kubeconfig = (dir_ / "node" / "kubelet.kubeconfig").string();
  TlsBootstrapOptions options{.bootstrap_kubeconfig = writeBootstrapKubeconfig(token),
                              .kubeconfig = kubeconfig,
                              .node_name = "n1",
                              .timeout = 20s,
                              .expiration_seconds = 3600};
  TlsBootstrapResult result = ensureNodeKubeconfig(options);
  EXPECT_EQ(result.action, TlsBootstrapResult::Action::kBootstrapped);
  EXPECT_EQ(result.certificate.subject_common_name, "system:node:n1");
  EXPECT_EQ(result.certificate.subject_organizations, std::vector<std::string>{"system:nodes"});
  EXPECT_EQ(result.certificate.usages, (std::set<std::string>{"digital signature", "client auth"}));
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(result.certificate.not_after -
                                                             result.certificate.not_before),
            3900s);
  EXPECT_EQ(std::filesystem::status(kubeconfig).permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);
  auto issued = client::get<CertificateSigningRequest>(*admin_, "", result.csr_name);
  ASSERT_GE(issued.status().conditions_size(), 1);
  EXPECT_EQ(issued.status().conditions(0).type(), "Approved");
  EXPECT_EQ(issued.status().conditions(0).reason(), "AutoApproved");
  EXPECT_EQ(issued.status().conditions(0).message(),
            "Auto approving kubelet client certificate after SubjectAccessReview.");
  client::ClientConfig node_config = client::loadClientConfig({.kubeconfig = kubeconfig});
  EXPECT_TRUE(certificates::signedBy(node_config.client_cert_pem, admin_config_.ca_pem));
  EXPECT_TRUE(node_config.token.empty());

  // The kubeconfig is the node's: its own Node may be made, another's not.
  auto node = client::makeRestClient(node_config, {.max_retries = 0});
  core::Node n1;
  n1.mutable_metadata()->set_name("n1");
  EXPECT_EQ(status([&] { client::create(*node, n1); }), 200);
  core::Node n2;
  n2.mutable_metadata()->set_name("n2");
  EXPECT_EQ(status([&] { client::create(*node, n2); }), 403);

  // The denied CSR was never signed.
  EXPECT_TRUE(client::get<CertificateSigningRequest>(*admin_, "", "to-deny")
                  .status()
                  .certificate()
                  .empty());

  // Valid and young: kept. Past 80% of its life: renewed by the node itself (selfnodeclient).
  options.bootstrap_kubeconfig.clear();
  EXPECT_EQ(ensureNodeKubeconfig(options).action, TlsBootstrapResult::Action::kKept);
  options.now = result.certificate.not_before +
                (result.certificate.not_after - result.certificate.not_before) * 9 / 10;
  TlsBootstrapResult renewed = ensureNodeKubeconfig(options);
  EXPECT_EQ(renewed.action, TlsBootstrapResult::Action::kRenewed);
  auto renewal = client::get<CertificateSigningRequest>(*admin_, "", renewed.csr_name);
  EXPECT_EQ(renewal.spec().username(), "system:node:n1");
  EXPECT_EQ(renewal.status().conditions(0).message(),
            "Auto approving self kubelet client certificate after SubjectAccessReview.");
  EXPECT_NE(client::loadClientConfig({.kubeconfig = kubeconfig}).client_cert_pem,
            node_config.client_cert_pem);

  // An expired certificate and no bootstrap kubeconfig: a clear error.
  options.now = renewed.certificate.not_after + 1h;
  try {
    ensureNodeKubeconfig(options);
    ADD_FAILURE() << "an expired certificate was kept";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("its client certificate expired, and there is no "
                                         "--bootstrap-kubeconfig"),
              std::string::npos)
        << e.what();
  }
}

// CertificateApproval admission: update on certificatesigningrequests/approval is not enough,
// the approver also needs `approve` on the CSR's signer (or its domain's "*").
TEST_F(TlsBootstrapTest, ApprovingNeedsApproveOnTheSigner) {
  client::create(*admin_, bootstrapSecret("abcdef", "0123456789abcdef", api::now().seconds + 600));
  auto bootstrap = tokenClient("abcdef.0123456789abcdef");
  CertificateSigningRequest csr;
  csr.mutable_metadata()->set_name("pending");
  csr.mutable_spec()->set_request(
      certificates::generateKeyAndRequest("system:node:n1", {"system:nodes"}).request_pem);
  csr.mutable_spec()->set_signer_name("kubernetes.io/kube-apiserver-client-kubelet");
  csr.mutable_spec()->add_usages("digital signature");
  csr.mutable_spec()->add_usages("client auth");
  client::create(*bootstrap, csr);

  // A ServiceAccount that may update approvals, and nothing about signers yet.
  auto json = [](const std::string& text) { return api::parseJson(text); };
  admin_->create(
      client::resourceTypeOf<core::ServiceAccount>(), "default",
      json(R"({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"approver"}})"));
  client::RawResponse issued = admin_->raw(
      {.method = "POST",
       .path = "/api/v1/namespaces/default/serviceaccounts/approver/token",
       .body = R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{}})",
       .content_type = "application/json"});
  ASSERT_EQ(issued.status, 201) << issued.body;
  std::string token = api::parseJson(issued.body).find("status")->find("token")->text();
  const auto& roles = client::resourceTypeOf<api::rbac::v1::ClusterRole>();
  admin_->create(roles, "",
                 json(R"({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole",
      "metadata":{"name":"csr-approver"},"rules":[
      {"apiGroups":["certificates.k8s.io"],"resources":["certificatesigningrequests"],"verbs":["get"]},
      {"apiGroups":["certificates.k8s.io"],"resources":["certificatesigningrequests/approval"],
       "verbs":["update"]}]})"));
  admin_->create(client::resourceTypeOf<api::rbac::v1::ClusterRoleBinding>(), "",
                 json(R"({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding",
      "metadata":{"name":"csr-approver"},
      "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"csr-approver"},
      "subjects":[{"kind":"ServiceAccount","name":"approver","namespace":"default"}]})"));
  auto approver = tokenClient(token);
  const std::string path =
      "/apis/certificates.k8s.io/v1/certificatesigningrequests/pending/approval";
  auto approve = [&] {
    auto current = client::get<CertificateSigningRequest>(*admin_, "", "pending");
    auto* c = current.mutable_status()->add_conditions();
    c->set_type("Approved");
    c->set_status("True");
    return put(*approver, path, api::encodeJson(current));
  };
  client::RawResponse refused;
  for (int i = 0; i < 200; ++i) {  // until the binding reaches the RBAC index
    refused = approve();
    if (refused.status != 403 || refused.body.find("signerName") != std::string::npos) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find(R"(user not permitted to approve requests with signerName )"
                              R"(\"kubernetes.io/kube-apiserver-client-kubelet\")"),
            std::string::npos)
      << refused.body;
  // approve on "kubernetes.io/*" is enough.
  admin_->create(roles, "",
                 json(R"({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole",
      "metadata":{"name":"kubernetes-signers"},"rules":[
      {"apiGroups":["certificates.k8s.io"],"resources":["signers"],"verbs":["approve"],
       "resourceNames":["kubernetes.io/*"]}]})"));
  admin_->create(client::resourceTypeOf<api::rbac::v1::ClusterRoleBinding>(), "",
                 json(R"({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding",
      "metadata":{"name":"kubernetes-signers"},
      "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"kubernetes-signers"},
      "subjects":[{"kind":"ServiceAccount","name":"approver","namespace":"default"}]})"));
  client::RawResponse accepted;
  for (int i = 0; i < 200; ++i) {
    accepted = approve();
    if (accepted.status == 200) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(accepted.status, 200) << accepted.body;
  EXPECT_EQ(
      client::get<CertificateSigningRequest>(*admin_, "", "pending").status().conditions(0).type(),
      "Approved");
}

TEST_F(TlsBootstrapTest, ADeniedRequestEndsTheWait) {
  client::create(*admin_, bootstrapSecret("abcdef", "0123456789abcdef", api::now().seconds + 600));
  auto bootstrap = tokenClient("abcdef.0123456789abcdef");
  // No approver runs: an administrator denies whatever comes.
  std::atomic<bool> done{false};
  std::thread denier([&] {
    while (!done) {
      for (auto& csr : client::list<CertificateSigningRequest>(*admin_, "")) {
        if (csr.status().conditions_size() > 0) continue;
        auto* c = csr.mutable_status()->add_conditions();
        c->set_type("Denied");
        c->set_status("True");
        c->set_reason("Nope");
        c->set_message("not today");
        put(*admin_,
            "/apis/certificates.k8s.io/v1/certificatesigningrequests/" + csr.metadata().name() +
                "/approval",
            api::encodeJson(csr));
      }
      std::this_thread::sleep_for(20ms);
    }
  });
  std::string name;
  std::string error;
  try {
    requestNodeClientCertificate(
        *bootstrap,
        certificates::generateKeyAndRequest("system:node:n1", {"system:nodes"}).request_pem,
        std::nullopt, 10s, &name);
  } catch (const std::runtime_error& e) {
    error = e.what();
  }
  done = true;
  denier.join();
  EXPECT_EQ(error, "certificate signing request " + name + " is denied (Nope): not today");
  EXPECT_TRUE(
      client::get<CertificateSigningRequest>(*admin_, "", name).status().certificate().empty());
}

}  // namespace
}  // namespace skiff::kubelet

namespace skiff::kubelet {
namespace {

// The kubelet's serving certificate (kubernetes.io/kubelet-serving): requested with the node's own
// credential, left pending by csrapproving (Kubernetes auto-approves no serving CSR), issued by
// csrsigning once an administrator approves it, with the node's names and addresses.
TEST_F(TlsBootstrapTest, AServingCertificateWaitsForAnAdministratorsApproval) {
  startControllers();
  const apiserver::NodeCertificate node = apiserver::ensureNodeCertificate(dir_.string(), "node-1");
  client::ClientConfig node_config = admin_config_;
  node_config.token.clear();
  node_config.client_cert_pem = node.pem.cert_pem;
  node_config.client_key_pem = node.pem.key_pem;
  client::ClientPtr node_client = client::makeRestClient(node_config);

  ServingCertificate got;
  std::string error;
  std::thread requester([&] {
    try {
      got = requestKubeletServingCertificate(*node_client,
                                             {.node_name = "node-1",
                                              .dns_names = {"node-1.example"},
                                              .ip_addresses = {"192.0.2.10", "127.0.0.1"},
                                              .timeout = 20s});
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  std::optional<CertificateSigningRequest> pending;
  for (int i = 0; i < 200 && !pending; ++i) {
    for (auto& csr : client::list<CertificateSigningRequest>(*admin_, "")) {
      if (csr.spec().signer_name() == "kubernetes.io/kubelet-serving") pending = csr;
    }
    if (!pending) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(pending.has_value());
  EXPECT_EQ(pending->spec().username(), "system:node:node-1");
  EXPECT_EQ(std::set<std::string>(pending->spec().usages().begin(), pending->spec().usages().end()),
            (std::set<std::string>{"digital signature", "server auth"}));
  // The approver has seen it (it approves client CSRs within milliseconds) and left it alone.
  std::this_thread::sleep_for(1s);
  const std::string name = pending->metadata().name();
  auto still = client::get<CertificateSigningRequest>(*admin_, "", name);
  EXPECT_EQ(still.status().conditions_size(), 0);
  EXPECT_TRUE(still.status().certificate().empty());

  // kubectl certificate approve NAME
  auto* c = still.mutable_status()->add_conditions();
  c->set_type("Approved");
  c->set_status("True");
  c->set_reason("KubectlApprove");
  auto answer =
      put(*admin_, "/apis/certificates.k8s.io/v1/certificatesigningrequests/" + name + "/approval",
          api::encodeJson(still));
  ASSERT_EQ(answer.status, 200) << answer.body;
  requester.join();
  ASSERT_EQ(error, "");
  EXPECT_EQ(got.csr_name, name);
  auto info = certificates::inspectCertificate(got.cert_pem);
  EXPECT_EQ(info.subject_common_name, "system:node:node-1");
  EXPECT_EQ(info.subject_organizations, (std::vector<std::string>{"system:nodes"}));
  EXPECT_EQ(info.dns_names, (std::vector<std::string>{"node-1.example"}));
  EXPECT_EQ(info.ip_addresses, (std::vector<std::string>{"192.0.2.10", "127.0.0.1"}));
  EXPECT_EQ(info.usages, (std::set<std::string>{"digital signature", "server auth"}));
  EXPECT_FALSE(info.is_ca);
  EXPECT_NE(got.key_pem.find("PRIVATE KEY"), std::string::npos);
}

TEST(ServingCertificateTest, NeedsANameAndSomethingToServe) {
  client::ClientConfig nowhere;
  nowhere.server = "https://127.0.0.1:1";
  client::ClientPtr c = client::makeRestClient(nowhere);
  EXPECT_THROW(requestKubeletServingCertificate(*c, {.node_name = "", .dns_names = {"a"}}),
               std::runtime_error);
  EXPECT_THROW(requestKubeletServingCertificate(*c, {.node_name = "node-1"}), std::runtime_error);
}

}  // namespace
}  // namespace skiff::kubelet

namespace skiff::kubelet {
namespace {

// The leaf certificate (PEM) a TLS server on 127.0.0.1:port presents, as openssl s_client sees it.
std::string presentedCertificate(uint16_t port) {
  const std::string cmd = "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                          " </dev/null 2>/dev/null | openssl x509 2>/dev/null";
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0)
      out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

std::string firstPem(const std::string& pem) {
  const std::string end = "-----END CERTIFICATE-----\n";
  auto at = pem.find(end);
  return at == std::string::npos ? pem : pem.substr(0, at + end.size());
}

// The switch the kubelet makes when its serving certificate is issued: new connections get the
// new pair, without a restart; a pair whose key does not match is refused and the old one stays.
TEST_F(TlsBootstrapTest, AServerTakesANewServingCertificateWithoutARestart) {
  const auto first = apiserver::issueKubeletServingCertificate(dir_.string(), "node-1", {});
  apiserver::HttpServer server({.bind_address = "127.0.0.1",
                                .port = 0,
                                .cert_file = first.cert_file,
                                .key_file = first.key_file},
                               [](const apiserver::HttpRequest&, apiserver::HttpResponse& response,
                                  const auto&) { response.status = 200; });
  server.start();
  const std::string before = presentedCertificate(server.port());
  ASSERT_FALSE(before.empty()) << "openssl s_client could not connect";
  EXPECT_EQ(before, firstPem(first.pem.cert_pem));

  const auto second = apiserver::issueKubeletServingCertificate(dir_.string(), "node-1", {});
  ASSERT_NE(firstPem(second.pem.cert_pem), firstPem(first.pem.cert_pem));
  EXPECT_THROW(server.setCertificate(second.pem.cert_pem, first.pem.key_pem), std::runtime_error);
  EXPECT_EQ(presentedCertificate(server.port()), before);
  server.setCertificate(second.pem.cert_pem, second.pem.key_pem);
  EXPECT_EQ(presentedCertificate(server.port()), firstPem(second.pem.cert_pem));
  server.stop();
}

}  // namespace
}  // namespace skiff::kubelet

namespace skiff::kubelet {
namespace {

// The manager: serves what it has, asks for a serving certificate, hands the approved one over and
// keeps it; a manager started again on the same directory uses the kept one and asks nothing.
TEST_F(TlsBootstrapTest, TheServingCertificateManagerHandsOverTheApprovedCertificateAndKeepsIt) {
  startControllers();
  const apiserver::NodeCertificate node = apiserver::ensureNodeCertificate(dir_.string(), "node-1");
  client::ClientConfig node_config = admin_config_;
  node_config.token.clear();
  node_config.client_cert_pem = node.pem.cert_pem;
  node_config.client_key_pem = node.pem.key_pem;
  client::ClientPtr node_client = client::makeRestClient(node_config);

  std::mutex mu;
  std::vector<std::string> handed;
  ServingCertificateManagerOptions options;
  options.node_name = "node-1";
  options.cert_dir = (dir_ / "node-pki").string();
  options.dns_names = [] { return std::vector<std::string>{"node-1"}; };
  options.ip_addresses = [] { return std::vector<std::string>{"192.0.2.10"}; };
  options.on_certificate = [&](const std::string& cert, const std::string& key) {
    ASSERT_NE(key.find("PRIVATE KEY"), std::string::npos);
    std::lock_guard lock(mu);
    handed.push_back(cert);
  };
  auto serving_csrs = [&] {
    std::vector<CertificateSigningRequest> out;
    for (auto& csr : client::list<CertificateSigningRequest>(*admin_, ""))
      if (csr.spec().signer_name() == "kubernetes.io/kubelet-serving") out.push_back(csr);
    return out;
  };
  {
    ServingCertificateManager manager(*node_client, options);
    manager.start();
    std::vector<CertificateSigningRequest> csrs;
    for (int i = 0; i < 200 && csrs.empty(); ++i) {
      csrs = serving_csrs();
      if (csrs.empty()) std::this_thread::sleep_for(20ms);
    }
    ASSERT_EQ(csrs.size(), 1u);
    std::this_thread::sleep_for(500ms);
    {
      std::lock_guard lock(mu);
      EXPECT_TRUE(handed.empty());  // nothing until approved
    }
    CertificateSigningRequest csr = csrs[0];
    auto* c = csr.mutable_status()->add_conditions();
    c->set_type("Approved");
    c->set_status("True");
    c->set_reason("KubectlApprove");
    ASSERT_EQ(put(*admin_,
                  "/apis/certificates.k8s.io/v1/certificatesigningrequests/" +
                      csr.metadata().name() + "/approval",
                  api::encodeJson(csr))
                  .status,
              200);
    for (int i = 0; i < 500 && manager.issued() == 0; ++i)
      std::this_thread::sleep_for(20ms);
    EXPECT_EQ(manager.issued(), 1u);
    manager.stop();
    std::lock_guard lock(mu);
    ASSERT_EQ(handed.size(), 1u);
    auto info = certificates::inspectCertificate(handed[0]);
    EXPECT_EQ(info.subject_common_name, "system:node:node-1");
    EXPECT_EQ(info.ip_addresses, (std::vector<std::string>{"192.0.2.10"}));
    EXPECT_EQ(
        std::filesystem::status(manager.currentFile()).permissions() & std::filesystem::perms::all,
        std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  {
    ServingCertificateManager again(*node_client, options);
    again.start();  // hands over the kept certificate at once
    std::this_thread::sleep_for(300ms);
    again.stop();
    EXPECT_EQ(again.issued(), 0u);
    std::lock_guard lock(mu);
    ASSERT_EQ(handed.size(), 2u);
    EXPECT_EQ(handed[1], handed[0]);
  }
  EXPECT_EQ(serving_csrs().size(), 1u);
}

}  // namespace
}  // namespace skiff::kubelet

namespace skiff::kubelet {
namespace {

// The kubelet API's self-signed pair (no --kubelet-cert-file, no rotation): made once in CERT_DIR
// as the kubelet's kubelet.crt/kubelet.key, kept across restarts, made anew when unusable.
class SelfSignedServingTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // The PEM blocks of `pem` of type CERTIFICATE.
  static std::vector<std::string> certificatesOf(const std::string& pem) {
    std::vector<std::string> out;
    const std::string begin = "-----BEGIN CERTIFICATE-----";
    const std::string end = "-----END CERTIFICATE-----\n";
    for (size_t at = pem.find(begin); at != std::string::npos; at = pem.find(begin, at + 1)) {
      const size_t stop = pem.find(end, at);
      if (stop == std::string::npos) break;
      out.push_back(pem.substr(at, stop + end.size() - at));
    }
    return out;
  }

  const std::filesystem::path dir_ =
      std::filesystem::temp_directory_path() /
      ("skiff-self-signed-" + std::to_string(::getpid()) + "-" +
       ::testing::UnitTest::GetInstance()->current_test_info()->name());
};

TEST_F(SelfSignedServingTest, MadeOnceAsTheKubeletsAndKeptAcrossRestarts) {
  const auto now = std::chrono::system_clock::now();
  const std::string stamp = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  const std::string cert_dir = (dir_ / "pki").string();
  const auto made = ensureSelfSignedServingCertificate(
      cert_dir, "node-a", {"node-a", "node-a.example"}, {"192.0.2.7"}, now);
  EXPECT_TRUE(made.generated);
  EXPECT_EQ(made.cert_file, cert_dir + "/kubelet.crt");
  EXPECT_EQ(made.key_file, cert_dir + "/kubelet.key");
  EXPECT_EQ(std::filesystem::status(made.key_file).permissions() & std::filesystem::perms::all,
            std::filesystem::perms(0600));
  EXPECT_EQ(std::filesystem::status(made.cert_file).permissions() & std::filesystem::perms::all,
            std::filesystem::perms(0644));
  const std::string pem = read(made.cert_file);
  const auto blocks = certificatesOf(pem);
  ASSERT_EQ(blocks.size(), 2u);  // the serving certificate, then its CA
  const auto leaf = certificates::inspectCertificate(blocks[0]);
  EXPECT_EQ(leaf.subject_common_name, "node-a@" + stamp);
  EXPECT_EQ(leaf.issuer_common_name, "node-a-ca@" + stamp);
  EXPECT_EQ(leaf.dns_names, (std::vector<std::string>{"node-a", "node-a.example"}));
  EXPECT_EQ(leaf.ip_addresses, (std::vector<std::string>{"192.0.2.7"}));
  EXPECT_TRUE(leaf.usages.contains("server auth"));
  EXPECT_FALSE(leaf.usages.contains("client auth"));
  EXPECT_FALSE(leaf.is_ca);
  const auto from = std::chrono::duration_cast<std::chrono::seconds>(
      (now - std::chrono::hours(1)).time_since_epoch());
  EXPECT_LE(std::chrono::abs(std::chrono::duration_cast<std::chrono::seconds>(
                                 leaf.not_before.time_since_epoch()) -
                             from),
            1s);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(leaf.not_after - leaf.not_before),
            std::chrono::seconds(365 * 24 * 3600));
  const auto ca = certificates::inspectCertificate(blocks[1]);
  EXPECT_TRUE(ca.is_ca);
  EXPECT_EQ(ca.subject_common_name, "node-a-ca@" + stamp);
  EXPECT_TRUE(certificates::signedBy(blocks[0], blocks[1]));
  EXPECT_NE(read(made.key_file).find("PRIVATE KEY"), std::string::npos);

  // A restart: the same pair, even with another name and address (as the kubelet).
  const auto kept = ensureSelfSignedServingCertificate(cert_dir, "node-b", {}, {"192.0.2.8"});
  EXPECT_FALSE(kept.generated);
  EXPECT_EQ(read(kept.cert_file), pem);

  // It serves: a TLS server on the pair presents the leaf.
  apiserver::HttpServer server({.bind_address = "127.0.0.1",
                                .port = 0,
                                .cert_file = made.cert_file,
                                .key_file = made.key_file},
                               [](const apiserver::HttpRequest&, apiserver::HttpResponse& response,
                                  const auto&) { response.status = 200; });
  server.start();
  EXPECT_EQ(presentedCertificate(server.port()), blocks[0]);
  server.stop();
}

TEST_F(SelfSignedServingTest, AnAddressForAHostIsAnIpSan) {
  const auto made = ensureSelfSignedServingCertificate(dir_.string(), "192.0.2.9");
  const auto leaf = certificates::inspectCertificate(read(made.cert_file));
  EXPECT_TRUE(leaf.dns_names.empty());
  EXPECT_EQ(leaf.ip_addresses, (std::vector<std::string>{"192.0.2.9"}));
}

TEST_F(SelfSignedServingTest, AnExpiredBrokenOrMismatchedPairIsMadeAnew) {
  const std::string cert_dir = dir_.string();
  const auto now = std::chrono::system_clock::now();
  const auto first = ensureSelfSignedServingCertificate(cert_dir, "node-a", {}, {}, now);
  const std::string first_pem = read(first.cert_file);
  // A year and a day later it has expired.
  const auto later = now + std::chrono::hours(24 * 366);
  const auto renewed = ensureSelfSignedServingCertificate(cert_dir, "node-a", {}, {}, later);
  EXPECT_TRUE(renewed.generated);
  const std::string renewed_pem = read(renewed.cert_file);
  EXPECT_NE(renewed_pem, first_pem);
  EXPECT_GT(certificates::inspectCertificate(renewed_pem).not_after, later);

  // A key of another pair: made anew.
  const auto other = ensureSelfSignedServingCertificate((dir_ / "other").string(), "node-a");
  std::filesystem::copy_file(other.key_file, renewed.key_file,
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_TRUE(ensureSelfSignedServingCertificate(cert_dir, "node-a").generated);
  EXPECT_FALSE(ensureSelfSignedServingCertificate(cert_dir, "node-a").generated);

  // A certificate file that is not one, or a missing key: made anew.
  std::ofstream(renewed.cert_file, std::ios::trunc) << "not a certificate\n";
  EXPECT_TRUE(ensureSelfSignedServingCertificate(cert_dir, "node-a").generated);
  std::filesystem::remove(renewed.key_file);
  EXPECT_TRUE(ensureSelfSignedServingCertificate(cert_dir, "node-a").generated);
  EXPECT_FALSE(ensureSelfSignedServingCertificate(cert_dir, "node-a").generated);
  EXPECT_THROW(ensureSelfSignedServingCertificate((dir_ / "none").string(), ""),
               std::runtime_error);
}

}  // namespace
}  // namespace skiff::kubelet

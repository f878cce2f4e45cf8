#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "control/apiserver/auth/chain.h"
#include "control/apiserver/auth/service_account_authenticator.h"
#include "control/apiserver/auth/token_authenticator.h"
#include "control/apiserver/auth/x509_authenticator.h"
#include "control/apiserver/pki.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver::auth {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Outcome = AuthResult::Outcome;

int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class AuthenticatorsTest : public ::testing::Test {
 protected:
  AuthenticatorsTest()
      : ca_(generateCa("test-ca")),
        tokens_(std::make_shared<ServiceAccountTokens>(
            generateSigningKeyPem(), std::string(kDefaultIssuer), std::vector<std::string>{})) {
    TokenFile file = TokenFile::parse(
        "admintoken,admin,admin-uid,\"system:masters\"\nnodetoken,system:node:n1,n1,"
        "\"system:nodes\"\n");
    chain_.add(std::make_unique<X509Authenticator>(ca_.cert_pem));
    chain_.add(std::make_unique<TokenFileAuthenticator>(std::move(file)));
    chain_.add(std::make_unique<ServiceAccountAuthenticator>(
        tokens_,
        [this](std::string_view ns, std::string_view name) { return find(sas_, ns, name); },
        [this](std::string_view ns, std::string_view name) { return find(pods_, ns, name); }));
    addServiceAccount("y", "builder", "sa-uid");
  }

  static ObjectPtr find(const std::map<std::string, ObjectPtr>& objects, std::string_view ns,
                        std::string_view name) {
    auto it = objects.find(std::string(ns) + "/" + std::string(name));
    return it == objects.end() ? nullptr : it->second;
  }
  void addServiceAccount(const std::string& ns, const std::string& name, const std::string& uid) {
    auto sa = std::make_shared<api::core::v1::ServiceAccount>();
    sa->mutable_metadata()->set_name(name);
    sa->mutable_metadata()->set_namespace_(ns);
    sa->mutable_metadata()->set_uid(uid);
    sas_[ns + "/" + name] = sa;
  }
  void addPod(const std::string& ns, const std::string& name, const std::string& uid) {
    auto pod = std::make_shared<api::core::v1::Pod>();
    pod->mutable_metadata()->set_name(name);
    pod->mutable_metadata()->set_namespace_(ns);
    pod->mutable_metadata()->set_uid(uid);
    pods_[ns + "/" + name] = pod;
  }
  std::string saToken(std::string pod = "", std::string pod_uid = "") {
    ServiceAccountClaims c;
    c.ns = "y";
    c.name = "builder";
    c.uid = "sa-uid";
    c.pod_name = std::move(pod);
    c.pod_uid = std::move(pod_uid);
    c.issued_at = nowSeconds();
    c.expires_at = c.issued_at + 600;
    return tokens_->issue(c);
  }
  AuthResult bearer(const std::string& token) { return chain_.authenticate({token, {}}); }

  CertKeyPem ca_;
  std::shared_ptr<ServiceAccountTokens> tokens_;
  std::map<std::string, ObjectPtr> sas_, pods_;
  AuthenticatorChain chain_;
};

TEST_F(AuthenticatorsTest, StaticTokens) {
  AuthResult r = bearer("admintoken");
  ASSERT_EQ(r.outcome, Outcome::kAuthenticated);
  EXPECT_EQ(r.user.name, "admin");
  EXPECT_THAT(r.user.groups, ElementsAre("system:masters", "system:authenticated"));
  EXPECT_EQ(bearer("nodetoken").user.name, "system:node:n1");
  r = bearer("wrongtoken");
  EXPECT_EQ(r.outcome, Outcome::kRejected);
  EXPECT_EQ(chain_.authenticate({}).outcome, Outcome::kNotMine);  // no credentials at all
}

TEST_F(AuthenticatorsTest, ClientCertificates) {
  CertKeyPem alice = issueClientCertificate(ca_, "alice", {"dev", "ops"});
  AuthResult r = chain_.authenticate({{}, alice.cert_pem});
  ASSERT_EQ(r.outcome, Outcome::kAuthenticated) << r.reason;
  EXPECT_EQ(r.user.name, "alice");
  EXPECT_THAT(r.user.groups, ElementsAre("dev", "ops", "system:authenticated"));
  // Asked again: the cached answer.
  EXPECT_EQ(chain_.authenticate({{}, alice.cert_pem}).user.name, "alice");
  // Another CA's certificate, and a serving certificate of ours, do not authenticate.
  CertKeyPem other_ca = generateCa("other");
  r = chain_.authenticate({{}, issueClientCertificate(other_ca, "mallory", {}).cert_pem});
  EXPECT_EQ(r.outcome, Outcome::kRejected);
  CertKeyPem server = issueServingCertificate(ca_, "srv", {.dns_names = {"x"}});
  r = chain_.authenticate({{}, server.cert_pem});
  EXPECT_EQ(r.outcome, Outcome::kRejected);
}

TEST_F(AuthenticatorsTest, ServiceAccountTokens) {
  AuthResult r = bearer(saToken());
  ASSERT_EQ(r.outcome, Outcome::kAuthenticated) << r.reason;
  EXPECT_EQ(r.user.name, "system:serviceaccount:y:builder");
  EXPECT_EQ(r.user.uid, "sa-uid");
  EXPECT_THAT(r.user.groups, ElementsAre("system:serviceaccounts", "system:serviceaccounts:y",
                                         "system:authenticated"));
}

TEST_F(AuthenticatorsTest, ServiceAccountTokenOfADeletedOrRecreatedAccount) {
  std::string token = saToken();
  sas_.clear();
  AuthResult r = bearer(token);
  EXPECT_EQ(r.outcome, Outcome::kRejected);
  EXPECT_THAT(r.reason, HasSubstr("not found"));
  addServiceAccount("y", "builder", "another-uid");
  r = bearer(token);
  EXPECT_EQ(r.outcome, Outcome::kRejected);
  EXPECT_THAT(r.reason, HasSubstr("recreated"));
}

TEST_F(AuthenticatorsTest, PodBoundTokenLivesWithItsPod) {
  addPod("y", "web-1", "pod-uid");
  std::string token = saToken("web-1", "pod-uid");
  EXPECT_EQ(bearer(token).outcome, Outcome::kAuthenticated);
  addPod("y", "web-1", "new-pod-uid");
  EXPECT_EQ(bearer(token).outcome, Outcome::kRejected);
  pods_.clear();
  AuthResult r = bearer(token);
  EXPECT_EQ(r.outcome, Outcome::kRejected);
  EXPECT_THAT(r.reason, HasSubstr("no longer exists"));
}

TEST_F(AuthenticatorsTest, ForgedAndExpiredJwts) {
  ServiceAccountTokens forger(generateSigningKeyPem(), std::string(kDefaultIssuer), {});
  ServiceAccountClaims c;
  c.ns = "y";
  c.name = "builder";
  c.uid = "sa-uid";
  c.issued_at = nowSeconds();
  c.expires_at = c.issued_at + 600;
  AuthResult r = bearer(forger.issue(c));
  EXPECT_EQ(r.outcome, Outcome::kRejected);
  EXPECT_THAT(r.reason, HasSubstr("service account token"));
  c.issued_at -= 7200;
  c.expires_at = nowSeconds() - 1;
  r = bearer(tokens_->issue(c));
  EXPECT_EQ(r.outcome, Outcome::kRejected);
  EXPECT_THAT(r.reason, HasSubstr("expired"));
}

}  // namespace
}  // namespace skiff::apiserver::auth

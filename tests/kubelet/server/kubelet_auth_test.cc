// The kubelet API's request -> SubjectAccessReview attributes (the kubelet's auth.go table), and
// KubeletAuth's decisions and caches with a reviewer that counts what it is asked and a clock the
// test moves. The real TokenReview/SubjectAccessReview against an apiserver is in
// kubelet_auth_api_test.cc.
#include "kubelet/server/kubelet_auth.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "control/apiserver/pki.h"

namespace skiff::kubelet {
namespace {

using Clock = std::chrono::steady_clock;

TEST(NodeRequestAttributesTest, TheKubeletsTable) {
  struct Case {
    const char* method;
    const char* path;
    NodeRequestAttributes want;
  };
  const Case cases[] = {
      {"GET", "/containerLogs/default/web/app", {"get", "proxy"}},
      // exec over WebSocket is a GET upgrade: verb get, as the kubelet maps it.
      {"GET", "/exec/default/web/app", {"get", "proxy"}},
      {"POST", "/exec/default/web/app", {"create", "proxy"}},
      {"POST", "/run/default/web/app", {"create", "proxy"}},
      {"POST", "/attach/default/web/app", {"create", "proxy"}},
      {"POST", "/portForward/default/web", {"create", "proxy"}},
      {"GET", "/pods", {"get", "proxy"}},
      {"GET", "/runningpods/", {"get", "proxy"}},
      {"GET", "/healthz", {"get", "proxy"}},
      {"GET", "/spec/", {"get", "proxy"}},  // no longer a subresource of its own
      {"GET", "/stats", {"get", "stats"}},
      {"GET", "/stats/", {"get", "stats"}},
      {"GET", "/stats/summary", {"get", "stats"}},
      {"GET", "/statsx", {"get", "proxy"}},  // a sub-path, not a prefix
      {"GET", "/metrics", {"get", "metrics"}},
      {"GET", "/metrics/cadvisor", {"get", "metrics"}},
      {"GET", "/logs", {"get", "log"}},
      {"GET", "/logs/", {"get", "log"}},
      {"GET", "/logs/messages", {"get", "log"}},
      {"GET", "/logsx", {"get", "proxy"}},
      {"POST", "/checkpoint/default/web/app", {"create", "checkpoint"}},
      {"PUT", "/pods", {"update", "proxy"}},
      {"PATCH", "/pods", {"patch", "proxy"}},
      {"DELETE", "/pods", {"delete", "proxy"}},
      {"OPTIONS", "/pods", {"", "proxy"}},
      {"HEAD", "/stats", {"", "stats"}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(nodeRequestAttributes(c.method, c.path), c.want) << c.method << " " << c.path;
  }
  EXPECT_EQ(kubeletForbiddenMessage({"jane", "", {"devs"}}, {"get", "proxy"}),
            "Forbidden (user=jane, verb=get, resource=nodes, subresource(s)=[proxy])");
}

// Answers from tables, counting the questions; `fail` makes every call throw (no apiserver).
class CountingReviewer : public AuthReviewer {
 public:
  TokenReview reviewToken(const std::string& token) override {
    ++token_calls;
    if (fail) throw std::runtime_error("connection refused");
    auto it = users.find(token);
    if (it == users.end()) return {false, {}, "token not valid"};
    return {true, it->second, ""};
  }
  AccessReview reviewAccess(const KubeletUser& user, const std::string& node,
                            const NodeRequestAttributes& attributes) override {
    ++access_calls;
    last_node = node;
    if (fail) throw std::runtime_error("connection refused");
    const bool yes =
        allowed.count(user.name + " " + attributes.verb + " " + attributes.subresource) > 0;
    return {yes, yes ? "" : "no RBAC policy matched"};
  }

  std::map<std::string, KubeletUser> users;
  std::set<std::string> allowed;  // "user verb subresource"
  bool fail = false;
  int token_calls = 0;
  int access_calls = 0;
  std::string last_node;
};

class KubeletAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reviewer_ = std::make_shared<CountingReviewer>();
    reviewer_->users["jane-token"] = {"jane", "u-1", {"devs", "system:authenticated"}};
    reviewer_->users["bob-token"] = {"bob", "u-2", {"system:authenticated"}};
    reviewer_->allowed = {"jane get proxy", "jane get log"};
    auth_ = make({});
  }
  std::unique_ptr<KubeletAuth> make(std::string ca_pem) {
    return std::make_unique<KubeletAuth>(KubeletAuthOptions{.node_name = "n1",
                                                            .client_ca_pem = std::move(ca_pem),
                                                            .clock = [this] { return now_; }},
                                         reviewer_);
  }
  KubeletAuth::Result check(const std::string& method, const std::string& path,
                            const std::string& token, const std::string& cert = "") {
    apiserver::HttpRequest request;
    request.method = method;
    request.path = path;
    if (!token.empty()) request.headers.emplace_back("authorization", "Bearer " + token);
    request.client_certificate = cert;
    return auth_->check(request);
  }

  Clock::time_point now_ = Clock::time_point() + std::chrono::hours(1);
  std::shared_ptr<CountingReviewer> reviewer_;
  std::unique_ptr<KubeletAuth> auth_;
};

TEST_F(KubeletAuthTest, NoCredentialsIs401WithoutAskingAnyone) {
  auto r = check("GET", "/containerLogs/default/web/app", "");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.message, "Unauthorized");
  apiserver::HttpRequest basic;
  basic.method = "GET";
  basic.path = "/pods";
  basic.headers.emplace_back("authorization", "Basic amFuZTpwdw==");
  EXPECT_EQ(auth_->check(basic).status, 401);
  EXPECT_EQ(reviewer_->token_calls + reviewer_->access_calls, 0);
}

TEST_F(KubeletAuthTest, AllowedDeniedAndTheMessage) {
  auto ok = check("GET", "/containerLogs/default/web/app", "jane-token");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.user.name, "jane");
  EXPECT_EQ(reviewer_->last_node, "n1");
  auto denied = check("POST", "/exec/default/web/app", "jane-token");
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(denied.message,
            "Forbidden (user=jane, verb=create, resource=nodes, subresource(s)=[proxy])");
  EXPECT_EQ(check("GET", "/logs/", "jane-token").status, 200);
  EXPECT_EQ(check("GET", "/stats/summary", "jane-token").status, 403);
  EXPECT_EQ(check("GET", "/pods", "bob-token").status, 403);
  EXPECT_EQ(check("GET", "/pods", "nobody-token").status, 401);
}

TEST_F(KubeletAuthTest, TokenReviewsAreCachedTwoMinutesAndFailuresThirtySeconds) {
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(check("GET", "/pods", "jane-token").status, 200);
  EXPECT_EQ(reviewer_->token_calls, 1);
  EXPECT_EQ(auth_->tokenReviews(), 1u);
  now_ += std::chrono::seconds(119);
  EXPECT_EQ(check("GET", "/pods", "jane-token").status, 200);
  EXPECT_EQ(reviewer_->token_calls, 1);
  now_ += std::chrono::seconds(2);  // 121 s: expired
  EXPECT_EQ(check("GET", "/pods", "jane-token").status, 200);
  EXPECT_EQ(reviewer_->token_calls, 2);

  // An unknown token: 401, remembered 30 s, then asked again (it may have become valid).
  EXPECT_EQ(check("GET", "/pods", "late-token").status, 401);
  EXPECT_EQ(check("GET", "/pods", "late-token").status, 401);
  EXPECT_EQ(reviewer_->token_calls, 3);
  reviewer_->users["late-token"] = {"jane", "u-1", {"devs"}};
  now_ += std::chrono::seconds(29);
  EXPECT_EQ(check("GET", "/pods", "late-token").status, 401);
  EXPECT_EQ(reviewer_->token_calls, 3);
  now_ += std::chrono::seconds(2);
  EXPECT_EQ(check("GET", "/pods", "late-token").status, 200);
  EXPECT_EQ(reviewer_->token_calls, 4);
}

TEST_F(KubeletAuthTest, AccessReviewsAreCachedFiveMinutesAndDenialsThirtySeconds) {
  EXPECT_EQ(check("GET", "/pods", "jane-token").status, 200);
  EXPECT_EQ(check("GET", "/containerLogs/default/web/app", "jane-token").status, 200);
  EXPECT_EQ(reviewer_->access_calls, 1);  // both are get nodes/proxy
  EXPECT_EQ(check("GET", "/logs/", "jane-token").status, 200);
  EXPECT_EQ(reviewer_->access_calls, 2);  // get nodes/log is another question
  // Revoked at the apiserver: still allowed until the 5 minutes are over.
  reviewer_->allowed.erase("jane get proxy");
  now_ += std::chrono::seconds(299);
  EXPECT_EQ(check("GET", "/pods", "jane-token").status, 200);
  EXPECT_EQ(reviewer_->access_calls, 2);
  now_ += std::chrono::seconds(2);
  // The token's 2 minutes are over too: both are asked again.
  EXPECT_EQ(check("GET", "/pods", "jane-token").status, 403);
  EXPECT_EQ(reviewer_->access_calls, 3);
  // A denial is remembered 30 s.
  reviewer_->allowed.insert("jane get proxy");
  now_ += std::chrono::seconds(29);
  EXPECT_EQ(check("GET", "/pods", "jane-token").status, 403);
  EXPECT_EQ(reviewer_->access_calls, 3);
  now_ += std::chrono::seconds(2);
  EXPECT_EQ(check("GET", "/pods", "jane-token").status, 200);
  EXPECT_EQ(reviewer_->access_calls, 4);
  EXPECT_EQ(auth_->accessReviews(), 4u);
  // Another user with the same question is asked about separately.
  EXPECT_EQ(check("GET", "/pods", "bob-token").status, 403);
  EXPECT_EQ(reviewer_->access_calls, 5);
}

TEST_F(KubeletAuthTest, AnApiserverThatDoesNotAnswerIsNotCached) {
  reviewer_->fail = true;
  EXPECT_EQ(check("GET", "/pods", "jane-token").status, 401);
  EXPECT_EQ(check("GET", "/pods", "jane-token").status, 401);
  EXPECT_EQ(reviewer_->token_calls, 2);
  reviewer_->fail = false;
  EXPECT_EQ(check("GET", "/pods", "jane-token").status, 200);
  // Authorization that cannot be asked: 500, the kubelet's "Authorization error".
  reviewer_->fail = true;
  auto r = check("POST", "/exec/default/web/app", "jane-token");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.message,
            "Authorization error (user=jane, verb=create, resource=nodes, subresource(s)=[proxy])");
  const int calls = reviewer_->access_calls;
  reviewer_->fail = false;
  EXPECT_EQ(check("POST", "/exec/default/web/app", "jane-token").status, 403);
  EXPECT_EQ(reviewer_->access_calls, calls + 1);
}

TEST_F(KubeletAuthTest, ClientCertificatesOfTheBundleAuthenticateWithoutATokenReview) {
  const apiserver::CertKeyPem ca1 = apiserver::generateCa("ca-one");
  const apiserver::CertKeyPem ca2 = apiserver::generateCa("ca-two");
  const apiserver::CertKeyPem other = apiserver::generateCa("not-trusted");
  auth_ = make(ca1.cert_pem + ca2.cert_pem);
  reviewer_->allowed.insert("kube-apiserver-kubelet-client get proxy");
  const auto client = apiserver::issueClientCertificate(ca2, "kube-apiserver-kubelet-client", {});
  auto r = check("GET", "/containerLogs/default/web/app", "", client.cert_pem);
  EXPECT_EQ(r.status, 200) << r.message;
  EXPECT_EQ(r.user.name, "kube-apiserver-kubelet-client");
  EXPECT_EQ(reviewer_->token_calls, 0);
  // CN the user, O the groups.
  const auto jane = apiserver::issueClientCertificate(ca1, "jane", {"devs", "ops"});
  r = check("POST", "/exec/default/web/app", "", jane.cert_pem);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.user.groups, (std::vector<std::string>{"devs", "ops"}));
  // A serving certificate (no clientAuth) or one of another CA authenticates nobody; a token next
  // to it still may.
  const auto serving = apiserver::issueServingCertificate(ca1, "n1", {{"n1"}, {"127.0.0.1"}});
  EXPECT_EQ(check("GET", "/pods", "", serving.cert_pem).status, 401);
  const auto stranger = apiserver::issueClientCertificate(other, "jane", {});
  EXPECT_EQ(check("GET", "/pods", "", stranger.cert_pem).status, 401);
  EXPECT_EQ(check("GET", "/pods", "jane-token", stranger.cert_pem).status, 200);
  EXPECT_THROW(make("not a certificate"), std::runtime_error);
  EXPECT_THROW(KubeletAuth(KubeletAuthOptions{}, nullptr), std::runtime_error);
}

}  // namespace
}  // namespace skiff::kubelet

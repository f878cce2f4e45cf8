// The bootstrap token authenticator (Kubernetes' plugin/pkg/auth/authenticator/token/bootstrap):
// which tokens and Secrets authenticate, and as whom.
#include "control/apiserver/auth/bootstrap_token_authenticator.h"

#include <gtest/gtest.h>

#include "control/api/time.h"

namespace skiff::apiserver::auth {
namespace {

api::core::v1::Secret tokenSecret() {
  api::core::v1::Secret s;
  s.mutable_metadata()->set_name("bootstrap-token-abcdef");
  s.mutable_metadata()->set_namespace_("kube-system");
  s.set_type("bootstrap.kubernetes.io/token");
  auto& d = *s.mutable_data();
  d["token-id"] = "abcdef";
  d["token-secret"] = "0123456789abcdef";
  d["usage-bootstrap-authentication"] = "true";
  d["expiration"] = "2030-01-01T00:00:00Z";
  d["auth-extra-groups"] = "system:bootstrappers:skiff:default-node-token";
  return s;
}

TEST(BootstrapToken, Format) {
  EXPECT_TRUE(parseBootstrapToken("abcdef.0123456789abcdef"));
  EXPECT_FALSE(parseBootstrapToken("abcdef.0123456789abcde"));
  EXPECT_FALSE(parseBootstrapToken("ABCDEF.0123456789abcdef"));
  EXPECT_FALSE(parseBootstrapToken("abcdef:0123456789abcdef"));
  EXPECT_FALSE(parseBootstrapToken("abcdefg0123456789abcdef"));
  EXPECT_FALSE(parseBootstrapToken(""));
}

TEST(BootstrapToken, SecretRules) {
  const int64_t now = api::parseRfc3339("2029-06-01T00:00:00Z")->seconds;
  const BootstrapToken token{"abcdef", "0123456789abcdef"};
  UserInfo user;
  EXPECT_EQ(checkBootstrapSecret(tokenSecret(), token, now, &user), "");
  EXPECT_EQ(user.name, "system:bootstrap:abcdef");
  EXPECT_EQ(user.groups,
            (std::vector<std::string>{"system:bootstrappers",
                                      "system:bootstrappers:skiff:default-node-token"}));

  struct Case {
    const char* name;
    std::function<void(api::core::v1::Secret&)> edit;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"wrong secret", [](auto& s) { (*s.mutable_data())["token-secret"] = "0123456789abcdee"; },
       "bootstrap token abcdef: the token-secret does not match"},
      {"wrong type", [](auto& s) { s.set_type("Opaque"); },
       "secret bootstrap-token-abcdef has type \"Opaque\", not bootstrap.kubernetes.io/token"},
      {"expired", [](auto& s) { (*s.mutable_data())["expiration"] = "2029-05-31T23:59:59Z"; },
       "bootstrap token abcdef expired at 2029-05-31T23:59:59Z"},
      {"not for authentication",
       [](auto& s) { (*s.mutable_data())["usage-bootstrap-authentication"] = "false"; },
       "bootstrap token abcdef is not marked usage-bootstrap-authentication"},
      {"being deleted",
       [](auto& s) { s.mutable_metadata()->mutable_deletion_timestamp()->set_seconds(1); },
       "bootstrap token abcdef is being deleted"},
      {"another id", [](auto& s) { (*s.mutable_data())["token-id"] = "zzzzzz"; },
       "bootstrap token abcdef: the secret's token-id does not match"},
      {"a group outside bootstrappers",
       [](auto& s) { (*s.mutable_data())["auth-extra-groups"] = "system:masters"; },
       "bootstrap token abcdef: auth-extra-groups group \"system:masters\" does not start with "
       "system:bootstrappers:"},
      {"no expiration", [](auto& s) { s.mutable_data()->erase("expiration"); }, ""},
  };
  for (const auto& c : cases) {
    auto s = tokenSecret();
    c.edit(s);
    EXPECT_EQ(checkBootstrapSecret(s, token, now, nullptr), c.want) << c.name;
  }
}

TEST(BootstrapToken, Authenticator) {
  auto secret = std::make_shared<api::core::v1::Secret>(tokenSecret());
  (*secret->mutable_data())["expiration"] = "2999-01-01T00:00:00Z";
  std::string asked;
  BootstrapTokenAuthenticator authenticator([&](std::string_view ns, std::string_view name) {
    asked = std::string(ns) + "/" + std::string(name);
    return name == "bootstrap-token-abcdef" ? ObjectPtr(secret) : nullptr;
  });
  auto ok = authenticator.authenticate({.bearer_token = "abcdef.0123456789abcdef"});
  EXPECT_EQ(ok.outcome, AuthResult::Outcome::kAuthenticated);
  EXPECT_EQ(asked, "kube-system/bootstrap-token-abcdef");
  EXPECT_EQ(ok.user.name, "system:bootstrap:abcdef");
  // Another kind of token is not this authenticator's.
  EXPECT_EQ(authenticator.authenticate({.bearer_token = "a-static-token"}).outcome,
            AuthResult::Outcome::kNotMine);
  auto missing = authenticator.authenticate({.bearer_token = "zzzzzz.0123456789abcdef"});
  EXPECT_EQ(missing.outcome, AuthResult::Outcome::kRejected);
  EXPECT_EQ(missing.reason, "no bootstrap token secret kube-system/bootstrap-token-zzzzzz");
  EXPECT_EQ(authenticator.authenticate({.bearer_token = "abcdef.0123456789abcdee"}).outcome,
            AuthResult::Outcome::kRejected);
}

}  // namespace
}  // namespace skiff::apiserver::auth

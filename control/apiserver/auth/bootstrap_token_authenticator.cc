#include "control/apiserver/auth/bootstrap_token_authenticator.h"

#include <openssl/crypto.h>

#include "control/api/time.h"

namespace skiff::apiserver::auth {
namespace {

bool lowerAlnum(std::string_view s) {
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

std::string dataOf(const api::core::v1::Secret& secret, const char* key) {
  auto it = secret.data().find(key);
  return it == secret.data().end() ? std::string() : it->second;
}

}  // namespace

std::optional<BootstrapToken> parseBootstrapToken(std::string_view token) {
  if (token.size() != 23 || token[6] != '.') return std::nullopt;
  std::string_view id = token.substr(0, 6);
  std::string_view secret = token.substr(7);
  if (!lowerAlnum(id) || !lowerAlnum(secret)) return std::nullopt;
  return BootstrapToken{std::string(id), std::string(secret)};
}

std::string checkBootstrapSecret(const api::core::v1::Secret& secret, const BootstrapToken& token,
                                 int64_t now_seconds, UserInfo* user) {
  const std::string name = secret.metadata().name();
  if (secret.type() != kBootstrapTokenSecretType) {
    return "secret " + name + " has type \"" + secret.type() + "\", not " +
           std::string(kBootstrapTokenSecretType);
  }
  std::string stored = dataOf(secret, "token-secret");
  if (stored.size() != token.secret.size() ||
      CRYPTO_memcmp(stored.data(), token.secret.data(), stored.size()) != 0) {
    return "bootstrap token " + token.id + ": the token-secret does not match";
  }
  if (secret.metadata().has_deletion_timestamp()) {
    return "bootstrap token " + token.id + " is being deleted";
  }
  std::string expiration = dataOf(secret, "expiration");
  if (!expiration.empty()) {
    auto at = api::parseRfc3339(expiration);
    if (!at) return "bootstrap token " + token.id + ": unparseable expiration " + expiration;
    if (at->seconds <= now_seconds) {
      return "bootstrap token " + token.id + " expired at " + expiration;
    }
  }
  if (dataOf(secret, "token-id") != token.id) {
    return "bootstrap token " + token.id + ": the secret's token-id does not match";
  }
  if (dataOf(secret, "usage-bootstrap-authentication") != "true") {
    return "bootstrap token " + token.id + " is not marked usage-bootstrap-authentication";
  }
  UserInfo out;
  out.name = std::string(kBootstrapUserPrefix) + token.id;
  out.groups.emplace_back(kBootstrappersGroup);
  std::string extra = dataOf(secret, "auth-extra-groups");
  size_t start = 0;
  while (!extra.empty() && start <= extra.size()) {
    size_t comma = extra.find(',', start);
    std::string group =
        extra.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? extra.size() + 1 : comma + 1;
    while (!group.empty() && group.front() == ' ')
      group.erase(group.begin());
    while (!group.empty() && group.back() == ' ')
      group.pop_back();
    if (group.empty()) continue;
    if (!group.starts_with(std::string(kBootstrappersGroup) + ":")) {
      return "bootstrap token " + token.id + ": auth-extra-groups group \"" + group +
             "\" does not start with system:bootstrappers:";
    }
    out.groups.push_back(group);
  }
  if (user != nullptr) *user = std::move(out);
  return "";
}

AuthResult BootstrapTokenAuthenticator::authenticate(const Credentials& credentials) {
  auto token = parseBootstrapToken(credentials.bearer_token);
  if (!token) return AuthResult::notMine();
  ObjectPtr object = secrets_("kube-system", std::string(kBootstrapTokenSecretPrefix) + token->id);
  const auto* secret = dynamic_cast<const api::core::v1::Secret*>(object.get());
  if (secret == nullptr) {
    return AuthResult::rejected("no bootstrap token secret kube-system/bootstrap-token-" +
                                token->id);
  }
  UserInfo user;
  std::string problem = checkBootstrapSecret(*secret, *token, api::now().seconds, &user);
  if (!problem.empty()) return AuthResult::rejected(problem);
  return AuthResult::authenticated(std::move(user));
}

}  // namespace skiff::apiserver::auth

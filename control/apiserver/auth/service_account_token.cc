#include "control/apiserver/auth/service_account_token.h"

#include <openssl/rand.h>

#include <algorithm>

#include "control/apiserver/auth/authenticator.h"

namespace skiff::apiserver::auth {
namespace {

constexpr int64_t kNotBeforeLeeway = 60;

std::string randomId() {
  unsigned char bytes[16];
  RAND_bytes(bytes, sizeof bytes);
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);  // a version 4 UUID
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 15];
  }
  return out;
}

api::Value ref(const std::string& name, const std::string& uid) {
  api::Value v = api::Value::object();
  v.append("name", api::Value::string(name));
  v.append("uid", api::Value::string(uid));
  return v;
}

std::string stringAt(const api::Value& object, std::string_view key) {
  const api::Value* v = object.isObject() ? object.find(key) : nullptr;
  return v != nullptr && v->isString() ? v->text() : std::string();
}

std::optional<int64_t> intAt(const api::Value& object, std::string_view key) {
  const api::Value* v = object.find(key);
  if (v == nullptr || !v->isNumber()) return std::nullopt;
  return v->isInteger() ? v->asInt() : static_cast<int64_t>(v->asDouble());
}

}  // namespace

std::string ServiceAccountClaims::subject() const {
  return std::string(kServiceAccountPrefix) + ns + ":" + name;
}

std::optional<std::pair<std::string, std::string>> splitServiceAccountUser(std::string_view user) {
  constexpr std::string_view kPrefix = "system:serviceaccount:";
  if (!user.starts_with(kPrefix)) return std::nullopt;
  user.remove_prefix(kPrefix.size());
  size_t colon = user.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == user.size() ||
      user.find(':', colon + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  return std::make_pair(std::string(user.substr(0, colon)), std::string(user.substr(colon + 1)));
}

ServiceAccountTokens::ServiceAccountTokens(std::string signing_key_pem, std::string issuer,
                                           std::vector<std::string> audiences)
    : signer_(signing_key_pem),
      verifier_(signer_.publicKeyPem()),
      issuer_(std::move(issuer)),
      audiences_(std::move(audiences)) {
  if (audiences_.empty()) audiences_.push_back(issuer_);
}

std::string ServiceAccountTokens::issue(ServiceAccountClaims c) const {
  if (c.audiences.empty()) c.audiences = audiences_;
  if (c.id.empty()) c.id = randomId();
  api::Value claims = api::Value::object();
  api::Value aud = api::Value::array();
  for (const auto& a : c.audiences)
    aud.push(api::Value::string(a));
  claims.append("aud", std::move(aud));
  claims.append("exp", api::Value::integer(c.expires_at));
  claims.append("iat", api::Value::integer(c.issued_at));
  claims.append("iss", api::Value::string(issuer_));
  claims.append("jti", api::Value::string(c.id));
  api::Value k8s = api::Value::object();
  k8s.append("namespace", api::Value::string(c.ns));
  if (!c.node_name.empty()) k8s.append("node", ref(c.node_name, c.node_uid));
  if (!c.pod_name.empty()) k8s.append("pod", ref(c.pod_name, c.pod_uid));
  if (!c.secret_name.empty()) k8s.append("secret", ref(c.secret_name, c.secret_uid));
  k8s.append("serviceaccount", ref(c.name, c.uid));
  claims.append("kubernetes.io", std::move(k8s));
  claims.append("nbf", api::Value::integer(c.not_before != 0 ? c.not_before : c.issued_at));
  claims.append("sub", api::Value::string(c.subject()));
  return signer_.sign(claims);
}

std::variant<ServiceAccountClaims, std::string> ServiceAccountTokens::validate(
    std::string_view token, int64_t now) const {
  api::Value claims;
  try {
    claims = verifier_.verify(token);
  } catch (const JwtError& e) {
    return std::string(e.what());
  }
  if (stringAt(claims, "iss") != issuer_) return std::string("issued by another issuer");
  ServiceAccountClaims c;
  // aud: a string or an array of strings (RFC 7519 4.1.3).
  if (const api::Value* aud = claims.find("aud"); aud != nullptr) {
    if (aud->isString()) c.audiences.push_back(aud->text());
    if (aud->isArray()) {
      for (const auto& a : aud->items()) {
        if (a.isString()) c.audiences.push_back(a.text());
      }
    }
  }
  bool ours = std::any_of(c.audiences.begin(), c.audiences.end(), [&](const std::string& a) {
    return std::find(audiences_.begin(), audiences_.end(), a) != audiences_.end();
  });
  if (!ours) return std::string("token audiences do not include this apiserver's");
  auto exp = intAt(claims, "exp");
  if (!exp) return std::string("the token has no expiry");
  if (now >= *exp) return std::string("the token has expired");
  c.expires_at = *exp;
  c.issued_at = intAt(claims, "iat").value_or(0);
  c.not_before = intAt(claims, "nbf").value_or(c.issued_at);
  if (c.not_before > now + kNotBeforeLeeway) return std::string("the token is not valid yet");
  c.id = stringAt(claims, "jti");
  const api::Value* k8s = claims.find("kubernetes.io");
  if (k8s == nullptr || !k8s->isObject()) return std::string("no kubernetes.io claims");
  c.ns = stringAt(*k8s, "namespace");
  if (const api::Value* sa = k8s->find("serviceaccount")) {
    c.name = stringAt(*sa, "name");
    c.uid = stringAt(*sa, "uid");
  }
  if (const api::Value* pod = k8s->find("pod")) {
    c.pod_name = stringAt(*pod, "name");
    c.pod_uid = stringAt(*pod, "uid");
  }
  if (const api::Value* node = k8s->find("node")) {
    c.node_name = stringAt(*node, "name");
    c.node_uid = stringAt(*node, "uid");
  }
  if (const api::Value* secret = k8s->find("secret")) {
    c.secret_name = stringAt(*secret, "name");
    c.secret_uid = stringAt(*secret, "uid");
  }
  if (c.ns.empty() || c.name.empty()) return std::string("no service account in the claims");
  if (stringAt(claims, "sub") != c.subject()) {
    return std::string("the subject does not match the service account claims");
  }
  return c;
}

}  // namespace skiff::apiserver::auth

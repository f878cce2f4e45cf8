#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "control/apiserver/auth/jwt.h"

// ServiceAccount tokens as kube-apiserver issues them for the TokenRequest API (bound tokens):
//   {"iss": ISSUER, "sub": "system:serviceaccount:NS:NAME", "aud": [...], "exp", "iat", "nbf",
//    "jti", "kubernetes.io": {"namespace": NS, "serviceaccount": {"name", "uid"},
//                             "pod": {"name", "uid"}, "node": {"name", "uid"}}}
// signed with ES256. Checking that the ServiceAccount (and pod) still exist is the
// authenticator's part (service_account_authenticator.h).

namespace skiff::apiserver::auth {

inline constexpr std::string_view kDefaultIssuer = "https://kubernetes.default.svc.cluster.local";

struct ServiceAccountClaims {
  std::string ns;
  std::string name;
  std::string uid;                  // the ServiceAccount's
  std::string pod_name, pod_uid;    // empty when not bound to a pod
  std::string node_name, node_uid;  // empty when not bound to a node
  std::string secret_name, secret_uid;
  std::vector<std::string> audiences;
  int64_t issued_at = 0;  // seconds since the epoch
  int64_t not_before = 0;
  int64_t expires_at = 0;
  std::string id;  // jti

  std::string subject() const;  // system:serviceaccount:NS:NAME
};

class ServiceAccountTokens {
 public:
  // `audiences`: what a token must be issued for to authenticate to this apiserver (any one of
  // them); by default the issuer.
  ServiceAccountTokens(std::string signing_key_pem, std::string issuer,
                       std::vector<std::string> audiences);

  // A signed token. Empty audiences get the apiserver's; empty id a random one.
  std::string issue(ServiceAccountClaims claims) const;

  // The claims of a token this apiserver issued that is valid at `now` (signature, issuer, a
  // subject that matches the kubernetes.io claims, one of our audiences, nbf <= now < exp with
  // 60 s of leeway on nbf as Kubernetes allows); otherwise why not.
  std::variant<ServiceAccountClaims, std::string> validate(std::string_view token,
                                                           int64_t now) const;

  const std::string& issuer() const { return issuer_; }
  const std::vector<std::string>& audiences() const { return audiences_; }
  std::string publicKeyPem() const { return signer_.publicKeyPem(); }

 private:
  JwtSigner signer_;
  JwtVerifier verifier_;
  std::string issuer_;
  std::vector<std::string> audiences_;
};

// "system:serviceaccount:NS:NAME" -> {NS, NAME}; nullopt for other user names.
std::optional<std::pair<std::string, std::string>> splitServiceAccountUser(std::string_view user);

}  // namespace skiff::apiserver::auth

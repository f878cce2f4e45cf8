#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

// Who sent a request, as Kubernetes' authenticators answer it (k8s.io/apiserver's user.Info and
// authenticator.Request). Implementations live next to this header, one per file:
// token_authenticator (static tokens), x509_authenticator (client certificates signed by the
// cluster CA) and service_account_authenticator (signed JWTs); chain.h tries them in order.

namespace skiff::apiserver::auth {

inline constexpr std::string_view kSystemMasters = "system:masters";
inline constexpr std::string_view kSystemAuthenticated = "system:authenticated";
inline constexpr std::string_view kServiceAccountPrefix = "system:serviceaccount:";

struct UserInfo {
  std::string name;
  std::string uid;
  std::vector<std::string> groups;

  bool inGroup(std::string_view group) const;
};

// The credentials a request carries.
struct Credentials {
  std::string_view bearer_token;        // without "Bearer "; empty when absent
  std::string_view client_certificate;  // PEM, already verified by TLS against the client CA
};

// What one authenticator says about a request.
struct AuthResult {
  enum class Outcome {
    kNotMine,        // no credentials of this kind: the next authenticator may try
    kAuthenticated,  // `user` is set
    kRejected,       // credentials of this kind that are wrong: 401, `reason` says why (for logs)
  };
  Outcome outcome = Outcome::kNotMine;
  UserInfo user;
  std::string reason;

  static AuthResult notMine() { return {}; }
  static AuthResult authenticated(UserInfo user) {
    return {Outcome::kAuthenticated, std::move(user), {}};
  }
  static AuthResult rejected(std::string reason) {
    return {Outcome::kRejected, {}, std::move(reason)};
  }
};

// Threading: authenticate() is called from every connection's thread at once.
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  virtual AuthResult authenticate(const Credentials& credentials) = 0;
};
using AuthenticatorPtr = std::unique_ptr<Authenticator>;

}  // namespace skiff::apiserver::auth

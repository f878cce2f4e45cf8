#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "control/apiserver/auth/authenticator.h"
#include "control/apiserver/auth/service_account_authenticator.h"  // ObjectLookup
#include "skiff/api/core_v1.pb.h"

// Kubernetes' bootstrap token authenticator (plugin/pkg/auth/authenticator/token/bootstrap), for
// kubelet TLS bootstrap: a bearer token `<token-id>.<token-secret>` (token-id [a-z0-9]{6},
// token-secret [a-z0-9]{16}) authenticates when the Secret kube-system/bootstrap-token-<token-id>
// of type bootstrap.kubernetes.io/token holds the same token-id and token-secret, has
// usage-bootstrap-authentication "true", is not being deleted and its `expiration` (RFC 3339) has
// not passed. The user is system:bootstrap:<token-id> in system:bootstrappers and the groups of
// auth-extra-groups (each must start with system:bootstrappers:).

namespace skiff::apiserver::auth {

inline constexpr std::string_view kBootstrapTokenSecretType = "bootstrap.kubernetes.io/token";
inline constexpr std::string_view kBootstrapTokenSecretPrefix = "bootstrap-token-";
inline constexpr std::string_view kBootstrapUserPrefix = "system:bootstrap:";
inline constexpr std::string_view kBootstrappersGroup = "system:bootstrappers";

struct BootstrapToken {
  std::string id;
  std::string secret;
};
// The parts of a token of the bootstrap form, or nullopt.
std::optional<BootstrapToken> parseBootstrapToken(std::string_view token);

// Why `secret` does not admit `token` at `now_seconds` ("" when it does); `user` is filled then.
std::string checkBootstrapSecret(const api::core::v1::Secret& secret, const BootstrapToken& token,
                                 int64_t now_seconds, UserInfo* user);

class BootstrapTokenAuthenticator : public Authenticator {
 public:
  // `secrets` finds Secrets (only kube-system's are asked for).
  explicit BootstrapTokenAuthenticator(ObjectLookup secrets) : secrets_(std::move(secrets)) {}
  AuthResult authenticate(const Credentials& credentials) override;

 private:
  ObjectLookup secrets_;
};

}  // namespace skiff::apiserver::auth

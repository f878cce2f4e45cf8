#pragma once

#include <vector>

#include "control/apiserver/auth/authenticator.h"

namespace skiff::apiserver::auth {

// Kubernetes' union authenticator: the first authenticator that knows the request's credentials
// decides. Credentials that one rejects and none accepts are rejected with every reason; every
// user that authenticates is also in system:authenticated.
class AuthenticatorChain : public Authenticator {
 public:
  void add(AuthenticatorPtr authenticator) { chain_.push_back(std::move(authenticator)); }
  AuthResult authenticate(const Credentials& credentials) override;

 private:
  std::vector<AuthenticatorPtr> chain_;
};

}  // namespace skiff::apiserver::auth

#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "control/apiserver/auth/authenticator.h"
#include "control/apiserver/auth/service_account_token.h"
#include "control/apiserver/resource_storage.h"

namespace skiff::apiserver::auth {

// Finds an object by namespace and name (an index first, the store when the index misses), or
// nullptr.
using ObjectLookup = std::function<ObjectPtr(std::string_view ns, std::string_view name)>;

// Bearer tokens that are ServiceAccount JWTs this apiserver signed: valid signature, issuer,
// audience and lifetime, and the ServiceAccount (and the pod a token is bound to) still there with
// the uid the token names. The user is system:serviceaccount:NS:NAME in the groups
// system:serviceaccounts and system:serviceaccounts:NS.
class ServiceAccountAuthenticator : public Authenticator {
 public:
  ServiceAccountAuthenticator(std::shared_ptr<const ServiceAccountTokens> tokens,
                              ObjectLookup service_accounts, ObjectLookup pods);
  AuthResult authenticate(const Credentials& credentials) override;

 private:
  std::shared_ptr<const ServiceAccountTokens> tokens_;
  ObjectLookup service_accounts_;
  ObjectLookup pods_;
};

}  // namespace skiff::apiserver::auth

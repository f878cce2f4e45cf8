#pragma once

#include <memory>
#include <string>

#include "control/apiserver/auth/authenticator.h"

// What a request wants to do and whether its user may (k8s.io/apiserver's authorizer.Attributes
// and Decision). rbac.h implements it from Roles and bindings.

namespace skiff::apiserver::auth {

struct Attributes {
  UserInfo user;
  std::string verb;  // get list watch create update patch delete deletecollection; lower-case
                     // HTTP method for non-resource requests
  bool resource_request = false;
  std::string namespace_;
  std::string api_group;
  std::string api_version;
  std::string resource;
  std::string subresource;
  std::string name;
  std::string path;  // non-resource requests
};

struct Decision {
  bool allowed = false;
  std::string reason;  // why it was allowed (the binding), or an evaluation error
};

// Threading: authorize() is called from every connection's thread at once.
class Authorizer {
 public:
  virtual ~Authorizer() = default;
  virtual Decision authorize(const Attributes& attributes) const = 0;
};
using AuthorizerPtr = std::unique_ptr<Authorizer>;

// Kubernetes' 403 message for a denied request:
//   pods is forbidden: User "x" cannot list resource "pods" in API group "" in the namespace "y"
std::string forbiddenMessage(const Attributes& attributes);

}  // namespace skiff::apiserver::auth

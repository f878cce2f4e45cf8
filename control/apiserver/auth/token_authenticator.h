#pragma once

#include "control/apiserver/auth/authenticator.h"
#include "control/apiserver/pki.h"

namespace skiff::apiserver::auth {

// Static bearer tokens from kube-apiserver's token file (DIR/pki/tokens.csv: the admin's, and
// any a cluster operator adds for nodes or components). A token that is not in the file is not
// this authenticator's (the service account authenticator may know it).
class TokenFileAuthenticator : public Authenticator {
 public:
  explicit TokenFileAuthenticator(TokenFile tokens) : tokens_(std::move(tokens)) {}
  AuthResult authenticate(const Credentials& credentials) override;

 private:
  const TokenFile tokens_;
};

}  // namespace skiff::apiserver::auth

#include "control/apiserver/auth/chain.h"

namespace skiff::apiserver::auth {

AuthResult AuthenticatorChain::authenticate(const Credentials& credentials) {
  std::string reasons;
  for (const auto& a : chain_) {
    AuthResult r = a->authenticate(credentials);
    if (r.outcome == AuthResult::Outcome::kAuthenticated) {
      if (!r.user.inGroup(kSystemAuthenticated)) {
        r.user.groups.emplace_back(kSystemAuthenticated);
      }
      return r;
    }
    if (r.outcome == AuthResult::Outcome::kRejected) {
      if (!reasons.empty()) reasons += "; ";
      reasons += r.reason;
    }
  }
  if (!reasons.empty()) return AuthResult::rejected(reasons);
  if (!credentials.bearer_token.empty()) return AuthResult::rejected("unknown bearer token");
  return AuthResult::notMine();
}

}  // namespace skiff::apiserver::auth

#include "control/apiserver/auth/token_authenticator.h"

namespace skiff::apiserver::auth {

AuthResult TokenFileAuthenticator::authenticate(const Credentials& credentials) {
  if (credentials.bearer_token.empty()) return AuthResult::notMine();
  const TokenEntry* entry = tokens_.authenticate(credentials.bearer_token);
  if (entry == nullptr) return AuthResult::notMine();
  return AuthResult::authenticated({entry->user, entry->uid, entry->groups});
}

}  // namespace skiff::apiserver::auth

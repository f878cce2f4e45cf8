#include "control/apiserver/auth/service_account_authenticator.h"

#include "control/apiserver/object_meta.h"

namespace skiff::apiserver::auth {

ServiceAccountAuthenticator::ServiceAccountAuthenticator(
    std::shared_ptr<const ServiceAccountTokens> tokens, ObjectLookup service_accounts,
    ObjectLookup pods)
    : tokens_(std::move(tokens)),
      service_accounts_(std::move(service_accounts)),
      pods_(std::move(pods)) {}

AuthResult ServiceAccountAuthenticator::authenticate(const Credentials& credentials) {
  if (credentials.bearer_token.empty() || !looksLikeJwt(credentials.bearer_token)) {
    return AuthResult::notMine();
  }
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  auto result = tokens_->validate(credentials.bearer_token, now);
  if (auto* why = std::get_if<std::string>(&result)) {
    return AuthResult::rejected("service account token: " + *why);
  }
  const auto& c = std::get<ServiceAccountClaims>(result);
  ObjectPtr sa = service_accounts_(c.ns, c.name);
  if (sa == nullptr) {
    return AuthResult::rejected("service account token: serviceaccounts \"" + c.name +
                                "\" not found in namespace " + c.ns);
  }
  const auto& sa_meta = meta(*sa);
  if (!c.uid.empty() && sa_meta.uid() != c.uid) {
    return AuthResult::rejected("service account token: the service account " + c.ns + "/" +
                                c.name + " was recreated (uid " + sa_meta.uid() + ", token for " +
                                c.uid + ")");
  }
  if (!c.pod_name.empty()) {
    ObjectPtr pod = pods_(c.ns, c.pod_name);
    if (pod == nullptr) {
      return AuthResult::rejected("service account token: the pod " + c.ns + "/" + c.pod_name +
                                  " it is bound to no longer exists");
    }
    if (!c.pod_uid.empty() && meta(*pod).uid() != c.pod_uid) {
      return AuthResult::rejected("service account token: the pod " + c.ns + "/" + c.pod_name +
                                  " it is bound to was recreated");
    }
  }
  UserInfo user{
      c.subject(), sa_meta.uid(), {"system:serviceaccounts", "system:serviceaccounts:" + c.ns}};
  return AuthResult::authenticated(std::move(user));
}

}  // namespace skiff::apiserver::auth

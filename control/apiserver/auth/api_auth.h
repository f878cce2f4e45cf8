#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "control/apiserver/auth/authenticator.h"
#include "control/apiserver/auth/chain.h"
#include "control/apiserver/auth/node_authorizer.h"
#include "control/apiserver/auth/object_index.h"
#include "control/apiserver/auth/rbac.h"
#include "control/apiserver/auth/service_account_token.h"
#include "control/apiserver/http_server.h"
#include "control/apiserver/request_info.h"
#include "control/apiserver/watch_cache.h"
#include "control/store/store.h"

// The apiserver's authentication and authorization, as ApiServer uses it per request:
//   authenticate(): client certificate, static token or ServiceAccount JWT -> user, or 401;
//   authorize():    the node authorizer for kubelets' own identities (system:node:NAME), then
//                   RBAC over in-memory indexes of the four RBAC kinds -> allowed, or 403 in
//                   Kubernetes' wording;
//   serve():        the requests answered here and never stored: SelfSubjectAccessReview,
//                   SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectRulesReview,
//                   SelfSubjectReview, TokenReview, and serviceaccounts/NAME/token (TokenRequest).
// Failures are logged (rate-limited) with the client's address and why.

namespace skiff::apiserver::auth {

struct ApiAuthOptions {
  // Off: plain HTTP for tests; every request is system:anonymous and allowed.
  bool enabled = true;
  std::string token_file;                // kube-apiserver's static token CSV
  std::string client_ca_pem;             // client certificates signed by it authenticate; "" = none
  std::string service_account_key_file;  // EC P-256 PEM, made on first start
  std::string issuer = std::string(kDefaultIssuer);
  std::vector<std::string> api_audiences;  // empty: the issuer
  int64_t default_token_seconds = 3600;
  int64_t max_token_seconds = 48 * 3600;
  std::chrono::milliseconds sync_timeout{10000};
};

class ApiAuth {
 public:
  ApiAuth(store::Store& store, ApiAuthOptions options);
  ~ApiAuth();

  // The apiserver's watch caches, which the indexes read instead of watching the store
  // themselves (one store watch per resource); `find` answers nullptr for a resource without
  // one (that index then keeps a cache of its own). Before start().
  using FindWatchCache = std::function<WatchCache*(const api::ResourceType&)>;
  void useWatchCaches(FindWatchCache find) { find_cache_ = std::move(find); }
  // Writes the bootstrap policy, starts the indexes and waits until they hold it.
  void start();
  void stop();

  // The request's user; ApiError 401 when its credentials are missing or wrong. With
  // Impersonate-User/-Group/-Uid/-Extra-* headers (kubectl --as, --as-group, --as-uid) the user it
  // acts as, each part authorized by the `impersonate` verb on users, groups, serviceaccounts,
  // uids or userextras (403 otherwise; groups or a uid without a user: 500, as Kubernetes).
  UserInfo authenticate(const HttpRequest& request) const;
  // ApiError 403 unless `user` may do what `info` asks.
  void authorize(const UserInfo& user, const RequestInfo& info, const HttpRequest& request) const;
  // Answers the requests that are this component's; false for any other.
  bool serve(const HttpRequest& request, const RequestInfo& info, const UserInfo& user,
             HttpResponse& response);

  Decision decide(const Attributes& attributes) const;
  // RBAC's escalation check before a Role, ClusterRole or binding is created or updated, and
  // NodeRestriction's before a node writes a Node, Pod or Lease (ApiHandler's write admission;
  // other kinds pass at once): ApiError 403 unless the request's user holds what the object
  // grants, or may escalate/bind; a node only its own. `current` reads the stored object
  // (nullptr on create).
  void admitWrite(const HttpRequest& request, std::string_view ns,
                  const google::protobuf::Message& object,
                  const std::function<MessagePtr()>& current) const;
  const ServiceAccountTokens& tokens() const { return *tokens_; }

 private:
  void rebuildPolicy();
  UserInfo impersonate(const UserInfo& requestor, const HttpRequest& request) const;
  ObjectPtr lookup(ObjectIndex* index, const std::string& plural, std::string_view ns,
                   std::string_view name) const;
  void logFailure(const std::string& line) const;
  // serviceaccounts/NAME/token; a node's (system:node:NAME in system:nodes) only for a pod bound
  // to it, as Kubernetes' NodeRestriction admission.
  void tokenRequest(const HttpRequest& request, const RequestInfo& info, const UserInfo& user,
                    HttpResponse& response);

  store::Store& store_;
  ApiAuthOptions options_;
  std::shared_ptr<const ServiceAccountTokens> tokens_;
  std::unique_ptr<AuthenticatorChain> chain_;
  RbacAuthorizer rbac_;
  std::unique_ptr<NodeAuthorizer> node_;  // over pods_ (its spec.nodeName index)
  std::unique_ptr<ObjectIndex> roles_, cluster_roles_, role_bindings_, cluster_role_bindings_;
  std::unique_ptr<ObjectIndex> service_accounts_, pods_;
  FindWatchCache find_cache_;
  std::mutex rebuild_mu_;
  std::atomic<bool> started_{false};

  mutable std::mutex log_mu_;
  mutable std::chrono::steady_clock::time_point log_window_;
  mutable int logged_in_window_ = 0;
  mutable int suppressed_ = 0;
};

}  // namespace skiff::apiserver::auth

#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "control/apiserver/http_server.h"

namespace skiff::client {
class Client;
}
namespace skiff::apiserver::auth {
class X509Authenticator;
}

// Authentication and authorization of the kubelet API as the kubelet does them with
// --anonymous-auth=false, --client-ca-file, --authentication-token-webhook and
// --authorization-mode=Webhook: a client certificate that chains to the client CA, else a bearer
// token the apiserver vouches for (TokenReview), else 401; then a SubjectAccessReview of
// `nodes/<subresource>` on this node for every request, 403 when denied. Both answers are cached
// for a while (the kubelet's defaults: 2 min authenticated, 30 s not; 5 min allowed, 30 s denied).

namespace skiff::kubelet {

// Who sent a request (the certificate's CN and O, or the TokenReview's user).
struct KubeletUser {
  std::string name;
  std::string uid;
  std::vector<std::string> groups;
};

// What a request asks for, as the kubelet's nodeAuthorizerAttributesGetter
// (pkg/kubelet/server/auth.go) maps it: resource `nodes`, name the node, API version v1, and
//   verb:        the HTTP method's (GET get, POST create, PUT update, PATCH patch, DELETE delete;
//                any other method ""); so a WebSocket exec, a GET upgrade, is `get`, as in
//                Kubernetes;
//   subresource: /stats/... stats, /metrics/... metrics, /logs/... log, /checkpoint/...
//                checkpoint; everything else (/containerLogs, /exec, /run, /attach,
//                /portForward, /pods, /healthz) proxy.
struct NodeRequestAttributes {
  std::string verb;
  std::string subresource;

  friend bool operator==(const NodeRequestAttributes&, const NodeRequestAttributes&) = default;
};
NodeRequestAttributes nodeRequestAttributes(std::string_view method, std::string_view path);

// The kubelet's 403 text: "Forbidden (user=U, verb=V, resource=nodes, subresource(s)=[S])".
std::string kubeletForbiddenMessage(const KubeletUser& user,
                                    const NodeRequestAttributes& attributes);

// The answers only the apiserver has. Each call throws std::runtime_error when no answer came (the
// apiserver unreachable, or answering with an error), which is never cached. Called from every
// connection's thread at once.
class AuthReviewer {
 public:
  virtual ~AuthReviewer() = default;

  struct TokenReview {
    bool authenticated = false;
    KubeletUser user;
    std::string error;  // why not, when the apiserver says
  };
  virtual TokenReview reviewToken(const std::string& token) = 0;

  struct AccessReview {
    bool allowed = false;
    std::string reason;
  };
  virtual AccessReview reviewAccess(const KubeletUser& user, const std::string& node,
                                    const NodeRequestAttributes& attributes) = 0;
};

// POST /apis/authentication.k8s.io/v1/tokenreviews and
// /apis/authorization.k8s.io/v1/subjectaccessreviews through `client` (the agent's kubeconfig
// client: system:node:NAME may create both).
class ApiserverAuthReviewer : public AuthReviewer {
 public:
  explicit ApiserverAuthReviewer(client::Client& client) : client_(client) {}
  TokenReview reviewToken(const std::string& token) override;
  AccessReview reviewAccess(const KubeletUser& user, const std::string& node,
                            const NodeRequestAttributes& attributes) override;

 private:
  client::Client& client_;
};

struct KubeletAuthOptions {
  std::string node_name;  // the name of every SubjectAccessReview
  // PEM bundle of the CAs whose client certificates authenticate (CN user, O groups); empty: no
  // client certificates. TLS checks the chain first; this checks it again for clientAuth.
  std::string client_ca_pem;
  std::chrono::milliseconds authenticated_ttl = std::chrono::minutes(2);
  std::chrono::milliseconds unauthenticated_ttl = std::chrono::seconds(30);
  std::chrono::milliseconds allowed_ttl = std::chrono::minutes(5);
  std::chrono::milliseconds denied_ttl = std::chrono::seconds(30);
  size_t max_cache_entries = 4096;  // per cache; a full cache starts over
  // The time (tests); empty: std::chrono::steady_clock.
  std::function<std::chrono::steady_clock::time_point()> clock;
};

class KubeletAuth {
 public:
  // Throws std::runtime_error when client_ca_pem holds no certificate or `reviewer` is null.
  KubeletAuth(KubeletAuthOptions options, std::shared_ptr<AuthReviewer> reviewer);
  ~KubeletAuth();
  KubeletAuth(const KubeletAuth&) = delete;
  KubeletAuth& operator=(const KubeletAuth&) = delete;

  struct Result {
    int status = 200;     // 200 allowed; 401 no or bad credentials; 403 denied; 500 no answer
    std::string message;  // the answer's text for anything but 200
    KubeletUser user;
  };
  // Authenticates `request` (its verified client certificate, else `Authorization: Bearer`), then
  // authorizes what it asks for.
  Result check(const apiserver::HttpRequest& request);

  // The reviews asked of the apiserver (the cache's misses), for tests and logs.
  uint64_t tokenReviews() const;
  uint64_t accessReviews() const;

 private:
  struct Entry {
    std::chrono::steady_clock::time_point expires;
    bool yes = false;
    KubeletUser user;    // token cache: the user
    std::string reason;  // why not
  };
  std::chrono::steady_clock::time_point now() const;
  bool lookup(std::unordered_map<std::string, Entry>& cache, const std::string& key, Entry& out);
  void remember(std::unordered_map<std::string, Entry>& cache, const std::string& key, Entry entry);
  void logFailure(const std::string& line);

  const KubeletAuthOptions options_;
  const std::shared_ptr<AuthReviewer> reviewer_;
  std::vector<std::unique_ptr<apiserver::auth::X509Authenticator>> x509_;  // one per CA
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> tokens_;  // by SHA-256 of the token
  std::unordered_map<std::string, Entry> access_;  // by user, groups, verb, subresource
  uint64_t token_reviews_ = 0;
  uint64_t access_reviews_ = 0;
  std::chrono::steady_clock::time_point log_window_{};
  int logged_ = 0;
};

}  // namespace skiff::kubelet

#include "kubelet/server/kubelet_auth.h"

#include <openssl/evp.h>

#include <iostream>
#include <stdexcept>

#include "control/api/json.h"
#include "control/apiserver/auth/x509_authenticator.h"
#include "control/client/client.h"

namespace skiff::kubelet {
namespace {

using api::Value;

// The kubelet's isSubpath: `path` itself or anything below it.
bool isSubpath(std::string_view subpath, std::string_view path) {
  return subpath == path ||
         (subpath.starts_with(path) && subpath.size() > path.size() && subpath[path.size()] == '/');
}

std::string sha256Hex(std::string_view s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("kubelet auth: SHA-256 failed");
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

// The certificates of a PEM bundle, each as its own PEM text.
std::vector<std::string> splitPemBundle(std::string_view bundle) {
  constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  std::vector<std::string> out;
  size_t at = 0;
  while ((at = bundle.find(kBegin, at)) != std::string_view::npos) {
    const size_t end = bundle.find(kEnd, at);
    if (end == std::string_view::npos) break;
    out.emplace_back(bundle.substr(at, end + kEnd.size() - at));
    out.back() += "\n";
    at = end + kEnd.size();
  }
  return out;
}

Value stringArray(const std::vector<std::string>& items) {
  Value out = Value::array();
  for (const auto& s : items)
    out.push(Value::string(s));
  return out;
}

// POSTs a review object and returns the answer's `status`; throws with the apiserver's message.
Value postReview(client::Client& client, const std::string& path, const Value& review,
                 const char* kind) {
  client::RawRequest request;
  request.method = "POST";
  request.path = path;
  request.body = api::writeJson(review);
  request.content_type = "application/json";
  client::RawResponse response = client.raw(request);
  if (response.status != 200 && response.status != 201) {
    std::string message = response.body;
    try {
      const Value status = api::parseJson(response.body);
      if (const Value* m = status.find("message"); m && m->isString()) message = m->text();
    } catch (const std::exception&) {
    }
    throw std::runtime_error(std::string(kind) + ": the apiserver answered " +
                             std::to_string(response.status) + ": " + message);
  }
  Value answer = api::parseJson(response.body);
  const Value* status = answer.find("status");
  if (!status || !status->isObject()) return Value::object();
  return *status;
}

std::string textOf(const Value& object, std::string_view key) {
  const Value* v = object.find(key);
  return v && v->isString() ? v->text() : std::string();
}

bool boolOf(const Value& object, std::string_view key) {
  const Value* v = object.find(key);
  return v && v->isBool() && v->asBool();
}

std::string attributesText(const KubeletUser& user, const NodeRequestAttributes& attributes) {
  return "user=" + user.name + ", verb=" + attributes.verb + ", resource=nodes, subresource(s)=[" +
         attributes.subresource + "]";
}

}  // namespace

NodeRequestAttributes nodeRequestAttributes(std::string_view method, std::string_view path) {
  NodeRequestAttributes out;
  if (method == "POST") {
    out.verb = "create";
  } else if (method == "GET") {
    out.verb = "get";
  } else if (method == "PUT") {
    out.verb = "update";
  } else if (method == "PATCH") {
    out.verb = "patch";
  } else if (method == "DELETE") {
    out.verb = "delete";
  }
  if (isSubpath(path, "/stats")) {
    out.subresource = "stats";
  } else if (isSubpath(path, "/metrics")) {
    out.subresource = "metrics";
  } else if (isSubpath(path, "/logs")) {
    out.subresource = "log";  // "log" as the other log subresources (pods/log)
  } else if (isSubpath(path, "/checkpoint")) {
    out.subresource = "checkpoint";
  } else {
    out.subresource = "proxy";
  }
  return out;
}

std::string kubeletForbiddenMessage(const KubeletUser& user,
                                    const NodeRequestAttributes& attributes) {
  return "Forbidden (" + attributesText(user, attributes) + ")";
}

AuthReviewer::TokenReview ApiserverAuthReviewer::reviewToken(const std::string& token) {
  Value review = Value::object();
  review.set("apiVersion", Value::string("authentication.k8s.io/v1"));
  review.set("kind", Value::string("TokenReview"));
  Value spec = Value::object();
  spec.set("token", Value::string(token));
  review.set("spec", std::move(spec));
  const Value status =
      postReview(client_, "/apis/authentication.k8s.io/v1/tokenreviews", review, "TokenReview");
  TokenReview out;
  out.authenticated = boolOf(status, "authenticated");
  out.error = textOf(status, "error");
  if (const Value* user = status.find("user"); user && user->isObject()) {
    out.user.name = textOf(*user, "username");
    out.user.uid = textOf(*user, "uid");
    if (const Value* groups = user->find("groups"); groups && groups->isArray())
      for (const auto& g : groups->items())
        if (g.isString()) out.user.groups.push_back(g.text());
  }
  if (out.authenticated && out.user.name.empty()) {
    out.authenticated = false;
    out.error = "TokenReview: authenticated without a user name";
  }
  return out;
}

AuthReviewer::AccessReview ApiserverAuthReviewer::reviewAccess(
    const KubeletUser& user, const std::string& node, const NodeRequestAttributes& attributes) {
  Value review = Value::object();
  review.set("apiVersion", Value::string("authorization.k8s.io/v1"));
  review.set("kind", Value::string("SubjectAccessReview"));
  Value spec = Value::object();
  Value resource = Value::object();
  resource.set("verb", Value::string(attributes.verb));
  resource.set("version", Value::string("v1"));
  resource.set("resource", Value::string("nodes"));
  resource.set("subresource", Value::string(attributes.subresource));
  resource.set("name", Value::string(node));
  spec.set("resourceAttributes", std::move(resource));
  spec.set("user", Value::string(user.name));
  if (!user.uid.empty()) spec.set("uid", Value::string(user.uid));
  if (!user.groups.empty()) spec.set("groups", stringArray(user.groups));
  review.set("spec", std::move(spec));
  const Value status = postReview(client_, "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                  review, "SubjectAccessReview");
  return {boolOf(status, "allowed") && !boolOf(status, "denied"), textOf(status, "reason")};
}

KubeletAuth::KubeletAuth(KubeletAuthOptions options, std::shared_ptr<AuthReviewer> reviewer)
    : options_(std::move(options)), reviewer_(std::move(reviewer)) {
  if (!reviewer_)
    throw std::runtime_error("kubelet auth: no TokenReview/SubjectAccessReview client");
  if (!options_.client_ca_pem.empty()) {
    for (auto& ca : splitPemBundle(options_.client_ca_pem))
      x509_.push_back(std::make_unique<apiserver::auth::X509Authenticator>(std::move(ca)));
    if (x509_.empty())
      throw std::runtime_error("kubelet auth: the client CA bundle holds no certificate");
  }
}

KubeletAuth::~KubeletAuth() = default;

std::chrono::steady_clock::time_point KubeletAuth::now() const {
  return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
}

bool KubeletAuth::lookup(std::unordered_map<std::string, Entry>& cache, const std::string& key,
                         Entry& out) {
  std::lock_guard lock(mu_);
  auto it = cache.find(key);
  if (it == cache.end()) return false;
  if (now() >= it->second.expires) {
    cache.erase(it);
    return false;
  }
  out = it->second;
  return true;
}

void KubeletAuth::remember(std::unordered_map<std::string, Entry>& cache, const std::string& key,
                           Entry entry) {
  std::lock_guard lock(mu_);
  if (cache.size() >= options_.max_cache_entries) cache.clear();
  cache[key] = std::move(entry);
}

KubeletAuth::Result KubeletAuth::check(const apiserver::HttpRequest& request) {
  Result result;
  // Authentication: the union of x509 and the token webhook; no anonymous requests.
  bool authenticated = false;
  std::string why;
  if (!request.client_certificate.empty() && !x509_.empty()) {
    for (const auto& x509 : x509_) {
      const auto r = x509->authenticate(
          {.bearer_token = {}, .client_certificate = request.client_certificate});
      if (r.outcome == apiserver::auth::AuthResult::Outcome::kAuthenticated) {
        result.user = {r.user.name, r.user.uid, r.user.groups};
        authenticated = true;
        break;
      }
      if (why.empty()) why = r.reason;
    }
  }
  constexpr std::string_view kBearer = "Bearer ";
  const std::string_view header = request.header("authorization");
  if (!authenticated && header.starts_with(kBearer) && header.size() > kBearer.size()) {
    const std::string token(header.substr(kBearer.size()));
    const std::string key = sha256Hex(token);
    Entry entry;
    if (!lookup(tokens_, key, entry)) {
      try {
        {
          std::lock_guard lock(mu_);
          ++token_reviews_;
        }
        AuthReviewer::TokenReview review = reviewer_->reviewToken(token);
        entry.yes = review.authenticated;
        entry.user = std::move(review.user);
        entry.reason = review.error.empty() ? "invalid bearer token" : review.error;
        entry.expires =
            now() + (entry.yes ? options_.authenticated_ttl : options_.unauthenticated_ttl);
        remember(tokens_, key, entry);
      } catch (const std::exception& e) {
        entry.yes = false;
        entry.reason = e.what();  // not cached: the next request asks again
      }
    }
    if (entry.yes) {
      result.user = std::move(entry.user);
      authenticated = true;
    } else {
      why = entry.reason;
    }
  }
  if (!authenticated) {
    result.status = 401;
    result.message = "Unauthorized";
    if (!why.empty())
      logFailure("401 " + request.method + " " + request.path + " from " + request.remote_address +
                 ": " + why);
    return result;
  }

  // Authorization: a SubjectAccessReview of nodes/<subresource> on this node.
  const NodeRequestAttributes attributes = nodeRequestAttributes(request.method, request.path);
  std::string key = result.user.name + '\0' + result.user.uid + '\0';
  for (const auto& g : result.user.groups)
    key += g + ',';
  key += '\0' + attributes.verb + '\0' + attributes.subresource;
  Entry entry;
  if (!lookup(access_, key, entry)) {
    try {
      {
        std::lock_guard lock(mu_);
        ++access_reviews_;
      }
      AuthReviewer::AccessReview review =
          reviewer_->reviewAccess(result.user, options_.node_name, attributes);
      entry.yes = review.allowed;
      entry.reason = std::move(review.reason);
      entry.expires = now() + (entry.yes ? options_.allowed_ttl : options_.denied_ttl);
      remember(access_, key, entry);
    } catch (const std::exception& e) {
      result.status = 500;
      result.message = "Authorization error (" + attributesText(result.user, attributes) + ")";
      logFailure(result.message + ": " + e.what());
      return result;
    }
  }
  if (!entry.yes) {
    result.status = 403;
    result.message = kubeletForbiddenMessage(result.user, attributes);
    logFailure("403 " + request.method + " " + request.path + " from " + request.remote_address +
               ": " + result.message + (entry.reason.empty() ? "" : ": " + entry.reason));
  }
  return result;
}

void KubeletAuth::logFailure(const std::string& line) {
  // At most 20 lines per 10 s, so that a client retrying a bad token cannot flood the log.
  {
    std::lock_guard lock(mu_);
    const auto t = now();
    if (t - log_window_ >= std::chrono::seconds(10)) {
      log_window_ = t;
      logged_ = 0;
    }
    if (++logged_ > 20) return;
  }
  std::cerr << "kubelet API: " << line << std::endl;
}

uint64_t KubeletAuth::tokenReviews() const {
  std::lock_guard lock(mu_);
  return token_reviews_;
}

uint64_t KubeletAuth::accessReviews() const {
  std::lock_guard lock(mu_);
  return access_reviews_;
}

}  // namespace skiff::kubelet

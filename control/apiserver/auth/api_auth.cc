#include "control/apiserver/auth/api_auth.h"

#include <sys/stat.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "control/api/codec.h"
#include "control/api/time.h"
#include "control/apiserver/auth/bootstrap_policy.h"
#include "control/apiserver/auth/bootstrap_token_authenticator.h"
#include "control/apiserver/auth/escalation.h"
#include "control/apiserver/auth/service_account_authenticator.h"
#include "control/apiserver/auth/token_authenticator.h"
#include "control/apiserver/auth/x509_authenticator.h"
#include "control/apiserver/errors.h"
#include "control/apiserver/object_meta.h"
#include "control/apiserver/pki.h"
#include "skiff/api/authentication_v1.pb.h"
#include "skiff/api/authorization_v1.pb.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::apiserver::auth {
namespace {

namespace authn = api::authentication::v1;
namespace authz = api::authorization::v1;

const api::ResourceType& typeOf(const char* group, const char* plural) {
  const auto* t = api::Registry::builtin().byResource(group, "v1", plural);
  if (t == nullptr) throw std::logic_error(std::string("no API type for ") + plural);
  return *t;
}

// The newest mod revision under a resource's prefix: what an index must have applied to hold
// everything written there so far (our own bootstrap writes included).
int64_t newestRevision(store::Store& store, const api::ResourceType& type) {
  int64_t newest = 0;
  for (const auto& kv : store.list(store::resourcePrefix(type.plural)).kvs)
    newest = std::max(newest, kv.mod_revision);
  return newest;
}

std::string bearerToken(const HttpRequest& request) {
  std::string_view header = request.header("authorization");
  if (header.size() > 7 && (header.substr(0, 7) == "Bearer " || header.substr(0, 7) == "bearer ")) {
    header.remove_prefix(7);
    while (!header.empty() && header.front() == ' ')
      header.remove_prefix(1);
    while (!header.empty() && (header.back() == ' ' || header.back() == '\r'))
      header.remove_suffix(1);
    return std::string(header);
  }
  return {};
}

Attributes attributesOf(const UserInfo& user, const RequestInfo& info) {
  Attributes a;
  a.user = user;
  a.verb = info.verb;
  a.resource_request = info.is_resource_request;
  a.path = info.path;
  if (info.is_resource_request) {
    a.namespace_ = info.namespace_;
    a.api_group = info.api_group;
    a.api_version = info.api_version;
    a.resource = info.resource;
    a.subresource = info.subresource;
    a.name = info.name;
  }
  return a;
}

// The object inside Kubernetes' protobuf envelope ("k8s\0" + runtime.Unknown, whose field 2 is
// the raw message), as typed clients (kubectl create token, auth can-i) send these kinds. Skiff's
// messages for them keep Kubernetes' field numbers, so the raw bytes parse as they are.
std::optional<std::string> protobufRaw(std::string_view body) {
  if (!body.starts_with(std::string_view("k8s\0", 4))) return std::nullopt;
  body.remove_prefix(4);
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(body.data()),
                                            static_cast<int>(body.size()));
  std::optional<std::string> raw;
  while (uint32_t tag = in.ReadTag()) {
    if (tag == ((2u << 3) | 2u)) {
      uint32_t length = 0;
      std::string bytes;
      if (!in.ReadVarint32(&length) || !in.ReadString(&bytes, static_cast<int>(length))) {
        return std::nullopt;
      }
      raw = std::move(bytes);
    } else if (!google::protobuf::internal::WireFormatLite::SkipField(&in, tag)) {
      return std::nullopt;
    }
  }
  return raw;
}

template <typename T>
T decodeBody(const HttpRequest& request, const char* kind) {
  T out;
  if (request.body.empty()) return out;
  if (request.header("content-type").starts_with("application/vnd.kubernetes.protobuf")) {
    auto raw = protobufRaw(request.body);
    if (!raw || !out.ParseFromString(*raw)) {
      throw badRequest(std::string(kind) + " in version \"v1\" cannot be handled as a " + kind +
                       ": malformed protobuf body");
    }
    return out;
  }
  try {
    api::decodeJson(request.body, out, {.unknown_fields = api::UnknownFields::kIgnore});
  } catch (const api::DecodeError& e) {
    throw badRequest(std::string(kind) + " in version \"v1\" cannot be handled as a " + kind +
                     ": " + e.what());
  }
  return out;
}

void respond(HttpResponse& response, int status, const google::protobuf::Message& object) {
  response.status = status;
  response.content_type = "application/json";
  response.body = api::encodeJson(object);
}

Attributes reviewAttributes(const authz::ResourceAttributes* resource,
                            const authz::NonResourceAttributes* non_resource, const char* kind) {
  Attributes a;
  if (resource != nullptr) {
    a.resource_request = true;
    a.verb = resource->verb();
    a.namespace_ = resource->namespace_();
    a.api_group = resource->group() == "*" ? "*" : resource->group();
    a.api_version = resource->version();
    a.resource = resource->resource();
    a.subresource = resource->subresource();
    a.name = resource->name();
  } else if (non_resource != nullptr) {
    a.path = non_resource->path();
    a.verb = non_resource->verb();
  } else {
    throw invalid(kind, "authorization.k8s.io", "",
                  {{"FieldValueRequired", "spec.resourceAttributes",
                    "Required value: exactly one of nonResourceAttributes or resourceAttributes "
                    "must be specified"}});
  }
  return a;
}

void setStatus(authz::SubjectAccessReviewStatus* status, const Decision& d) {
  status->set_allowed(d.allowed);
  if (!d.reason.empty()) status->set_reason(d.reason);
}

int64_t nowSeconds() {
  return api::now().seconds;
}

}  // namespace

ApiAuth::ApiAuth(store::Store& store, ApiAuthOptions options)
    : store_(store), options_(std::move(options)) {
  std::filesystem::path key_path(options_.service_account_key_file);
  if (key_path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(key_path.parent_path(), ec);
    if (!ec) ::chmod(key_path.parent_path().c_str(), 0700);
  }
  tokens_ = std::make_shared<ServiceAccountTokens>(
      ensureSigningKey(options_.service_account_key_file), options_.issuer, options_.api_audiences);

  chain_ = std::make_unique<AuthenticatorChain>();
  if (!options_.client_ca_pem.empty()) {
    chain_->add(std::make_unique<X509Authenticator>(options_.client_ca_pem));
  }
  if (!options_.token_file.empty()) {
    chain_->add(std::make_unique<TokenFileAuthenticator>(TokenFile::load(options_.token_file)));
  }
  chain_->add(std::make_unique<BootstrapTokenAuthenticator>(
      [this](std::string_view ns, std::string_view name) {
        return lookup(nullptr, "secrets", ns, name);
      }));
  chain_->add(std::make_unique<ServiceAccountAuthenticator>(
      tokens_,
      [this](std::string_view ns, std::string_view name) {
        return lookup(service_accounts_.get(), "serviceaccounts", ns, name);
      },
      [this](std::string_view ns, std::string_view name) {
        return lookup(pods_.get(), "pods", ns, name);
      }));
  node_ = std::make_unique<NodeAuthorizer>(
      [this](std::string_view node) {
        return pods_ ? pods_->indexed(node) : std::vector<ObjectPtr>{};
      },
      [this](std::string_view ns, std::string_view name) {
        return lookup(pods_.get(), "pods", ns, name);
      },
      [this](std::string_view ns, std::string_view name) {
        return lookup(nullptr, "persistentvolumeclaims", ns, name);
      },
      [this](std::string_view name) { return lookup(nullptr, "persistentvolumes", "", name); });
}

ApiAuth::~ApiAuth() {
  stop();
}

void ApiAuth::start() {
  ensureBootstrapPolicy(store_);
  auto index = [this](const char* group, const char* plural) {
    const api::ResourceType& type = typeOf(group, plural);
    WatchCache* cache = find_cache_ ? find_cache_(type) : nullptr;
    return cache != nullptr ? std::make_unique<ObjectIndex>(*cache)
                            : std::make_unique<ObjectIndex>(store_, type);
  };
  roles_ = index("rbac.authorization.k8s.io", "roles");
  cluster_roles_ = index("rbac.authorization.k8s.io", "clusterroles");
  role_bindings_ = index("rbac.authorization.k8s.io", "rolebindings");
  cluster_role_bindings_ = index("rbac.authorization.k8s.io", "clusterrolebindings");
  service_accounts_ = index("", "serviceaccounts");
  pods_ = index("", "pods");
  std::vector<ObjectIndex*> rbac = {roles_.get(), cluster_roles_.get(), role_bindings_.get(),
                                    cluster_role_bindings_.get()};
  for (auto* i : rbac)
    i->setOnChange([this] { rebuildPolicy(); });
  for (auto* i : {roles_.get(), cluster_roles_.get(), role_bindings_.get(),
                  cluster_role_bindings_.get(), service_accounts_.get(), pods_.get()}) {
    i->start();
  }
  // No request is authorized before the policy is complete: every RBAC index holds what the
  // store had once the bootstrap policy was written, the others their first list.
  auto fail = [this] {
    throw std::runtime_error(
        "authorization: the RBAC and service account indexes did not load from the store "
        "within " +
        std::to_string(options_.sync_timeout.count()) + " ms");
  };
  const char* plurals[] = {"roles", "clusterroles", "rolebindings", "clusterrolebindings"};
  for (size_t k = 0; k < rbac.size(); ++k) {
    int64_t newest = newestRevision(store_, typeOf("rbac.authorization.k8s.io", plurals[k]));
    if (!rbac[k]->waitSynced(options_.sync_timeout, newest)) fail();
  }
  for (auto* i : {service_accounts_.get(), pods_.get()}) {
    if (!i->waitSynced(options_.sync_timeout)) fail();
  }
  started_.store(true);
  rebuildPolicy();
}

void ApiAuth::stop() {
  started_.store(false);
  for (auto* index : {roles_.get(), cluster_roles_.get(), role_bindings_.get(),
                      cluster_role_bindings_.get(), service_accounts_.get(), pods_.get()}) {
    if (index != nullptr) index->stop();
  }
}

void ApiAuth::rebuildPolicy() {
  if (!started_.load()) return;  // start() builds the first snapshot once every index is loaded
  std::lock_guard lock(rebuild_mu_);
  auto policy = std::make_shared<PolicySnapshot>();
  for (const auto& o : cluster_roles_->list()) {
    const auto& r = dynamic_cast<const api::rbac::v1::ClusterRole&>(*o);
    policy->cluster_roles.emplace(r.metadata().name(), r);
  }
  for (const auto& o : roles_->list()) {
    const auto& r = dynamic_cast<const api::rbac::v1::Role&>(*o);
    policy->roles.emplace(r.metadata().namespace_() + "/" + r.metadata().name(), r);
  }
  for (const auto& o : cluster_role_bindings_->list()) {
    policy->cluster_role_bindings.push_back(
        dynamic_cast<const api::rbac::v1::ClusterRoleBinding&>(*o));
  }
  for (const auto& o : role_bindings_->list()) {
    policy->role_bindings.push_back(dynamic_cast<const api::rbac::v1::RoleBinding&>(*o));
  }
  rbac_.setPolicy(std::move(policy));
}

void ApiAuth::admitWrite(const HttpRequest& request, std::string_view ns,
                         const google::protobuf::Message& object,
                         const std::function<MessagePtr()>& current) const {
  if (!options_.enabled) return;
  const bool rbac = grantsPermissions(object);
  if (!rbac && !NodeAuthorizer::admits(object)) return;
  UserInfo user = authenticate(request);
  MessagePtr old = current ? current() : nullptr;
  try {
    if (rbac) {
      confirmNoEscalation(rbac_, user, ns, old.get(), object);
    } else {
      node_->admit(user, ns, object, old.get());
    }
  } catch (const ApiError& e) {
    logFailure("403 " + request.method + " " + request.path + " from " + request.remote_address +
               ": " + e.what());
    throw;
  }
}

ObjectPtr ApiAuth::lookup(ObjectIndex* index, const std::string& plural, std::string_view ns,
                          std::string_view name) const {
  if (index != nullptr) {
    if (ObjectPtr hit = index->get(ns, name)) return hit;
  }
  // The index may lag a create by a moment: only a miss goes to the store.
  ResourceStorage storage(store_, typeOf("", plural.c_str()));
  try {
    return storage.get(ns, name);
  } catch (const ApiError&) {
    return nullptr;
  }
}

void ApiAuth::logFailure(const std::string& line) const {
  constexpr int kPerWindow = 20;
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(log_mu_);
  if (now - log_window_ > std::chrono::seconds(10)) {
    if (suppressed_ > 0) {
      std::fprintf(stderr, "apiserver: %d more authentication/authorization failures not logged\n",
                   suppressed_);
    }
    log_window_ = now;
    logged_in_window_ = 0;
    suppressed_ = 0;
  }
  if (logged_in_window_ >= kPerWindow) {
    ++suppressed_;
    return;
  }
  ++logged_in_window_;
  std::fprintf(stderr, "apiserver: %s\n", line.c_str());
}

UserInfo ApiAuth::authenticate(const HttpRequest& request) const {
  if (!options_.enabled) return {"system:anonymous", "", {"system:unauthenticated"}};
  std::string token = bearerToken(request);
  Credentials credentials{token, request.client_certificate};
  AuthResult r = chain_->authenticate(credentials);
  if (r.outcome == AuthResult::Outcome::kAuthenticated) return impersonate(r.user, request);
  logFailure("401 " + request.method + " " + request.path + " from " + request.remote_address +
             ": " + (r.reason.empty() ? "no credentials" : r.reason));
  throw unauthorized();
}

UserInfo ApiAuth::impersonate(const UserInfo& requestor, const HttpRequest& request) const {
  // k8s.io/apiserver's WithImpersonation: every asked-for identity part is its own request,
  // authorized with the verb "impersonate".
  struct Part {
    std::string kind, ns, name, field;
  };
  std::vector<Part> parts;
  std::string user_header, uid_header;
  bool groups = false, extras = false;
  for (const auto& [name, value] : request.headers) {
    if (name == "impersonate-user" && user_header.empty()) {
      user_header = value;
    } else if (name == "impersonate-uid" && uid_header.empty()) {
      uid_header = value;
    }
  }
  if (user_header.empty() && uid_header.empty()) {
    bool any = std::any_of(request.headers.begin(), request.headers.end(), [](const auto& h) {
      return h.first == "impersonate-group" || h.first.starts_with("impersonate-extra-");
    });
    if (!any) return requestor;
  }
  if (!user_header.empty()) {
    std::string_view u = user_header;
    size_t colon = u.starts_with(kServiceAccountPrefix) ? u.find(':', kServiceAccountPrefix.size())
                                                        : std::string_view::npos;
    if (colon != std::string_view::npos && colon > kServiceAccountPrefix.size() &&
        colon + 1 < u.size() && u.find(':', colon + 1) == std::string_view::npos) {
      parts.push_back({"ServiceAccount",
                       std::string(u.substr(kServiceAccountPrefix.size(),
                                            colon - kServiceAccountPrefix.size())),
                       std::string(u.substr(colon + 1)), ""});
    } else {
      parts.push_back({"User", "", user_header, ""});
    }
  }
  for (const auto& [name, value] : request.headers) {
    if (name == "impersonate-group") {
      groups = true;
      parts.push_back({"Group", "", value, ""});
    } else if (name.starts_with("impersonate-extra-")) {
      extras = true;
      parts.push_back({"UserExtra", "", value, name.substr(18)});
    }
  }
  if (!uid_header.empty()) parts.push_back({"UID", "", uid_header, ""});
  if ((groups || extras || !uid_header.empty()) && user_header.empty()) {
    // Go's %v of the []ObjectReference, as kube-apiserver answers (500, InternalError).
    std::string list;
    for (const auto& p : parts) {
      if (!list.empty()) list += ' ';
      list += "{" + p.kind + " " + p.ns + " " + p.name + "    " + p.field + "}";
    }
    throw ApiError(
        500, "InternalError",
        "Internal error occurred: requested [" + list + "] without impersonating a user");
  }
  UserInfo acting;
  std::vector<std::string> group_list;
  for (const auto& p : parts) {
    Attributes a;
    a.user = requestor;
    a.verb = "impersonate";
    a.resource_request = true;
    a.namespace_ = p.ns;
    a.name = p.name;
    a.api_version = "v1";
    if (p.kind == "ServiceAccount") {
      a.resource = "serviceaccounts";
      acting.name = std::string(kServiceAccountPrefix) + p.ns + ":" + p.name;
      if (!groups) group_list = {"system:serviceaccounts", "system:serviceaccounts:" + p.ns};
    } else if (p.kind == "User") {
      a.resource = "users";
      acting.name = p.name;
    } else if (p.kind == "Group") {
      a.resource = "groups";
      group_list.push_back(p.name);
    } else if (p.kind == "UserExtra") {
      a.api_group = "authentication.k8s.io";
      a.resource = "userextras";
      a.subresource = p.field;  // extras are authorized; Skiff's UserInfo does not carry them
    } else {
      a.api_group = "authentication.k8s.io";
      a.resource = "uids";
      acting.uid = p.name;
    }
    if (!decide(a).allowed) {
      std::string message = forbiddenMessage(a);
      logFailure("403 " + request.method + " " + request.path + " from " + request.remote_address +
                 ": " + message);
      throw forbidden({a.api_group, a.resource}, a.name, message);
    }
  }
  // A non-anonymous user is also system:authenticated, unless the groups asked already say
  // system:authenticated or system:unauthenticated.
  bool anonymous = acting.name == "system:anonymous";
  std::string_view implied = anonymous ? "system:unauthenticated" : kSystemAuthenticated;
  bool add = std::none_of(group_list.begin(), group_list.end(), [&](const std::string& g) {
    return g == implied || (!anonymous && g == "system:unauthenticated");
  });
  if (add) group_list.emplace_back(implied);
  acting.groups = std::move(group_list);
  return acting;
}

Decision ApiAuth::decide(const Attributes& attributes) const {
  if (!options_.enabled) return {true, "authorization is off (plain HTTP)"};
  // Node, then RBAC (kube-apiserver's --authorization-mode=Node,RBAC); a node's denial is final.
  NodeAuthorizer::Result node = node_->authorize(attributes);
  if (node.verdict == NodeAuthorizer::Verdict::kAllow) {
    return {true, "node authorizer: an object of a pod bound to the node"};
  }
  if (node.verdict == NodeAuthorizer::Verdict::kDeny) return {false, node.reason};
  return rbac_.authorize(attributes);
}

void ApiAuth::authorize(const UserInfo& user, const RequestInfo& info,
                        const HttpRequest& request) const {
  Attributes a = attributesOf(user, info);
  Decision d = decide(a);
  if (d.allowed) return;
  std::string message = forbiddenMessage(a);
  if (!d.reason.empty()) message += ": " + d.reason;
  logFailure("403 " + request.method + " " + request.path + " from " + request.remote_address +
             ": " + message);
  if (!a.resource_request) throw ApiError(403, "Forbidden", "forbidden: " + message);
  throw forbidden({a.api_group, a.resource}, a.name, message);
}

bool ApiAuth::serve(const HttpRequest& request, const RequestInfo& info, const UserInfo& user,
                    HttpResponse& response) {
  if (!info.is_resource_request) return false;
  const std::string& g = info.api_group;
  const std::string& r = info.resource;
  bool ours =
      (g == "authorization.k8s.io" &&
       (r == "selfsubjectaccessreviews" || r == "subjectaccessreviews" ||
        r == "localsubjectaccessreviews" || r == "selfsubjectrulesreviews")) ||
      (g == "authentication.k8s.io" && (r == "selfsubjectreviews" || r == "tokenreviews")) ||
      (g.empty() && r == "serviceaccounts" && info.subresource == "token");
  if (!ours || info.api_version != "v1") return false;
  if (info.verb != "create") throw methodNotAllowed();
  if (r == "serviceaccounts") {
    tokenRequest(request, info, user, response);
    return true;
  }
  if (!info.subresource.empty() || !info.name.empty()) {
    throw ApiError(404, "NotFound", "the server could not find the requested resource");
  }
  if (r == "selfsubjectaccessreviews") {
    auto review = decodeBody<authz::SelfSubjectAccessReview>(request, "SelfSubjectAccessReview");
    const auto& spec = review.spec();
    Attributes a = reviewAttributes(
        spec.has_resource_attributes() ? &spec.resource_attributes() : nullptr,
        spec.has_non_resource_attributes() ? &spec.non_resource_attributes() : nullptr,
        "SelfSubjectAccessReview");
    a.user = user;
    setStatus(review.mutable_status(), decide(a));
    respond(response, 201, review);
  } else if (r == "subjectaccessreviews" || r == "localsubjectaccessreviews") {
    bool local = r == "localsubjectaccessreviews";
    const char* kind = local ? "LocalSubjectAccessReview" : "SubjectAccessReview";
    authz::SubjectAccessReview review;
    authz::LocalSubjectAccessReview local_review;
    authz::SubjectAccessReviewSpec spec;
    if (local) {
      local_review = decodeBody<authz::LocalSubjectAccessReview>(request, kind);
      spec = local_review.spec();
      if (spec.has_resource_attributes() &&
          spec.resource_attributes().namespace_() != info.namespace_) {
        throw invalid(kind, "authorization.k8s.io", "",
                      {{"FieldValueInvalid", "spec.resourceAttributes.namespace",
                        "Invalid value: \"" + spec.resource_attributes().namespace_() +
                            "\": must match metadata.namespace"}});
      }
      if (spec.has_non_resource_attributes()) {
        throw invalid(kind, "authorization.k8s.io", "",
                      {{"FieldValueInvalid", "spec.nonResourceAttributes",
                        "Invalid value: disallowed on this kind of request"}});
      }
    } else {
      review = decodeBody<authz::SubjectAccessReview>(request, kind);
      spec = review.spec();
    }
    if (spec.user().empty() && spec.groups().empty()) {
      throw invalid(kind, "authorization.k8s.io", "",
                    {{"FieldValueRequired", "spec.user",
                      "Required value: at least one of user or group must be specified"}});
    }
    Attributes a = reviewAttributes(
        spec.has_resource_attributes() ? &spec.resource_attributes() : nullptr,
        spec.has_non_resource_attributes() ? &spec.non_resource_attributes() : nullptr, kind);
    a.user = {spec.user(), spec.uid(), {spec.groups().begin(), spec.groups().end()}};
    Decision d = decide(a);
    if (local) {
      setStatus(local_review.mutable_status(), d);
      local_review.mutable_metadata()->set_namespace_(info.namespace_);
      respond(response, 201, local_review);
    } else {
      setStatus(review.mutable_status(), d);
      respond(response, 201, review);
    }
  } else if (r == "selfsubjectrulesreviews") {
    auto review = decodeBody<authz::SelfSubjectRulesReview>(request, "SelfSubjectRulesReview");
    if (review.spec().namespace_().empty()) {
      throw invalid("SelfSubjectRulesReview", "authorization.k8s.io", "",
                    {{"FieldValueRequired", "spec.namespace", "Required value"}});
    }
    auto* status = review.mutable_status();
    if (!options_.enabled || user.inGroup(kSystemMasters)) {
      auto* all = status->add_resource_rules();
      all->add_verbs("*");
      all->add_api_groups("*");
      all->add_resources("*");
      auto* urls = status->add_non_resource_rules();
      urls->add_verbs("*");
      urls->add_non_resource_urls("*");
    }
    if (options_.enabled) {
      rbac_.visitRules(user, review.spec().namespace_(),
                       [&](const PolicyRule& rule, const std::string&) {
                         if (!rule.non_resource_urls().empty()) {
                           auto* out = status->add_non_resource_rules();
                           *out->mutable_verbs() = rule.verbs();
                           *out->mutable_non_resource_urls() = rule.non_resource_urls();
                         }
                         if (!rule.resources().empty()) {
                           auto* out = status->add_resource_rules();
                           *out->mutable_verbs() = rule.verbs();
                           *out->mutable_api_groups() = rule.api_groups();
                           *out->mutable_resources() = rule.resources();
                           *out->mutable_resource_names() = rule.resource_names();
                         }
                         return true;
                       });
    }
    status->set_incomplete(false);
    respond(response, 201, review);
  } else if (r == "selfsubjectreviews") {
    authn::SelfSubjectReview review;
    review.mutable_metadata()->mutable_creation_timestamp();
    auto* info_out = review.mutable_status()->mutable_user_info();
    info_out->set_username(user.name);
    if (!user.uid.empty()) info_out->set_uid(user.uid);
    for (const auto& group : user.groups)
      info_out->add_groups(group);
    respond(response, 201, review);
  } else if (r == "tokenreviews") {
    auto review = decodeBody<authn::TokenReview>(request, "TokenReview");
    if (review.spec().token().empty()) {
      throw invalid("TokenReview", "authentication.k8s.io", "",
                    {{"FieldValueRequired", "spec.token", "Required value"}});
    }
    AuthResult result = chain_->authenticate({review.spec().token(), {}});
    auto* status = review.mutable_status();
    status->set_authenticated(result.outcome == AuthResult::Outcome::kAuthenticated);
    if (status->authenticated()) {
      status->mutable_user()->set_username(result.user.name);
      status->mutable_user()->set_uid(result.user.uid);
      for (const auto& group : result.user.groups)
        status->mutable_user()->add_groups(group);
      for (const auto& a : tokens_->audiences())
        status->add_audiences(a);
    } else {
      status->set_error(result.reason.empty() ? "invalid bearer token" : result.reason);
    }
    respond(response, 201, review);
  }
  return true;
}

void ApiAuth::tokenRequest(const HttpRequest& request, const RequestInfo& info,
                           const UserInfo& user, HttpResponse& response) {
  const std::string& ns = info.namespace_;
  const std::string& name = info.name;
  if (ns.empty() || name.empty()) {
    throw ApiError(404, "NotFound", "the server could not find the requested resource");
  }
  ResourceStorage service_accounts(store_, typeOf("", "serviceaccounts"));
  MessagePtr sa = service_accounts.get(ns, name);  // 404 when missing
  auto review = decodeBody<authn::TokenRequest>(request, "TokenRequest");
  // NodeRestriction: a node's token requests must be bound to a pod scheduled on that node.
  constexpr std::string_view kNodePrefix = "system:node:";
  if (user.inGroup("system:nodes") && user.name.starts_with(kNodePrefix)) {
    const std::string node = user.name.substr(kNodePrefix.size());
    const GroupResource accounts{"", "serviceaccounts"};
    const auto& ref = review.spec().bound_object_ref();
    if (!review.spec().has_bound_object_ref() || ref.api_version() != "v1" || ref.kind() != "Pod" ||
        ref.name().empty()) {
      throw forbidden(accounts, name, "node requested token not bound to a pod");
    }
    if (ref.uid().empty()) {
      throw forbidden(accounts, name, "node requested token with a pod binding without a uid");
    }
    MessagePtr object = ResourceStorage(store_, typeOf("", "pods")).get(ns, ref.name());
    if (ref.uid() != meta(*object).uid()) {
      throw forbidden(accounts, name,
                      "the UID in the bound object reference (" + ref.uid() +
                          ") does not match the UID in record. The object might have been "
                          "deleted and then recreated");
    }
    if (dynamic_cast<const api::core::v1::Pod&>(*object).spec().node_name() != node) {
      throw forbidden(accounts, name,
                      "node requested token bound to a pod scheduled on a different node");
    }
  }
  auto* spec = review.mutable_spec();
  int64_t seconds = spec->expiration_seconds();
  if (seconds == 0) seconds = options_.default_token_seconds;
  if (seconds < 600) {
    throw invalid("TokenRequest", "authentication.k8s.io", name,
                  {{"FieldValueInvalid", "spec.expirationSeconds",
                    "Invalid value: " + std::to_string(seconds) +
                        ": may not specify a duration less than 10 minutes"}});
  }
  seconds = std::min(seconds, options_.max_token_seconds);
  spec->set_expiration_seconds(seconds);
  if (spec->audiences().empty()) {
    for (const auto& a : tokens_->audiences())
      spec->add_audiences(a);
  }
  ServiceAccountClaims claims;
  claims.ns = ns;
  claims.name = name;
  claims.uid = meta(*sa).uid();
  claims.audiences.assign(spec->audiences().begin(), spec->audiences().end());
  if (spec->has_bound_object_ref()) {
    const auto& ref = spec->bound_object_ref();
    if (ref.kind() != "Pod" && ref.kind() != "Secret") {
      throw badRequest("cannot bind token to object of type " + ref.kind());
    }
    bool pod = ref.kind() == "Pod";
    ResourceStorage objects(store_, typeOf("", pod ? "pods" : "secrets"));
    MessagePtr object = objects.get(ns, ref.name());  // 404 when missing
    if (!ref.uid().empty() && ref.uid() != meta(*object).uid()) {
      throw conflict({"", pod ? "pods" : "secrets"}, ref.name(),
                     "the UID in the bound object reference (" + ref.uid() +
                         ") does not match the UID in record (" + meta(*object).uid() + ")");
    }
    if (pod) {
      const auto& p = dynamic_cast<const api::core::v1::Pod&>(*object);
      std::string pod_sa =
          p.spec().service_account_name().empty() ? "default" : p.spec().service_account_name();
      if (pod_sa != name) {
        throw badRequest("cannot bind token for serviceaccount \"" + name +
                         "\" to pod running with different serviceaccount name.");
      }
      claims.pod_name = ref.name();
      claims.pod_uid = meta(*object).uid();
      claims.node_name = p.spec().node_name();
    } else {
      claims.secret_name = ref.name();
      claims.secret_uid = meta(*object).uid();
    }
  }
  claims.issued_at = nowSeconds();
  claims.not_before = claims.issued_at;
  claims.expires_at = claims.issued_at + seconds;
  std::string token = tokens_->issue(claims);
  auto* m = review.mutable_metadata();
  m->set_name(name);
  m->set_namespace_(ns);
  m->mutable_creation_timestamp()->set_seconds(claims.issued_at);
  review.mutable_status()->set_token(token);
  review.mutable_status()->mutable_expiration_timestamp()->set_seconds(claims.expires_at);
  respond(response, 201, review);
}

}  // namespace skiff::apiserver::auth

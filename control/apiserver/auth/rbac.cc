#include "control/apiserver/auth/rbac.h"

#include <algorithm>

namespace skiff::apiserver::auth {
namespace {

template <typename List>
bool contains(const List& list, std::string_view value) {
  return std::any_of(list.begin(), list.end(), [&](const std::string& s) { return s == value; });
}

std::string describeSubject(const UserInfo& user) {
  return "User \"" + user.name + "\"";
}

}  // namespace

bool UserInfo::inGroup(std::string_view group) const {
  return std::find(groups.begin(), groups.end(), group) != groups.end();
}

std::string forbiddenMessage(const Attributes& a) {
  if (!a.resource_request) {
    return "User \"" + a.user.name + "\" cannot " + a.verb + " path \"" + a.path + "\"";
  }
  std::string resource = a.resource;
  if (!a.subresource.empty()) resource += "/" + a.subresource;
  std::string head = "User \"" + a.user.name + "\" cannot " + a.verb + " resource \"" + resource +
                     "\" in API group \"" + a.api_group + "\"";
  if (!a.namespace_.empty()) return head + " in the namespace \"" + a.namespace_ + "\"";
  return head + " at the cluster scope";
}

bool verbMatches(const PolicyRule& rule, std::string_view verb) {
  return contains(rule.verbs(), "*") || contains(rule.verbs(), verb);
}

bool apiGroupMatches(const PolicyRule& rule, std::string_view group) {
  return contains(rule.api_groups(), "*") || contains(rule.api_groups(), group);
}

bool resourceMatches(const PolicyRule& rule, std::string_view resource,
                     std::string_view subresource) {
  std::string combined(resource);
  if (!subresource.empty()) combined += "/" + std::string(subresource);
  for (const auto& r : rule.resources()) {
    if (r == "*" || r == combined) return true;
    // "*/status": this subresource of any resource.
    if (!subresource.empty() && r.size() == subresource.size() + 2 && r.starts_with("*/") &&
        std::string_view(r).substr(2) == subresource) {
      return true;
    }
  }
  return false;
}

bool resourceNameMatches(const PolicyRule& rule, std::string_view name) {
  if (rule.resource_names().empty()) return true;
  return !name.empty() && contains(rule.resource_names(), name);
}

bool nonResourceUrlMatches(const PolicyRule& rule, std::string_view path) {
  for (const auto& url : rule.non_resource_urls()) {
    if (url == "*" || url == path) return true;
    if (url.ends_with('*') && path.starts_with(std::string_view(url).substr(0, url.size() - 1))) {
      return true;
    }
  }
  return false;
}

bool ruleAllows(const PolicyRule& rule, const Attributes& a) {
  if (!verbMatches(rule, a.verb)) return false;
  if (!a.resource_request) return nonResourceUrlMatches(rule, a.path);
  return apiGroupMatches(rule, a.api_group) && resourceMatches(rule, a.resource, a.subresource) &&
         resourceNameMatches(rule, a.name);
}

bool subjectMatches(const api::rbac::v1::Subject& subject, const UserInfo& user,
                    std::string_view binding_namespace) {
  if (subject.kind() == "User") return subject.name() == user.name;
  if (subject.kind() == "Group") return user.inGroup(subject.name());
  if (subject.kind() == "ServiceAccount") {
    std::string ns = subject.namespace_();
    if (ns.empty()) ns = binding_namespace;
    if (ns.empty()) return false;
    return user.name == std::string(kServiceAccountPrefix) + ns + ":" + subject.name();
  }
  return false;
}

const google::protobuf::RepeatedPtrField<PolicyRule>* PolicySnapshot::rulesOf(
    const api::rbac::v1::RoleRef& ref, std::string_view binding_namespace) const {
  if (ref.kind() == "ClusterRole") {
    auto it = cluster_roles.find(ref.name());
    return it == cluster_roles.end() ? nullptr : &it->second.rules();
  }
  if (ref.kind() == "Role" && !binding_namespace.empty()) {
    auto it = roles.find(std::string(binding_namespace) + "/" + ref.name());
    return it == roles.end() ? nullptr : &it->second.rules();
  }
  return nullptr;
}

void RbacAuthorizer::setPolicy(PolicySnapshotPtr policy) {
  std::lock_guard lock(mu_);
  policy_ = std::move(policy);
}

PolicySnapshotPtr RbacAuthorizer::policy() const {
  std::lock_guard lock(mu_);
  return policy_;
}

void RbacAuthorizer::visitRules(
    const UserInfo& user, std::string_view ns,
    const std::function<bool(const PolicyRule&, const std::string& source)>& visit) const {
  PolicySnapshotPtr p = policy();
  for (const auto& binding : p->cluster_role_bindings) {
    bool applies = std::any_of(binding.subjects().begin(), binding.subjects().end(),
                               [&](const auto& s) { return subjectMatches(s, user, ""); });
    if (!applies) continue;
    const auto* rules = p->rulesOf(binding.role_ref(), "");
    if (rules == nullptr) continue;
    std::string source = "ClusterRoleBinding \"" + binding.metadata().name() + "\" of " +
                         binding.role_ref().kind() + " \"" + binding.role_ref().name() + "\"";
    for (const auto& rule : *rules) {
      if (!visit(rule, source)) return;
    }
  }
  if (ns.empty()) return;
  for (const auto& binding : p->role_bindings) {
    if (binding.metadata().namespace_() != ns) continue;
    bool applies = std::any_of(binding.subjects().begin(), binding.subjects().end(),
                               [&](const auto& s) { return subjectMatches(s, user, ns); });
    if (!applies) continue;
    const auto* rules = p->rulesOf(binding.role_ref(), ns);
    if (rules == nullptr) continue;
    std::string source = "RoleBinding \"" + binding.metadata().name() + "/" + std::string(ns) +
                         "\" of " + binding.role_ref().kind() + " \"" + binding.role_ref().name() +
                         "\"";
    for (const auto& rule : *rules) {
      if (!visit(rule, source)) return;
    }
  }
}

Decision RbacAuthorizer::authorize(const Attributes& a) const {
  if (a.user.inGroup(kSystemMasters)) {
    return {true, "allowed by group \"" + std::string(kSystemMasters) + "\""};
  }
  Decision decision;
  visitRules(a.user, a.namespace_, [&](const PolicyRule& rule, const std::string& source) {
    if (!ruleAllows(rule, a)) return true;
    decision = {true, "RBAC: allowed by " + source + " to " + describeSubject(a.user)};
    return false;
  });
  return decision;
}

}  // namespace skiff::apiserver::auth

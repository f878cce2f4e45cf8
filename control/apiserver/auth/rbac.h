#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "control/apiserver/auth/authorizer.h"
#include "skiff/api/rbac_v1.pb.h"

// Kubernetes' RBAC authorizer (plugin/pkg/auth/authorizer/rbac): a request is allowed when a
// ClusterRoleBinding, or a RoleBinding in the request's namespace, binds one of the user's
// subjects to a role with a rule that covers it; otherwise denied. Members of system:masters are
// allowed everything without a look at the policy, as kube-apiserver's privileged group is.
//
// The policy is an immutable snapshot swapped in whole (rbac_policy_index.h builds it from the
// store's watch), so authorize() takes no lock beyond copying one shared pointer.

namespace skiff::apiserver::auth {

using api::rbac::v1::PolicyRule;

// ---------------------------------------------------------------------------------- matchers
// Pure functions, as Kubernetes' rbac/v1 helpers define them.
bool verbMatches(const PolicyRule& rule, std::string_view verb);
bool apiGroupMatches(const PolicyRule& rule, std::string_view group);
// `resource` alone or with its subresource ("pods", "pods/log"); rules may say "*", "pods",
// "pods/log" or "*/log".
bool resourceMatches(const PolicyRule& rule, std::string_view resource,
                     std::string_view subresource);
// An empty resourceNames allows every name; otherwise the request must name one of them.
bool resourceNameMatches(const PolicyRule& rule, std::string_view name);
// "*", the exact path, or a prefix ending in "*" ("/healthz/*").
bool nonResourceUrlMatches(const PolicyRule& rule, std::string_view path);
bool ruleAllows(const PolicyRule& rule, const Attributes& attributes);
// `binding_namespace`: a ServiceAccount subject without a namespace means the binding's own
// (RoleBindings only).
bool subjectMatches(const api::rbac::v1::Subject& subject, const UserInfo& user,
                    std::string_view binding_namespace);

// --------------------------------------------------------------------------------- the policy

struct PolicySnapshot {
  std::map<std::string, api::rbac::v1::ClusterRole, std::less<>> cluster_roles;  // by name
  std::map<std::string, api::rbac::v1::Role, std::less<>> roles;                 // "ns/name"
  std::vector<api::rbac::v1::ClusterRoleBinding> cluster_role_bindings;
  std::vector<api::rbac::v1::RoleBinding> role_bindings;

  // The rules of a binding's roleRef (nullptr when the role does not exist).
  const google::protobuf::RepeatedPtrField<PolicyRule>* rulesOf(
      const api::rbac::v1::RoleRef& ref, std::string_view binding_namespace) const;
};
using PolicySnapshotPtr = std::shared_ptr<const PolicySnapshot>;

class RbacAuthorizer : public Authorizer {
 public:
  RbacAuthorizer() : policy_(std::make_shared<PolicySnapshot>()) {}

  Decision authorize(const Attributes& attributes) const override;
  // Calls `visit` with every rule that applies to `user` in `ns` (cluster-wide rules included);
  // visit returns false to stop. For SelfSubjectRulesReview.
  void visitRules(
      const UserInfo& user, std::string_view ns,
      const std::function<bool(const PolicyRule&, const std::string& source)>& visit) const;

  void setPolicy(PolicySnapshotPtr policy);
  PolicySnapshotPtr policy() const;

 private:
  mutable std::mutex mu_;
  PolicySnapshotPtr policy_;
};

}  // namespace skiff::apiserver::auth

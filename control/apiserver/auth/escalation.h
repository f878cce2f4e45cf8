#pragma once

#include <google/protobuf/message.h>

#include <string>
#include <string_view>
#include <vector>

#include "control/apiserver/auth/rbac.h"

// Kubernetes' RBAC privilege-escalation prevention (pkg/registry/rbac/validation and the
// "policybased" storages of the four RBAC kinds): a user may create or update
//   - a Role or ClusterRole only with rules it already holds (in the Role's namespace; cluster
//     wide for a ClusterRole), or with the `escalate` verb on roles/clusterroles; an
//     aggregationRule needs cluster-admin's full authority;
//   - a RoleBinding or ClusterRoleBinding only to a role whose rules it holds, or with the `bind`
//     verb on that role (roles/clusterroles, resourceNames the role's name).
// Members of system:masters always may. The 403 says what is missing, in Kubernetes' words:
//   clusterroles.rbac.authorization.k8s.io "x" is forbidden: user "jane" (groups=["developers"
//   "system:authenticated"]) is attempting to grant RBAC permissions not currently held:
//   {APIGroups:[""], Resources:["secrets"], Verbs:["get"]}

namespace skiff::apiserver::auth {

// One rule per group x resource x verb (x name), and per URL x verb (BreakdownRule).
std::vector<PolicyRule> breakdownRule(const PolicyRule& rule);
// Whether `owner` allows everything `requested` does (ruleCovers).
bool ruleCovers(const PolicyRule& owner, const PolicyRule& requested);
// The broken-down parts of `requested` that no rule of `owner` covers (Covers).
std::vector<PolicyRule> uncoveredRules(const std::vector<PolicyRule>& owner,
                                       const std::vector<PolicyRule>& requested);
// Rules of one group and resource that differ only by verbs, merged (CompactRules).
std::vector<PolicyRule> compactRules(const std::vector<PolicyRule>& rules);
// {APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]} (PolicyRule.CompactString).
std::string compactString(const PolicyRule& rule);

// Whether `object` is one of the four RBAC kinds (what confirmNoEscalation checks).
bool grantsPermissions(const google::protobuf::Message& object);

// Throws ApiError 403 unless `user` may write `object` (a Role, ClusterRole, RoleBinding or
// ClusterRoleBinding; other kinds pass) in `ns`. `old` is the stored object of an update
// (nullptr on create): an update that changes only ownerReferences and finalizers (the garbage
// collector's) is not checked, as Kubernetes does.
void confirmNoEscalation(const RbacAuthorizer& rbac, const UserInfo& user, std::string_view ns,
                         const google::protobuf::Message* old,
                         const google::protobuf::Message& object);

}  // namespace skiff::apiserver::auth

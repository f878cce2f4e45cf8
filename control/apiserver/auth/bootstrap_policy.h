#pragma once

#include <vector>

#include "control/store/store.h"
#include "skiff/api/rbac_v1.pb.h"

// The ClusterRoles and ClusterRoleBindings every cluster starts with, after Kubernetes'
// plugin/pkg/auth/authorizer/rbac/bootstrappolicy, cut to the API Skiff serves:
//   cluster-admin (bound to system:masters), admin, edit, view (for RoleBindings),
//   system:discovery, system:basic-user, system:public-info-viewer (bound to
//   system:authenticated; the last to system:unauthenticated too),
//   system:node (bound to the group system:nodes: kubelets with their own identity),
//   system:kube-scheduler, system:kube-controller-manager (bound to those users, for components
//   that run with tokens of their own; the in-process ones use the admin's).
// Each carries rbac.authorization.kubernetes.io/autoupdate: "true": the apiserver puts its rules
// back on start unless an operator set the annotation to "false".

namespace skiff::apiserver::auth {

std::vector<api::rbac::v1::ClusterRole> bootstrapClusterRoles();
std::vector<api::rbac::v1::ClusterRoleBinding> bootstrapClusterRoleBindings();

// Creates what is missing and reconciles what carries autoupdate "true". Throws ApiError when
// the store fails.
void ensureBootstrapPolicy(store::Store& store);

}  // namespace skiff::apiserver::auth

#include "control/apiserver/auth/bootstrap_policy.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <initializer_list>
#include <string>

#include "control/api/registry.h"
#include "control/apiserver/resource_storage.h"

namespace skiff::apiserver::auth {
namespace {

using api::rbac::v1::ClusterRole;
using api::rbac::v1::ClusterRoleBinding;
using api::rbac::v1::PolicyRule;
using List = std::initializer_list<const char*>;

constexpr const char* kAutoUpdate = "rbac.authorization.kubernetes.io/autoupdate";

PolicyRule rule(List verbs, List groups, List resources) {
  PolicyRule r;
  for (const char* v : verbs)
    r.add_verbs(v);
  for (const char* g : groups)
    r.add_api_groups(g);
  for (const char* res : resources)
    r.add_resources(res);
  return r;
}

PolicyRule urls(List verbs, List paths) {
  PolicyRule r;
  for (const char* v : verbs)
    r.add_verbs(v);
  for (const char* p : paths)
    r.add_non_resource_urls(p);
  return r;
}

ClusterRole role(const char* name, std::initializer_list<PolicyRule> rules) {
  ClusterRole r;
  r.mutable_metadata()->set_name(name);
  (*r.mutable_metadata()->mutable_labels())["kubernetes.io/bootstrapping"] = "rbac-defaults";
  (*r.mutable_metadata()->mutable_annotations())[kAutoUpdate] = "true";
  for (const auto& x : rules)
    *r.add_rules() = x;
  return r;
}

ClusterRoleBinding binding(const char* name, const char* role_name,
                           std::initializer_list<std::pair<const char*, const char*>> subjects) {
  ClusterRoleBinding b;
  b.mutable_metadata()->set_name(name);
  (*b.mutable_metadata()->mutable_labels())["kubernetes.io/bootstrapping"] = "rbac-defaults";
  (*b.mutable_metadata()->mutable_annotations())[kAutoUpdate] = "true";
  b.mutable_role_ref()->set_api_group("rbac.authorization.k8s.io");
  b.mutable_role_ref()->set_kind("ClusterRole");
  b.mutable_role_ref()->set_name(role_name);
  for (const auto& [kind, subject] : subjects) {
    auto* s = b.add_subjects();
    s->set_kind(kind);
    s->set_api_group("rbac.authorization.k8s.io");
    s->set_name(subject);
  }
  return b;
}

const List kReadVerbs = {"get", "list", "watch"};
const List kWriteVerbs = {"create", "delete", "deletecollection", "patch", "update"};
const List kAllVerbs = {"create", "delete", "deletecollection", "get",
                        "list",   "patch",  "update",           "watch"};

// What edit and admin may change in a namespace (and view read, secrets aside).
std::vector<PolicyRule> namespacedRules(List verbs, bool secrets) {
  std::vector<PolicyRule> rules = {
      rule(verbs, {""},
           {"pods",
            "pods/attach",
            "pods/exec",
            "pods/portforward",
            "pods/proxy",
            "pods/log",
            "pods/status",
            "configmaps",
            "endpoints",
            "events",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "replicationcontrollers/status",
            "serviceaccounts",
            "services",
            "services/proxy",
            "services/status",
            "limitranges",
            "resourcequotas"}),
      rule(verbs, {"apps"},
           {"controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
            "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
            "replicasets/status", "statefulsets", "statefulsets/scale", "statefulsets/status"}),
      rule(verbs, {"batch"}, {"cronjobs", "cronjobs/status", "jobs", "jobs/status"}),
      rule(verbs, {"autoscaling"}, {"horizontalpodautoscalers"}),
      rule(verbs, {"discovery.k8s.io"}, {"endpointslices"}),
      rule(verbs, {"coordination.k8s.io"}, {"leases"}),
  };
  if (secrets) rules.push_back(rule(verbs, {""}, {"secrets"}));
  return rules;
}

constexpr const char* kToAdmin = "rbac.authorization.k8s.io/aggregate-to-admin";
constexpr const char* kToEdit = "rbac.authorization.k8s.io/aggregate-to-edit";
constexpr const char* kToView = "rbac.authorization.k8s.io/aggregate-to-view";

ClusterRole labelled(ClusterRole r, const char* label) {
  (*r.mutable_metadata()->mutable_labels())[label] = "true";
  return r;
}

ClusterRole aggregating(ClusterRole r, const char* label) {
  auto* selector = r.mutable_aggregation_rule()->add_cluster_role_selectors();
  (*selector->mutable_match_labels())[label] = "true";
  return r;
}

// What the aggregation controller writes (control/controllers/clusterrole_aggregation_*): the
// rules of the roles whose labels match, in name order, each once. Only matchLabels are used here.
void aggregateFrom(ClusterRole& r, const std::vector<ClusterRole>& all) {
  if (!r.has_aggregation_rule()) return;
  std::vector<const ClusterRole*> sources;
  for (const auto& other : all) {
    if (other.metadata().name() == r.metadata().name()) continue;
    for (const auto& selector : r.aggregation_rule().cluster_role_selectors()) {
      bool match = true;
      for (const auto& [k, v] : selector.match_labels()) {
        auto it = other.metadata().labels().find(k);
        match = match && it != other.metadata().labels().end() && it->second == v;
      }
      if (match) {
        sources.push_back(&other);
        break;
      }
    }
  }
  std::sort(sources.begin(), sources.end(), [](const ClusterRole* a, const ClusterRole* b) {
    return a->metadata().name() < b->metadata().name();
  });
  r.clear_rules();
  for (const ClusterRole* source : sources) {
    for (const auto& x : source->rules()) {
      bool seen = std::any_of(r.rules().begin(), r.rules().end(), [&](const PolicyRule& y) {
        return google::protobuf::util::MessageDifferencer::Equals(x, y);
      });
      if (!seen) *r.add_rules() = x;
    }
  }
}

ClusterRole withRules(ClusterRole r, const std::vector<PolicyRule>& rules) {
  for (const auto& x : rules)
    *r.add_rules() = x;
  return r;
}

template <typename T>
void ensureAll(store::Store& store, const char* plural, const std::vector<T>& objects) {
  const auto* type = api::Registry::builtin().byResource("rbac.authorization.k8s.io", "v1", plural);
  ResourceStorage storage(store, *type);
  for (const auto& object : objects) {
    try {
      storage.create("", std::make_unique<T>(object), false);
      continue;
    } catch (const ApiError& e) {
      if (e.code() != 409) throw;
    }
    MessagePtr current = storage.get("", object.metadata().name());
    auto& existing = dynamic_cast<T&>(*current);
    auto it = existing.metadata().annotations().find(kAutoUpdate);
    if (it != existing.metadata().annotations().end() && it->second == "false") continue;
    T wanted = existing;
    if constexpr (std::is_same_v<T, ClusterRole>) {
      for (const auto& [k, v] : object.metadata().labels())
        (*wanted.mutable_metadata()->mutable_labels())[k] = v;
      if (object.has_aggregation_rule()) {
        // The aggregation controller owns the rules; they are only filled when missing.
        *wanted.mutable_aggregation_rule() = object.aggregation_rule();
        if (wanted.rules().empty()) *wanted.mutable_rules() = object.rules();
      } else {
        wanted.clear_aggregation_rule();
        *wanted.mutable_rules() = object.rules();
      }
    } else {
      *wanted.mutable_subjects() = object.subjects();
      *wanted.mutable_role_ref() = object.role_ref();
    }
    if (google::protobuf::util::MessageDifferencer::Equals(wanted, existing)) continue;
    try {
      storage.update("", object.metadata().name(), std::make_unique<T>(wanted), false, false);
    } catch (const ApiError& e) {
      if (e.code() != 409) throw;  // another apiserver reconciled it meanwhile
    }
  }
}

}  // namespace

std::vector<ClusterRole> bootstrapClusterRoles() {
  std::vector<ClusterRole> roles;
  roles.push_back(role("cluster-admin", {rule({"*"}, {"*"}, {"*"}), urls({"*"}, {"*"})}));
  // admin, edit and view aggregate, as Kubernetes' do: view gathers aggregate-to-view, edit
  // aggregate-to-edit (view among them), admin aggregate-to-admin (edit among them). Their rules
  // are written aggregated already, so an apiserver without the controller manager has them.
  ClusterRole to_view = withRules(labelled(role("system:aggregate-to-view", {}), kToView),
                                  namespacedRules(kReadVerbs, false));
  *to_view.add_rules() = rule(kReadVerbs, {""}, {"namespaces", "namespaces/status"});
  ClusterRole to_edit = withRules(labelled(role("system:aggregate-to-edit", {}), kToEdit),
                                  namespacedRules(kWriteVerbs, true));
  *to_edit.add_rules() = rule(kReadVerbs, {""}, {"secrets"});
  *to_edit.add_rules() = rule({"create"}, {""}, {"serviceaccounts/token"});
  ClusterRole to_admin = labelled(role("system:aggregate-to-admin", {}), kToAdmin);
  *to_admin.add_rules() = rule(kAllVerbs, {"rbac.authorization.k8s.io"}, {"roles", "rolebindings"});
  *to_admin.add_rules() = rule({"create"}, {"authorization.k8s.io"}, {"localsubjectaccessreviews"});
  ClusterRole view = aggregating(labelled(role("view", {}), kToEdit), kToView);
  ClusterRole edit = aggregating(labelled(role("edit", {}), kToAdmin), kToEdit);
  ClusterRole admin = aggregating(role("admin", {}), kToAdmin);
  std::vector<ClusterRole> aggregation = {to_view, to_edit, to_admin, view, edit, admin};
  for (int round = 0; round < 3; ++round) {  // the chain is three deep
    for (auto& r : aggregation)
      aggregateFrom(r, aggregation);
  }
  for (auto& r : aggregation)
    roles.push_back(std::move(r));
  roles.push_back(
      role("system:discovery",
           {urls({"get"}, {"/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/readyz",
                           "/version", "/version/", "/openapi", "/openapi/*"})}));
  roles.push_back(role("system:basic-user",
                       {rule({"create"}, {"authorization.k8s.io"},
                             {"selfsubjectaccessreviews", "selfsubjectrulesreviews"}),
                        rule({"create"}, {"authentication.k8s.io"}, {"selfsubjectreviews"})}));
  roles.push_back(role("system:public-info-viewer", {urls({"get"}, {"/healthz", "/livez", "/readyz",
                                                                    "/version", "/version/"})}));
  // A kubelet with an identity of its own (user system:node:NAME, group system:nodes): its node,
  // the pods bound to it and what they mount, events and its Lease; the node proxier's Services
  // and EndpointSlices; tokens for its pods' service accounts.
  roles.push_back(role(
      "system:node",
      {rule(kReadVerbs, {""},
            {"nodes", "pods", "services", "endpoints", "configmaps", "secrets",
             "persistentvolumeclaims", "serviceaccounts", "namespaces"}),
       // Client certificate rotation: a kubelet asks for its next certificate itself.
       rule({"create", "get", "list", "watch"}, {"certificates.k8s.io"},
            {"certificatesigningrequests"}),
       rule({"create", "update", "patch", "delete"}, {""}, {"nodes", "nodes/status"}),
       rule({"create", "delete", "update", "patch"}, {""}, {"pods", "pods/status"}),
       rule({"create", "update", "patch"}, {""}, {"events"}),
       rule({"create"}, {""}, {"serviceaccounts/token"}),
       rule({"get", "create", "update", "patch", "delete"}, {"coordination.k8s.io"}, {"leases"}),
       rule(kReadVerbs, {"discovery.k8s.io"}, {"endpointslices"}),
       rule({"create"}, {"authentication.k8s.io"}, {"tokenreviews"}),
       rule({"create"}, {"authorization.k8s.io"}, {"subjectaccessreviews"})}));
  // Full access to kubelets' APIs (Kubernetes' system:kubelet-api-admin), which the apiserver's
  // own kubelet client (DIR/pki/kubelet-client.crt) holds: kubelets ask with a
  // SubjectAccessReview of nodes/proxy, nodes/log, nodes/stats or nodes/metrics.
  roles.push_back(
      role("system:kubelet-api-admin",
           {rule({"get", "list", "watch"}, {""}, {"nodes"}), rule({"proxy"}, {""}, {"nodes"}),
            rule({"*"}, {""}, {"nodes/proxy", "nodes/metrics", "nodes/stats", "nodes/log"})}));
  roles.push_back(
      role("system:kube-scheduler",
           {rule(kReadVerbs, {""},
                 {"nodes", "pods", "namespaces", "services", "persistentvolumeclaims",
                  "persistentvolumes", "replicationcontrollers"}),
            rule(kReadVerbs, {"storage.k8s.io"}, {"storageclasses"}),
            rule({"create"}, {""}, {"pods/binding", "bindings"}),
            rule({"patch", "update"}, {""}, {"pods/status"}), rule({"delete"}, {""}, {"pods"}),
            rule({"create", "patch", "update"}, {""}, {"events"}),
            rule(kReadVerbs, {"apps"}, {"replicasets", "statefulsets"}),
            rule({"get", "create", "update"}, {"coordination.k8s.io"}, {"leases"})}));
  // The controllers reconcile every workload kind: Kubernetes gives each controller a service
  // account of its own; one identity for all of them is what Skiff's single manager needs.
  roles.push_back(role(
      "system:kube-controller-manager",
      {rule(kAllVerbs,
            {"", "apps", "batch", "discovery.k8s.io", "autoscaling", "coordination.k8s.io",
             "storage.k8s.io"},
            {"*"}),
       // The ClusterRole aggregation controller's (Kubernetes' clusterrole-aggregation-controller).
       rule({"escalate", "get", "list", "patch", "update", "watch"}, {"rbac.authorization.k8s.io"},
            {"clusterroles"}),
       rule({"create"}, {"authentication.k8s.io"}, {"tokenreviews"}),
       rule({"create"}, {"authorization.k8s.io"}, {"subjectaccessreviews"}),
       // The CSR approver and signer (Kubernetes' csrapproving and csrsigning controllers).
       rule({"get", "list", "watch"}, {"certificates.k8s.io"}, {"certificatesigningrequests"}),
       rule({"update"}, {"certificates.k8s.io"},
            {"certificatesigningrequests/approval", "certificatesigningrequests/status"}),
       rule({"approve", "sign"}, {"certificates.k8s.io"}, {"signers"})}));
  // Kubelet TLS bootstrap, as Kubernetes' bootstrap policy: a bootstrap token's user may create
  // and read CSRs (system:node-bootstrapper); a CSR for a node client certificate is approved
  // automatically when its requester may create certificatesigningrequests/nodeclient (a new
  // node) or, for its own name, certificatesigningrequests/selfnodeclient (a renewal).
  roles.push_back(role("system:node-bootstrapper",
                       {rule({"create", "get", "list", "watch"}, {"certificates.k8s.io"},
                             {"certificatesigningrequests"})}));
  roles.push_back(
      role("system:certificates.k8s.io:certificatesigningrequests:nodeclient",
           {rule({"create"}, {"certificates.k8s.io"}, {"certificatesigningrequests/nodeclient"})}));
  roles.push_back(role(
      "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
      {rule({"create"}, {"certificates.k8s.io"}, {"certificatesigningrequests/selfnodeclient"})}));
  return roles;
}

std::vector<ClusterRoleBinding> bootstrapClusterRoleBindings() {
  return {
      binding("cluster-admin", "cluster-admin", {{"Group", "system:masters"}}),
      binding("system:discovery", "system:discovery", {{"Group", "system:authenticated"}}),
      binding("system:basic-user", "system:basic-user", {{"Group", "system:authenticated"}}),
      binding("system:public-info-viewer", "system:public-info-viewer",
              {{"Group", "system:authenticated"}, {"Group", "system:unauthenticated"}}),
      binding("system:node", "system:node", {{"Group", "system:nodes"}}),
      binding("kube-apiserver-kubelet-admin", "system:kubelet-api-admin",
              {{"User", "kube-apiserver-kubelet-client"}}),
      binding("system:kube-scheduler", "system:kube-scheduler",
              {{"User", "system:kube-scheduler"}}),
      binding("system:kube-controller-manager", "system:kube-controller-manager",
              {{"User", "system:kube-controller-manager"}}),
      // kubeadm's bindings for TLS bootstrap (kubeadm:kubelet-bootstrap,
      // kubeadm:node-autoapprove-bootstrap, kubeadm:node-autoapprove-certificate-rotation), for
      // every bootstrap token's group.
      binding("skiff:kubelet-bootstrap", "system:node-bootstrapper",
              {{"Group", "system:bootstrappers"}}),
      binding("skiff:node-autoapprove-bootstrap",
              "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
              {{"Group", "system:bootstrappers"}}),
      binding("skiff:node-autoapprove-certificate-rotation",
              "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
              {{"Group", "system:nodes"}}),
  };
}

void ensureBootstrapPolicy(store::Store& store) {
  ensureAll(store, "clusterroles", bootstrapClusterRoles());
  ensureAll(store, "clusterrolebindings", bootstrapClusterRoleBindings());
}

}  // namespace skiff::apiserver::auth

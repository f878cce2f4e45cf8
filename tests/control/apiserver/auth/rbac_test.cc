#include "control/apiserver/auth/rbac.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/api/codec.h"
#include "control/apiserver/auth/bootstrap_policy.h"

namespace skiff::apiserver::auth {
namespace {

using api::rbac::v1::ClusterRoleBinding;
using api::rbac::v1::RoleBinding;
using ::testing::HasSubstr;

PolicyRule ruleFrom(std::string_view json) {
  PolicyRule r;
  api::decodeJson(json, r, {.unknown_fields = api::UnknownFields::kStrict});
  return r;
}

Attributes resource(std::string verb, std::string group, std::string res, std::string sub = "",
                    std::string name = "", std::string ns = "y") {
  Attributes a;
  a.user = {"x", "", {"system:authenticated"}};
  a.resource_request = true;
  a.verb = std::move(verb);
  a.api_group = std::move(group);
  a.resource = std::move(res);
  a.subresource = std::move(sub);
  a.name = std::move(name);
  a.namespace_ = std::move(ns);
  return a;
}

Attributes path(std::string verb, std::string p) {
  Attributes a;
  a.user = {"x", "", {}};
  a.verb = std::move(verb);
  a.path = std::move(p);
  return a;
}

struct RuleCase {
  const char* description;
  const char* rule;
  Attributes request;
  bool allowed;
};

TEST(RbacRules, MatchTable) {
  const RuleCase cases[] = {
      {"exact verb, core group, resource",
       R"({"verbs":["list"],"apiGroups":[""],"resources":["pods"]})", resource("list", "", "pods"),
       true},
      {"other verb", R"({"verbs":["list"],"apiGroups":[""],"resources":["pods"]})",
       resource("delete", "", "pods"), false},
      {"watch is not list", R"({"verbs":["get","list"],"apiGroups":[""],"resources":["pods"]})",
       resource("watch", "", "pods"), false},
      {"verb *", R"({"verbs":["*"],"apiGroups":[""],"resources":["pods"]})",
       resource("deletecollection", "", "pods"), true},
      {"other group", R"({"verbs":["get"],"apiGroups":[""],"resources":["deployments"]})",
       resource("get", "apps", "deployments"), false},
      {"group *", R"({"verbs":["get"],"apiGroups":["*"],"resources":["deployments"]})",
       resource("get", "apps", "deployments"), true},
      {"no apiGroups matches no group", R"({"verbs":["get"],"resources":["pods"]})",
       resource("get", "", "pods"), false},
      {"resource *", R"({"verbs":["get"],"apiGroups":["apps"],"resources":["*"]})",
       resource("get", "apps", "statefulsets"), true},
      {"a resource does not grant its subresource",
       R"({"verbs":["get"],"apiGroups":[""],"resources":["pods"]})",
       resource("get", "", "pods", "log", "web"), false},
      {"resource/subresource", R"({"verbs":["get"],"apiGroups":[""],"resources":["pods/log"]})",
       resource("get", "", "pods", "log", "web"), true},
      {"subresource rule does not grant the resource",
       R"({"verbs":["get"],"apiGroups":[""],"resources":["pods/log"]})",
       resource("get", "", "pods", "", "web"), false},
      {"*/subresource", R"({"verbs":["update"],"apiGroups":["*"],"resources":["*/status"]})",
       resource("update", "apps", "deployments", "status", "web"), true},
      {"*/subresource, other subresource",
       R"({"verbs":["update"],"apiGroups":["*"],"resources":["*/status"]})",
       resource("update", "apps", "deployments", "scale", "web"), false},
      {"resourceNames: named", R"({"verbs":["get"],"apiGroups":[""],"resources":["configmaps"],
         "resourceNames":["app-config"]})",
       resource("get", "", "configmaps", "", "app-config"), true},
      {"resourceNames: another name", R"({"verbs":["get"],"apiGroups":[""],
         "resources":["configmaps"],"resourceNames":["app-config"]})",
       resource("get", "", "configmaps", "", "db-config"), false},
      {"resourceNames: a list names nothing", R"({"verbs":["list"],"apiGroups":[""],
         "resources":["configmaps"],"resourceNames":["app-config"]})",
       resource("list", "", "configmaps"), false},
      {"nonResourceURLs exact", R"({"verbs":["get"],"nonResourceURLs":["/healthz"]})",
       path("get", "/healthz"), true},
      {"nonResourceURLs prefix *", R"({"verbs":["get"],"nonResourceURLs":["/apis/*"]})",
       path("get", "/apis/apps/v1"), true},
      {"nonResourceURLs other path", R"({"verbs":["get"],"nonResourceURLs":["/healthz"]})",
       path("get", "/metrics"), false},
      {"nonResourceURLs other verb", R"({"verbs":["get"],"nonResourceURLs":["/healthz"]})",
       path("post", "/healthz"), false},
      {"a resource rule grants no path", R"({"verbs":["*"],"apiGroups":["*"],"resources":["*"]})",
       path("get", "/metrics"), false},
      {"a path rule grants no resource", R"({"verbs":["*"],"nonResourceURLs":["*"]})",
       resource("get", "", "pods"), false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ruleAllows(ruleFrom(c.rule), c.request), c.allowed) << c.description;
  }
}

TEST(RbacRules, Subjects) {
  api::rbac::v1::Subject s;
  UserInfo sa{"system:serviceaccount:y:builder", "", {"system:serviceaccounts"}};
  s.set_kind("ServiceAccount");
  s.set_name("builder");
  EXPECT_TRUE(subjectMatches(s, sa, "y"));   // a RoleBinding's own namespace
  EXPECT_FALSE(subjectMatches(s, sa, "z"));  // ... is not another's
  EXPECT_FALSE(subjectMatches(s, sa, ""));   // a ClusterRoleBinding needs the namespace
  s.set_namespace_("y");
  EXPECT_TRUE(subjectMatches(s, sa, ""));
  s.set_kind("Group");
  s.set_name("system:serviceaccounts");
  EXPECT_TRUE(subjectMatches(s, sa, ""));
  s.set_kind("User");
  s.set_name("system:serviceaccount:y:builder");
  EXPECT_TRUE(subjectMatches(s, sa, ""));
  s.set_name("builder");
  EXPECT_FALSE(subjectMatches(s, sa, ""));
  s.set_kind("Robot");
  EXPECT_FALSE(subjectMatches(s, sa, ""));
}

class RbacAuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = std::make_shared<PolicySnapshot>();
    for (auto& r : bootstrapClusterRoles())
      p->cluster_roles.emplace(r.metadata().name(), r);
    for (auto& b : bootstrapClusterRoleBindings())
      p->cluster_role_bindings.push_back(b);
    api::rbac::v1::Role reader;
    reader.mutable_metadata()->set_name("pod-reader");
    reader.mutable_metadata()->set_namespace_("y");
    *reader.add_rules() =
        ruleFrom(R"({"verbs":["get","list"],"apiGroups":[""],"resources":["pods"]})");
    p->roles.emplace("y/pod-reader", reader);
    RoleBinding rb;
    rb.mutable_metadata()->set_name("read-pods");
    rb.mutable_metadata()->set_namespace_("y");
    rb.mutable_role_ref()->set_kind("Role");
    rb.mutable_role_ref()->set_name("pod-reader");
    auto* s = rb.add_subjects();
    s->set_kind("ServiceAccount");
    s->set_name("builder");
    p->role_bindings.push_back(rb);
    // view in namespace v through a RoleBinding of the ClusterRole.
    RoleBinding view;
    view.mutable_metadata()->set_name("viewers");
    view.mutable_metadata()->set_namespace_("v");
    view.mutable_role_ref()->set_kind("ClusterRole");
    view.mutable_role_ref()->set_name("view");
    auto* g = view.add_subjects();
    g->set_kind("Group");
    g->set_name("auditors");
    p->role_bindings.push_back(view);
    // A binding to a role that does not exist grants nothing.
    RoleBinding dangling = rb;
    dangling.mutable_metadata()->set_name("dangling");
    dangling.mutable_role_ref()->set_name("missing");
    dangling.mutable_metadata()->set_namespace_("z");
    p->role_bindings.push_back(dangling);
    rbac_.setPolicy(p);
  }
  Decision as(UserInfo user, Attributes a) {
    a.user = std::move(user);
    return rbac_.authorize(a);
  }
  RbacAuthorizer rbac_;
  UserInfo builder_{"system:serviceaccount:y:builder",
                    "",
                    {"system:serviceaccounts", "system:serviceaccounts:y", "system:authenticated"}};
};

TEST_F(RbacAuthorizerTest, TheApiserversKubeletClientHoldsKubeletApiAdmin) {
  // DIR/pki/kubelet-client.crt's user: every kubelet API subresource of any node, nothing else.
  UserInfo client{"kube-apiserver-kubelet-client", "", {"system:authenticated"}};
  for (const char* sub : {"proxy", "log", "stats", "metrics"}) {
    for (const char* verb : {"get", "create"})
      EXPECT_TRUE(as(client, resource(verb, "", "nodes", sub, "n1", "")).allowed) << sub << verb;
  }
  EXPECT_TRUE(as(client, resource("list", "", "nodes", "", "", "")).allowed);
  EXPECT_FALSE(as(client, resource("delete", "", "nodes", "", "n1", "")).allowed);
  EXPECT_FALSE(as(client, resource("get", "", "pods", "", "web", "default")).allowed);
  EXPECT_FALSE(as(builder_, resource("get", "", "nodes", "proxy", "n1", "")).allowed);
}

TEST_F(RbacAuthorizerTest, RoleBindingGrantsOnlyInItsNamespace) {
  Decision d = as(builder_, resource("list", "", "pods", "", "", "y"));
  EXPECT_TRUE(d.allowed);
  EXPECT_THAT(d.reason, HasSubstr("RoleBinding \"read-pods/y\" of Role \"pod-reader\""));
  EXPECT_FALSE(as(builder_, resource("list", "", "pods", "", "", "z")).allowed);
  EXPECT_FALSE(as(builder_, resource("list", "", "pods", "", "", "")).allowed);  // all namespaces
  EXPECT_FALSE(as(builder_, resource("delete", "", "pods", "", "web", "y")).allowed);
  EXPECT_FALSE(as(builder_, resource("get", "", "secrets", "", "s", "y")).allowed);
}

TEST_F(RbacAuthorizerTest, BootstrapPolicy) {
  UserInfo admin{"admin", "", {"system:masters", "system:authenticated"}};
  EXPECT_TRUE(as(admin, resource("delete", "", "nodes", "", "n1", "")).allowed);
  EXPECT_TRUE(as(admin, path("get", "/metrics")).allowed);
  // Every authenticated user: discovery, health, and reviews of itself.
  EXPECT_TRUE(as(builder_, path("get", "/apis/apps/v1")).allowed);
  EXPECT_TRUE(as(builder_, path("get", "/openapi/v3/api/v1")).allowed);
  EXPECT_TRUE(as(builder_, path("get", "/healthz")).allowed);
  EXPECT_FALSE(as(builder_, path("get", "/metrics")).allowed);
  EXPECT_TRUE(as(builder_,
                 resource("create", "authorization.k8s.io", "selfsubjectaccessreviews", "", "", ""))
                  .allowed);
  EXPECT_FALSE(
      as(builder_, resource("create", "authorization.k8s.io", "subjectaccessreviews", "", "", ""))
          .allowed);
  // view through a RoleBinding of the ClusterRole: reads, not secrets, not writes.
  UserInfo auditor{"ann", "", {"auditors", "system:authenticated"}};
  EXPECT_TRUE(as(auditor, resource("list", "apps", "deployments", "", "", "v")).allowed);
  EXPECT_TRUE(as(auditor, resource("get", "", "pods", "log", "web", "v")).allowed);
  EXPECT_FALSE(as(auditor, resource("list", "", "secrets", "", "", "v")).allowed);
  EXPECT_FALSE(as(auditor, resource("delete", "apps", "deployments", "", "web", "v")).allowed);
  EXPECT_FALSE(as(auditor, resource("list", "apps", "deployments", "", "", "w")).allowed);
  // A kubelet with its own identity.
  UserInfo node{"system:node:n1", "", {"system:nodes", "system:authenticated"}};
  EXPECT_TRUE(as(node, resource("watch", "", "pods", "", "", "")).allowed);
  EXPECT_TRUE(
      as(node, resource("update", "coordination.k8s.io", "leases", "", "n1", "kube-node-lease"))
          .allowed);
  EXPECT_TRUE(as(node, resource("create", "", "serviceaccounts", "token", "default", "y")).allowed);
  EXPECT_FALSE(
      as(node, resource("create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", ""))
          .allowed);
}

TEST_F(RbacAuthorizerTest, DanglingBindingAndUnknownUsersAreDenied) {
  UserInfo z{"system:serviceaccount:z:builder", "", {"system:authenticated"}};
  EXPECT_FALSE(as(z, resource("list", "", "pods", "", "", "z")).allowed);
  UserInfo nobody{"nobody", "", {}};
  EXPECT_FALSE(as(nobody, path("get", "/healthz")).allowed);  // not even authenticated
}

TEST_F(RbacAuthorizerTest, VisitRulesListsWhatAUserHasInANamespace) {
  std::vector<std::string> sources;
  rbac_.visitRules(builder_, "y", [&](const PolicyRule&, const std::string& source) {
    sources.push_back(source);
    return true;
  });
  EXPECT_THAT(sources, ::testing::Contains(HasSubstr("read-pods")));
  EXPECT_THAT(sources, ::testing::Contains(HasSubstr("system:basic-user")));
}

TEST(ForbiddenMessage, KubernetesWording) {
  Attributes a = resource("list", "", "pods", "", "", "y");
  a.user.name = "x";
  EXPECT_EQ(forbiddenMessage(a),
            "User \"x\" cannot list resource \"pods\" in API group \"\" in the namespace \"y\"");
  a = resource("get", "apps", "deployments", "scale", "web", "");
  a.user.name = "x";
  EXPECT_EQ(forbiddenMessage(a),
            "User \"x\" cannot get resource \"deployments/scale\" in API "
            "group \"apps\" at the cluster scope");
  a = path("get", "/metrics");
  EXPECT_EQ(forbiddenMessage(a), "User \"x\" cannot get path \"/metrics\"");
}

}  // namespace
}  // namespace skiff::apiserver::auth

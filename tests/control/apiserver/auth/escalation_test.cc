#include "control/apiserver/auth/escalation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/api/codec.h"
#include "control/apiserver/auth/bootstrap_policy.h"
#include "control/apiserver/errors.h"

namespace skiff::apiserver::auth {
namespace {

using api::rbac::v1::ClusterRole;
using api::rbac::v1::ClusterRoleBinding;
using api::rbac::v1::Role;
using api::rbac::v1::RoleBinding;
using ::testing::HasSubstr;

template <typename T>
T from(std::string_view json) {
  T out;
  api::decodeJson(json, out, {.unknown_fields = api::UnknownFields::kStrict});
  return out;
}

PolicyRule ruleFrom(std::string_view json) {
  return from<PolicyRule>(json);
}

TEST(EscalationRules, BreakdownAndCovers) {
  auto parts = breakdownRule(ruleFrom(
      R"({"verbs":["get","list"],"apiGroups":["","apps"],"resources":["pods"],"resourceNames":["a","b"]})"));
  EXPECT_EQ(parts.size(), 8u);  // 2 groups x 1 resource x 2 verbs x 2 names
  EXPECT_EQ(breakdownRule(ruleFrom(R"({"verbs":["get"],"nonResourceURLs":["/a","/b"]})")).size(),
            2u);

  struct Case {
    const char* owner;
    const char* requested;
    bool covers;
  } cases[] = {
      {R"({"verbs":["*"],"apiGroups":["*"],"resources":["*"]})",
       R"({"verbs":["get"],"apiGroups":["apps"],"resources":["deployments/scale"]})", true},
      {R"({"verbs":["get"],"apiGroups":[""],"resources":["pods"]})",
       R"({"verbs":["list"],"apiGroups":[""],"resources":["pods"]})", false},
      {R"({"verbs":["get"],"apiGroups":[""],"resources":["pods/*"]})",
       R"({"verbs":["get"],"apiGroups":[""],"resources":["pods/log"]})", true},
      {R"({"verbs":["get"],"apiGroups":[""],"resources":["*/log"]})",
       R"({"verbs":["get"],"apiGroups":[""],"resources":["pods/log"]})", true},
      {R"({"verbs":["get"],"apiGroups":[""],"resources":["pods"]})",
       R"({"verbs":["get"],"apiGroups":[""],"resources":["pods/log"]})", false},
      // Names: an owner limited to names does not cover every name.
      {R"({"verbs":["get"],"apiGroups":[""],"resources":["pods"],"resourceNames":["a"]})",
       R"({"verbs":["get"],"apiGroups":[""],"resources":["pods"]})", false},
      {R"({"verbs":["get"],"apiGroups":[""],"resources":["pods"]})",
       R"({"verbs":["get"],"apiGroups":[""],"resources":["pods"],"resourceNames":["a"]})", true},
      {R"({"verbs":["get"],"nonResourceURLs":["/healthz/*"]})",
       R"({"verbs":["get"],"nonResourceURLs":["/healthz/etcd"]})", true},
      {R"({"verbs":["get"],"nonResourceURLs":["/healthz"]})",
       R"({"verbs":["get"],"nonResourceURLs":["/metrics"]})", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ruleCovers(ruleFrom(c.owner), ruleFrom(c.requested)), c.covers)
        << c.owner << " / " << c.requested;
  }
}

TEST(EscalationRules, CompactStringAsKubernetes) {
  std::vector<PolicyRule> missing = {
      ruleFrom(R"({"verbs":["get"],"apiGroups":[""],"resources":["secrets"]})"),
      ruleFrom(R"({"verbs":["list"],"apiGroups":[""],"resources":["secrets"]})"),
      ruleFrom(R"({"verbs":["get"],"nonResourceURLs":["/metrics"]})"),
  };
  auto compact = compactRules(missing);
  ASSERT_EQ(compact.size(), 2u);
  EXPECT_EQ(compactString(compact[0]), R"({NonResourceURLs:["/metrics"], Verbs:["get"]})");
  EXPECT_EQ(compactString(compact[1]),
            R"({APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]})");
}

// jane is "edit" in namespace team (a RoleBinding), holds one cluster-wide read rule on nodes,
// may bind the ClusterRole "view" anywhere and escalate Roles named "free" in team.
class EscalationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = std::make_shared<PolicySnapshot>();
    for (const auto& r : bootstrapClusterRoles())
      p->cluster_roles.emplace(r.metadata().name(), r);
    for (const auto& b : bootstrapClusterRoleBindings())
      p->cluster_role_bindings.push_back(b);
    p->cluster_roles.emplace("node-reader", from<ClusterRole>(R"({"metadata":{"name":"node-reader"},
        "rules":[{"verbs":["get","list"],"apiGroups":[""],"resources":["nodes"]}]})"));
    p->cluster_roles.emplace("binder", from<ClusterRole>(R"({"metadata":{"name":"binder"},
        "rules":[{"verbs":["bind"],"apiGroups":["rbac.authorization.k8s.io"],
                  "resources":["clusterroles"],"resourceNames":["view"]}]})"));
    p->roles.emplace("team/escalator",
                     from<Role>(R"({"metadata":{"name":"escalator","namespace":"team"},
        "rules":[{"verbs":["escalate"],"apiGroups":["rbac.authorization.k8s.io"],
                  "resources":["roles"],"resourceNames":["free"]}]})"));
    p->role_bindings.push_back(
        from<RoleBinding>(R"({"metadata":{"name":"jane-edit","namespace":"team"},
        "subjects":[{"kind":"User","name":"jane"}],
        "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"edit"}})"));
    p->role_bindings.push_back(
        from<RoleBinding>(R"({"metadata":{"name":"jane-esc","namespace":"team"},
        "subjects":[{"kind":"User","name":"jane"}],
        "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"escalator"}})"));
    p->cluster_role_bindings.push_back(
        from<ClusterRoleBinding>(R"({"metadata":{"name":"jane-nodes"},
        "subjects":[{"kind":"User","name":"jane"}],
        "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"node-reader"}})"));
    p->cluster_role_bindings.push_back(
        from<ClusterRoleBinding>(R"({"metadata":{"name":"jane-binds"},
        "subjects":[{"kind":"User","name":"jane"}],
        "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"binder"}})"));
    rbac_.setPolicy(p);
  }
  // The 403 message, or "" when allowed.
  std::string check(const google::protobuf::Message& object, std::string_view ns,
                    const google::protobuf::Message* old = nullptr) {
    try {
      confirmNoEscalation(rbac_, jane_, ns, old, object);
      return "";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.code(), 403);
      return e.what();
    }
  }
  RbacAuthorizer rbac_;
  UserInfo jane_{"jane", "", {"developers", "system:authenticated"}};
};

TEST_F(EscalationTest, RoleWithHeldRulesIsAllowed) {
  auto role = from<Role>(R"({"metadata":{"name":"reader","namespace":"team"},
      "rules":[{"verbs":["get","list"],"apiGroups":[""],"resources":["pods"]},
               {"verbs":["get","list"],"apiGroups":["apps"],"resources":["deployments"]}]})");
  EXPECT_EQ(check(role, "team"), "");
  // Groups times resources: apps/pods and core deployments are asked for too, and not held.
  auto crossed = from<Role>(R"({"metadata":{"name":"reader","namespace":"team"},
      "rules":[{"verbs":["get","list"],"apiGroups":["","apps"],"resources":["pods","deployments"]}]})");
  EXPECT_THAT(check(crossed, "team"),
              HasSubstr("held:\n{APIGroups:[\"\"], Resources:[\"deployments\"], Verbs:[\"get\" "
                        "\"list\"]}\n{APIGroups:[\"apps\"], Resources:[\"pods\"], Verbs:[\"get\" "
                        "\"list\"]}"));
}

TEST_F(EscalationTest, RoleWithMoreThanHeldIsRefusedInKubernetesWords) {
  // edit may not touch roles in team, nor read nodes' proxy; it may read secrets.
  auto role = from<Role>(R"({"metadata":{"name":"more","namespace":"team"},
      "rules":[{"verbs":["get","list"],"apiGroups":[""],"resources":["secrets"]},
               {"verbs":["create","delete"],"apiGroups":["rbac.authorization.k8s.io"],"resources":["roles"]}]})");
  EXPECT_EQ(check(role, "team"),
            "roles.rbac.authorization.k8s.io \"more\" is forbidden: user \"jane\" "
            "(groups=[\"developers\" \"system:authenticated\"]) is attempting to grant RBAC "
            "permissions not currently held:\n"
            "{APIGroups:[\"rbac.authorization.k8s.io\"], Resources:[\"roles\"], "
            "Verbs:[\"create\" \"delete\"]}");
  // The same rules in another namespace: nothing of edit there.
  EXPECT_THAT(check(role, "other"), HasSubstr("Resources:[\"secrets\"], Verbs:[\"get\" \"list\"]"));
}

TEST_F(EscalationTest, EscalateVerbAllowsAnyRules) {
  auto role = from<Role>(R"({"metadata":{"name":"free","namespace":"team"},
      "rules":[{"verbs":["*"],"apiGroups":["*"],"resources":["*"]}]})");
  EXPECT_EQ(check(role, "team"), "");
  role.mutable_metadata()->set_name("not-free");
  EXPECT_THAT(check(role, "team"), HasSubstr("not currently held"));
}

TEST_F(EscalationTest, ClusterRoleCountsOnlyClusterWideRules) {
  auto nodes = from<ClusterRole>(R"({"metadata":{"name":"n"},
      "rules":[{"verbs":["get"],"apiGroups":[""],"resources":["nodes"]}]})");
  EXPECT_EQ(check(nodes, ""), "");
  // edit holds pods only in team: not cluster-wide.
  auto pods = from<ClusterRole>(R"({"metadata":{"name":"p"},
      "rules":[{"verbs":["get"],"apiGroups":[""],"resources":["pods"]}]})");
  EXPECT_THAT(check(pods, ""),
              HasSubstr("clusterroles.rbac.authorization.k8s.io \"p\" is forbidden"));
  auto aggregated = from<ClusterRole>(R"({"metadata":{"name":"agg"},
      "aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{"x":"y"}}]}})");
  EXPECT_EQ(check(aggregated, ""),
            "clusterroles.rbac.authorization.k8s.io \"agg\" is forbidden: must have cluster-admin "
            "privileges to use the aggregationRule");
}

TEST_F(EscalationTest, BindingNeedsTheRolesRulesOrBind) {
  // view's rules are within edit's in team.
  auto view = from<RoleBinding>(R"({"metadata":{"name":"b","namespace":"team"},
      "subjects":[{"kind":"User","name":"bob"}],
      "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"}})");
  EXPECT_EQ(check(view, "team"), "");
  // admin's are not (roles and rolebindings).
  auto admin = view;
  admin.mutable_role_ref()->set_name("admin");
  EXPECT_THAT(check(admin, "team"),
              HasSubstr("rolebindings.rbac.authorization.k8s.io \"b\" is forbidden: user \"jane\" "
                        "(groups=[\"developers\" \"system:authenticated\"]) is attempting to grant "
                        "RBAC permissions not currently held:\n"
                        "{APIGroups:[\"authorization.k8s.io\"], "
                        "Resources:[\"localsubjectaccessreviews\"], Verbs:[\"create\"]}\n"
                        "{APIGroups:[\"rbac.authorization.k8s.io\"], Resources:[\"rolebindings\"], "
                        "Verbs:[\"create\" \"delete\" \"deletecollection\" \"get\" \"list\" "
                        "\"patch\" \"update\" \"watch\"]}\n"));
  // In another namespace jane holds nothing, but may bind view there (the bind verb).
  EXPECT_EQ(check(view, "other"), "");
  auto crb = from<ClusterRoleBinding>(R"({"metadata":{"name":"c"},
      "subjects":[{"kind":"User","name":"bob"}],
      "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"}})");
  EXPECT_THAT(check(crb, ""),
              HasSubstr("clusterrolebindings.rbac.authorization.k8s.io \"c\" is forbidden"));
  crb.mutable_role_ref()->set_name("view");
  EXPECT_EQ(check(crb, ""), "");  // bind on clusterroles/view, cluster-wide
  crb.mutable_role_ref()->set_name("missing");
  EXPECT_EQ(check(crb, ""),
            "clusterrolebindings.rbac.authorization.k8s.io \"c\" is forbidden: "
            "clusterrole.rbac.authorization.k8s.io \"missing\" not found");
}

TEST_F(EscalationTest, MastersAndGarbageCollectorUpdatesPass) {
  auto crb = from<ClusterRoleBinding>(R"({"metadata":{"name":"c"},
      "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"}})");
  UserInfo admin{"admin", "", {"system:masters", "system:authenticated"}};
  EXPECT_NO_THROW(confirmNoEscalation(rbac_, admin, "", nullptr, crb));
  // Only ownerReferences/finalizers change: not checked.
  auto next = crb;
  next.mutable_metadata()->add_finalizers("example.com/keep");
  EXPECT_EQ(check(next, "", &crb), "");
  next.mutable_metadata()->mutable_labels()->insert({"a", "b"});
  EXPECT_THAT(check(next, "", &crb), HasSubstr("not currently held"));
  // Other kinds are not RBAC's.
  EXPECT_FALSE(grantsPermissions(api::rbac::v1::PolicyRule()));
  EXPECT_TRUE(grantsPermissions(crb));
}

}  // namespace
}  // namespace skiff::apiserver::auth

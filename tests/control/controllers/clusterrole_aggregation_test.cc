// The ClusterRole aggregation controller: the pure aggregation (a table), the bootstrap roles
// already written as the controller would aggregate them, and the controller against a real
// apiserver (a labelled ClusterRole's rules reach view, edit and admin, and leave them again).

#include "control/controllers/clusterrole_aggregation_controller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <google/protobuf/util/message_differencer.h>

#include <thread>

#include "control/api/codec.h"
#include "control/apiserver/auth/bootstrap_policy.h"
#include "control/client/informer.h"
#include "control/client/typed.h"
#include "tests/control/client/test_server.h"

namespace skiff::controllers {
namespace {

using api::rbac::v1::ClusterRole;
using api::rbac::v1::PolicyRule;
using google::protobuf::util::MessageDifferencer;
using namespace std::chrono_literals;

ClusterRole role(std::string_view yaml) {
  ClusterRole out;
  api::decodeYaml(std::string(yaml), out);
  return out;
}

std::vector<std::string> resources(const std::vector<PolicyRule>& rules) {
  std::vector<std::string> out;
  for (const auto& r : rules)
    for (const auto& res : r.resources())
      out.push_back(res);
  return out;
}

TEST(AggregatedRules, SelectedRolesInNameOrderEachRuleOnce) {
  ClusterRole agg = role(R"(
metadata: {name: agg, labels: {team: a}}
aggregationRule:
  clusterRoleSelectors:
  - matchLabels: {team: a}
  - matchExpressions: [{key: extra, operator: Exists}]
rules: [{verbs: [get], apiGroups: [""], resources: [stale]}])");
  ClusterRole b = role(R"(
metadata: {name: b, labels: {team: a}}
rules: [{verbs: [get], apiGroups: [""], resources: [pods]}, {verbs: [get], apiGroups: [""], resources: [shared]}])");
  ClusterRole a = role(R"(
metadata: {name: a, labels: {extra: "1"}}
rules: [{verbs: [get], apiGroups: [""], resources: [shared]}, {verbs: [list], apiGroups: [""], resources: [configmaps]}])");
  ClusterRole other = role(R"(
metadata: {name: c, labels: {team: b}}
rules: [{verbs: ["*"], apiGroups: ["*"], resources: ["*"]}])");
  std::vector<const ClusterRole*> all = {&agg, &b, &a, &other};
  // a before b; "shared" once; agg's own (stale) rules and itself are not sources.
  EXPECT_THAT(resources(aggregatedRules(agg, all)),
              ::testing::ElementsAre("shared", "configmaps", "pods"));
  // Without an aggregationRule a role keeps its rules.
  EXPECT_THAT(resources(aggregatedRules(b, all)), ::testing::ElementsAre("pods", "shared"));
  // Nothing selected: no rules.
  ClusterRole lonely = role(R"(
metadata: {name: lonely}
aggregationRule: {clusterRoleSelectors: [{matchLabels: {nobody: "true"}}]})");
  EXPECT_TRUE(aggregatedRules(lonely, all).empty());
}

TEST(AggregatedRules, BootstrapRolesAreWrittenAggregated) {
  auto roles = apiserver::auth::bootstrapClusterRoles();
  std::vector<const ClusterRole*> all;
  for (const auto& r : roles)
    all.push_back(&r);
  int aggregating = 0;
  for (const auto& r : roles) {
    if (!r.has_aggregation_rule()) continue;
    ++aggregating;
    auto rules = aggregatedRules(r, all);
    ASSERT_EQ(static_cast<int>(rules.size()), r.rules_size()) << r.metadata().name();
    for (size_t i = 0; i < rules.size(); ++i) {
      EXPECT_TRUE(MessageDifferencer::Equals(rules[i], r.rules(static_cast<int>(i))))
          << r.metadata().name() << " rule " << i;
    }
  }
  EXPECT_EQ(aggregating, 3);  // admin, edit, view
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 20s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      if (cond()) return true;
    } catch (const client::ApiError&) {
    }
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

bool grants(const ClusterRole& r, const std::string& resource) {
  for (const auto& rule : r.rules())
    for (const auto& res : rule.resources())
      if (res == resource) return true;
  return false;
}

TEST(ClusterRoleAggregationController, LabelledRulesReachViewEditAndAdmin) {
  client::testing::TestApiServer server{client::testing::ServerMode::kHttps};
  auto c = server.client();
  client::SharedInformerFactory factory(*c);
  ClusterRoleAggregationController controller(*c, factory.informerFor<ClusterRole>());
  factory.start();
  ASSERT_TRUE(factory.waitForCacheSync(10s));
  controller.start(1);
  client::create(*c, role(R"(
metadata: {name: widgets-view, labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}}
rules: [{verbs: [get, list, watch], apiGroups: [example.com], resources: [widgets]}])"));
  for (const char* name : {"view", "edit", "admin"}) {
    EXPECT_TRUE(eventually([&] {
      return grants(client::get<ClusterRole>(*c, "", name), "widgets");
    })) << name;
  }
  // What was there stays (edit still writes deployments).
  EXPECT_TRUE(grants(client::get<ClusterRole>(*c, "", "edit"), "deployments"));
  // A rule written into an aggregated role by hand is replaced.
  auto view = client::get<ClusterRole>(*c, "", "view");
  *view.add_rules()->add_resources() = "handmade";
  view.mutable_rules(view.rules_size() - 1)->add_verbs("get");
  view.mutable_rules(view.rules_size() - 1)->add_api_groups("");
  client::update(*c, view);
  EXPECT_TRUE(
      eventually([&] { return !grants(client::get<ClusterRole>(*c, "", "view"), "handmade"); }));
  client::remove<ClusterRole>(*c, "", "widgets-view");
  for (const char* name : {"view", "edit", "admin"}) {
    EXPECT_TRUE(eventually([&] {
      return !grants(client::get<ClusterRole>(*c, "", name), "widgets");
    })) << name;
  }
  controller.stop();
  factory.stop();
}

}  // namespace
}  // namespace skiff::controllers

#include "control/apiserver/auth/api_auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "control/api/codec.h"
#include "control/apiserver/api_handler.h"
#include "control/apiserver/errors.h"
#include "control/store/sqlite_store.h"
#include "skiff/api/core_v1.pb.h"
#include "skiff/api/rbac_v1.pb.h"
#include "tests/mocks/watch_counting_store.h"

namespace skiff::apiserver::auth {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

HttpRequest withToken(std::string token,
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpRequest r;
  r.method = "GET";
  r.path = "/api/v1/namespaces/team/pods";
  r.headers.emplace_back("authorization", "Bearer " + token);
  for (auto& h : headers)
    r.headers.push_back(std::move(h));
  return r;
}

template <typename T>
T from(std::string_view json) {
  T out;
  api::decodeJson(json, out, {.unknown_fields = api::UnknownFields::kStrict});
  return out;
}

class ApiAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-api-auth-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    sqlite_ = store::SqliteStore::open({.path = (dir_ / "db").string(), .fsync = false});
    store_ = std::make_unique<skiff::store::testing::WatchCountingStore>(*sqlite_);
    std::ofstream(dir_ / "tokens.csv") << "admintoken,admin,admin-uid,\"system:masters\"\n"
                                          "janetoken,jane,jane-uid,\"developers\"\n"
                                          "bobtoken,bob,bob-uid,\n";
  }
  void TearDown() override {
    auth_.reset();
    handler_.reset();
    store_.reset();
    sqlite_.reset();
    std::filesystem::remove_all(dir_);
  }
  // An apiserver's pair: the handler's watch caches and the auth reading them (`shared`), or
  // auth with caches of its own beside them.
  void start(bool shared) {
    handler_ = std::make_unique<ApiHandler>(*store_, ApiHandlerOptions{});
    auth_ = std::make_unique<ApiAuth>(
        *store_, ApiAuthOptions{.token_file = (dir_ / "tokens.csv").string(),
                                .service_account_key_file = (dir_ / "sa.key").string()});
    if (shared) {
      auth_->useWatchCaches(
          [this](const api::ResourceType& type) { return handler_->watchCache(type); });
    }
    auth_->start();
  }
  template <typename T>
  void put(const T& object) {
    const auto* type = api::Registry::builtin().byDescriptor(T::descriptor());
    ResourceStorage storage(*store_, *type);
    storage.create(object.metadata().namespace_(), std::make_unique<T>(object), false);
  }
  template <typename T>
  void remove(const std::string& ns, const std::string& name) {
    const auto* type = api::Registry::builtin().byDescriptor(T::descriptor());
    ResourceStorage storage(*store_, *type);
    storage.remove(ns, name, {}, false);
  }
  bool allowed(const std::string& user, const std::string& verb, const std::string& ns) {
    Attributes a;
    a.user = {user, "", {"system:authenticated"}};
    a.verb = verb;
    a.resource_request = true;
    a.namespace_ = ns;
    a.api_version = "v1";
    a.resource = "pods";
    return auth_->decide(a).allowed;
  }
  bool eventually(const std::function<bool()>& f) {
    for (int i = 0; i < 500; ++i) {
      if (f()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return f();
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::SqliteStore> sqlite_;
  std::unique_ptr<skiff::store::testing::WatchCountingStore> store_;
  std::unique_ptr<ApiHandler> handler_;
  std::unique_ptr<ApiAuth> auth_;
};

TEST_F(ApiAuthTest, IndexesShareTheWatchCachesOneStoreWatchPerResource) {
  start(true);
  for (const char* plural : {"pods", "serviceaccounts", "roles", "clusterroles", "rolebindings",
                             "clusterrolebindings"}) {
    EXPECT_EQ(store_->watches(plural), 1) << plural;
  }
}

TEST_F(ApiAuthTest, WithoutSharedCachesEachResourceIsWatchedTwice) {
  start(false);  // the arrangement before: auth's own watch beside the cache's
  EXPECT_EQ(store_->watches("pods"), 2);
  EXPECT_EQ(store_->watches("clusterroles"), 2);
}

TEST_F(ApiAuthTest, BootstrapPolicyIsInForceWhenStartReturns) {
  start(true);
  // Bound through the bootstrap ClusterRoleBinding system:basic-user, written by start().
  Attributes a;
  a.user = {"someone", "", {"system:authenticated"}};
  a.verb = "create";
  a.resource_request = true;
  a.api_group = "authorization.k8s.io";
  a.api_version = "v1";
  a.resource = "selfsubjectaccessreviews";
  EXPECT_TRUE(auth_->decide(a).allowed);
}

TEST_F(ApiAuthTest, PolicyFollowsCreatesAndDeletesThroughTheSharedCache) {
  start(true);
  put(from<api::core::v1::Namespace>(R"({"metadata":{"name":"team"}})"));
  EXPECT_FALSE(allowed("ann", "list", "team"));
  put(from<api::rbac::v1::RoleBinding>(R"({"metadata":{"name":"ann-view","namespace":"team"},
      "subjects":[{"kind":"User","name":"ann"}],
      "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"}})"));
  EXPECT_TRUE(eventually([&] { return allowed("ann", "list", "team"); }));
  remove<api::rbac::v1::RoleBinding>("team", "ann-view");
  EXPECT_TRUE(eventually([&] { return !allowed("ann", "list", "team"); }));
}

TEST_F(ApiAuthTest, ImpersonationNeedsTheImpersonateVerb) {
  start(true);
  // jane may impersonate bob and the group testers, nothing else.
  put(from<api::rbac::v1::ClusterRole>(R"({"metadata":{"name":"imp"},
      "rules":[{"verbs":["impersonate"],"apiGroups":[""],"resources":["users"],"resourceNames":["bob"]},
               {"verbs":["impersonate"],"apiGroups":[""],"resources":["groups"],"resourceNames":["testers"]},
               {"verbs":["impersonate"],"apiGroups":["authentication.k8s.io"],"resources":["uids"]}]})"));
  put(from<api::rbac::v1::ClusterRoleBinding>(R"({"metadata":{"name":"jane-imp"},
      "subjects":[{"kind":"User","name":"jane"}],
      "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"imp"}})"));
  ASSERT_TRUE(eventually([&] {
    try {
      return auth_->authenticate(withToken("janetoken", {{"impersonate-user", "bob"}})).name ==
             "bob";
    } catch (const ApiError&) {
      return false;
    }
  }));
  UserInfo bob = auth_->authenticate(withToken(
      "janetoken",
      {{"impersonate-user", "bob"}, {"impersonate-group", "testers"}, {"impersonate-uid", "42"}}));
  EXPECT_EQ(bob.name, "bob");
  EXPECT_EQ(bob.uid, "42");
  EXPECT_THAT(bob.groups, ::testing::ElementsAre("testers", "system:authenticated"));
  // Not allowed: another user, a service account, another group.
  try {
    auth_->authenticate(withToken("janetoken", {{"impersonate-user", "carol"}}));
    ADD_FAILURE() << "impersonated carol";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 403);
    EXPECT_STREQ(e.what(),
                 "users \"carol\" is forbidden: User \"jane\" cannot impersonate resource "
                 "\"users\" in API group \"\" at the cluster scope");
  }
  try {
    auth_->authenticate(
        withToken("janetoken", {{"impersonate-user", "system:serviceaccount:team:builder"}}));
    ADD_FAILURE() << "impersonated a service account";
  } catch (const ApiError& e) {
    EXPECT_STREQ(e.what(),
                 "serviceaccounts \"builder\" is forbidden: User \"jane\" cannot impersonate "
                 "resource \"serviceaccounts\" in API group \"\" in the namespace \"team\"");
  }
  try {
    auth_->authenticate(withToken(
        "janetoken", {{"impersonate-user", "bob"}, {"impersonate-group", "system:masters"}}));
    ADD_FAILURE() << "impersonated system:masters";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 403);
    EXPECT_THAT(e.what(), HasSubstr("cannot impersonate resource \"groups\""));
  }
  // A group without a user: Kubernetes' 500.
  try {
    auth_->authenticate(withToken("janetoken", {{"impersonate-group", "testers"}}));
    ADD_FAILURE() << "a group without a user";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 500);
    EXPECT_THAT(e.what(), HasSubstr("without impersonating a user"));
  }
  // bob himself may not impersonate anyone.
  EXPECT_THROW(auth_->authenticate(withToken("bobtoken", {{"impersonate-user", "bob"}})), ApiError);
  // The admin (system:masters) may; a service account gets its groups.
  UserInfo sa = auth_->authenticate(
      withToken("admintoken", {{"impersonate-user", "system:serviceaccount:team:builder"}}));
  EXPECT_EQ(sa.name, "system:serviceaccount:team:builder");
  EXPECT_THAT(sa.groups,
              ::testing::ElementsAre("system:serviceaccounts", "system:serviceaccounts:team",
                                     "system:authenticated"));
  // No headers: the user itself.
  EXPECT_EQ(auth_->authenticate(withToken("janetoken")).name, "jane");
}

TEST_F(ApiAuthTest, EscalationIsCheckedOnWrites) {
  start(true);
  put(from<api::core::v1::Namespace>(R"({"metadata":{"name":"team"}})"));
  put(from<api::rbac::v1::RoleBinding>(R"({"metadata":{"name":"jane-edit","namespace":"team"},
      "subjects":[{"kind":"User","name":"jane"}],
      "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"edit"}})"));
  ASSERT_TRUE(eventually([&] { return allowed("jane", "delete", "team"); }));
  auto admin_binding = from<api::rbac::v1::RoleBinding>(
      R"({"metadata":{"name":"b","namespace":"team"},"subjects":[{"kind":"User","name":"bob"}],
      "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"admin"}})");
  HttpRequest write = withToken("janetoken");
  write.method = "POST";
  try {
    auth_->admitWrite(write, "team", admin_binding, {});
    ADD_FAILURE() << "jane granted admin";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 403);
    EXPECT_THAT(e.what(), HasSubstr("is attempting to grant RBAC permissions not currently held"));
  }
  auto view_binding = admin_binding;
  view_binding.mutable_role_ref()->set_name("view");
  EXPECT_NO_THROW(auth_->admitWrite(write, "team", view_binding, {}));
  // Other kinds pass without a look.
  EXPECT_NO_THROW(auth_->admitWrite(write, "team", api::core::v1::Pod(), {}));
  // The admin may grant anything.
  EXPECT_NO_THROW(auth_->admitWrite(withToken("admintoken"), "team", admin_binding, {}));
}

// NodeRestriction on serviceaccounts/token: a node gets tokens bound to its own pods only.
TEST_F(ApiAuthTest, NodesGetTokensOnlyBoundToTheirOwnPods) {
  start(true);
  put(from<api::core::v1::ServiceAccount>(R"({"metadata":{"name":"builder","namespace":"team"}})"));
  put(from<api::core::v1::Pod>(
      R"({"metadata":{"name":"web","namespace":"team"},"spec":{"nodeName":"n1",)"
      R"("serviceAccountName":"builder","containers":[{"name":"c","image":"i"}]}})"));
  const auto* pods = api::Registry::builtin().byDescriptor(api::core::v1::Pod::descriptor());
  const std::string uid =
      dynamic_cast<const api::core::v1::Pod&>(*ResourceStorage(*store_, *pods).get("team", "web"))
          .metadata()
          .uid();
  auto request = [&](const UserInfo& user, const std::string& ref) {
    HttpRequest r;
    r.method = "POST";
    r.path = "/api/v1/namespaces/team/serviceaccounts/builder/token";
    r.headers.emplace_back("content-type", "application/json");
    r.body =
        R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{)" + ref + "}}";
    HttpResponse response;
    try {
      auth_->serve(r, parseRequestInfo(r.method, r.path, {}), user, response);
    } catch (const ApiError& e) {
      return std::to_string(e.code()) + " " + e.what();
    }
    return std::to_string(response.status);
  };
  const UserInfo n1{"system:node:n1", "", {"system:nodes", "system:authenticated"}};
  const UserInfo n2{"system:node:n2", "", {"system:nodes", "system:authenticated"}};
  const std::string bound =
      R"("boundObjectRef":{"apiVersion":"v1","kind":"Pod","name":"web","uid":")" + uid + "\"}";
  EXPECT_EQ(request(n1, bound), "201");
  EXPECT_EQ(request(n2, bound),
            "403 serviceaccounts \"builder\" is forbidden: node requested token bound to a pod "
            "scheduled on a different node");
  EXPECT_EQ(request(n1, ""),
            "403 serviceaccounts \"builder\" is forbidden: node requested token not bound to a "
            "pod");
  EXPECT_EQ(request(n1, R"("boundObjectRef":{"apiVersion":"v1","kind":"Pod","name":"web"})"),
            "403 serviceaccounts \"builder\" is forbidden: node requested token with a pod "
            "binding without a uid");
  EXPECT_THAT(request(n1, R"("boundObjectRef":{"apiVersion":"v1","kind":"Pod","name":"web",)"
                          R"("uid":"other"})"),
              HasSubstr("403 serviceaccounts \"builder\" is forbidden: the UID in the bound "
                        "object reference (other) does not match"));
  // Not a node (the group decides, not the name alone): RBAC alone says.
  EXPECT_EQ(request({"system:node:n2", "", {"system:authenticated"}}, ""), "201");
  EXPECT_EQ(request({"jane", "jane-uid", {"developers"}}, bound), "201");
}

}  // namespace
}  // namespace skiff::apiserver::auth

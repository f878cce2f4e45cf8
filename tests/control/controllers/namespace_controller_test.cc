// The namespace controller's shell on a hand-fed informer and a mock Client: what it sends to
// /finalize, and that a failed delete keeps the finalizer, is reported in the conditions and is
// retried.

#include "control/controllers/namespace_controller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/api/codec.h"
#include "control/api/json.h"
#include "tests/mocks/fake_informer.h"
#include "tests/mocks/mock_client.h"

namespace skiff::controllers {
namespace {

using api::core::v1::Namespace;
using client::testing::FakeInformer;
using client::testing::MockClient;
using ::testing::_;
using ::testing::Invoke;
using ::testing::NiceMock;
using ::testing::Return;

constexpr const char* kCoreResources = R"({
  "kind": "APIResourceList", "groupVersion": "v1",
  "resources": [
    {"name": "pods", "namespaced": true, "kind": "Pod", "verbs": ["deletecollection", "list"]},
    {"name": "namespaces", "namespaced": false, "kind": "Namespace", "verbs": ["list"]}
  ]})";
constexpr const char* kGroups = R"({"kind": "APIGroupList", "groups": [
  {"name": "apps", "preferredVersion": {"groupVersion": "apps/v1"}}]})";
constexpr const char* kAppsResources = R"({
  "kind": "APIResourceList", "groupVersion": "apps/v1",
  "resources": [{"name": "deployments", "namespaced": true, "kind": "Deployment",
                 "verbs": ["delete", "list"]}]})";

Namespace terminating() {
  Namespace ns;
  api::decodeYaml(R"(
metadata: {name: doomed, resourceVersion: "7", deletionTimestamp: "2023-11-14T22:13:20Z"}
spec: {finalizers: [kubernetes, example.com/other]}
status: {phase: Terminating}
)",
                  ns);
  return ns;
}

class NamespaceControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ON_CALL(client_, raw(_)).WillByDefault(Invoke([this](const client::RawRequest& r) {
      client::RawResponse res;
      res.status = 200;
      if (r.method == "GET" && r.path == "/api/v1") {
        res.body = kCoreResources;
      } else if (r.method == "GET" && r.path == "/apis") {
        res.body = kGroups;
      } else if (r.method == "GET" && r.path == "/apis/apps/v1") {
        res.body = kAppsResources;
      } else if (r.method == "PUT") {
        finalize_path_ = r.path;
        finalize_body_ = r.body;
      } else {
        res.status = 404;
      }
      return res;
    }));
    ON_CALL(client_, get(_, _, "doomed")).WillByDefault(Return(api::encode(terminating())));
    ON_CALL(client_, list(_, _, _))
        .WillByDefault(Return(api::parseJson(R"({"kind": "List", "items": []})")));
    ON_CALL(client_, updateStatus(_, _, _, _))
        .WillByDefault(Invoke([this](const api::ResourceType&, std::string_view,
                                     const api::Value& obj, const client::WriteOptions&) {
          api::decode(obj, status_);
          api::Value answer = obj;
          answer.find("metadata")->set("resourceVersion", api::Value::string("8"));
          return answer;
        }));
  }

  const api::core::v1::NamespaceCondition* condition(const std::string& type) const {
    for (const auto& c : status_.status().conditions()) {
      if (c.type() == type) return &c;
    }
    return nullptr;
  }

  NiceMock<MockClient> client_;
  FakeInformer informer_ = FakeInformer::of<Namespace>();
  Namespace status_;
  std::string finalize_path_;
  std::string finalize_body_;
};

TEST_F(NamespaceControllerTest, EmptiedNamespaceIsFinalized) {
  NamespaceController controller(client_, informer_);
  EXPECT_CALL(client_, removeCollection(_, "doomed", _, _))
      .WillOnce(Invoke([](const api::ResourceType& type, std::string_view,
                          const client::ListOptions&, const client::DeleteOptions&) {
        EXPECT_EQ(type.plural, "pods");
        return api::Value::object();
      }));
  // deployments: no deletecollection, so list (one left over from before) and delete one by one.
  EXPECT_CALL(client_, list(_, "doomed", _))
      .WillRepeatedly(Return(api::parseJson(R"({"items": []})")));
  EXPECT_CALL(client_,
              list(::testing::Field(&api::ResourceType::plural, "deployments"), "doomed", _))
      .WillOnce(Return(api::parseJson(R"({"items": [{"metadata": {"name": "web"}}]})")))
      .WillOnce(Return(api::parseJson(R"({"items": []})")));
  EXPECT_CALL(client_,
              remove(::testing::Field(&api::ResourceType::group, "apps"), "doomed", "web", _))
      .WillOnce(Return(api::Value::object()));

  informer_.put(terminating());
  EXPECT_EQ(controller.drain(), 1);
  EXPECT_EQ(controller.errors(), 0u);
  EXPECT_EQ(finalize_path_, "/api/v1/namespaces/doomed/finalize");
  Namespace sent;
  api::decodeJson(finalize_body_, sent);
  ASSERT_EQ(sent.spec().finalizers_size(), 1);
  EXPECT_EQ(sent.spec().finalizers(0), "example.com/other");
  EXPECT_EQ(sent.metadata().resource_version(), "8");  // after the status write
  ASSERT_NE(condition("NamespaceContentRemaining"), nullptr);
  EXPECT_EQ(condition("NamespaceContentRemaining")->reason(), "ContentRemoved");
}

TEST_F(NamespaceControllerTest, FailedDeleteKeepsTheFinalizerAndIsRetried) {
  NamespaceController controller(client_, informer_);
  EXPECT_CALL(client_, removeCollection(_, "doomed", _, _))
      .WillRepeatedly(::testing::Throw(client::ApiError(403, "Forbidden", "pods is forbidden")));
  informer_.put(terminating());
  EXPECT_EQ(controller.drain(), 1);
  EXPECT_EQ(controller.errors(), 1u);
  EXPECT_TRUE(finalize_path_.empty());
  const auto* failure = condition("NamespaceDeletionContentFailure");
  ASSERT_NE(failure, nullptr);
  EXPECT_EQ(failure->status(), "True");
  EXPECT_EQ(failure->reason(), "ContentDeletionFailed");
  EXPECT_EQ(failure->message(),
            "Failed to delete all resource types, 1 remaining: pods: pods is forbidden");
}

TEST_F(NamespaceControllerTest, ActiveNamespaceIsLeftAlone) {
  NamespaceController controller(client_, informer_);
  Namespace active;
  active.mutable_metadata()->set_name("doomed");
  ON_CALL(client_, get(_, _, "doomed")).WillByDefault(Return(api::encode(active)));
  EXPECT_CALL(client_, removeCollection(_, _, _, _)).Times(0);
  EXPECT_CALL(client_, updateStatus(_, _, _, _)).Times(0);
  // The cache says deleting, the server says not (the cache is stale): the server wins.
  informer_.put(terminating());
  EXPECT_EQ(controller.drain(), 1);
  EXPECT_TRUE(finalize_path_.empty());
}

}  // namespace
}  // namespace skiff::controllers

// The controller shells on hand-fed informers and a mock Client: what they send, in which order,
// and how expectations keep a ReplicaSet from creating twice before its informer catches up.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/api/codec.h"
#include "control/controllers/deployment_controller.h"
#include "control/controllers/expectations.h"
#include "control/controllers/garbage_collector_controller.h"
#include "control/controllers/replicaset_controller.h"
#include "tests/control/controllers/builders.h"
#include "tests/mocks/fake_informer.h"
#include "tests/mocks/mock_client.h"

namespace skiff::controllers {
namespace {

using namespace testing;  // NOLINT
using api::apps::v1::Deployment;
using api::apps::v1::ReplicaSet;
using api::core::v1::Pod;
using client::testing::FakeInformer;
using client::testing::MockClient;
using ::testing::_;
using ::testing::Invoke;
using ::testing::Return;
using ::testing::StrictMock;

template <class T>
T decoded(const api::Value& v) {
  T out;
  api::decode(v, out);
  return out;
}

// The server's answer to a create: the object with a name and uid.
api::Value named(const api::Value& object, const std::string& name) {
  auto pod = decoded<Pod>(object);
  pod.mutable_metadata()->set_name(name);
  pod.mutable_metadata()->set_uid("uid-" + name);
  pod.mutable_metadata()->set_resource_version("5");
  return api::encode(pod);
}

TEST(Expectations, CountsAndExpiry) {
  Expectations e;
  EXPECT_TRUE(e.satisfied("ns/a"));
  e.expectCreations("ns/a", 2);
  EXPECT_FALSE(e.satisfied("ns/a"));
  e.creationObserved("ns/a");
  EXPECT_FALSE(e.satisfied("ns/a"));
  e.creationObserved("ns/a");
  EXPECT_TRUE(e.satisfied("ns/a"));
  e.expectDeletions("ns/a", {"ns/p1"});
  EXPECT_FALSE(e.satisfied("ns/a"));
  e.deletionObserved("ns/a", "ns/other");
  EXPECT_FALSE(e.satisfied("ns/a"));
  e.deletionObserved("ns/a", "ns/p1");
  EXPECT_TRUE(e.satisfied("ns/a"));
  Expectations quick(std::chrono::milliseconds(0));
  quick.expectCreations("k", 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_TRUE(quick.satisfied("k"));
}

TEST(ReplicaSetController, CreatesOnceUntilTheInformerSeesThePods) {
  StrictMock<MockClient> client;
  auto rs_informer = FakeInformer::of<ReplicaSet>();
  auto pod_informer = FakeInformer::of<Pod>();
  ReplicaSetController controller(client, rs_informer, pod_informer);
  auto rs = makeReplicaSet(3);
  rs_informer.put(rs);

  std::vector<api::Value> created;
  EXPECT_CALL(client, create(_, "default", _, _))
      .Times(3)
      .WillRepeatedly(Invoke([&](const api::ResourceType& type, std::string_view,
                                 const api::Value& obj, const client::WriteOptions&) {
        EXPECT_EQ(type.kind, "Pod");
        created.push_back(named(obj, "web-" + std::to_string(created.size())));
        return created.back();
      }));
  api::Value written;
  EXPECT_CALL(client, updateStatus(_, "default", _, _))
      .WillOnce(Invoke([&](const api::ResourceType&, std::string_view, const api::Value& obj,
                           const client::WriteOptions&) {
        written = obj;
        return obj;
      }));
  EXPECT_EQ(controller.drain(), 1);
  EXPECT_FALSE(controller.expectations().satisfied("default/web"));

  // The ReplicaSet changes (its status write comes back) before its pods show up: nothing more
  // is created.
  rs = decoded<ReplicaSet>(written);
  rs.mutable_metadata()->set_resource_version("9");
  rs_informer.put(rs);
  EXPECT_EQ(controller.drain(), 1);

  // The informer sees the pods: expectations are met and the count is right.
  for (const auto& v : created)
    pod_informer.put(decoded<Pod>(v));
  EXPECT_TRUE(controller.expectations().satisfied("default/web"));
  EXPECT_CALL(client, updateStatus(_, "default", _, _))
      .WillOnce(Invoke([](const api::ResourceType&, std::string_view, const api::Value& obj,
                          const client::WriteOptions&) {
        EXPECT_EQ(decoded<ReplicaSet>(obj).status().replicas(), 3);
        return obj;
      }));
  controller.drain();
}

TEST(ReplicaSetController, SlowStartStopsAtTheFirstFailedBatch) {
  StrictMock<MockClient> client;
  auto rs_informer = FakeInformer::of<ReplicaSet>();
  auto pod_informer = FakeInformer::of<Pod>();
  ReplicaSetController controller(client, rs_informer, pod_informer);
  rs_informer.put(makeReplicaSet(10));
  int calls = 0;
  // Batch 0 (1 pod) works, batch 1 (2 pods) fails: batch 2 is never sent.
  EXPECT_CALL(client, create(_, _, _, _))
      .Times(3)
      .WillRepeatedly(Invoke([&](const api::ResourceType&, std::string_view, const api::Value& obj,
                                 const client::WriteOptions&) {
        if (++calls >= 2) throw client::ApiError(403, "Forbidden", "exceeded quota");
        return named(obj, "web-a");
      }));
  controller.drain();
  EXPECT_EQ(controller.errors(), 1u);
  // Only the one that worked is still expected.
  EXPECT_EQ(controller.expectations().pendingCreations("default/web"), 1);
}

TEST(ReplicaSetController, FailedCreateIsReportedAsReplicaFailure) {
  StrictMock<MockClient> client;
  auto rs_informer = FakeInformer::of<ReplicaSet>();
  auto pod_informer = FakeInformer::of<Pod>();
  ReplicaSetController controller(client, rs_informer, pod_informer);
  rs_informer.put(makeReplicaSet(1));
  EXPECT_CALL(client, create(_, _, _, _))
      .WillRepeatedly(::testing::Throw(client::ApiError(403, "Forbidden", "exceeded quota")));
  std::vector<ReplicaSet> statuses;
  EXPECT_CALL(client, updateStatus(_, _, _, _))
      .WillRepeatedly(Invoke([&](const api::ResourceType&, std::string_view, const api::Value& obj,
                                 const client::WriteOptions&) {
        statuses.push_back(decoded<ReplicaSet>(obj));
        return obj;
      }));
  controller.drain();
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_EQ(statuses[0].status().conditions_size(), 0);
  // The retry writes the condition along with trying again.
  controller.enqueue("default/web");
  controller.drain();
  ASSERT_GE(statuses.size(), 2u);
  const auto& s = statuses.back().status();
  ASSERT_EQ(s.conditions_size(), 1);
  EXPECT_EQ(s.conditions(0).type(), "ReplicaFailure");
  EXPECT_EQ(s.conditions(0).reason(), "FailedCreate");
  EXPECT_NE(s.conditions(0).message().find("exceeded quota"), std::string::npos);
  EXPECT_GE(controller.errors(), 2u);
}

TEST(DeploymentController, CreatesTheReplicaSetThenWritesRevisionAndStatus) {
  StrictMock<MockClient> client;
  auto d_informer = FakeInformer::of<Deployment>();
  auto rs_informer = FakeInformer::of<ReplicaSet>();
  auto pod_informer = FakeInformer::of<Pod>();
  DeploymentController controller(client, d_informer, rs_informer, pod_informer);
  auto d = fromYaml<Deployment>(R"(
metadata: {name: web, namespace: default, uid: d-uid, generation: 1, resourceVersion: "10"}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
)");
  d_informer.put(d);
  ::testing::InSequence order;
  EXPECT_CALL(client, create(_, "default", _, _))
      .WillOnce(Invoke([](const api::ResourceType& type, std::string_view, const api::Value& obj,
                          const client::WriteOptions&) {
        EXPECT_EQ(type.kind, "ReplicaSet");
        EXPECT_EQ(decoded<ReplicaSet>(obj).spec().replicas(), 2);
        return obj;
      }));
  EXPECT_CALL(client, update(_, "default", _, _))
      .WillOnce(Invoke([](const api::ResourceType& type, std::string_view, const api::Value& obj,
                          const client::WriteOptions&) {
        EXPECT_EQ(type.kind, "Deployment");
        auto sent = decoded<Deployment>(obj);
        EXPECT_EQ(sent.metadata().resource_version(), "10");
        EXPECT_EQ(sent.metadata().annotations().at("deployment.kubernetes.io/revision"), "1");
        sent.mutable_metadata()->set_resource_version("11");
        return api::encode(sent);
      }));
  EXPECT_CALL(client, updateStatus(_, "default", _, _))
      .WillOnce(Invoke([](const api::ResourceType&, std::string_view, const api::Value& obj,
                          const client::WriteOptions&) {
        // Written after the annotation: with the resourceVersion that write returned.
        EXPECT_EQ(decoded<Deployment>(obj).metadata().resource_version(), "11");
        return obj;
      }));
  controller.drain();
  EXPECT_EQ(controller.errors(), 0u);
}

TEST(GarbageCollector, DeletesOrphanedDependentsOnlyOnceTheOwnerIsGoneForReal) {
  StrictMock<MockClient> client;
  auto rs_informer = FakeInformer::of<ReplicaSet>();
  auto pod_informer = FakeInformer::of<Pod>();
  pod_informer.setSynced(false);
  GarbageCollector gc(client, {&rs_informer, &pod_informer});
  Pod pod = makePod({.name = "p", .owner_uid = "rs-gone"});
  pod_informer.put(pod);
  // Not synced: nothing is judged yet.
  gc.drain();
  pod_informer.setSynced(true);

  // The live read still finds the owner: no delete.
  api::Value live = api::Value::object();
  live.set("metadata", api::Value::object()).set("uid", api::Value::string("rs-gone"));
  EXPECT_CALL(client, get(_, "default", "owner")).WillOnce(Return(live));
  gc.enqueue("1|default/p");
  gc.drain();

  EXPECT_CALL(client, get(_, "default", "owner"))
      .WillOnce(::testing::Throw(client::ApiError(404, "NotFound", "not found")));
  EXPECT_CALL(client, remove(_, "default", "p", _))
      .WillOnce(Invoke([](const api::ResourceType& type, std::string_view, std::string_view,
                          const client::DeleteOptions& o) {
        EXPECT_EQ(type.kind, "Pod");
        EXPECT_EQ(o.propagation_policy, "Background");
        EXPECT_EQ(o.precondition_uid, "uid-p");
        return api::Value::object();
      }));
  gc.enqueue("1|default/p");
  gc.drain();
}

TEST(GarbageCollector, OwnerDeletionEnqueuesItsDependents) {
  StrictMock<MockClient> client;
  auto rs_informer = FakeInformer::of<ReplicaSet>();
  auto pod_informer = FakeInformer::of<Pod>();
  GarbageCollector gc(client, {&rs_informer, &pod_informer});
  auto rs = makeReplicaSet(1);
  rs_informer.put(rs);
  pod_informer.put(makePod({.name = "p", .owner_uid = "rs-uid", .owner_name = "web"}));
  gc.drain();  // all present: nothing to do
  rs_informer.erase("default/web");
  EXPECT_CALL(client, get(_, "default", "web"))
      .WillOnce(::testing::Throw(client::ApiError(404, "NotFound", "not found")));
  EXPECT_CALL(client, remove(_, "default", "p", _)).WillOnce(Return(api::Value::object()));
  gc.drain();
}

}  // namespace
}  // namespace skiff::controllers

// The controller shells on hand-fed informers and a mock Client: what they send, in which order,
// how expectations keep a ReplicaSet from creating twice before its informer catches up, that a
// slow-start batch is sent in parallel, and that a conflict is left to the informer.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "control/api/codec.h"
#include "control/controllers/deployment_controller.h"
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

TEST(ReplicaSetController, CreatesOnceUntilTheInformerSeesThePods) {
  StrictMock<MockClient> client;
  auto rs_informer = FakeInformer::of<ReplicaSet>();
  auto pod_informer = FakeInformer::of<Pod>();
  ReplicaSetController controller(client, rs_informer, pod_informer);
  auto rs = makeReplicaSet(3);
  rs_informer.put(rs);

  std::vector<api::Value> created;
  std::mutex mu;  // batch 1 (two pods) is sent from two threads
  EXPECT_CALL(client, create(_, "default", _, _))
      .Times(3)
      .WillRepeatedly(Invoke([&](const api::ResourceType& type, std::string_view,
                                 const api::Value& obj, const client::WriteOptions&) {
        EXPECT_EQ(type.kind, "Pod");
        std::lock_guard lock(mu);
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
  std::atomic<int> calls{0};
  // Batch 0 (1 pod) works, batch 1 (2 pods) fails: batch 2 is never sent.
  EXPECT_CALL(client, create(_, _, _, _))
      .Times(3)
      .WillRepeatedly(Invoke([&](const api::ResourceType&, std::string_view, const api::Value& obj,
                                 const client::WriteOptions&) {
        if (++calls >= 2) throw client::ApiError(403, "Forbidden", "exceeded quota");
        return named(obj, "web-a");
      }));
  // The status (the cached pods: none) still goes out; the next sync adds ReplicaFailure.
  EXPECT_CALL(client, updateStatus(_, _, _, _)).WillOnce(::testing::ReturnArg<2>());
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
  // The first sync's write carries no condition yet. (Its rate-limited retry, 5 ms later, may
  // already have run inside drain() on a loaded machine, so the count is not fixed here.)
  ASSERT_GE(statuses.size(), 1u);
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

TEST(ReplicaSetController, SendsEachSlowStartBatchInParallel) {
  StrictMock<MockClient> client;
  auto rs_informer = FakeInformer::of<ReplicaSet>();
  auto pod_informer = FakeInformer::of<Pod>();
  ReplicaSetController controller(client, rs_informer, pod_informer);
  rs_informer.put(makeReplicaSet(7));  // batches of 1, 2 and 4
  // Each create waits until the whole of its batch is in flight: sent one after the other, the
  // wait would time out.
  std::mutex mu;
  std::condition_variable cv;
  int started = 0;
  std::map<int, int> in_batch;  // batch -> creates in flight
  int timeouts = 0;
  EXPECT_CALL(client, create(_, "default", _, _))
      .Times(7)
      .WillRepeatedly(Invoke([&](const api::ResourceType&, std::string_view, const api::Value& obj,
                                 const client::WriteOptions&) {
        std::unique_lock lock(mu);
        const int index = started++;
        const int batch = slowStartBatch(index);
        const int size = 1 << batch;
        ++in_batch[batch];
        cv.notify_all();
        if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return in_batch[batch] == size; })) {
          ++timeouts;
        }
        return named(obj, "web-" + std::to_string(index));
      }));
  EXPECT_CALL(client, updateStatus(_, _, _, _)).WillOnce(::testing::ReturnArg<2>());
  controller.drain();
  EXPECT_EQ(timeouts, 0);
  EXPECT_EQ(in_batch[2], 4);
  EXPECT_EQ(controller.expectations().pendingCreations("default/web"), 7);
}

TEST(ReplicaSetController, ParallelCreatesStayWithinTheLimit) {
  StrictMock<MockClient> client;
  auto rs_informer = FakeInformer::of<ReplicaSet>();
  auto pod_informer = FakeInformer::of<Pod>();
  ReplicaSetController controller(client, rs_informer, pod_informer);
  controller.setMaxParallelCreates(3);
  rs_informer.put(makeReplicaSet(15));  // batches of 1, 2, 4 and 8
  std::mutex mu;
  int in_flight = 0;
  int most = 0;
  EXPECT_CALL(client, create(_, "default", _, _))
      .Times(15)
      .WillRepeatedly(Invoke([&](const api::ResourceType&, std::string_view, const api::Value& obj,
                                 const client::WriteOptions&) {
        {
          std::lock_guard lock(mu);
          most = std::max(most, ++in_flight);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        std::lock_guard lock(mu);
        --in_flight;
        return named(obj, "web-x");
      }));
  EXPECT_CALL(client, updateStatus(_, _, _, _)).WillOnce(::testing::ReturnArg<2>());
  controller.drain();
  EXPECT_LE(most, 3);
}

TEST(ReplicaSetController, AConflictIsLeftToTheInformerNotRetriedWithBackoff) {
  StrictMock<MockClient> client;
  auto rs_informer = FakeInformer::of<ReplicaSet>();
  auto pod_informer = FakeInformer::of<Pod>();
  ReplicaSetController controller(client, rs_informer, pod_informer);
  auto rs = makeReplicaSet(1);
  rs_informer.put(rs);
  pod_informer.put(makePod({.name = "web-1", .owner_uid = "rs-uid", .owner_name = "web"}));
  // The Deployment controller scaled the ReplicaSet meanwhile: the status write loses.
  EXPECT_CALL(client, updateStatus(_, _, _, _))
      .WillOnce(
          ::testing::Throw(client::ApiError(409, "Conflict", "the object has been modified")));
  EXPECT_EQ(controller.drain(), 1);
  EXPECT_EQ(controller.errors(), 0u);
  EXPECT_EQ(controller.conflicts(), 1u);
  EXPECT_EQ(controller.queue().numRequeues("default/web"), 0);  // no backoff
  // The newer version arrives: the next sync writes the status on it.
  rs.mutable_metadata()->set_resource_version("12");
  rs.mutable_spec()->set_replicas(1);
  EXPECT_CALL(client, updateStatus(_, _, _, _))
      .WillOnce(Invoke([](const api::ResourceType&, std::string_view, const api::Value& obj,
                          const client::WriteOptions&) {
        auto written = decoded<ReplicaSet>(obj);
        EXPECT_EQ(written.metadata().resource_version(), "12");
        EXPECT_EQ(written.status().replicas(), 1);
        return obj;
      }));
  rs_informer.put(rs);
  EXPECT_EQ(controller.drain(), 1);
  EXPECT_EQ(controller.errors(), 0u);
}

TEST(ReplicaSetController, AnOrphanItsSelectorMatchesIsAdopted) {
  StrictMock<MockClient> client;
  auto rs_informer = FakeInformer::of<ReplicaSet>();
  auto pod_informer = FakeInformer::of<Pod>();
  ReplicaSetController controller(client, rs_informer, pod_informer);
  auto rs = makeReplicaSet(1);
  rs.mutable_status()->set_replicas(1);
  rs.mutable_status()->set_fully_labeled_replicas(0);
  rs.mutable_status()->set_ready_replicas(1);
  rs.mutable_status()->set_available_replicas(1);
  rs.mutable_status()->set_observed_generation(3);
  rs_informer.put(rs);
  EXPECT_CALL(client, updateStatus(_, _, _, _)).WillRepeatedly(::testing::ReturnArg<2>());
  EXPECT_CALL(client, create(_, _, _, _))
      .WillOnce(Invoke([&](const api::ResourceType&, std::string_view, const api::Value& obj,
                           const client::WriteOptions&) { return named(obj, "web-made"); }));
  controller.drain();
  // An orphan with the selector's labels shows up (and one without them): the first is adopted.
  api::Value adopted;
  EXPECT_CALL(client, update(_, "default", _, _))
      .WillOnce(Invoke([&](const api::ResourceType& type, std::string_view, const api::Value& obj,
                           const client::WriteOptions&) {
        EXPECT_EQ(type.kind, "Pod");
        adopted = obj;
        return obj;
      }));
  pod_informer.put(makePod({.name = "stray", .labels = {{"app", "other"}}}));
  EXPECT_EQ(controller.drain(), 0);  // nobody's selector matches it
  pod_informer.put(makePod({.name = "orphan"}));
  EXPECT_EQ(controller.drain(), 1);
  auto pod = decoded<Pod>(adopted);
  EXPECT_EQ(pod.metadata().name(), "orphan");
  const auto* ref = controllerOf(pod.metadata());
  ASSERT_NE(ref, nullptr);
  EXPECT_EQ(ref->uid(), "rs-uid");
  EXPECT_EQ(ref->kind(), "ReplicaSet");
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

TEST(EventRecorder, ARepeatedFailureIsCountedIntoOneEvent) {
  // The controllers record through the shared client::EventRecorder: the same FailedCreate again
  // PATCHes the count of the Event written first instead of writing one Event per retry.
  StrictMock<MockClient> client;
  auto rs_informer = FakeInformer::of<ReplicaSet>();
  auto pod_informer = FakeInformer::of<Pod>();
  client::EventRecorder recorder(client, client::EventSource{.component = "replicaset-controller"});
  ReplicaSetController controller(client, rs_informer, pod_informer, &recorder);
  rs_informer.put(makeReplicaSet(1));
  std::mutex mu;
  std::vector<api::core::v1::Event> events;
  std::vector<std::string> patches;
  EXPECT_CALL(client, create(_, _, _, _))
      .WillRepeatedly(Invoke([&](const api::ResourceType& type, std::string_view,
                                 const api::Value& obj, const client::WriteOptions&) {
        if (type.kind == "Pod") throw client::ApiError(403, "Forbidden", "exceeded quota");
        EXPECT_EQ(type.kind, "Event");
        std::lock_guard lock(mu);
        events.push_back(decoded<api::core::v1::Event>(obj));
        return obj;
      }));
  EXPECT_CALL(client, patch(_, "default", _, client::PatchType::kStrategicMerge, _, _, _))
      .WillRepeatedly(Invoke([&](const api::ResourceType& type, std::string_view,
                                 std::string_view name, client::PatchType, std::string_view body,
                                 const client::WriteOptions&, std::string_view) {
        EXPECT_EQ(type.kind, "Event");
        std::lock_guard lock(mu);
        EXPECT_EQ(name, events.at(0).metadata().name());
        patches.emplace_back(body);
        return api::Value::object();
      }));
  EXPECT_CALL(client, updateStatus(_, _, _, _))
      .WillRepeatedly(Invoke([](const api::ResourceType&, std::string_view, const api::Value& obj,
                                const client::WriteOptions&) { return obj; }));
  controller.drain();
  controller.enqueue("default/web");
  controller.drain();
  recorder.flush();
  std::lock_guard lock(mu);
  ASSERT_EQ(events.size(), 1u);
  const auto& e = events[0];
  EXPECT_EQ(e.source().component(), "replicaset-controller");
  EXPECT_EQ(e.involved_object().kind(), "ReplicaSet");
  EXPECT_EQ(e.involved_object().name(), "web");
  EXPECT_EQ(e.type(), "Warning");
  EXPECT_EQ(e.reason(), "FailedCreate");
  EXPECT_NE(e.message().find("exceeded quota"), std::string::npos);
  EXPECT_EQ(e.count(), 1);
  // Each retry (two or more syncs: the 5 ms rate-limited one may run inside drain()) counted in.
  ASSERT_GE(patches.size(), 1u);
  EXPECT_NE(patches.back().find("\"count\":" + std::to_string(patches.size() + 1)),
            std::string::npos)
      << patches.back();
  const auto stats = recorder.stats();
  EXPECT_EQ(stats.created, 1u);
  EXPECT_EQ(stats.patched, patches.size());
}

TEST(GarbageCollector, StatusWritesSendNothingThroughTheQueue) {
  StrictMock<MockClient> client;
  auto rs_informer = FakeInformer::of<ReplicaSet>();
  auto pod_informer = FakeInformer::of<Pod>();
  GarbageCollector gc(client, {&rs_informer, &pod_informer});
  auto rs = makeReplicaSet(2);
  rs_informer.put(rs);
  pod_informer.put(makePod({.name = "p1", .owner_uid = "rs-uid", .owner_name = "web"}));
  pod_informer.put(makePod({.name = "p2", .owner_uid = "rs-uid", .owner_name = "web"}));
  EXPECT_EQ(gc.drain(), 3);  // each object once: a new pod does not send its owner through
  // The ReplicaSet's status and a pod's readiness change: nothing to look at.
  rs.mutable_status()->set_replicas(2);
  rs.mutable_metadata()->set_resource_version("7");
  rs_informer.put(rs);
  Pod ready = makePod({.name = "p1", .owner_uid = "rs-uid", .owner_name = "web", .ready = false});
  pod_informer.put(ready);
  EXPECT_EQ(gc.drain(), 0);
  // The ReplicaSet is being deleted: it and both its pods are looked at again.
  EXPECT_CALL(client, remove(_, _, _, _)).WillRepeatedly(Return(api::Value::object()));
  EXPECT_CALL(client, update(_, _, _, _)).WillRepeatedly(::testing::ReturnArg<2>());
  setTime(*rs.mutable_metadata()->mutable_deletion_timestamp(), kNow);
  rs.mutable_metadata()->add_finalizers("foregroundDeletion");
  rs_informer.put(rs);
  EXPECT_EQ(gc.drain(), 3);
  // A pod added while its owner is being deleted sends the owner through too.
  pod_informer.put(makePod({.name = "p3", .owner_uid = "rs-uid", .owner_name = "web"}));
  EXPECT_EQ(gc.drain(), 2);
}

}  // namespace
}  // namespace skiff::controllers

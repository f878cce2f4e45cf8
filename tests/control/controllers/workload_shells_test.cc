// The pod-owner shell (Job, DaemonSet and StatefulSet controllers) on hand-fed informers and a mock
// Client: expectations keep it from creating twice before its informer catches up, and a
// ControllerRevision an earlier sync made (AlreadyExists) is not an error.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/api/codec.h"
#include "control/controllers/job_controller.h"
#include "control/controllers/statefulset_controller.h"
#include "tests/control/controllers/builders.h"
#include "tests/mocks/fake_informer.h"
#include "tests/mocks/mock_client.h"

namespace skiff::controllers {
namespace {

using namespace testing;  // NOLINT
using api::apps::v1::ControllerRevision;
using api::apps::v1::StatefulSet;
using api::batch::v1::Job;
using api::core::v1::Pod;
using client::testing::FakeInformer;
using client::testing::MockClient;
using ::testing::_;
using ::testing::Invoke;
using ::testing::StrictMock;

template <class T>
T decoded(const api::Value& v) {
  T out;
  api::decode(v, out);
  return out;
}

Job job() {
  return fromYaml<Job>(R"(
metadata: {name: pi, namespace: default, uid: job-uid, resourceVersion: "3"}
spec:
  completions: 2
  parallelism: 2
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
)");
}

TEST(JobController, CreatesOnceUntilTheInformerSeesThePods) {
  StrictMock<MockClient> client;
  auto jobs = FakeInformer::of<Job>();
  auto pods = FakeInformer::of<Pod>();
  JobController controller(client, jobs, pods);
  jobs.put(job());
  std::vector<Pod> created;
  EXPECT_CALL(client, create(_, "default", _, _))
      .Times(2)
      .WillRepeatedly(Invoke([&](const api::ResourceType& type, std::string_view,
                                 const api::Value& obj, const client::WriteOptions&) {
        EXPECT_EQ(type.kind, "Pod");
        Pod pod = decoded<Pod>(obj);
        pod.mutable_metadata()->set_name("pi-" + std::to_string(created.size()));
        pod.mutable_metadata()->set_uid("uid-" + pod.metadata().name());
        pod.mutable_metadata()->set_resource_version("5");
        created.push_back(pod);
        return api::encode(pod);
      }));
  std::vector<Job> statuses;
  EXPECT_CALL(client, updateStatus(_, "default", _, _))
      .WillRepeatedly(Invoke([&](const api::ResourceType&, std::string_view, const api::Value& obj,
                                 const client::WriteOptions&) {
        statuses.push_back(decoded<Job>(obj));
        return obj;
      }));
  controller.drain();
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_EQ(statuses[0].status().active(), 2);
  EXPECT_FALSE(controller.expectations().satisfied("default/pi"));

  // The Job changes before its pods show up: nothing more is created.
  Job again = statuses[0];
  again.mutable_metadata()->set_resource_version("9");
  jobs.put(again);
  controller.drain();

  for (const auto& p : created)
    pods.put(p);
  EXPECT_TRUE(controller.expectations().satisfied("default/pi"));
  controller.drain();
  EXPECT_EQ(controller.errors(), 0u);
}

TEST(StatefulSetController, RevisionMadeEarlierIsNotAnError) {
  StrictMock<MockClient> client;
  auto sets = FakeInformer::of<StatefulSet>();
  auto pods = FakeInformer::of<Pod>();
  auto revisions = FakeInformer::of<ControllerRevision>();
  StatefulSetController controller(client, sets, pods, revisions);
  sets.put(fromYaml<StatefulSet>(R"(
metadata: {name: web, namespace: default, uid: sts-uid, resourceVersion: "3"}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
)"));
  ::testing::InSequence order;
  EXPECT_CALL(client, create(_, "default", _, _))
      .WillOnce(Invoke([](const api::ResourceType& type, std::string_view, const api::Value&,
                          const client::WriteOptions&) -> api::Value {
        EXPECT_EQ(type.kind, "ControllerRevision");
        throw client::ApiError(409, "AlreadyExists", "already exists");
      }));
  EXPECT_CALL(client, create(_, "default", _, _))
      .WillOnce(Invoke([](const api::ResourceType& type, std::string_view, const api::Value& obj,
                          const client::WriteOptions&) {
        EXPECT_EQ(type.kind, "Pod");
        EXPECT_EQ(decoded<Pod>(obj).metadata().name(), "web-0");
        return obj;
      }));
  EXPECT_CALL(client, updateStatus(_, "default", _, _))
      .WillOnce(Invoke([](const api::ResourceType&, std::string_view, const api::Value& obj,
                          const client::WriteOptions&) { return obj; }));
  controller.drain();
  EXPECT_EQ(controller.errors(), 0u);
  EXPECT_EQ(controller.expectations().pendingCreations("default/web"), 1);  // the pod only
}

}  // namespace
}  // namespace skiff::controllers

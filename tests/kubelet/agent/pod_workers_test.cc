// The agent's pod workers and status manager, with a mock PodSyncer, against a real in-process
// apiserver (and, for the exact delete call, a mock Client).
#include "kubelet/agent/pod_workers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "control/client/typed.h"
#include "kubelet/agent/agent.h"
#include "kubelet/agent/time_util.h"
#include "tests/control/client/test_server.h"
#include "tests/kubelet/agent/agent_options.h"
#include "tests/mocks/mock_client.h"
#include "tests/mocks/mock_pod_syncer.h"

namespace skiff::kubelet {
namespace {

using namespace std::chrono_literals;
using api::core::v1::Event;
using api::core::v1::Pod;
using api::core::v1::PodStatus;
using ::testing::_;
using ::testing::AnyNumber;
using ::testing::Invoke;
using testing::MockPodSyncer;
using ::testing::NiceMock;
using ::testing::Return;

template <class F>
bool eventually(F f, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

Pod makePod(const std::string& name, const std::string& node) {
  Pod pod;
  pod.mutable_metadata()->set_name(name);
  pod.mutable_metadata()->set_namespace_("default");
  pod.mutable_spec()->set_node_name(node);
  auto* c = pod.mutable_spec()->add_containers();
  c->set_name("web");
  c->set_image("busybox");
  return pod;
}

PodStatus running(bool ready, const std::string& ip = "10.244.0.5") {
  PodStatus s;
  s.set_phase("Running");
  s.set_pod_ip(ip);
  s.add_pod_ips()->set_ip(ip);
  s.set_host_ip("192.0.2.10");
  for (const char* type : {"Initialized", "ContainersReady", "Ready"}) {
    auto* c = s.add_conditions();
    c->set_type(type);
    c->set_status(ready || std::string(type) == "Initialized" ? "True" : "False");
  }
  auto* cs = s.add_container_statuses();
  cs->set_name("web");
  cs->set_ready(ready);
  cs->mutable_state()->mutable_running();
  return s;
}

const api::core::v1::PodCondition* condition(const PodStatus& s, const std::string& type) {
  for (const auto& c : s.conditions()) {
    if (c.type() == type) return &c;
  }
  return nullptr;
}

class PodWorkersTest : public ::testing::Test {
 protected:
  PodWorkersTest() : server_(client::testing::ServerMode::kPlain), client_(server_.client()) {
    ON_CALL(syncer_, knownPodUids()).WillByDefault(Return(std::vector<std::string>{}));
  }

  AgentOptions options() {
    AgentOptions o = testing::agentOptions("runc://test", 20ms);
    return o;
  }

  Pod apiPod(const std::string& name) { return client::get<Pod>(*client_, "default", name); }
  bool gone(const std::string& name) {
    try {
      apiPod(name);
      return false;
    } catch (const client::ApiError& e) {
      return e.isNotFound();
    }
  }

  client::testing::TestApiServer server_;
  client::ClientPtr client_;
  NiceMock<MockPodSyncer> syncer_;
};

TEST(MergePodStatusTest, KeepsForeignConditionsTransitionTimesAndTerminalPhase) {
  PodStatus old_status;
  auto* scheduled = old_status.add_conditions();
  scheduled->set_type("PodScheduled");
  scheduled->set_status("True");
  auto* ready = old_status.add_conditions();
  ready->set_type("Ready");
  ready->set_status("True");
  ready->mutable_last_transition_time()->set_seconds(1000);
  old_status.mutable_start_time()->set_seconds(900);

  PodStatus merged = mergePodStatus(old_status, running(true));
  ASSERT_NE(condition(merged, "PodScheduled"), nullptr);
  EXPECT_EQ(condition(merged, "Ready")->last_transition_time().seconds(), 1000);
  EXPECT_TRUE(condition(merged, "ContainersReady")->has_last_transition_time());
  EXPECT_EQ(merged.start_time().seconds(), 900);

  PodStatus flipped = mergePodStatus(old_status, running(false));
  EXPECT_GT(condition(flipped, "Ready")->last_transition_time().seconds(), 1000);

  // Bound by a binding that set no condition: PodScheduled True, as the kubelet reports it.
  PodStatus fresh = mergePodStatus(PodStatus(), running(true));
  ASSERT_NE(condition(fresh, "PodScheduled"), nullptr);
  EXPECT_EQ(condition(fresh, "PodScheduled")->status(), "True");

  old_status.set_phase("Succeeded");
  EXPECT_EQ(mergePodStatus(old_status, running(true)).phase(), "Succeeded");
}

TEST_F(PodWorkersTest, SyncsBoundPodsPostsStatusOnlyWhenChangedAndRecordsEvents) {
  Pod created = client::create(*client_, makePod("web", "node-1"));
  // The scheduler's condition, which the kubelet keeps.
  auto* scheduled = created.mutable_status()->add_conditions();
  scheduled->set_type("PodScheduled");
  scheduled->set_status("True");
  client::updateStatus(*client_, created);
  client::create(*client_, makePod("elsewhere", "node-2"));

  std::atomic<bool> ready{true};
  std::atomic<int> calls{0};
  EXPECT_CALL(syncer_, sync(_)).WillRepeatedly(Invoke([&](const Pod& pod) {
    EXPECT_EQ(pod.metadata().name(), "web");  // never the other node's pod
    PodSyncResult r;
    r.status = running(ready);
    r.resync_after = 10ms;
    if (calls++ == 0)
      r.events.push_back({"Normal", "Started", "Started container web", "spec.containers{web}"});
    return r;
  }));
  EXPECT_CALL(syncer_, terminate(_, _)).Times(0);

  Agent agent(*client_, syncer_, options());
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(eventually([&] { return apiPod("web").status().phase() == "Running"; }));
  ASSERT_TRUE(eventually([&] { return calls >= 10; }));
  EXPECT_EQ(agent.statuses().posts(), 1u);
  Pod pod = apiPod("web");
  EXPECT_EQ(pod.status().pod_ip(), "10.244.0.5");
  ASSERT_NE(condition(pod.status(), "PodScheduled"), nullptr);
  EXPECT_EQ(condition(pod.status(), "Ready")->status(), "True");
  int64_t since = condition(pod.status(), "Ready")->last_transition_time().seconds();
  EXPECT_GT(since, 0);

  ready = false;
  ASSERT_TRUE(eventually([&] { return agent.statuses().posts() == 2; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(agent.statuses().posts(), 2u);
  pod = apiPod("web");
  EXPECT_EQ(condition(pod.status(), "Ready")->status(), "False");
  EXPECT_GE(condition(pod.status(), "Ready")->last_transition_time().seconds(), since);

  agent.events().flush();
  auto events = client::list<Event>(*client_, "default");
  bool found = false;
  for (const auto& e : events) {
    if (e.reason() != "Started") continue;
    found = true;
    EXPECT_EQ(e.source().component(), "kubelet");
    EXPECT_EQ(e.source().host(), "node-1");
    EXPECT_EQ(e.involved_object().kind(), "Pod");
    EXPECT_EQ(e.involved_object().name(), "web");
    EXPECT_EQ(e.involved_object().uid(), created.metadata().uid());
    EXPECT_EQ(e.involved_object().field_path(), "spec.containers{web}");
  }
  EXPECT_TRUE(found);
}

TEST_F(PodWorkersTest, GracefulDeletionTerminatesThenDeletesThePod) {
  Pod pod = makePod("web", "node-1");
  pod.mutable_spec()->set_termination_grace_period_seconds(7);
  Pod created = client::create(*client_, pod);
  ON_CALL(syncer_, sync(_)).WillByDefault(Invoke([](const Pod&) {
    return PodSyncResult{.status = running(true)};
  }));
  std::atomic<bool> terminated{false};
  EXPECT_CALL(syncer_, terminate(_, std::chrono::milliseconds(7000)))
      .WillOnce(Invoke([&](const Pod& p, std::chrono::milliseconds) {
        // Still there, marked for deletion, while its containers stop.
        EXPECT_TRUE(p.metadata().has_deletion_timestamp());
        EXPECT_FALSE(gone("web"));
        terminated = true;
        PodSyncResult r;
        r.status.set_phase("Succeeded");
        r.events.push_back({"Normal", "Killing", "Stopping container web", "spec.containers{web}"});
        return r;
      }));

  Agent agent(*client_, syncer_, options());
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(eventually([&] { return apiPod("web").status().phase() == "Running"; }));
  client::remove<Pod>(*client_, "default", "web");  // graceful: the kubelet confirms
  ASSERT_TRUE(eventually([&] { return gone("web"); }));
  EXPECT_TRUE(terminated);
  ASSERT_TRUE(eventually([&] { return agent.pods().trackedPods() == 0; }));
}

TEST_F(PodWorkersTest, ForceDeletedPodsAreTerminated) {
  client::create(*client_, makePod("web", "node-1"));
  ON_CALL(syncer_, sync(_)).WillByDefault(Invoke([](const Pod&) {
    return PodSyncResult{.status = running(true)};
  }));
  std::atomic<bool> terminated{false};
  EXPECT_CALL(syncer_, terminate(_, _)).WillOnce(Invoke([&](const Pod&, std::chrono::milliseconds) {
    terminated = true;
    return PodSyncResult{};
  }));
  Agent agent(*client_, syncer_, options());
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(eventually([&] { return apiPod("web").status().phase() == "Running"; }));
  client::remove<Pod>(*client_, "default", "web", {.grace_period_seconds = 0});
  ASSERT_TRUE(eventually([&] { return terminated.load(); }));
  ASSERT_TRUE(eventually([&] { return agent.pods().trackedPods() == 0; }));
}

TEST_F(PodWorkersTest, TerminalPodsAreNotRunAgain) {
  Pod done = client::create(*client_, makePod("done", "node-1"));
  done.mutable_status()->set_phase("Succeeded");
  client::updateStatus(*client_, done);
  client::create(*client_, makePod("job", "node-1"));

  std::atomic<int> job_syncs{0};
  EXPECT_CALL(syncer_, sync(_)).WillRepeatedly(Invoke([&](const Pod& pod) {
    EXPECT_NE(pod.metadata().name(), "done");
    ++job_syncs;
    PodSyncResult r;
    r.status.set_phase("Failed");
    r.status.set_reason("Error");
    return r;
  }));
  std::atomic<int> terminates{0};
  EXPECT_CALL(syncer_, terminate(_, _))
      .Times(2)
      .WillRepeatedly(Invoke([&](const Pod&, std::chrono::milliseconds) {
        ++terminates;
        return PodSyncResult{};
      }));
  Agent agent(*client_, syncer_, options());
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(eventually([&] { return apiPod("job").status().phase() == "Failed"; }));
  ASSERT_TRUE(eventually([&] { return terminates == 2; }));
  std::this_thread::sleep_for(200ms);  // ten sync periods
  EXPECT_EQ(job_syncs, 1);
  EXPECT_EQ(apiPod("done").status().phase(), "Succeeded");
}

TEST_F(PodWorkersTest, RestartAdoptsBoundPodsAndCleansUpOrphans) {
  Pod kept = client::create(*client_, makePod("kept", "node-1"));
  EXPECT_CALL(syncer_, knownPodUids())
      .WillOnce(Return(std::vector<std::string>{kept.metadata().uid(), "uid-deleted-meanwhile"}));
  EXPECT_CALL(syncer_, cleanupOrphan("uid-deleted-meanwhile")).Times(1);
  EXPECT_CALL(syncer_, cleanupOrphan(kept.metadata().uid())).Times(0);
  EXPECT_CALL(syncer_, terminate(_, _)).Times(0);  // nothing running is stopped
  std::atomic<int> syncs{0};
  EXPECT_CALL(syncer_, sync(_)).WillRepeatedly(Invoke([&](const Pod& pod) {
    EXPECT_EQ(pod.metadata().uid(), kept.metadata().uid());
    ++syncs;
    return PodSyncResult{.status = running(true)};
  }));
  Agent agent(*client_, syncer_, options());
  ASSERT_TRUE(agent.start());
  EXPECT_EQ(agent.orphansCleaned(), std::vector<std::string>{"uid-deleted-meanwhile"});
  ASSERT_TRUE(eventually([&] { return syncs >= 2; }));
  agent.stop();  // stopping leaves the pod alone too
}

TEST_F(PodWorkersTest, FailedSyncsAreRetried) {
  client::create(*client_, makePod("web", "node-1"));
  std::atomic<int> calls{0};
  EXPECT_CALL(syncer_, sync(_)).WillRepeatedly(Invoke([&](const Pod&) {
    if (calls++ < 2) throw std::runtime_error("runc exploded");
    return PodSyncResult{.status = running(true)};
  }));
  Agent agent(*client_, syncer_, options());
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(eventually([&] { return apiPod("web").status().phase() == "Running"; }));
  EXPECT_GE(calls, 3);
}

// The exact delete the kubelet sends to confirm a graceful deletion.
TEST(PodWorkersDeleteTest, DeletesWithGraceZeroAndAUidPrecondition) {
  NiceMock<client::testing::MockClient> client;
  NiceMock<MockPodSyncer> syncer;
  ON_CALL(client, create(_, _, _, _)).WillByDefault(Return(api::Value::object()));
  EXPECT_CALL(client, updateStatus(_, "default", _, _)).WillOnce(Return(api::Value::object()));
  std::atomic<bool> deleted{false};
  EXPECT_CALL(client, remove(_, "default", "web", _))
      .WillOnce(Invoke([&](const api::ResourceType& type, std::string_view, std::string_view,
                           const client::DeleteOptions& o) {
        EXPECT_EQ(type.kind, "Pod");
        EXPECT_EQ(o.grace_period_seconds, std::optional<int64_t>(0));
        EXPECT_EQ(o.precondition_uid, "uid-1");
        deleted = true;
        return api::Value::object();
      }));
  EXPECT_CALL(syncer, terminate(_, std::chrono::milliseconds(12000)))
      .WillOnce(Return(PodSyncResult{.status = running(false)}));
  PodStatusManager statuses(client);
  PodEventRecorder events(client, "node-1");
  PodWorkers workers(client, syncer, statuses, events, {.node_name = "node-1", .workers = 1});
  Pod pod = makePod("web", "node-1");
  pod.mutable_metadata()->set_uid("uid-1");
  pod.mutable_metadata()->set_resource_version("5");
  setTime(*pod.mutable_metadata()->mutable_deletion_timestamp(), api::now());
  pod.mutable_metadata()->set_deletion_grace_period_seconds(12);
  workers.onPodAdd(pod);
  workers.start();
  ASSERT_TRUE(eventually([&] { return deleted.load(); }));
  workers.stop();
}

}  // namespace
}  // namespace skiff::kubelet

// The scheduler against a real in-process apiserver with hollow nodes (Node objects with capacity
// and a Ready condition, no kubelet): bindings respect resources, selectors, taints and
// anti-affinity; an unschedulable pod gets a FailedScheduling Event and PodScheduled=False, and
// is scheduled once a fitting node appears.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <thread>

#include "control/client/typed.h"
#include "scheduler/runner.h"
#include "tests/control/client/test_server.h"
#include "tests/scheduler/test_objects.h"

namespace skiff::scheduler {
namespace {

using namespace std::chrono_literals;
using testing::NodeBuilder;
using testing::PodBuilder;

class SchedulerIntegrationTest : public ::testing::Test {
 protected:
  SchedulerIntegrationTest()
      : server_(client::testing::ServerMode::kPlain), client_(server_.client()) {}

  void addNode(NodeBuilder builder) {
    Node node = builder.build();
    auto* ready = node.mutable_status()->add_conditions();
    ready->set_type("Ready");
    ready->set_status("True");
    Node created = client::create(*client_, node);
    *created.mutable_status() = node.status();
    client::updateStatus(*client_, created);
  }

  void addPod(PodBuilder builder) {
    Pod pod = builder.build();
    pod.mutable_metadata()->clear_uid();
    pod.mutable_spec()->mutable_containers(0)->set_image("busybox");
    client::create(*client_, pod);
  }

  // The node the pod is bound to, once it is (empty after the timeout).
  std::string waitBound(const std::string& name, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      Pod pod = client::get<Pod>(*client_, "default", name);
      if (!pod.spec().node_name().empty()) return pod.spec().node_name();
      std::this_thread::sleep_for(20ms);
    }
    return "";
  }

  std::vector<api::core::v1::Event> events(const std::string& pod, const std::string& reason) {
    std::vector<api::core::v1::Event> out;
    for (auto& e : client::list<api::core::v1::Event>(*client_, "default")) {
      if (e.involved_object().name() == pod && e.reason() == reason) out.push_back(e);
    }
    return out;
  }

  void startScheduler() {
    RunnerOptions options;
    options.scheduler.queue.initial_backoff = 100ms;
    options.scheduler.queue.max_backoff = 500ms;
    scheduler_ = std::jthread(
        [this, options](std::stop_token stop) { runScheduler(*client_, options, stop); });
  }

  client::testing::TestApiServer server_;
  client::ClientPtr client_;
  std::jthread scheduler_;
};

TEST_F(SchedulerIntegrationTest, BindsRespectingResourcesSelectorsTaintsAndAntiAffinity) {
  addNode(NodeBuilder("small").capacity("2", "4Gi").label("disk", "hdd"));
  addNode(NodeBuilder("large").capacity("8", "16Gi").label("disk", "ssd"));
  addNode(NodeBuilder("tainted").capacity("16", "32Gi").taint("dedicated", "gpu", "NoSchedule"));
  startScheduler();

  addPod(PodBuilder("big").req("4", "1Gi"));
  EXPECT_EQ(waitBound("big"), "large");
  addPod(PodBuilder("ssd").req("100m").nodeSelector("disk", "ssd"));
  EXPECT_EQ(waitBound("ssd"), "large");
  addPod(PodBuilder("tolerant").req("10").toleration("dedicated", "Equal", "gpu", "NoSchedule"));
  EXPECT_EQ(waitBound("tolerant"), "tainted");

  addPod(PodBuilder("db-0").label("app", "db").req("100m").antiAffinity("app", "db"));
  const std::string first = waitBound("db-0");
  ASSERT_FALSE(first.empty());
  addPod(PodBuilder("db-1").label("app", "db").req("100m").antiAffinity("app", "db"));
  const std::string second = waitBound("db-1");
  ASSERT_FALSE(second.empty());
  EXPECT_NE(first, second);
  EXPECT_EQ(events("big", "Scheduled").size(), 1u);
}

TEST_F(SchedulerIntegrationTest, UnschedulablePodWaitsForAFittingNode) {
  addNode(NodeBuilder("small").capacity("2", "4Gi"));
  addNode(NodeBuilder("large").capacity("8", "16Gi"));
  addNode(NodeBuilder("tainted").capacity("16", "32Gi").taint("dedicated", "gpu", "NoSchedule"));
  startScheduler();
  addPod(PodBuilder("huge").req("64"));

  std::vector<api::core::v1::Event> failed;
  for (int i = 0; i < 200 && failed.empty(); ++i) {
    std::this_thread::sleep_for(20ms);
    failed = events("huge", "FailedScheduling");
  }
  ASSERT_FALSE(failed.empty());
  EXPECT_EQ(failed[0].type(), "Warning");
  EXPECT_EQ(failed[0].message(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 "
            "Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful "
            "for scheduling, 2 No preemption victims found for incoming pod.");
  bool condition = false;
  for (int i = 0; i < 200 && !condition; ++i) {
    Pod pod = client::get<Pod>(*client_, "default", "huge");
    for (const auto& c : pod.status().conditions()) {
      condition = condition || (c.type() == "PodScheduled" && c.status() == "False" &&
                                c.reason() == "Unschedulable");
    }
    if (!condition) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(condition) << "PodScheduled=False with reason Unschedulable";
  EXPECT_EQ(client::get<Pod>(*client_, "default", "huge").spec().node_name(), "");

  addNode(NodeBuilder("huge-node").capacity("128", "256Gi"));
  EXPECT_EQ(waitBound("huge"), "huge-node");
}

// kube-scheduler's system default spreading: pods without constraints of their own spread by
// hostname among the pods of their Service. Without a Service the same pods all go to the
// emptiest node (NodeResourcesFit's LeastAllocated prefers the big one every time).
TEST_F(SchedulerIntegrationTest, PodsOfAServiceSpreadByDefault) {
  addNode(NodeBuilder("big").capacity("64", "256Gi"));
  addNode(NodeBuilder("small-a").capacity("4", "8Gi"));
  addNode(NodeBuilder("small-b").capacity("4", "8Gi"));
  api::core::v1::Service svc;
  svc.mutable_metadata()->set_name("web");
  svc.mutable_metadata()->set_namespace_("default");
  (*svc.mutable_spec()->mutable_selector())["app"] = "web";
  auto* port = svc.mutable_spec()->add_ports();
  port->set_port(80);
  client::create(*client_, svc);
  startScheduler();

  std::map<std::string, int> web;
  std::map<std::string, int> batch;
  for (int i = 0; i < 6; ++i) {
    const std::string name = "web-" + std::to_string(i);
    addPod(PodBuilder(name).label("app", "web").req("500m", "512Mi"));
    const std::string node = waitBound(name);
    ASSERT_FALSE(node.empty()) << name;
    ++web[node];
  }
  for (int i = 0; i < 6; ++i) {
    const std::string name = "batch-" + std::to_string(i);
    addPod(PodBuilder(name).label("app", "batch").req("500m", "512Mi"));
    const std::string node = waitBound(name);
    ASSERT_FALSE(node.empty()) << name;
    ++batch[node];
  }
  EXPECT_EQ(web.size(), 3u) << "every node got a pod of the Service";
  EXPECT_LE(web["big"], 3);
  EXPECT_EQ(batch["big"], 6) << "pods of no Service or controller are not spread";
}

}  // namespace
}  // namespace skiff::scheduler

// The controller manager against a real apiserver in this process (embedded store, plain HTTP on
// a free port): Deployments make ReplicaSets make pods, scaling, a rolling update within
// maxSurge/maxUnavailable, rollback, and deletion with each propagation policy. There is no
// kubelet: a "hollow" loop marks pods Running and Ready through the status subresource.

#include "control/controllers/controller_manager.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include "control/api/codec.h"
#include "control/client/typed.h"
#include "control/controllers/controller_utils.h"
#include "control/controllers/deployment.h"
#include "tests/control/client/test_server.h"

namespace skiff::controllers {
namespace {

using api::apps::v1::Deployment;
using api::apps::v1::ReplicaSet;
using api::core::v1::Pod;
using client::testing::ServerMode;
using client::testing::TestApiServer;

bool eventually(const std::function<bool()>& cond,
                std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      if (cond()) return true;
    } catch (const client::ApiError&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

// Marks every pod Running and Ready, as a kubelet would report it.
class HollowKubelet {
 public:
  explicit HollowKubelet(client::Client& c) : client_(c) {
    thread_ = std::thread([this] {
      while (!stop_) {
        try {
          tick();
        } catch (const std::exception&) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  }
  ~HollowKubelet() {
    stop_ = true;
    thread_.join();
  }
  void pause(bool p) { paused_ = p; }

 private:
  void tick() {
    if (paused_) return;
    for (auto& pod : client::list<Pod>(client_, "default")) {
      if (isPodReady(pod) || pod.metadata().has_deletion_timestamp()) continue;
      pod.mutable_status()->set_phase("Running");
      auto* c = pod.mutable_status()->add_conditions();
      c->set_type("Ready");
      c->set_status("True");
      setTime(*c->mutable_last_transition_time(), api::now());
      try {
        client::updateStatus(client_, pod);
      } catch (const client::ApiError&) {
      }
    }
  }

  client::Client& client_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> paused_{false};
  std::thread thread_;
};

Deployment deployment(int replicas, const std::string& image) {
  Deployment d;
  api::decodeYaml(R"(
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  annotations: {kubernetes.io/change-cause: "first"}
spec:
  selector: {matchLabels: {app: web}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: busybox}]}
)",
                  d);
  d.mutable_spec()->set_replicas(replicas);
  d.mutable_spec()->mutable_template_()->mutable_spec()->mutable_containers(0)->set_image(image);
  return d;
}

std::vector<Pod> livePods(client::Client& c) {
  std::vector<Pod> out;
  for (auto& p : client::list<Pod>(c, "default")) {
    if (!p.metadata().has_deletion_timestamp()) out.push_back(std::move(p));
  }
  return out;
}

class ControllerManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client_ = server_.client();
    ControllerManagerOptions options;
    options.workers = 2;
    manager_ = std::make_unique<ControllerManager>(*client_, options);
    manager_->start();
    ASSERT_TRUE(eventually([&] { return manager_->running(); }));
  }
  void TearDown() override { manager_->stop(); }

  // Waits for `kubectl rollout status` to say the rollout finished.
  bool rolledOut(int replicas) {
    return eventually([&] {
      auto d = client::get<Deployment>(*client_, "default", "web");
      const auto& s = d.status();
      if (d.metadata().generation() > s.observed_generation()) return false;
      for (const auto& c : s.conditions()) {
        if (c.type() == "Progressing" && c.reason() == "ProgressDeadlineExceeded") return false;
      }
      return s.updated_replicas() == replicas && s.replicas() == replicas &&
             s.available_replicas() == replicas;
    });
  }

  TestApiServer server_{ServerMode::kPlain};
  client::ClientPtr client_;
  std::unique_ptr<ControllerManager> manager_;
};

TEST_F(ControllerManagerTest, DeploymentMakesReplicaSetMakesPodsAndScales) {
  HollowKubelet kubelet(*client_);
  client::create(*client_, deployment(3, "busybox:1"));
  ASSERT_TRUE(rolledOut(3));
  auto rss = client::list<ReplicaSet>(*client_, "default");
  ASSERT_EQ(rss.size(), 1u);
  const auto& rs = rss[0];
  EXPECT_EQ(rs.metadata().name().rfind("web-", 0), 0u);
  EXPECT_EQ(rs.metadata().annotations().at("deployment.kubernetes.io/revision"), "1");
  EXPECT_EQ(rs.metadata().annotations().at("kubernetes.io/change-cause"), "first");
  auto pods = livePods(*client_);
  ASSERT_EQ(pods.size(), 3u);
  for (const auto& p : pods) {
    ASSERT_NE(controllerOf(p.metadata()), nullptr);
    EXPECT_EQ(controllerOf(p.metadata())->uid(), rs.metadata().uid());
    EXPECT_EQ(p.metadata().labels().at("pod-template-hash"),
              rs.metadata().labels().at("pod-template-hash"));
  }
  auto d = client::get<Deployment>(*client_, "default", "web");
  bool available = false;
  for (const auto& c : d.status().conditions()) {
    if (c.type() == "Available") available = c.status() == "True";
    if (c.type() == "Progressing") {
      EXPECT_EQ(c.reason(), "NewReplicaSetAvailable");
    }
  }
  EXPECT_TRUE(available);

  // Scale up, then down.
  d.mutable_spec()->set_replicas(5);
  client::update(*client_, d);
  ASSERT_TRUE(rolledOut(5));
  EXPECT_EQ(livePods(*client_).size(), 5u);
  d = client::get<Deployment>(*client_, "default", "web");
  d.mutable_spec()->set_replicas(2);
  client::update(*client_, d);
  ASSERT_TRUE(rolledOut(2));
  EXPECT_TRUE(eventually([&] { return livePods(*client_).size() == 2; }));

  // Self-healing: a deleted pod comes back.
  auto victim = livePods(*client_).at(0);
  client::remove<Pod>(*client_, "default", victim.metadata().name());
  EXPECT_TRUE(eventually([&] {
    auto now = livePods(*client_);
    return now.size() == 2 && now[0].metadata().name() != victim.metadata().name() &&
           now[1].metadata().name() != victim.metadata().name();
  }));
}

TEST_F(ControllerManagerTest, RollingUpdateStaysWithinSurgeAndUnavailableThenRollsBack) {
  auto kubelet = std::make_unique<HollowKubelet>(*client_);
  client::create(*client_, deployment(3, "busybox:1"));
  ASSERT_TRUE(rolledOut(3));

  // Watch the rollout from the side: never more than 3 + 1 pods, never fewer than 3 ready.
  std::atomic<bool> stop{false};
  std::atomic<int> max_pods{0}, min_ready{100};
  std::thread observer([&] {
    while (!stop) {
      try {
        auto pods = livePods(*client_);
        int ready = 0;
        for (const auto& p : pods)
          ready += isPodReady(p) ? 1 : 0;
        max_pods = std::max<int>(max_pods, static_cast<int>(pods.size()));
        min_ready = std::min(min_ready.load(), ready);
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  auto d = client::get<Deployment>(*client_, "default", "web");
  d.mutable_spec()->mutable_template_()->mutable_spec()->mutable_containers(0)->set_image(
      "busybox:2");
  (*d.mutable_metadata()->mutable_annotations())["kubernetes.io/change-cause"] = "second";
  client::update(*client_, d);
  ASSERT_TRUE(rolledOut(3));
  EXPECT_TRUE(eventually([&] {
    auto pods = livePods(*client_);
    if (pods.size() != 3) return false;
    for (const auto& p : pods) {
      if (p.spec().containers(0).image() != "busybox:2") return false;
    }
    return true;
  }));
  stop = true;
  observer.join();
  EXPECT_LE(max_pods.load(), 4);
  EXPECT_GE(min_ready.load(), 3);

  auto rss = client::list<ReplicaSet>(*client_, "default");
  ASSERT_EQ(rss.size(), 2u);
  const ReplicaSet* v1 = nullptr;
  for (const auto& rs : rss) {
    if (rs.spec().template_().spec().containers(0).image() == "busybox:1") v1 = &rs;
  }
  ASSERT_NE(v1, nullptr);
  EXPECT_EQ(v1->spec().replicas(), 0);

  // `kubectl rollout undo`: revision 1's template, without its hash label, into the Deployment.
  d = client::get<Deployment>(*client_, "default", "web");
  EXPECT_EQ(d.metadata().annotations().at("deployment.kubernetes.io/revision"), "2");
  *d.mutable_spec()->mutable_template_() = v1->spec().template_();
  d.mutable_spec()->mutable_template_()->mutable_metadata()->mutable_labels()->erase(
      "pod-template-hash");
  client::update(*client_, d);
  ASSERT_TRUE(rolledOut(3));
  EXPECT_TRUE(eventually([&] {
    auto back = client::get<ReplicaSet>(*client_, "default", v1->metadata().name());
    const auto& a = back.metadata().annotations();
    return back.spec().replicas() == 3 && a.count("deployment.kubernetes.io/revision") &&
           a.at("deployment.kubernetes.io/revision") == "3" &&
           a.at("deployment.kubernetes.io/revision-history") == "1";
  }));
  EXPECT_EQ(client::list<ReplicaSet>(*client_, "default").size(), 2u);  // no third one
}

TEST_F(ControllerManagerTest, DeletionPropagation) {
  HollowKubelet kubelet(*client_);
  auto count = [&]() {
    return std::make_pair(client::list<ReplicaSet>(*client_, "default").size(),
                          client::list<Pod>(*client_, "default").size());
  };
  auto gone = [&](const std::string& name) {
    try {
      client::get<Deployment>(*client_, "default", name);
      return false;
    } catch (const client::ApiError& e) {
      return e.isNotFound();
    }
  };

  // Background (kubectl's default): the Deployment goes at once, the collector takes the rest.
  client::create(*client_, deployment(2, "busybox:1"));
  ASSERT_TRUE(rolledOut(2));
  client::remove<Deployment>(*client_, "default", "web", {.propagation_policy = "Background"});
  EXPECT_TRUE(gone("web"));
  EXPECT_TRUE(eventually([&] { return count() == std::make_pair(size_t{0}, size_t{0}); }));

  // Foreground: the Deployment stays (foregroundDeletion) until its ReplicaSet and pods are gone.
  client::create(*client_, deployment(2, "busybox:1"));
  ASSERT_TRUE(rolledOut(2));
  // The DELETE's answer is the Deployment as it left it: a GET afterwards may come too late, the
  // collector can take the ReplicaSet and its pods (and then the Deployment) within milliseconds.
  client::DeleteOptions foreground;
  foreground.propagation_policy = "Foreground";
  Deployment d;
  api::decode(client_->remove(typeOf<Deployment>(), "default", "web", foreground), d);
  EXPECT_TRUE(d.metadata().has_deletion_timestamp());
  ASSERT_EQ(d.metadata().finalizers_size(), 1);
  EXPECT_EQ(d.metadata().finalizers(0), "foregroundDeletion");
  EXPECT_TRUE(eventually([&] { return gone("web"); }));
  EXPECT_EQ(count(), std::make_pair(size_t{0}, size_t{0}));

  // Orphan: the Deployment goes, its ReplicaSet stays without an owner, and keeps its pods.
  client::create(*client_, deployment(2, "busybox:1"));
  ASSERT_TRUE(rolledOut(2));
  client::remove<Deployment>(*client_, "default", "web", {.propagation_policy = "Orphan"});
  EXPECT_TRUE(eventually([&] { return gone("web"); }));
  auto rss = client::list<ReplicaSet>(*client_, "default");
  ASSERT_EQ(rss.size(), 1u);
  EXPECT_EQ(rss[0].metadata().owner_references_size(), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(livePods(*client_).size(), 2u);
}

TEST(EnabledControllers, StarNamesAndExclusions) {
  using V = std::vector<std::string>;
  EXPECT_EQ(enabledControllers({"*"}),
            (V{"deployment", "replicaset", "garbagecollector", "job", "daemonset", "statefulset",
               "namespace", "serviceaccount", "nodelifecycle", "csrapproving", "csrsigning",
               "root-ca-cert-publisher", "clusterrole-aggregation", "persistentvolume-binder",
               "local-path-provisioner"}));
  EXPECT_EQ(enabledControllers({"*,-garbagecollector"}),
            (V{"deployment", "replicaset", "job", "daemonset", "statefulset", "namespace",
               "serviceaccount", "nodelifecycle", "csrapproving", "csrsigning",
               "root-ca-cert-publisher", "clusterrole-aggregation", "persistentvolume-binder",
               "local-path-provisioner"}));
  EXPECT_EQ(enabledControllers({"replicaset"}), (V{"replicaset"}));
  EXPECT_THROW(enabledControllers({"*,bogus"}), std::invalid_argument);
}

}  // namespace
}  // namespace skiff::controllers

// The Job, DaemonSet and StatefulSet controllers in the controller manager against a real
// apiserver in this process (embedded store, plain HTTP on a free port). There is no kubelet: the
// test plays it, writing pod status (Running and Ready, Succeeded, Failed) through the status
// subresource, and watches pods with an informer of its own to see the order of creates and
// deletes as the store recorded them.

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "control/client/informer.h"
#include "control/client/typed.h"
#include "control/controllers/controller_manager.h"
#include "control/controllers/controller_utils.h"
#include "control/controllers/daemonset.h"
#include "control/controllers/statefulset.h"
#include "skiff/api/batch_v1.pb.h"
#include "tests/control/client/test_server.h"

namespace skiff::controllers {
namespace {

using api::apps::v1::DaemonSet;
using api::apps::v1::StatefulSet;
using api::batch::v1::Job;
using api::core::v1::Node;
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

template <class T>
T fromYaml(const std::string& yaml) {
  T out;
  api::decodeYaml(yaml, out);
  return out;
}

void setReady(Pod& pod, bool ready) {
  for (auto& c : *pod.mutable_status()->mutable_conditions()) {
    if (c.type() == "Ready") {
      c.set_status(ready ? "True" : "False");
      setTime(*c.mutable_last_transition_time(), api::now());
      return;
    }
  }
  auto* c = pod.mutable_status()->add_conditions();
  c->set_type("Ready");
  c->set_status(ready ? "True" : "False");
  setTime(*c->mutable_last_transition_time(), api::now());
}

// Plays the kubelet: every 10 ms, `step(pod, age)` may change a live pod's status (returns true
// to write it); `age` is how long this incarnation (uid) has been seen.
class TestKubelet {
 public:
  using Step = std::function<bool(Pod& pod, std::chrono::milliseconds age)>;
  TestKubelet(client::Client& c, Step step) : client_(c), step_(std::move(step)) {
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
  ~TestKubelet() {
    stop_ = true;
    thread_.join();
  }
  int maxActive() const { return max_active_; }

 private:
  void tick() {
    auto now = std::chrono::steady_clock::now();
    int active = 0;
    for (auto& pod : client::list<Pod>(client_, "default")) {
      if (pod.metadata().has_deletion_timestamp()) continue;
      if (!isPodTerminal(pod)) ++active;
      auto [it, fresh] = first_seen_.emplace(pod.metadata().uid(), now);
      auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - it->second);
      if (!step_(pod, age)) continue;
      try {
        client::updateStatus(client_, pod);
      } catch (const client::ApiError&) {
      }
    }
    max_active_ = std::max(max_active_.load(), active);
  }

  client::Client& client_;
  Step step_;
  std::map<std::string, std::chrono::steady_clock::time_point> first_seen_;
  std::atomic<int> max_active_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Pods become Running and Ready once seen for `after`.
TestKubelet::Step runAndReadyAfter(std::chrono::milliseconds after) {
  return [after](Pod& pod, std::chrono::milliseconds age) {
    if (isPodReady(pod) || isPodTerminal(pod) || age < after) return false;
    pod.mutable_status()->set_phase("Running");
    setReady(pod, true);
    return true;
  };
}

// Records pod adds and deletes in the order the watch delivers them.
class PodLog {
 public:
  explicit PodLog(client::Client& c) : factory_(c) {
    auto& pods = factory_.informerFor<Pod>();
    pods.addEventHandler({
        .on_add =
            [this, &pods](const client::ObjectPtr& o) {
              const auto& pod = client::as<Pod>(o);
              std::lock_guard lock(mu_);
              adds_.push_back(pod.metadata().name());
              // For StatefulSets: was the previous ordinal Running and Ready when this one came?
              int ordinal = ordinalOf("web", pod.metadata().name());
              if (ordinal > 0) {
                auto prev = pods.cache().get("default", "web-" + std::to_string(ordinal - 1));
                bool ok = prev && client::as<Pod>(prev).status().phase() == "Running" &&
                          isPodReady(client::as<Pod>(prev));
                if (!ok) out_of_order_.push_back(pod.metadata().name());
              }
            },
        .on_delete =
            [this](const client::ObjectPtr& o) {
              std::lock_guard lock(mu_);
              deletes_.push_back(client::as<Pod>(o).metadata().name());
            },
    });
    factory_.start();
    factory_.waitForCacheSync(std::chrono::seconds(10));
  }
  std::vector<std::string> adds() {
    std::lock_guard lock(mu_);
    return adds_;
  }
  std::vector<std::string> deletes() {
    std::lock_guard lock(mu_);
    return deletes_;
  }
  std::vector<std::string> outOfOrder() {
    std::lock_guard lock(mu_);
    return out_of_order_;
  }
  void clear() {
    std::lock_guard lock(mu_);
    adds_.clear();
    deletes_.clear();
  }

 private:
  client::SharedInformerFactory factory_;
  std::mutex mu_;
  std::vector<std::string> adds_, deletes_, out_of_order_;
};

std::vector<Pod> livePods(client::Client& c) {
  std::vector<Pod> out;
  for (auto& p : client::list<Pod>(c, "default")) {
    if (!p.metadata().has_deletion_timestamp()) out.push_back(std::move(p));
  }
  return out;
}

const api::batch::v1::JobCondition* jobCondition(const Job& job, const std::string& type) {
  for (const auto& c : job.status().conditions()) {
    if (c.type() == type && c.status() == "True") return &c;
  }
  return nullptr;
}

class WorkloadControllersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client_ = server_.client();
    ControllerManagerOptions options;
    options.workers = 2;
    options.controllers = {"job", "daemonset", "statefulset"};
    manager_ = std::make_unique<ControllerManager>(*client_, options);
    manager_->start();
    ASSERT_TRUE(eventually([&] { return manager_->running(); }));
  }
  void TearDown() override { manager_->stop(); }

  TestApiServer server_{ServerMode::kPlain};
  client::ClientPtr client_;
  std::unique_ptr<ControllerManager> manager_;
};

Job makeJob(int completions, int parallelism, int backoff_limit) {
  auto job = fromYaml<Job>(R"(
apiVersion: batch/v1
kind: Job
metadata: {name: pi, namespace: default}
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
)");
  job.mutable_spec()->set_completions(completions);
  job.mutable_spec()->set_parallelism(parallelism);
  job.mutable_spec()->set_backoff_limit(backoff_limit);
  return job;
}

TEST_F(WorkloadControllersTest, JobWithThreeCompletionsTwoAtATimeCompletes) {
  // Pods run for 100 ms, then succeed.
  TestKubelet kubelet(*client_, [](Pod& pod, std::chrono::milliseconds age) {
    if (isPodTerminal(pod)) return false;
    if (!isPodReady(pod)) {
      pod.mutable_status()->set_phase("Running");
      setReady(pod, true);
      return true;
    }
    if (age < std::chrono::milliseconds(100)) return false;
    pod.mutable_status()->set_phase("Succeeded");
    setReady(pod, false);
    return true;
  });
  Job created = client::create(*client_, makeJob(3, 2, 6));
  ASSERT_TRUE(eventually([&] {
    return jobCondition(client::get<Job>(*client_, "default", "pi"), "Complete") != nullptr;
  }));
  auto job = client::get<Job>(*client_, "default", "pi");
  EXPECT_EQ(job.status().succeeded(), 3);
  EXPECT_EQ(job.status().active(), 0);
  EXPECT_EQ(job.status().failed(), 0);
  EXPECT_TRUE(job.status().has_start_time());
  EXPECT_TRUE(job.status().has_completion_time());
  auto pods = client::list<Pod>(*client_, "default");
  EXPECT_EQ(pods.size(), 3u);
  for (const auto& p : pods) {
    EXPECT_EQ(p.status().phase(), "Succeeded");
    ASSERT_NE(controllerOf(p.metadata()), nullptr);
    EXPECT_EQ(controllerOf(p.metadata())->uid(), created.metadata().uid());
    EXPECT_EQ(p.metadata().labels().at("batch.kubernetes.io/controller-uid"),
              created.metadata().uid());
    EXPECT_EQ(p.metadata().labels().at("job-name"), "pi");
  }
  EXPECT_LE(kubelet.maxActive(), 2);
  EXPECT_GE(kubelet.maxActive(), 1);
}

TEST_F(WorkloadControllersTest, FailingJobStopsAtItsBackoffLimit) {
  TestKubelet kubelet(*client_, [](Pod& pod, std::chrono::milliseconds) {
    if (isPodTerminal(pod)) return false;
    pod.mutable_status()->set_phase("Failed");
    return true;
  });
  client::create(*client_, makeJob(1, 1, 2));
  ASSERT_TRUE(eventually([&] {
    return jobCondition(client::get<Job>(*client_, "default", "pi"), "Failed") != nullptr;
  }));
  auto job = client::get<Job>(*client_, "default", "pi");
  EXPECT_EQ(jobCondition(job, "Failed")->reason(), "BackoffLimitExceeded");
  EXPECT_EQ(job.status().failed(), 3);  // the first try and two retries
  EXPECT_EQ(job.status().succeeded(), 0);
  EXPECT_EQ(jobCondition(job, "Complete"), nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(client::list<Pod>(*client_, "default").size(), 3u);  // no more tries
}

Node makeNode(const std::string& name, bool tainted = false) {
  Node node;
  node.mutable_metadata()->set_name(name);
  (*node.mutable_metadata()->mutable_labels())["kubernetes.io/hostname"] = name;
  if (tainted) {
    auto* t = node.mutable_spec()->add_taints();
    t->set_key("dedicated");
    t->set_value("db");
    t->set_effect("NoSchedule");
  }
  return node;
}

std::map<std::string, std::string> podsByNode(client::Client& c) {
  std::map<std::string, std::string> out;  // node -> image
  for (const auto& p : livePods(c))
    out[targetNodeOf(p)] = p.spec().containers(0).image();
  return out;
}

TEST_F(WorkloadControllersTest, DaemonSetRunsOnePodPerEligibleNodeAndRollsOut) {
  TestKubelet kubelet(*client_, runAndReadyAfter(std::chrono::milliseconds(0)));
  for (const auto& n : {makeNode("n1"), makeNode("n2"), makeNode("n3", /*tainted=*/true)})
    client::create(*client_, n);
  client::create(*client_, fromYaml<DaemonSet>(R"(
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: c, image: "agent:1"}]}
)"));
  using Placement = std::map<std::string, std::string>;
  ASSERT_TRUE(eventually([&] {
    auto ds = client::get<DaemonSet>(*client_, "default", "agent");
    return ds.status().number_ready() == 2 && ds.status().desired_number_scheduled() == 2;
  }));
  EXPECT_EQ(podsByNode(*client_), (Placement{{"n1", "agent:1"}, {"n2", "agent:1"}}));
  auto ds = client::get<DaemonSet>(*client_, "default", "agent");
  EXPECT_EQ(ds.status().current_number_scheduled(), 2);
  EXPECT_EQ(ds.status().number_available(), 2);
  EXPECT_EQ(ds.status().updated_number_scheduled(), 2);
  EXPECT_EQ(ds.status().number_misscheduled(), 0);
  EXPECT_EQ(ds.status().observed_generation(), ds.metadata().generation());
  for (const auto& p : livePods(*client_)) {
    EXPECT_TRUE(p.spec().node_name().empty());  // the scheduler's job
    EXPECT_EQ(p.metadata().labels().count("controller-revision-hash"), 1u);
  }

  // A new node gets its pod.
  client::create(*client_, makeNode("n4"));
  EXPECT_TRUE(eventually([&] { return podsByNode(*client_).size() == 3; }));
  EXPECT_EQ(podsByNode(*client_).count("n4"), 1u);

  // Rolling update with the default maxUnavailable 1: never fewer than 2 of 3 ready.
  ASSERT_TRUE(eventually([&] {
    return client::get<DaemonSet>(*client_, "default", "agent").status().number_ready() == 3;
  }));
  std::atomic<bool> stop{false};
  std::atomic<int> min_ready{100};
  std::thread observer([&] {
    while (!stop) {
      try {
        int ready = 0;
        for (const auto& p : livePods(*client_))
          ready += isPodReady(p) ? 1 : 0;
        min_ready = std::min(min_ready.load(), ready);
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
  });
  ds = client::get<DaemonSet>(*client_, "default", "agent");
  ds.mutable_spec()->mutable_template_()->mutable_spec()->mutable_containers(0)->set_image(
      "agent:2");
  client::update(*client_, ds);
  bool rolled = eventually([&] {
    auto now = client::get<DaemonSet>(*client_, "default", "agent");
    return now.status().updated_number_scheduled() == 3 && now.status().number_available() == 3 &&
           podsByNode(*client_) ==
               Placement{{"n1", "agent:2"}, {"n2", "agent:2"}, {"n4", "agent:2"}};
  });
  stop = true;
  observer.join();
  ASSERT_TRUE(rolled);
  EXPECT_GE(min_ready.load(), 2);
  // Both templates are in the history, the new one numbered last.
  EXPECT_TRUE(eventually([&] {
    std::map<int64_t, std::string> images;
    for (const auto& cr : client::list<api::apps::v1::ControllerRevision>(*client_, "default")) {
      api::core::v1::PodTemplateSpec tmpl;
      if (!templateOfRevision(cr, tmpl)) return false;
      images[cr.revision()] = tmpl.spec().containers(0).image();
    }
    return images == std::map<int64_t, std::string>{{1, "agent:1"}, {2, "agent:2"}};
  }));
}

TEST_F(WorkloadControllersTest, StatefulSetCreatesInOrderScalesDownInReverseAndRollsOut) {
  PodLog log(*client_);
  // Readiness takes 150 ms: a controller that did not wait would create web-1 before it.
  TestKubelet kubelet(*client_, runAndReadyAfter(std::chrono::milliseconds(150)));
  client::create(*client_, fromYaml<StatefulSet>(R"(
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: default}
spec:
  replicas: 3
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "nginx:1"}]}
)"));
  ASSERT_TRUE(eventually([&] {
    return client::get<StatefulSet>(*client_, "default", "web").status().ready_replicas() == 3;
  }));
  using Names = std::vector<std::string>;
  EXPECT_EQ(log.adds(), (Names{"web-0", "web-1", "web-2"}));
  EXPECT_EQ(log.outOfOrder(), Names{});
  for (const auto& p : livePods(*client_)) {
    const std::string& name = p.metadata().name();
    EXPECT_EQ(p.spec().hostname(), name);
    EXPECT_EQ(p.spec().subdomain(), "web");
    EXPECT_EQ(p.metadata().labels().at("statefulset.kubernetes.io/pod-name"), name);
    EXPECT_EQ(p.metadata().labels().at("apps.kubernetes.io/pod-index"), name.substr(4));
  }
  auto set = client::get<StatefulSet>(*client_, "default", "web");
  EXPECT_EQ(set.status().replicas(), 3);
  EXPECT_EQ(set.status().current_replicas(), 3);
  EXPECT_EQ(set.status().updated_replicas(), 3);
  EXPECT_EQ(set.status().current_revision(), set.status().update_revision());
  const std::string first_revision = set.status().update_revision();

  // Rolling update: web-2, then web-1, then web-0, each recreated at the new revision.
  log.clear();
  set.mutable_spec()->mutable_template_()->mutable_spec()->mutable_containers(0)->set_image(
      "nginx:2");
  const int64_t generation = client::update(*client_, set).metadata().generation();
  ASSERT_TRUE(eventually([&] {
    auto now = client::get<StatefulSet>(*client_, "default", "web");
    return now.status().observed_generation() >= generation &&
           now.status().updated_replicas() == 3 && now.status().ready_replicas() == 3 &&
           now.status().current_revision() == now.status().update_revision();
  }));
  EXPECT_EQ(log.deletes(), (Names{"web-2", "web-1", "web-0"}));
  EXPECT_EQ(log.adds(), (Names{"web-2", "web-1", "web-0"}));
  for (const auto& p : livePods(*client_))
    EXPECT_EQ(p.spec().containers(0).image(), "nginx:2");
  const std::string second_revision =
      client::get<StatefulSet>(*client_, "default", "web").status().update_revision();
  EXPECT_NE(second_revision, first_revision);
  // The history, as `kubectl rollout history` reads it.
  std::map<int64_t, std::string> history;
  for (const auto& cr : client::list<api::apps::v1::ControllerRevision>(*client_, "default")) {
    history[cr.revision()] = cr.metadata().name();
    ASSERT_NE(controllerOf(cr.metadata()), nullptr);
    EXPECT_EQ(controllerOf(cr.metadata())->kind(), "StatefulSet");
  }
  EXPECT_EQ(history, (std::map<int64_t, std::string>{{1, first_revision}, {2, second_revision}}));

  // Scale down to 1: web-2 goes first, then web-1.
  log.clear();
  set = client::get<StatefulSet>(*client_, "default", "web");
  set.mutable_spec()->set_replicas(1);
  client::update(*client_, set);
  ASSERT_TRUE(eventually([&] { return livePods(*client_).size() == 1; }));
  EXPECT_EQ(log.deletes(), (Names{"web-2", "web-1"}));
  EXPECT_EQ(livePods(*client_).at(0).metadata().name(), "web-0");
  EXPECT_TRUE(eventually([&] {
    return client::get<StatefulSet>(*client_, "default", "web").status().replicas() == 1;
  }));
}

}  // namespace
}  // namespace skiff::controllers

// The namespace, serviceaccount and node lifecycle controllers against a real apiserver in this
// process (embedded store, plain HTTP on a free port), on real informers: a deleted namespace is
// emptied, then goes; every namespace gets its "default" ServiceAccount back; a node whose Lease
// stops renewing goes Ready=Unknown, is tainted unreachable, loses the pods that do not tolerate
// that (after their tolerationSeconds), and is untainted once it reports again.

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include "control/api/codec.h"
#include "control/api/json.h"
#include "control/client/informer.h"
#include "control/client/typed.h"
#include "control/controllers/controller_manager.h"
#include "control/controllers/namespace_controller.h"
#include "control/controllers/node_lifecycle_controller.h"
#include "control/controllers/serviceaccount_controller.h"
#include "skiff/api/coordination_v1.pb.h"
#include "tests/control/client/test_server.h"

namespace skiff::controllers {
namespace {

using api::coordination::v1::Lease;
using api::core::v1::ConfigMap;
using api::core::v1::Namespace;
using api::core::v1::Node;
using api::core::v1::Pod;
using api::core::v1::Service;
using api::core::v1::ServiceAccount;
using client::testing::ServerMode;
using client::testing::TestApiServer;
using namespace std::chrono_literals;

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

template <class T>
T fromYaml(const std::string& yaml) {
  T out;
  api::decodeYaml(yaml, out);
  return out;
}

bool gone(const std::function<void()>& get) {
  try {
    get();
    return false;
  } catch (const client::ApiError& e) {
    return e.isNotFound();
  }
}

class LifecycleControllersTest : public ::testing::Test {
 protected:
  void SetUp() override { client_ = server_.client(); }
  void TearDown() override {
    for (auto& c : controllers_)
      c->stop();
    if (factory_) factory_->stop();
  }

  // Starts the controllers made by `make` on one informer factory.
  void run(const std::function<void(client::SharedInformerFactory&)>& make) {
    factory_ = std::make_unique<client::SharedInformerFactory>(*client_);
    make(*factory_);
    factory_->start();
    ASSERT_TRUE(factory_->waitForCacheSync(10s));
    for (auto& c : controllers_)
      c->start(2);
  }

  bool servesNamespaceFinalize() {
    auto res = client_->raw({.method = "GET", .path = "/api/v1"});
    return res.status == 200 && res.body.find("\"namespaces/finalize\"") != std::string::npos;
  }

  void createContent(const std::string& ns) {
    client::create(*client_, fromYaml<ConfigMap>("metadata: {name: settings, namespace: " + ns +
                                                 "}\ndata: {a: b}"));
    client::create(*client_, fromYaml<Service>("metadata: {name: web, namespace: " + ns +
                                               "}\nspec: {ports: [{port: 80}]}"));
    client::create(*client_, fromYaml<Pod>("metadata: {name: web-1, namespace: " + ns +
                                           "}\nspec: {containers: [{name: c, image: busybox}]}"));
  }

  bool empty(const std::string& ns) {
    return client::list<ConfigMap>(*client_, ns).empty() &&
           client::list<Service>(*client_, ns).empty() && client::list<Pod>(*client_, ns).empty();
  }

  TestApiServer server_{ServerMode::kPlain};
  client::ClientPtr client_;
  std::unique_ptr<client::SharedInformerFactory> factory_;
  std::vector<std::unique_ptr<QueueController>> controllers_;
};

TEST_F(LifecycleControllersTest, DeletedNamespaceIsEmptiedThenGoes) {
  run([&](client::SharedInformerFactory& f) {
    controllers_.push_back(
        std::make_unique<NamespaceController>(*client_, f.informerFor<Namespace>()));
  });
  // A finalizer of the test's own keeps the namespace Terminating whether or not the apiserver
  // holds namespaces for spec.finalizers, so the controller's part is seen on its own.
  client::create(*client_,
                 fromYaml<Namespace>("metadata: {name: doomed, finalizers: [test/hold]}"));
  createContent("doomed");
  client::create(*client_, fromYaml<ConfigMap>("metadata: {name: bystander, namespace: default}"));
  ASSERT_FALSE(empty("doomed"));

  client::remove<Namespace>(*client_, "", "doomed");
  ASSERT_TRUE(eventually([&] { return empty("doomed"); }));
  ASSERT_TRUE(eventually([&] {
    auto ns = client::get<Namespace>(*client_, "", "doomed");
    for (const auto& c : ns.status().conditions()) {
      if (c.type() == "NamespaceContentRemaining") {
        return ns.status().phase() == "Terminating" && c.status() == "False" &&
               c.reason() == "ContentRemoved";
      }
    }
    return false;
  }));
  // Other namespaces are untouched.
  EXPECT_NO_THROW(client::get<ConfigMap>(*client_, "default", "bystander"));

  auto ns = client::get<Namespace>(*client_, "", "doomed");
  ns.mutable_metadata()->clear_finalizers();
  client::update(*client_, ns);
  EXPECT_TRUE(
      eventually([&] { return gone([&] { client::get<Namespace>(*client_, "", "doomed"); }); }));
}

TEST_F(LifecycleControllersTest, NamespaceIsFinalizedThroughTheSubresource) {
  if (!servesNamespaceFinalize()) {
    GTEST_SKIP() << "this apiserver does not serve namespaces/{name}/finalize yet";
  }
  run([&](client::SharedInformerFactory& f) {
    controllers_.push_back(
        std::make_unique<NamespaceController>(*client_, f.informerFor<Namespace>()));
  });
  client::create(*client_, fromYaml<Namespace>("metadata: {name: doomed}"));
  auto ns = client::get<Namespace>(*client_, "", "doomed");
  ASSERT_TRUE(namespaceNeedsFinalize(ns));
  createContent("doomed");
  client::remove<Namespace>(*client_, "", "doomed");
  EXPECT_TRUE(
      eventually([&] { return gone([&] { client::get<Namespace>(*client_, "", "doomed"); }); }));
  EXPECT_TRUE(empty("doomed"));
}

TEST_F(LifecycleControllersTest, EveryNamespaceKeepsItsDefaultServiceAccount) {
  run([&](client::SharedInformerFactory& f) {
    controllers_.push_back(std::make_unique<ServiceAccountController>(
        *client_, f.informerFor<Namespace>(), f.informerFor<ServiceAccount>()));
  });
  // The namespaces that were there first.
  ASSERT_TRUE(eventually([&] {
    client::get<ServiceAccount>(*client_, "default", "default");
    client::get<ServiceAccount>(*client_, "kube-system", "default");
    return true;
  }));
  client::create(*client_, fromYaml<Namespace>("metadata: {name: team}"));
  ASSERT_TRUE(eventually([&] {
    client::get<ServiceAccount>(*client_, "team", "default");
    return true;
  }));
  auto first = client::get<ServiceAccount>(*client_, "team", "default");
  client::remove<ServiceAccount>(*client_, "team", "default");
  EXPECT_TRUE(eventually([&] {
    return client::get<ServiceAccount>(*client_, "team", "default").metadata().uid() !=
           first.metadata().uid();
  }));
  // Other accounts are left alone.
  EXPECT_EQ(client::list<ServiceAccount>(*client_, "team").size(), 1u);
}

// A node agent reduced to its heartbeats: renews the node's Lease and, when asked, posts Ready.
class Heartbeats {
 public:
  Heartbeats(client::Client& c, std::string node) : client_(c), node_(std::move(node)) {
    thread_ = std::thread([this] {
      while (!stop_) {
        if (renewing_) {
          try {
            renew();
          } catch (const std::exception&) {
          }
        }
        std::this_thread::sleep_for(200ms);
      }
    });
  }
  ~Heartbeats() {
    stop_ = true;
    thread_.join();
  }
  void setRenewing(bool on) { renewing_ = on; }

  // Posts the Ready condition as a kubelet does when it comes back (again on conflicts).
  void postReady() {
    for (int attempt = 0;; ++attempt) {
      try {
        tryPostReady();
        return;
      } catch (const client::ApiError& e) {
        if (!e.isConflict() || attempt >= 20) throw;
      }
    }
  }

 private:
  void tryPostReady() {
    auto node = client::get<Node>(client_, "", node_);
    api::Timestamp now = api::now();
    bool found = false;
    for (auto& c : *node.mutable_status()->mutable_conditions()) {
      if (c.type() != "Ready") continue;
      found = true;
      if (c.status() != "True") setTime(*c.mutable_last_transition_time(), now);
      c.set_status("True");
      c.set_reason("KubeletReady");
      c.set_message("kubelet is posting ready status");
      setTime(*c.mutable_last_heartbeat_time(), now);
    }
    if (!found) {
      auto* c = node.mutable_status()->add_conditions();
      c->set_type("Ready");
      c->set_status("True");
      c->set_reason("KubeletReady");
      setTime(*c->mutable_last_heartbeat_time(), now);
      setTime(*c->mutable_last_transition_time(), now);
    }
    client::updateStatus(client_, node);
  }

  void renew() {
    api::Timestamp now = api::now();
    Lease lease;
    try {
      lease = client::get<Lease>(client_, "kube-node-lease", node_);
    } catch (const client::ApiError& e) {
      if (!e.isNotFound()) throw;
      lease.mutable_metadata()->set_name(node_);
      lease.mutable_metadata()->set_namespace_("kube-node-lease");
      lease.mutable_spec()->set_holder_identity(node_);
      lease.mutable_spec()->set_lease_duration_seconds(2);
      lease.mutable_spec()->mutable_renew_time()->set_seconds(now.seconds);
      lease.mutable_spec()->mutable_renew_time()->set_nanos(now.nanos);
      client::create(client_, lease);
      return;
    }
    lease.mutable_spec()->mutable_renew_time()->set_seconds(now.seconds);
    lease.mutable_spec()->mutable_renew_time()->set_nanos(now.nanos);
    client::update(client_, lease);
  }

  client::Client& client_;
  std::string node_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> renewing_{true};
  std::thread thread_;
};

const api::core::v1::Taint* findTaint(const Node& node, std::string_view key,
                                      std::string_view effect) {
  for (const auto& t : node.spec().taints()) {
    if (t.key() == key && t.effect() == effect) return &t;
  }
  return nullptr;
}

bool deleting(client::Client& c, const std::string& name) {
  try {
    return client::get<Pod>(c, "default", name).metadata().has_deletion_timestamp();
  } catch (const client::ApiError& e) {
    return e.isNotFound();
  }
}

TEST_F(LifecycleControllersTest, NodeWithoutHeartbeatsIsTaintedAndEvicted) {
  NodeLifecycleOptions options;
  options.timing.grace_period = 2s;
  options.monitor_period = 200ms;
  NodeLifecycleController* controller = nullptr;
  run([&](client::SharedInformerFactory& f) {
    auto c = std::make_unique<NodeLifecycleController>(
        *client_, f.informerFor<Node>(),
        f.informerFor(typeOf<Lease>(), {.ns = std::string(kNodeLeaseNamespace)}),
        f.informerFor<Pod>(), nullptr, options);
    controller = c.get();
    controllers_.push_back(std::move(c));
  });
  client::create(*client_, fromYaml<Node>("metadata: {name: node-1}"));
  Heartbeats heartbeats(*client_, "node-1");
  heartbeats.postReady();
  const char* pods[][2] = {
      // tolerationSeconds 0 rather than no toleration: an apiserver with DefaultTolerationSeconds
      // admission gives a pod without one 300 s.
      {"intolerant",
       "[{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, "
       "tolerationSeconds: 0}]"},
      {"patient",
       "[{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, "
       "tolerationSeconds: 2}]"},
      {"loyal", "[{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute}]"},
  };
  for (const auto& [name, tolerations] : pods) {
    auto pod = client::create(
        *client_, fromYaml<Pod>(std::string("metadata: {name: ") + name +
                                ", namespace: default}\nspec: {nodeName: node-1, containers: "
                                "[{name: c, image: busybox}], tolerations: " +
                                tolerations + "}"));
    pod.mutable_status()->set_phase("Running");
    auto* ready = pod.mutable_status()->add_conditions();
    ready->set_type("Ready");
    ready->set_status("True");
    setTime(*ready->mutable_last_transition_time(), api::now());
    client::updateStatus(*client_, pod);
  }

  // Heartbeats flowing: nothing happens for longer than the grace period.
  std::this_thread::sleep_for(2500ms);
  auto node = client::get<Node>(*client_, "", "node-1");
  EXPECT_EQ(nodeCondition(node, "Ready")->status(), "True");
  EXPECT_EQ(node.spec().taints_size(), 0);
  EXPECT_FALSE(deleting(*client_, "intolerant"));

  heartbeats.setRenewing(false);
  auto stopped = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually(
      [&] {
        node = client::get<Node>(*client_, "", "node-1");
        return findTaint(node, kTaintUnreachable, "NoExecute") != nullptr;
      },
      10s));
  auto tainted = std::chrono::steady_clock::now();
  EXPECT_GE(tainted - stopped, 1500ms);  // not before the grace period
  const auto* ready = nodeCondition(node, "Ready");
  EXPECT_EQ(ready->status(), "Unknown");
  EXPECT_EQ(ready->reason(), "NodeStatusUnknown");
  EXPECT_EQ(ready->message(), "Kubelet stopped posting node status.");
  EXPECT_NE(findTaint(node, kTaintUnreachable, "NoSchedule"), nullptr);

  // 0 s of toleration: evicted at once; 2 s: after them; tolerated forever: stays, marked not
  // ready.
  ASSERT_TRUE(eventually([&] { return deleting(*client_, "intolerant"); }, 3s));
  EXPECT_FALSE(deleting(*client_, "patient"));
  ASSERT_TRUE(eventually([&] { return deleting(*client_, "patient"); }, 10s));
  EXPECT_GE(std::chrono::steady_clock::now() - tainted, 1500ms);
  ASSERT_TRUE(
      eventually([&] { return !isPodReady(client::get<Pod>(*client_, "default", "loyal")); }, 5s));
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(deleting(*client_, "loyal"));
  EXPECT_EQ(controller->evictions(), 2u);

  // The node comes back: Lease renewed and Ready posted; the taints go.
  heartbeats.setRenewing(true);
  heartbeats.postReady();
  EXPECT_TRUE(eventually(
      [&] {
        node = client::get<Node>(*client_, "", "node-1");
        return node.spec().taints_size() == 0;
      },
      10s));
  EXPECT_EQ(nodeCondition(node, "Ready")->status(), "True");
  // And stays so while it keeps renewing.
  std::this_thread::sleep_for(2500ms);
  node = client::get<Node>(*client_, "", "node-1");
  EXPECT_EQ(node.spec().taints_size(), 0);
}

TEST_F(LifecycleControllersTest, NoExecuteTaintsAreRateLimited) {
  NodeLifecycleOptions options;
  options.timing.grace_period = 1s;
  options.monitor_period = 100ms;
  options.eviction_rate = 0.5;  // one node every 2 s
  run([&](client::SharedInformerFactory& f) {
    controllers_.push_back(std::make_unique<NodeLifecycleController>(
        *client_, f.informerFor<Node>(),
        f.informerFor(typeOf<Lease>(), {.ns = std::string(kNodeLeaseNamespace)}),
        f.informerFor<Pod>(), nullptr, options));
  });
  for (const char* name : {"a", "b"}) {
    client::create(*client_, fromYaml<Node>(std::string("metadata: {name: ") + name + "}"));
    Heartbeats(*client_, name).postReady();
  }
  auto tainted = [&](const char* name) {
    return findTaint(client::get<Node>(*client_, "", name), kTaintUnreachable, "NoExecute") !=
           nullptr;
  };
  ASSERT_TRUE(eventually([&] { return tainted("a") || tainted("b"); }, 10s));
  auto first = std::chrono::steady_clock::now();
  EXPECT_FALSE(tainted("a") && tainted("b"));
  ASSERT_TRUE(eventually([&] { return tainted("a") && tainted("b"); }, 10s));
  EXPECT_GE(std::chrono::steady_clock::now() - first, 1500ms);
  // Its status went Unknown at once; the taints waited for their slot.
  auto b = client::get<Node>(*client_, "", "b");
  EXPECT_EQ(nodeCondition(b, "Ready")->status(), "Unknown");
}

TEST_F(LifecycleControllersTest, ControllerManagerRunsThem) {
  EXPECT_EQ(enabledControllers({"namespace,serviceaccount,nodelifecycle"}),
            (std::vector<std::string>{"namespace", "serviceaccount", "nodelifecycle"}));
  ControllerManagerOptions options;
  options.controllers = {"namespace", "serviceaccount", "nodelifecycle"};
  options.workers = 1;
  options.node_monitor_grace_period = 2s;
  ControllerManager manager(*client_, options);
  manager.start();
  ASSERT_TRUE(eventually([&] { return manager.running(); }));
  client::create(*client_, fromYaml<Namespace>("metadata: {name: team, finalizers: [test/hold]}"));
  ASSERT_TRUE(eventually([&] {
    client::get<ServiceAccount>(*client_, "team", "default");
    return true;
  }));
  createContent("team");
  client::remove<Namespace>(*client_, "", "team");
  EXPECT_TRUE(eventually([&] { return empty("team"); }));
  client::create(*client_, fromYaml<Node>("metadata: {name: silent}"));
  Heartbeats heartbeats(*client_, "silent");
  heartbeats.postReady();
  heartbeats.setRenewing(false);
  EXPECT_TRUE(eventually(
      [&] {
        auto node = client::get<Node>(*client_, "", "silent");
        return findTaint(node, kTaintUnreachable, "NoExecute") != nullptr;
      },
      10s));
  manager.stop();
}

}  // namespace
}  // namespace skiff::controllers

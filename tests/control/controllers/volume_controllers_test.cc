// PersistentVolumes end to end in one process, without a kubelet: a real apiserver (embedded
// store, plain HTTP), the controller manager's statefulset, persistentvolume-binder and
// local-path-provisioner controllers (the server's default StorageClass local-path included), and
// the real scheduler with its VolumeBinding plugin. The test plays the kubelet (pods become
// Running and Ready).

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <thread>

#include "control/client/typed.h"
#include "control/controllers/controller_manager.h"
#include "control/controllers/controller_utils.h"
#include "control/controllers/local_path_provisioner.h"
#include "control/controllers/persistent_volume.h"
#include "kubelet/volumes/local_path_cleaner.h"
#include "scheduler/runner.h"
#include "skiff/api/storage_v1.pb.h"
#include "tests/control/client/test_server.h"

namespace skiff::controllers {
namespace {

using api::apps::v1::StatefulSet;
using api::core::v1::Node;
using api::core::v1::PersistentVolume;
using api::core::v1::PersistentVolumeClaim;
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

// A node's storage dir, under the test's temporary directory.
std::filesystem::path storageDir(const std::string& node) {
  return std::filesystem::temp_directory_path() / ("skiff-volumes-" + std::to_string(::getpid())) /
         node;
}

Node makeNode(const std::string& name) {
  auto node = fromYaml<Node>(R"(
apiVersion: v1
kind: Node
metadata:
  name: )" + name + R"(
  labels: {kubernetes.io/hostname: )" +
                             name +
                             R"(}
  annotations: {skiff.io/local-storage-dir: )" +
                             storageDir(name).string() + R"(}
status:
  allocatable: {cpu: "4", memory: 8Gi, pods: "110"}
  capacity: {cpu: "4", memory: 8Gi, pods: "110"}
  conditions: [{type: Ready, status: "True"}]
)");
  return node;
}

// Scheduled pods become Running and Ready.
class TestKubelet {
 public:
  explicit TestKubelet(client::Client& c) : client_(c) {
    thread_ = std::thread([this] {
      while (!stop_) {
        try {
          for (auto& pod : client::list<Pod>(client_, "default")) {
            if (pod.spec().node_name().empty() || isPodReady(pod) ||
                pod.metadata().has_deletion_timestamp()) {
              continue;
            }
            pod.mutable_status()->set_phase("Running");
            auto* ready = pod.mutable_status()->add_conditions();
            ready->set_type("Ready");
            ready->set_status("True");
            setTime(*ready->mutable_last_transition_time(), api::now());
            client::updateStatus(client_, pod);
          }
        } catch (const std::exception&) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }
  ~TestKubelet() {
    stop_ = true;
    thread_.join();
  }

 private:
  client::Client& client_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class VolumeControllersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client_ = server_.client();
    ControllerManagerOptions options;
    options.workers = 2;
    options.controllers = {"statefulset", "persistentvolume-binder", "local-path-provisioner",
                           "garbagecollector"};
    manager_ = std::make_unique<ControllerManager>(*client_, options);
    manager_->start();
    ASSERT_TRUE(eventually([&] { return manager_->running(); }));
    scheduler_ = std::jthread([this](std::stop_token stop) {
      scheduler::RunnerOptions runner;
      runner.scheduler.emit_scheduled_events = false;
      scheduler::runScheduler(*client_, runner, stop);
    });
  }
  void TearDown() override {
    std::filesystem::remove_all(storageDir("").parent_path());
    scheduler_.request_stop();
    scheduler_.join();
    manager_->stop();
  }

  PersistentVolume volumeOf(const PersistentVolumeClaim& claim) {
    return client::get<PersistentVolume>(*client_, "", claim.spec().volume_name());
  }

  TestApiServer server_{ServerMode::kPlain};
  client::ClientPtr client_;
  std::unique_ptr<ControllerManager> manager_;
  std::jthread scheduler_;
};

std::string nodeOfVolume(const PersistentVolume& pv) {
  return pv.spec().node_affinity().required().node_selector_terms(0).match_expressions(0).values(0);
}

TEST_F(VolumeControllersTest, StatefulSetClaimsAreProvisionedOnTheirPodsNodesAndKept) {
  // The server's default class is there, and a claim without a class gets it.
  ASSERT_TRUE(eventually([&] {
    auto sc = client::get<api::storage::v1::StorageClass>(*client_, "", "local-path");
    return sc.provisioner() == kLocalPathProvisionerName &&
           sc.volume_binding_mode() == "WaitForFirstConsumer";
  }));
  client::create(*client_, makeNode("node-a"));
  client::create(*client_, makeNode("node-b"));
  TestKubelet kubelet(*client_);
  // The pods prefer nodes labelled preferred=yes (none yet).
  auto set = fromYaml<StatefulSet>(R"(
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  replicas: 2
  podManagementPolicy: Parallel
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 0
      affinity:
        nodeAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            preference: {matchExpressions: [{key: preferred, operator: In, values: ["yes"]}]}
      containers: [{name: c, image: busybox, volumeMounts: [{name: data, mountPath: /data}]}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
)");
  client::create(*client_, set);
  std::map<std::string, std::string> node_of_claim;
  ASSERT_TRUE(eventually([&] {
    for (int i = 0; i < 2; ++i) {
      const std::string name = "data-db-" + std::to_string(i);
      auto claim = client::get<PersistentVolumeClaim>(*client_, "default", name);
      if (claim.status().phase() != "Bound") return false;
      auto pod = client::get<Pod>(*client_, "default", "db-" + std::to_string(i));
      node_of_claim[name] = pod.spec().node_name();
    }
    return true;
  })) << "claims not bound";
  for (int i = 0; i < 2; ++i) {
    const std::string name = "data-db-" + std::to_string(i);
    auto claim = client::get<PersistentVolumeClaim>(*client_, "default", name);
    EXPECT_EQ(claim.spec().storage_class_name(), "local-path");  // DefaultStorageClass admission
    EXPECT_EQ(claim.metadata().labels().at("app"), "db");
    EXPECT_EQ(claim.metadata().annotations().at(std::string(kAnnSelectedNode)),
              node_of_claim[name]);
    EXPECT_EQ(claim.status().capacity().at("storage").string(), "1Gi");
    const auto& finalizers = claim.metadata().finalizers();
    EXPECT_NE(std::find(finalizers.begin(), finalizers.end(), kPvcProtectionFinalizer),
              finalizers.end());
    PersistentVolume pv = volumeOf(claim);
    EXPECT_EQ(pv.status().phase(), "Bound");
    EXPECT_EQ(pv.spec().claim_ref().uid(), claim.metadata().uid());
    EXPECT_EQ(nodeOfVolume(pv), node_of_claim[name]);
    EXPECT_EQ(
        pv.spec().local().path(),
        (storageDir(node_of_claim[name]) / (pv.metadata().name() + "_default_" + name)).string());
    EXPECT_EQ(pv.spec().persistent_volume_reclaim_policy(), "Delete");
    auto pod = client::get<Pod>(*client_, "default", "db-" + std::to_string(i));
    bool mounted = false;
    for (const auto& v : pod.spec().volumes()) {
      if (v.name() == "data") mounted = v.persistent_volume_claim().claim_name() == name;
    }
    EXPECT_TRUE(mounted);
  }

  // Make the other node the preferred one: the recreated pod still lands where its volume is.
  const std::string home = node_of_claim["data-db-0"];
  const std::string other = home == "node-a" ? "node-b" : "node-a";
  auto node = client::get<Node>(*client_, "", other);
  (*node.mutable_metadata()->mutable_labels())["preferred"] = "yes";
  client::update(*client_, node);
  const std::string old_uid = client::get<Pod>(*client_, "default", "db-0").metadata().uid();
  const std::string claim_uid =
      client::get<PersistentVolumeClaim>(*client_, "default", "data-db-0").metadata().uid();
  client::remove<Pod>(*client_, "default", "db-0");
  ASSERT_TRUE(eventually([&] {
    auto pod = client::get<Pod>(*client_, "default", "db-0");
    return pod.metadata().uid() != old_uid && !pod.spec().node_name().empty();
  }));
  auto pod = client::get<Pod>(*client_, "default", "db-0");
  EXPECT_EQ(pod.spec().node_name(), home);
  auto claim = client::get<PersistentVolumeClaim>(*client_, "default", "data-db-0");
  EXPECT_EQ(claim.metadata().uid(), claim_uid);  // the same claim, kept
  EXPECT_EQ(claim.status().phase(), "Bound");

  // Scale down: pods go, claims stay (whenScaled: Retain).
  auto live = client::get<StatefulSet>(*client_, "default", "db");
  live.mutable_spec()->set_replicas(0);
  client::update(*client_, live);
  ASSERT_TRUE(eventually([&] { return client::list<Pod>(*client_, "default").empty(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(client::list<PersistentVolumeClaim>(*client_, "default").size(), 2u);

  // Deleting a claim releases its volume; the class's Delete policy has the provisioner delete it,
  // which waits for the node's kubelet to remove the data (played here by its LocalPathCleaner on
  // a directory standing in for the node's storage dir).
  const std::string pv_name = claim.spec().volume_name();
  const std::string data = volumeOf(claim).spec().local().path();
  client::remove<PersistentVolumeClaim>(*client_, "default", "data-db-0");
  ASSERT_TRUE(eventually([&] {
    auto pv = client::get<PersistentVolume>(*client_, "", pv_name);
    return pv.metadata().has_deletion_timestamp() && pv.metadata().finalizers_size() == 1 &&
           pv.metadata().finalizers(0) == kLocalPathDataFinalizer;
  })) << "provisioned volume not deleted";
  std::filesystem::create_directories(data);  // what the kubelet made when it mounted it
  kubelet::volumes::LocalPathCleaner cleaner(*client_, home, storageDir(home).string());
  EXPECT_EQ(cleaner.cleanOnce(), 1);
  EXPECT_FALSE(std::filesystem::exists(data));
  ASSERT_TRUE(eventually([&] {
    try {
      client::get<PersistentVolume>(*client_, "", pv_name);
      return false;
    } catch (const client::ApiError& e) {
      return e.isNotFound();
    }
  })) << "provisioned volume not deleted";
}

TEST_F(VolumeControllersTest, StaticVolumesBindImmediatelyAndProtectionHoldsDeletes) {
  auto pv = fromYaml<PersistentVolume>(R"(
apiVersion: v1
kind: PersistentVolume
metadata: {name: static-1}
spec:
  capacity: {storage: 5Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  hostPath: {path: /srv/static-1}
)");
  client::create(*client_, pv);
  auto created = client::get<PersistentVolume>(*client_, "", "static-1");
  EXPECT_EQ(created.spec().persistent_volume_reclaim_policy(), "Retain");
  EXPECT_EQ(created.spec().volume_mode(), "Filesystem");
  ASSERT_TRUE(eventually([&] {
    return client::get<PersistentVolume>(*client_, "", "static-1").status().phase() == "Available";
  }));
  // storageClassName "" asks for no class: the default class is not given.
  auto claim = fromYaml<PersistentVolumeClaim>(R"(
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: static, namespace: default}
spec:
  storageClassName: ""
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
)");
  client::create(*client_, claim);
  ASSERT_TRUE(eventually([&] {
    return client::get<PersistentVolumeClaim>(*client_, "default", "static").status().phase() ==
           "Bound";
  }));
  EXPECT_EQ(client::get<PersistentVolumeClaim>(*client_, "default", "static").spec().volume_name(),
            "static-1");
  // A pod that uses the claim holds its deletion (pvc-protection); not scheduled, so no kubelet
  // is needed to delete it.
  auto pod = fromYaml<Pod>(R"(
apiVersion: v1
kind: Pod
metadata: {name: user, namespace: default}
spec:
  schedulerName: nobody
  containers: [{name: c, image: busybox}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: static}}]
)");
  client::create(*client_, pod);
  client::remove<PersistentVolumeClaim>(*client_, "default", "static");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto held = client::get<PersistentVolumeClaim>(*client_, "default", "static");
  EXPECT_TRUE(held.metadata().has_deletion_timestamp());
  // The bound volume cannot go either (pv-protection).
  client::remove<PersistentVolume>(*client_, "", "static-1");
  client::remove<Pod>(*client_, "default", "user");
  ASSERT_TRUE(eventually([&] {
    try {
      client::get<PersistentVolumeClaim>(*client_, "default", "static");
      return false;
    } catch (const client::ApiError& e) {
      return e.isNotFound();
    }
  })) << "claim not released by pvc-protection";
  // Claim gone: the Retain volume is Released, then its own deletion completes.
  ASSERT_TRUE(eventually([&] {
    try {
      client::get<PersistentVolume>(*client_, "", "static-1");
      return false;
    } catch (const client::ApiError& e) {
      return e.isNotFound();
    }
  })) << "volume not released by pv-protection";
}

TEST_F(VolumeControllersTest, PodWithAnUnboundImmediateClaimWaits) {
  client::create(*client_, makeNode("node-a"));
  api::storage::v1::StorageClass sc;
  sc.mutable_metadata()->set_name("manual");
  sc.set_provisioner(std::string(kNoProvisioner));
  sc.set_volume_binding_mode("Immediate");
  client::create(*client_, sc);
  auto claim = fromYaml<PersistentVolumeClaim>(R"(
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: later, namespace: default}
spec:
  storageClassName: manual
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
)");
  client::create(*client_, claim);
  auto pod = fromYaml<Pod>(R"(
apiVersion: v1
kind: Pod
metadata: {name: waits, namespace: default}
spec:
  terminationGracePeriodSeconds: 0
  containers: [{name: c, image: busybox}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: later}}]
)");
  client::create(*client_, pod);
  ASSERT_TRUE(eventually([&] {
    const auto waiting = client::get<Pod>(*client_, "default", "waits");
    for (const auto& c : waiting.status().conditions()) {
      if (c.type() == "PodScheduled" && c.status() == "False") return true;
    }
    return false;
  }));
  EXPECT_TRUE(client::get<Pod>(*client_, "default", "waits").spec().node_name().empty());
  // A volume that fits arrives: the claim binds, and the pod is scheduled.
  auto pv = fromYaml<PersistentVolume>(R"(
apiVersion: v1
kind: PersistentVolume
metadata: {name: manual-1}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  hostPath: {path: /srv/manual-1}
)");
  client::create(*client_, pv);
  ASSERT_TRUE(eventually([&] {
    return client::get<Pod>(*client_, "default", "waits").spec().node_name() == "node-a";
  }));
}

}  // namespace
}  // namespace skiff::controllers

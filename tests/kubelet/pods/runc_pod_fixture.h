#pragma once

// RuncPodTest, the fixture of the tests on real pods: RuntimePodSyncer with runc and skiff-shim,
// the busybox fixture image, sandboxes in a "node" network namespace of the test's.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "control/api/codec.h"
#include "kubelet/pods/runtime_pod_syncer.h"
#include "tests/kubelet/runc_fixture.h"

namespace skiff::kubelet::runc_fixture {
namespace core = api::core::v1;

// Per suite, the busybox image in a store below a temporary directory (or why the suite skips);
// per test, a directory of its own there and a node network.
class RuncPodTest : public ::testing::Test {
 protected:
  // For the suite's SetUpTestSuite: `root_needs` says what root is for, `tmpl` is the directory's
  // mkdtemp template.
  static void setUpSuite(const std::string& root_needs, std::string tmpl) {
    skip_ = skipReason(root_needs);
    if (!skip_.empty()) return;
    dir_ = ::mkdtemp(tmpl.data());
    ASSERT_TRUE(makeBusyboxLayout(dir_));
    store_ = importBusybox(dir_);
  }
  static void TearDownTestSuite() {
    delete store_;
    store_ = nullptr;
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // For SetUp, once it has skipped if skip_ says so: the test's directory and the node network on
  // `pod_cidr`.
  void setUpNode(const std::string& pod_cidr) {
    test_dir_ = dir_ + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    node_ = test_dir_ + "/node";
    network_ = nodeNetwork(test_dir_, node_, pod_cidr);
  }

  // Drops the syncer and starts a new runtime; the syncer options the tests start from, the pods'
  // directories in the test's.
  RuntimePodSyncerOptions newRuntime(const std::string& host_ip) {
    syncer_.reset();
    runtime_ = runcRuntime(test_dir_ + "/runc", test_dir_ + "/containers");
    RuntimePodSyncerOptions o;
    o.node_name = "node-1";
    o.host_ip = host_ip;
    o.root_dir = test_dir_ + "/root";
    o.log_dir = test_dir_ + "/logs";
    o.cgroup_parent = cgroup_parent_;
    return o;
  }

  // For TearDown: terminates the test's pods, checks that no container is left, drops the syncer
  // and the node's network namespace.
  void terminatePods() {
    for (const auto& p : pods_) {
      try {
        syncer_->terminate(p, std::chrono::seconds(1));
      } catch (const std::exception& e) {
        ADD_FAILURE() << "terminate: " << e.what();
      }
    }
    EXPECT_TRUE(runtime_->list().empty());
    syncer_.reset();
    network::deleteNetns(node_);
  }

  // The pod `name` in namespace default (uid uid-<name>) with `yaml_spec`, terminated at the end.
  core::Pod pod(const std::string& name, const std::string& yaml_spec) {
    core::Pod p;
    api::decodeYaml("metadata: {name: " + name + ", namespace: default, uid: uid-" + name +
                        "}\nspec:\n" + yaml_spec,
                    p);
    pods_.push_back(p);
    return p;
  }

  static inline std::string skip_;
  static inline std::string dir_;
  static inline images::ImageStore* store_ = nullptr;
  std::string test_dir_;
  std::string node_;
  std::string cgroup_parent_;
  std::unique_ptr<network::PodNetworkManager> network_;
  std::unique_ptr<RuncRuntime> runtime_;
  std::unique_ptr<RuntimePodSyncer> syncer_;
  std::vector<core::Pod> pods_;
};

}  // namespace skiff::kubelet::runc_fixture

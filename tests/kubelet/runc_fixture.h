#pragma once

// What the tests on real containers share: the root and tool checks, the busybox fixture image in
// an ImageStore, a "node" network namespace with a pod network, runc's options with skiff-shim,
// and removing the test's cgroup parent. The
// including target defines SKIFF_SOURCE_DIR and SKIFF_SHIM_PATH.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "kubelet/images/image_store.h"
#include "kubelet/network/netns.h"
#include "kubelet/network/pod_network.h"
#include "kubelet/runtime/runc_runtime.h"

namespace skiff::kubelet::runc_fixture {

inline bool sh(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

inline std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Why a test on real pods cannot run here ("" when it can): it needs root for `root_needs`, and
// runc, umoci and busybox-static.
inline std::string skipReason(const std::string& root_needs) {
  if (::geteuid() != 0) return "needs root (" + root_needs + ")";
  if (!sh("command -v runc") || !sh("command -v umoci") || !std::filesystem::exists("/bin/busybox"))
    return "needs runc, umoci and busybox-static";
  return "";
}

// Writes the busybox fixture image's OCI layout to dir/layout; false when the script failed.
inline bool makeBusyboxLayout(const std::string& dir) {
  return sh(std::string(SKIFF_SOURCE_DIR) + "/tests/fixtures/images/make-busybox-image.sh " + dir +
            "/layout v1");
}

// An ImageStore in dir/images with that layout as example.com/test/busybox:v1; the caller owns it.
inline images::ImageStore* importBusybox(const std::string& dir) {
  auto* store = new images::ImageStore(dir + "/images");
  store->importPath(dir + "/layout", "example.com/test/busybox:v1");
  return store;
}

// The network namespace `node` and a pod network on it for `pod_cidr`, the sandboxes' namespaces
// and the IPAM state under test_dir.
inline std::unique_ptr<network::PodNetworkManager> nodeNetwork(const std::string& test_dir,
                                                               const std::string& node,
                                                               const std::string& pod_cidr) {
  std::filesystem::create_directories(test_dir + "/netns");
  network::createNetns(node);
  network::PodNetworkOptions net;
  net.pod_cidr = pod_cidr;
  net.node_netns = node;
  net.netns_dir = test_dir + "/netns";
  net.ipam_dir = test_dir + "/ipam";
  return std::make_unique<network::PodNetworkManager>(net);
}

// runc under a private --root, its state in state_dir, each container with a skiff-shim parent.
inline std::unique_ptr<RuncRuntime> runcRuntime(const std::string& root,
                                                const std::string& state_dir) {
  RuncOptions runc;
  runc.root = root;
  runc.state_dir = state_dir;
  runc.shim = SKIFF_SHIM_PATH;
  return std::make_unique<RuncRuntime>(runc);
}

// Removes the (by now empty) cgroup `parent` from every hierarchy that may have it.
inline void removeCgroupParent(const std::string& parent) {
  for (const char* h :
       {"unified", "memory", "cpu", "cpuacct", "cpu,cpuacct", "pids", "cpuset", "blkio", "devices",
        "freezer", "net_cls,net_prio", "perf_event", "hugetlb", "misc", "rdma", "systemd"}) {
    ::rmdir(("/sys/fs/cgroup/" + std::string(h) + parent).c_str());
  }
}

}  // namespace skiff::kubelet::runc_fixture

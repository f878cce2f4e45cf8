#include "control/cli/cleanup.h"

#include <net/if.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include <filesystem>
#include <iostream>
#include <memory>
#include <system_error>

#include "kubelet/images/image_store.h"
#include "kubelet/network/pod_network.h"
#include "kubelet/pods/runtime_pod_syncer.h"
#include "kubelet/runtime/runc_runtime.h"

#if SKIFF_WITH_EBPF
#include "ebpf/cgroup.h"
#include "ebpf/loader.h"
#endif

namespace skiff::cli {
namespace {

namespace fs = std::filesystem;

// Removes a cgroup v2 subtree leaf first; a cgroup that still holds processes stays and is named.
void removeCgroupTree(const fs::path& dir, std::vector<std::string>& problems) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory(ec)) removeCgroupTree(entry.path(), problems);
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
    problems.push_back("cgroup " + dir.string() + " stays: " + std::strerror(errno));
  }
}

// if_nametoindex looks in this process's network namespace; /sys/class/net shows the namespace
// /sys was mounted in, which is not this one under `nsenter --net`.
void removeLink(const std::string& name, std::vector<std::string>& problems) {
  if (::if_nametoindex(name.c_str()) == 0) return;
  std::string cmd = "ip link del " + name + " 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) problems.push_back("cannot delete link " + name);
}

}  // namespace

std::vector<std::string> cleanupNode(const CleanupOptions& options, std::ostream& progress) {
  std::vector<std::string> problems;
  kubelet::RuncOptions runc_options{.root = options.run_dir + "/runc",
                                    .state_dir = options.run_dir + "/containers"};
  kubelet::network::PodNetworkOptions net;
  net.netns_dir = options.run_dir + "/netns";
  net.pod_cidr = options.pod_cidr;
  net.bridge = options.bridge;
  net.ipam_dir = options.agent_data_dir + "/ipam";

  // Pods: the syncer over the agent's state knows every pod it made, and releases each of them
  // (containers, mounts, cgroups, network namespace, veth, IP).
  try {
    kubelet::images::ImageStore store(options.image_root);
    kubelet::RuncRuntime runtime(runc_options);
    kubelet::network::PodNetworkManager network(net);
    kubelet::RuntimePodSyncerOptions o;
    o.root_dir = options.agent_data_dir;
    o.log_dir = options.log_dir;
    o.cgroup_parent = options.cgroup_parent;
    kubelet::RuntimePodSyncer syncer(o, store, runtime, network, nullptr);
    const auto t0 = std::chrono::steady_clock::now();
    const size_t pods = syncer.knownPodUids().size();
    auto failed = syncer.shutdown(options.shutdown_grace, options.concurrency);
    problems.insert(problems.end(), failed.begin(), failed.end());
    progress << "  pods removed: " << pods - failed.size() << " in "
             << std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - t0)
                    .count()
             << " ms"
             << (options.shutdown_grace.count() > 0
                     ? " (grace " + std::to_string(options.shutdown_grace.count()) + " ms)"
                     : std::string(" (killed)"))
             << "\n";
    // Containers no pod state names any more (a crash between creating and recording one).
    for (const auto& id : runtime.list()) {
      try {
        runtime.remove(id);
        progress << "  stray container removed: " << id << "\n";
      } catch (const std::exception& e) {
        problems.push_back("container " + id + ": " + e.what());
      }
    }
  } catch (const std::exception& e) {
    problems.push_back(std::string("pods: ") + e.what());
  }

  // Network namespaces left without a pod, the node bridge, and the IP bookkeeping.
  std::error_code ec;
  if (fs::is_directory(net.netns_dir, ec)) {
    for (const auto& entry : fs::directory_iterator(net.netns_dir, ec)) {
      ::umount2(entry.path().c_str(), MNT_DETACH);
      fs::remove(entry.path(), ec);
      if (ec) problems.push_back("cannot remove " + entry.path().string() + ": " + ec.message());
    }
  }
  removeLink(options.bridge, problems);
  fs::remove_all(net.ipam_dir, ec);
  progress << "  pod network removed (bridge " << options.bridge << ")\n";

#if SKIFF_WITH_EBPF
  // The load balancer: links pinned by the agent are detached, pins removed.
  if (auto s = ebpf::Programs::cleanupPinDir(options.bpf_pin_dir); !s.ok()) {
    problems.push_back("eBPF pins in " + options.bpf_pin_dir + ": " + s.message());
  } else {
    progress << "  eBPF load balancer detached (" << options.bpf_pin_dir << ")\n";
  }
  std::string cgroup_root = ebpf::cgroup2Mount();
#else
  std::string cgroup_root = "/sys/fs/cgroup";
#endif
  // The pods' cgroup parent in the v2 tree and, on a hybrid host, in every v1 hierarchy.
  std::string parent = options.cgroup_parent.substr(options.cgroup_parent.starts_with("/") ? 1 : 0);
  if (!parent.empty()) {
    if (!cgroup_root.empty()) removeCgroupTree(fs::path(cgroup_root) / parent, problems);
    if (cgroup_root != "/sys/fs/cgroup" && fs::is_directory("/sys/fs/cgroup", ec)) {
      for (const auto& hierarchy : fs::directory_iterator("/sys/fs/cgroup", ec)) {
        if (hierarchy.path().string() != cgroup_root) {
          removeCgroupTree(hierarchy.path() / parent, problems);
        }
      }
    }
  }
  return problems;
}

void addCleanupCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<CleanupOptions>();
  auto data_dir = std::make_shared<std::string>("/var/lib/skiff");
  auto* cmd = app.add_subcommand(
      "cleanup",
      "Remove what a crashed skiff up or skiff agent left behind: pods, their network, cgroups "
      "and the eBPF load balancer");
  cmd->add_option("--data-dir", *data_dir, "skiff up's data dir (the agent's state is DIR/agent)")
      ->capture_default_str();
  cmd->add_option("--agent-data-dir", options->agent_data_dir,
                  "The agent's state, if not DATA_DIR/agent");
  cmd->add_option("--bridge", options->bridge, "The node bridge")->capture_default_str();
  cmd->add_option("--cgroup-parent", options->cgroup_parent, "The pods' cgroup parent")
      ->capture_default_str();
  cmd->add_option("--run-dir", options->run_dir, "Runtime state (runc, network namespaces)")
      ->capture_default_str();
  cmd->add_option("--bpf-pin-dir", options->bpf_pin_dir, "The load balancer's pins")
      ->capture_default_str();
  cmd->callback([options, data_dir, cmd, &exit_code] {
    CleanupOptions o = *options;
    if (cmd->count("--agent-data-dir") == 0) o.agent_data_dir = *data_dir + "/agent";
    std::cout << "skiff cleanup: " << o.agent_data_dir << std::endl;
    auto problems = cleanupNode(o, std::cout);
    for (const auto& p : problems)
      std::cerr << "skiff cleanup: " << p << "\n";
    std::cout << (problems.empty() ? "skiff cleanup: done" : "skiff cleanup: done, with problems")
              << std::endl;
    exit_code = problems.empty() ? 0 : 1;
  });
}

}  // namespace skiff::cli

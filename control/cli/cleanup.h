#pragma once

#include <chrono>
#include <ostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

// Removes what a node agent leaves on the machine: its pods' containers, network namespaces,
// veths, IPs, mounts and cgroups, the node bridge, and the eBPF load balancer's programs and pins.
// `skiff up` runs it on the way out; `skiff cleanup` runs it after a crash. It touches only what
// Skiff made (names and directories Skiff owns), never the machine's own interfaces or cgroups.

namespace skiff::cli {

struct CleanupOptions {
  std::string agent_data_dir = "/var/lib/skiff/agent";
  // The node's pod CIDR, for the pod network's bookkeeping; the allocations are removed anyway.
  std::string pod_cidr = "10.244.0.0/24";
  std::string bridge = "skiff0";
  std::string cgroup_parent = "/skiff";
  std::string image_root = "/var/lib/skiff/kubelet/images";
  std::string log_dir = "/var/log/pods";
  std::string bpf_pin_dir = "/sys/fs/bpf/skiff";
  std::string run_dir = "/run/skiff";  // runc state and network namespaces
  // 0: every container is killed at once (SIGKILL), for what a crash left. `skiff up` on its way
  // out gives its shutdown grace (kubelet's shutdownGracePeriod): each container gets SIGTERM
  // and min(its pod's terminationGracePeriodSeconds, this) before SIGKILL.
  std::chrono::milliseconds shutdown_grace{0};
  // How many pods release (runc delete, unmounts, network, cgroups) at once; every pod's
  // containers get their signal at the same moment whatever this is.
  int concurrency = 8;
};

// Pods go in parallel (RuntimePodSyncer::shutdown). Best effort: every step runs even when an
// earlier one failed. Returns the problems (empty when
// everything is gone); progress lines go to `progress`.
std::vector<std::string> cleanupNode(const CleanupOptions& options, std::ostream& progress);

// `skiff cleanup [--data-dir DIR]`.
void addCleanupCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

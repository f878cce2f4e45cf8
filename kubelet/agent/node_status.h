#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "control/client/client.h"
#include "skiff/api/coordination_v1.pb.h"
#include "skiff/api/core_v1.pb.h"

// The node's side of the kubelet that talks to the apiserver about the Node itself, as Kubernetes'
// kubelet does (pkg/kubelet/kubelet_node_status.go, pkg/kubelet/nodelease):
// - registration: creates the Node, or adopts the one that exists (its labels and podCIDR kept);
// - status: capacity and allocatable read from the machine, addresses, nodeInfo and the
//   conditions Ready/MemoryPressure/DiskPressure/PIDPressure, computed every
//   status_update_frequency and posted (pods/status-style, through nodes/status) when something
//   changed or status_report_frequency has passed since the last post (lastHeartbeatTime);
// - a Lease kube-node-lease/NODE renewed every lease_renew_interval, holding the Node as owner.
//
// Threading: start() registers on the caller's thread, then one thread posts status and renews
// the lease. Getters are safe from any thread.

namespace skiff::kubelet {

// What the machine has, as the kubelet reports it.
struct MachineInfo {
  int64_t cpus = 0;             // online CPUs this process may use (nproc)
  int64_t memory_bytes = 0;     // MemTotal
  int64_t ephemeral_bytes = 0;  // statvfs of the data dir: total
  int64_t pods = 110;           // kubelet's default maxPods
  std::string hostname;
  std::string internal_ip;     // of the interface that holds the default route
  std::string kernel_version;  // uname -r
  std::string os_image;        // PRETTY_NAME of /etc/os-release
  std::string architecture;    // amd64, arm64, ...
  std::string machine_id;      // /etc/machine-id
  std::string boot_id;         // /proc/sys/kernel/random/boot_id
  std::string system_uuid;     // /sys/class/dmi/id/product_uuid when readable
};

// Reads MachineInfo; `data_dir` (or its nearest existing parent) is the filesystem measured.
MachineInfo readMachineInfo(const std::string& data_dir);

// What the conditions are computed from, sampled each status update.
struct PressureSample {
  int64_t memory_available_bytes = 0;  // MemAvailable
  int64_t disk_available_bytes = 0;    // statvfs f_bavail * f_frsize of the data dir
  int64_t disk_total_bytes = 0;
  int64_t pids_used = 0;  // processes and threads on the machine
  int64_t pids_max = 0;   // /proc/sys/kernel/pid_max
};
PressureSample samplePressure(const std::string& data_dir);

// The hard eviction thresholds the kubelet uses by default: memory.available<100Mi,
// nodefs.available<10%, and (Skiff's choice; Kubernetes has none by default) pid.available<10%.
struct PressureThresholds {
  int64_t memory_available_bytes = 100LL * 1024 * 1024;
  double disk_available_fraction = 0.10;
  double pids_available_fraction = 0.10;
};

// The four conditions for `sample` (lastHeartbeatTime and lastTransitionTime left unset).
// `not_ready` non-empty makes Ready False with that message.
std::vector<api::core::v1::NodeCondition> nodeConditions(const PressureSample& sample,
                                                         const PressureThresholds& thresholds,
                                                         const std::string& not_ready = {});

struct NodeStatusOptions {
  std::string node_name;
  // Used when the Node's spec has no podCIDR (written into the spec); the spec wins otherwise.
  std::string pod_cidr;
  std::string data_dir = "/var/lib/skiff/agent";
  // "runc://1.1.12"; empty: `runc --version` is asked.
  std::string container_runtime_version;
  // Overrides what the machine says (hollow nodes: the node name as Hostname).
  std::string hostname_override;
  std::string node_ip_override;
  // status.daemonEndpoints.kubeletEndpoint.Port: where the kubelet API serves (0: not reported).
  int32_t kubelet_port = 0;
  // Extra labels for a Node this agent creates.
  std::map<std::string, std::string> labels;
  // Annotations for the Node, set on registration (on an existing Node too).
  std::map<std::string, std::string> annotations;
  std::chrono::milliseconds status_update_frequency{10000};
  std::chrono::milliseconds status_report_frequency{10000};
  std::chrono::milliseconds lease_renew_interval{10000};
  int32_t lease_duration_seconds = 40;
  PressureThresholds thresholds;
  // For tests: a fixed machine and pressure instead of reading this one.
  std::function<MachineInfo()> machine;
  std::function<PressureSample()> pressure;
  // Non-empty: Ready is False with this message (a runtime that is down).
  std::function<std::string()> not_ready;
};

class NodeStatusManager {
 public:
  NodeStatusManager(client::Client& client, NodeStatusOptions options);
  ~NodeStatusManager();
  NodeStatusManager(const NodeStatusManager&) = delete;
  NodeStatusManager& operator=(const NodeStatusManager&) = delete;

  // Registers the Node (retrying every second until it works or stop() is called; false then),
  // posts its first status and lease, then starts the update thread.
  bool start();
  void stop();

  // The podCIDR in force (the Node's spec, else the option); empty before registration.
  std::string podCidr() const;
  std::string nodeUid() const;
  std::string nodeIp() const;
  // Counters for tests and metrics.
  uint64_t statusPosts() const;
  uint64_t leaseRenewals() const;

  // Posts the status soon, on the update thread (something the conditions read changed).
  void requestStatusUpdate();

  // One round, for tests: registration, a status update, a lease renewal. Each returns false
  // when the apiserver refused (the reason goes to stderr).
  bool registerNode();
  bool updateStatus(bool force = false);
  bool renewLease();

 private:
  void loop();
  api::core::v1::NodeStatus desiredStatus(const api::core::v1::Node& current);

  client::Client& client_;
  NodeStatusOptions options_;
  MachineInfo machine_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool status_requested_ = false;
  std::string pod_cidr_;
  std::string node_uid_;
  std::optional<api::core::v1::NodeStatus> last_posted_;  // without heartbeat times
  std::chrono::steady_clock::time_point last_post_at_{};
  std::optional<api::coordination::v1::Lease> lease_;
  uint64_t status_posts_ = 0;
  uint64_t lease_renewals_ = 0;
  std::thread thread_;
};

}  // namespace skiff::kubelet

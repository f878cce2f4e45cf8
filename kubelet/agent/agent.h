#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/client/client.h"
#include "control/client/informer.h"
#include "kubelet/agent/hollow_pod_syncer.h"
#include "kubelet/agent/node_status.h"
#include "kubelet/agent/pod_events.h"
#include "kubelet/agent/pod_workers.h"
#include "kubelet/agent/shutdown_inhibitor.h"
#include "kubelet/agent/shutdown_manager.h"
#include "kubelet/agent/status_manager.h"
#include "kubelet/pods/pod_syncer.h"

// The kubelet shell of `skiff agent` on the API client: node registration, status and Lease
// (node_status.h), a pod informer on spec.nodeName=NODE feeding the pod workers (pod_workers.h)
// that drive a PodSyncer (the runc one, or the hollow one) and post pod status (status_manager.h)
// and Events (pod_events.h).
//
// start(): registers the Node and starts its heartbeats; lists the pods bound to the node;
// releases what the syncer holds for pods no longer bound here (deleted while the agent was
// away); then starts the workers, which adopt the pods that are (sync() finds their containers;
// nothing is restarted). stop() leaves every pod running, for the next start to adopt.

namespace skiff::kubelet {

struct AgentOptions {
  std::string node_name;
  // Used when the Node has no spec.podCIDR (and written there).
  std::string pod_cidr;
  std::string data_dir = "/var/lib/skiff/agent";
  // nodeInfo.containerRuntimeVersion; empty: "runc://" + `runc --version`.
  std::string container_runtime_version;
  std::string hostname_override;
  std::string node_ip_override;
  int32_t kubelet_port = 0;  // reported in status.daemonEndpoints (0: no kubelet API)
  std::map<std::string, std::string> node_labels;
  // Annotations the Node gets (set on registration, also on a Node that was there).
  std::map<std::string, std::string> node_annotations;
  // Where this node's skiff.io/local-path volumes are: the data of those the provisioner deletes is
  // removed from here every local_path_clean_period (volumes/local_path_cleaner.h); "" = never.
  std::string local_storage_dir;
  std::chrono::milliseconds local_path_clean_period{10000};
  std::chrono::milliseconds node_status_update_frequency{10000};
  std::chrono::milliseconds node_status_report_frequency{10000};
  std::chrono::milliseconds lease_renew_interval{10000};
  int32_t lease_duration_seconds = 40;
  int pod_workers = 4;
  std::chrono::milliseconds sync_frequency{10000};
  // Graceful node shutdown (shutdown_manager.h), kubelet's shutdownGracePeriod and
  // shutdownGracePeriodCriticalPods; a grace period of 0 turns it off.
  std::chrono::seconds shutdown_grace_period{0};
  std::chrono::seconds shutdown_grace_period_critical_pods{0};
  // Makes the inhibitor the shutdown manager takes its lock from (default: systemd-logind on the
  // system D-Bus, logind_inhibitor.h). When it throws (no bus, no logind: usual in containers)
  // the agent logs one line and runs without graceful shutdown.
  std::function<ShutdownInhibitorPtr()> shutdown_inhibitor;
  // Where the shutdown manager writes logind's drop-in when InhibitDelayMaxSec is below the grace
  // period (99-kubelet.conf; tests: a temporary directory).
  std::string logind_conf_dir = kLogindConfDir;
  // For tests and hollow nodes: the machine and its pressure instead of this one's.
  std::function<MachineInfo()> machine;
  std::function<PressureSample()> pressure;
};

class Agent {
 public:
  Agent(client::Client& client, PodSyncer& syncer, AgentOptions options);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Blocks until the Node is registered and the pods bound to it are listed (retrying while the
  // apiserver is unreachable); false when stop() came first.
  bool start();
  void stop();

  const std::string& nodeName() const { return options_.node_name; }
  NodeStatusManager& node() { return node_; }
  PodWorkers& pods() { return workers_; }
  PodStatusManager& statuses() { return statuses_; }
  PodEventRecorder& events() { return events_; }
  // The graceful shutdown manager once start() started it (nullptr: off or no inhibitor).
  ShutdownManager* shutdownManager() const { return shutdown_.load(); }
  // The UIDs start() cleaned up as orphans.
  const std::vector<std::string>& orphansCleaned() const { return orphans_; }

 private:
  // Graceful node shutdown when asked for; without an inhibitor, one line on stderr.
  void startShutdownManager();

  client::Client& client_;
  const AgentOptions options_;
  NodeStatusManager node_;
  PodEventRecorder events_;
  PodStatusManager statuses_;
  PodWorkers workers_;
  std::unique_ptr<client::SharedInformerFactory> informers_;
  std::vector<std::string> orphans_;
  // Graceful node shutdown: the inhibitor, the pods it stops (the workers) and the manager,
  // published through shutdown_ for the node status and admission hooks.
  ShutdownInhibitorPtr inhibitor_;
  std::unique_ptr<ShutdownPods> shutdown_pods_;
  std::unique_ptr<ShutdownManager> shutdown_manager_;
  std::atomic<ShutdownManager*> shutdown_{nullptr};
  std::mutex lifecycle_mu_;  // start() and stop() from different threads
  std::atomic<bool> stopping_{false};
  std::mutex clean_mu_;
  std::condition_variable clean_cv_;
  std::thread cleaner_;
};

// `count` hollow nodes in this process (kubemark's hollow kubelets), sharing one client.
struct HollowNodesOptions {
  // Node i is named name_prefix + i; with count 1 and agent.node_name set, that name.
  std::string name_prefix = "hollow-node-";
  // Node i gets the i-th /24 of this range as podCIDR (when its Node has none).
  std::string pod_cidr_range = "10.244.0.0/16";
  // The template for every node (node_name and pod_cidr are filled in per node).
  AgentOptions agent;
};

class HollowNodes {
 public:
  HollowNodes() = default;
  ~HollowNodes();
  HollowNodes(const HollowNodes&) = delete;
  HollowNodes& operator=(const HollowNodes&) = delete;

  // Starts the nodes one after the other (Agent::start); false when stop() came first.
  bool start();
  // Safe from another thread while start() runs.
  void stop();
  size_t size() const { return agents_.size(); }
  Agent& agent(size_t i) { return *agents_[i]; }
  HollowPodSyncer& syncer(size_t i) { return *syncers_[i]; }

 private:
  friend std::unique_ptr<HollowNodes> makeHollowNodes(client::Client&, int, HollowNodesOptions);
  std::vector<std::unique_ptr<HollowPodSyncer>> syncers_;
  std::vector<std::unique_ptr<Agent>> agents_;
};

// The i-th /24 of `range` ("10.244.0.0/16", 3 -> "10.244.3.0/24"); throws std::invalid_argument
// when `range` is not an IPv4 CIDR of /8../24 or has no i-th /24.
std::string nthSubnet24(const std::string& range, int i);

// `count` hollow nodes, not started yet (throws std::invalid_argument for a bad count or range).
std::unique_ptr<HollowNodes> makeHollowNodes(client::Client& client, int count,
                                             HollowNodesOptions options);
// makeHollowNodes() and start(): returns once every node registered and listed its pods.
std::unique_ptr<HollowNodes> runHollowNodes(client::Client& client, int count,
                                            HollowNodesOptions options);

}  // namespace skiff::kubelet

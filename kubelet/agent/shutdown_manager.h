#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kubelet/agent/shutdown_inhibitor.h"
#include "skiff/api/core_v1.pb.h"

// Graceful node shutdown, as Kubernetes' kubelet (GracefulNodeShutdown,
// pkg/kubelet/nodeshutdown): with shutdownGracePeriod > 0 the agent holds a delay lock on
// shutdown (shutdown_inhibitor.h). At start, when logind's InhibitDelayMaxSec is below the grace
// period, the manager writes the drop-in LOGIND_CONF_DIR/99-kubelet.conf
// ("[Login]\nInhibitDelayMaxSec=<grace>"), has logind reload its configuration and reads the
// limit again; a limit still too low is an error (the feature stays off), as in the kubelet. When
// the init system announces a shutdown (PrepareForShutdown(true)) the manager
//   0. records a Node Event: Normal, reason Shutdown, "Shutdown manager detected shutdown event"
//      ("... detected shutdown cancellation" for PrepareForShutdown(false));
//   1. marks the node: Ready False, reason KubeletNotReady, message "node is shutting down"
//      (notReadyMessage(), read by the node status), and pods new to the node are rejected
//      (admit(): Failed, reason NodeShutdown);
//   2. stops the active pods in two groups, regular pods first, then critical ones (priority
//      >= 2000000000: system-cluster-critical and system-node-critical). A group gets
//      shutdownGracePeriod - shutdownGracePeriodCriticalPods (regular) or
//      shutdownGracePeriodCriticalPods (critical); each pod's grace period is that budget, or its
//      own terminationGracePeriodSeconds when shorter; preStop hooks run as at any termination.
//      Each pod's status becomes phase Failed (unless it Succeeded), reason "Terminated", message
//      "Pod was terminated in response to imminent node shutdown." and condition
//      DisruptionTarget True, reason TerminationByKubelet. The next group starts when every pod of
//      this one is stopped or the group's budget ran out;
//   3. releases the lock, so the shutdown goes on.
// PrepareForShutdown(false) (the shutdown was cancelled) takes the lock again and marks the node
// ready again.
//
// Threading: start() and stop() from one thread; the manager's own thread handles the signals;
// shuttingDown(), notReadyMessage() and admit() from any thread.

namespace skiff::kubelet {

// Kubernetes' wording (pkg/kubelet/nodeshutdown/nodeshutdown_manager.go).
inline constexpr const char* kNodeShutdownReason = "Terminated";
inline constexpr const char* kNodeShutdownMessage =
    "Pod was terminated in response to imminent node shutdown.";
inline constexpr const char* kNodeShutdownNotAdmittedReason = "NodeShutdown";
inline constexpr const char* kNodeShutdownNotAdmittedMessage =
    "Pod was rejected as the node is shutting down.";
inline constexpr const char* kNodeShuttingDownMessage = "node is shutting down";
// The Node Event of a shutdown signal (pkg/kubelet/events: NodeShutdown = "Shutdown").
inline constexpr const char* kNodeShutdownEventReason = "Shutdown";
inline constexpr const char* kNodeShutdownEventMessage = "Shutdown manager detected shutdown event";
inline constexpr const char* kNodeShutdownCancelledEventMessage =
    "Shutdown manager detected shutdown cancellation";
// logind's drop-in directory and the kubelet's file in it (pkg/kubelet/nodeshutdown/systemd).
inline constexpr const char* kLogindConfDir = "/etc/systemd/logind.conf.d";
inline constexpr const char* kLogindDropInName = "99-kubelet.conf";

// The drop-in that raises logind's InhibitDelayMaxSec to `delay` (whole seconds).
std::string logindDropIn(std::chrono::seconds delay);
// Writes logindDropIn(delay) to DIR/99-kubelet.conf (DIR made when missing; replaced atomically,
// mode 0644) and returns the file's path. Throws std::runtime_error when it cannot.
std::string writeLogindDropIn(const std::string& dir, std::chrono::seconds delay);
// scheduling.SystemCriticalPriority: system-cluster-critical; system-node-critical is 1000 more.
inline constexpr int64_t kSystemCriticalPriority = 2000000000;

// The pod's priority: spec.priority, else from a built-in priorityClassName, else 0.
int64_t podPriority(const api::core::v1::Pod& pod);
bool isCriticalPod(const api::core::v1::Pod& pod);

// One priority group of the shutdown (kubelet's podShutdownGroup).
struct ShutdownGroup {
  int64_t priority = 0;  // the lowest priority of the group's pods
  std::chrono::seconds grace{0};
  std::vector<api::core::v1::Pod> pods;
};

// The groups in the order they stop: regular (priority 0 and up, grace total - critical), then
// critical (kSystemCriticalPriority and up, grace critical). Pods below priority 0 go with the
// regular ones.
std::vector<ShutdownGroup> shutdownGroups(std::chrono::seconds total, std::chrono::seconds critical,
                                          const std::vector<api::core::v1::Pod>& pods);

// The grace period a pod of a group gets: the group's, or the pod's own
// terminationGracePeriodSeconds when that is not longer.
std::chrono::seconds shutdownGracePeriod(const api::core::v1::Pod& pod, std::chrono::seconds group);

// What the shutdown does to a pod's status (kubelet's status function for killPodFunc).
void setShutdownStatus(api::core::v1::PodStatus& status);

// The pods the shutdown stops (the agent's pod workers).
class ShutdownPods {
 public:
  virtual ~ShutdownPods() = default;
  // The pods bound here that still run (not in a terminal phase, not stopped).
  virtual std::vector<api::core::v1::Pod> activePods() = 0;
  // Stops the pod now with `grace` (preStop, SIGTERM, SIGKILL after grace), posting its status
  // with `set_status` applied, before and after. Blocks until it is stopped. Throws on failure.
  virtual void killPod(const api::core::v1::Pod& pod, std::chrono::milliseconds grace,
                       const std::function<void(api::core::v1::PodStatus&)>& set_status) = 0;
};

struct ShutdownManagerOptions {
  std::string node_name;
  std::chrono::seconds grace_period{0};                // shutdownGracePeriod; 0: off
  std::chrono::seconds grace_period_critical_pods{0};  // shutdownGracePeriodCriticalPods
  // How often the manager's thread looks up from waiting for a signal (to notice stop()).
  std::chrono::milliseconds poll_interval{250};
  // Called when shuttingDown() changed: the node status should be posted now.
  std::function<void()> on_change;
  // Records a Normal Event about the Node (reason, message); none when empty.
  std::function<void(const std::string& reason, const std::string& message)> node_event;
  // Where the drop-in raising InhibitDelayMaxSec goes (tests: a temporary directory), and how long
  // start() waits for logind to show the raised limit after the reload.
  std::string logind_conf_dir = kLogindConfDir;
  std::chrono::milliseconds logind_reload_timeout{5000};
  // Where the manager reports what it does (one line each); default stderr.
  std::function<void(const std::string&)> log;
};

class ShutdownManager {
 public:
  // `inhibitor` and `pods` must outlive the manager.
  ShutdownManager(ShutdownInhibitor& inhibitor, ShutdownPods& pods, ShutdownManagerOptions options);
  ~ShutdownManager();
  ShutdownManager(const ShutdownManager&) = delete;
  ShutdownManager& operator=(const ShutdownManager&) = delete;

  // Checks the budgets (throws std::invalid_argument: negative, or critical above the total),
  // reads the inhibitor's delay limit and, when it is below the grace period, raises it (the
  // drop-in, a reload, the limit read again), takes the lock and starts the thread. Throws
  // std::runtime_error when the limit cannot be raised or the lock is refused. With grace_period
  // 0 it does nothing (the feature is off).
  void start();
  // Ends the thread (a shutdown being handled finishes first) and releases the lock.
  void stop();

  bool shuttingDown() const { return shutting_down_; }
  // "node is shutting down" while it is, else empty (the node's Ready condition).
  std::string notReadyMessage() const;
  // Empty when a new pod may run here; else the reason (NodeShutdown) and message to fail it with.
  std::pair<std::string, std::string> admit(const api::core::v1::Pod& pod) const;

  // Handles one PrepareForShutdown signal on the caller's thread (the manager's thread does this
  // for each signal; tests call it directly).
  void handleSignal(bool shutting_down);
  // How many shutdowns were handled to the end (the lock released).
  uint64_t shutdownsHandled() const { return shutdowns_handled_; }

 private:
  void loop();
  void raiseInhibitDelay(std::chrono::microseconds current);
  void processShutdown();
  void log(const std::string& line) const;

  ShutdownInhibitor& inhibitor_;
  ShutdownPods& pods_;
  const ShutdownManagerOptions options_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> shutdowns_handled_{0};
  std::thread thread_;
  // Pod kills that outlived their group's budget, joined at stop().
  std::mutex kills_mu_;
  std::list<std::thread> kills_;
};

}  // namespace skiff::kubelet

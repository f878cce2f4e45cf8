#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "kubelet/runtime/runtime.h"
#include "skiff/api/core_v1.pb.h"

// Container probes as Kubernetes runs them (pkg/kubelet/prober):
//   - ProbeRunner does one check: httpGet (a status in [200, 400)), tcpSocket (a connection) or
//     exec (exit code 0), within timeoutSeconds. ActionProber runs httpGet and tcpSocket from a
//     helper thread that entered the pod's network namespace, so "localhost" and the pod IP work
//     wherever the node bridge is, and exec through the container runtime.
//   - ProbeTracker is one probe of one container: when it is due (initialDelaySeconds, then every
//     periodSeconds) and its result after successThreshold / failureThreshold consecutive
//     outcomes. Readiness starts at failure, liveness at success, startup unknown.

namespace skiff::kubelet::prober {

enum class ProbeKind { kLiveness, kReadiness, kStartup };
const char* probeKindName(ProbeKind kind);  // "Liveness", "Readiness", "Startup"

struct ProbeTarget {
  std::string pod_ip;
  std::string netns_path;  // "" = this process's namespace (hostNetwork pods)
  std::string container_id;
  const api::core::v1::Container* container = nullptr;  // for named ports
};

struct ProbeOutcome {
  bool success = false;
  std::string message;  // why it failed: "HTTP probe failed with statuscode: 500"
};

class ProbeRunner {
 public:
  virtual ~ProbeRunner() = default;
  // One check; never throws (a fault is a failed outcome).
  virtual ProbeOutcome run(const api::core::v1::Probe& probe, const ProbeTarget& target) = 0;
};

class ActionProber final : public ProbeRunner {
 public:
  explicit ActionProber(ContainerRuntime& runtime) : runtime_(runtime) {}
  ProbeOutcome run(const api::core::v1::Probe& probe, const ProbeTarget& target) override;

 private:
  ContainerRuntime& runtime_;
};

enum class ProbeResult { kUnknown, kSuccess, kFailure };

class ProbeTracker {
 public:
  using Clock = std::chrono::system_clock;
  ProbeTracker(api::core::v1::Probe probe, ProbeKind kind, Clock::time_point container_started);

  bool due(Clock::time_point now) const { return now >= next_due_; }
  Clock::time_point nextDue() const { return next_due_; }
  // Records an outcome at `now` and schedules the next check.
  void record(bool success, Clock::time_point now);
  ProbeResult result() const { return result_; }
  const api::core::v1::Probe& probe() const { return probe_; }
  ProbeKind kind() const { return kind_; }
  std::chrono::milliseconds timeout() const;

 private:
  api::core::v1::Probe probe_;
  ProbeKind kind_;
  Clock::time_point next_due_;
  ProbeResult result_;
  int successes_ = 0;
  int failures_ = 0;
};

// The port an httpGet/tcpSocket probe names: a number, or a containerPort's name. nullopt when a
// name matches no port.
std::optional<int> resolvePort(const api::runtime::IntOrString& port,
                               const api::core::v1::Container* container);

}  // namespace skiff::kubelet::prober

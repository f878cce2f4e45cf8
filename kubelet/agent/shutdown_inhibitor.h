#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

// What the graceful node shutdown manager (shutdown_manager.h) needs from the init system: a lock
// that delays a shutdown while the pods are stopped, and word that a shutdown is coming. The
// production implementation is systemd-logind over the system D-Bus (logind_inhibitor.h), as
// Kubernetes' kubelet (pkg/kubelet/nodeshutdown/systemd); tests use a fake.
//
// Threading: one thread (the shutdown manager's) calls every method.

namespace skiff::kubelet {

class ShutdownInhibitor {
 public:
  virtual ~ShutdownInhibitor() = default;

  // The longest a delay lock may hold off a shutdown (logind's InhibitDelayMaxUSec). Throws
  // std::runtime_error when it cannot be read.
  virtual std::chrono::microseconds inhibitDelayMax() = 0;

  // Asks the init system to read logind's configuration again (after the shutdown manager wrote
  // its drop-in raising InhibitDelayMaxSec), as Kubernetes' kubelet does (ReloadLogindConf:
  // systemd's KillUnit("systemd-logind.service", "all", SIGHUP)). Logind takes it up
  // asynchronously: inhibitDelayMax() may show the new value only a moment later. Throws
  // std::runtime_error when the request is refused.
  virtual void reloadConfiguration() = 0;

  // Takes a delay lock on shutdown (logind: Inhibit("shutdown", who, why, "delay")); a lock held
  // already is kept. Throws std::runtime_error when it is refused.
  virtual void acquire(const std::string& who, const std::string& why) = 0;

  // Lets the shutdown go on (logind: closes the lock's file descriptor). No-op without a lock.
  virtual void release() = 0;
  virtual bool held() const = 0;

  // Waits up to `timeout` for the next PrepareForShutdown signal and returns its argument: true
  // when a shutdown begins, false when one was cancelled; nullopt when none came. Signals sent
  // after the inhibitor was made are never missed. Throws std::runtime_error when the connection
  // is lost.
  virtual std::optional<bool> waitForShutdownSignal(std::chrono::milliseconds timeout) = 0;
};

using ShutdownInhibitorPtr = std::unique_ptr<ShutdownInhibitor>;

}  // namespace skiff::kubelet

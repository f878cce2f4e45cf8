#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "kubelet/agent/shutdown_inhibitor.h"

// The ShutdownInhibitor on systemd-logind over D-Bus (libdbus-1), as Kubernetes' kubelet
// (pkg/kubelet/nodeshutdown/systemd/inhibit_linux.go):
//   lock:    org.freedesktop.login1.Manager.Inhibit("shutdown", WHO, WHY, "delay") -> fd
//   release: close(fd)
//   delay:   property org.freedesktop.login1.Manager.InhibitDelayMaxUSec
//   signal:  org.freedesktop.login1.Manager.PrepareForShutdown(b) (a match rule added at once)
// on the object /org/freedesktop/login1 of the bus name org.freedesktop.login1, and
//   reload:  org.freedesktop.systemd1.Manager.KillUnit("systemd-logind.service", "all", SIGHUP)
// on /org/freedesktop/systemd1 of org.freedesktop.systemd1 (the kubelet's ReloadLogindConf).
//
// Threading: one thread at a time (the connection is private to this object).

struct DBusConnection;

namespace skiff::kubelet {

struct LogindInhibitorOptions {
  // The bus to connect to; empty: the system bus (libdbus honours DBUS_SYSTEM_BUS_ADDRESS, else
  // unix:path=/run/dbus/system_bus_socket).
  std::string bus_address;
  // How long one method call may take.
  std::chrono::milliseconds call_timeout{5000};
};

class LogindInhibitor final : public ShutdownInhibitor {
 public:
  // Connects, checks that logind is on the bus, and subscribes to PrepareForShutdown. Throws
  // std::runtime_error saying what is missing (no bus, no logind).
  explicit LogindInhibitor(LogindInhibitorOptions options = {});
  ~LogindInhibitor() override;
  LogindInhibitor(const LogindInhibitor&) = delete;
  LogindInhibitor& operator=(const LogindInhibitor&) = delete;

  std::chrono::microseconds inhibitDelayMax() override;
  void reloadConfiguration() override;
  void acquire(const std::string& who, const std::string& why) override;
  void release() override;
  bool held() const override { return fd_ >= 0; }
  std::optional<bool> waitForShutdownSignal(std::chrono::milliseconds timeout) override;

  // The lock's file descriptor (-1 without one), for tests.
  int lockFd() const { return fd_; }

 private:
  LogindInhibitorOptions options_;
  DBusConnection* conn_ = nullptr;
  int fd_ = -1;
};

}  // namespace skiff::kubelet

#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

// The container runtime the pod workers drive: OCI containers from a bundle (a root filesystem and
// what to run in it). RuncRuntime (runc_runtime.h) implements it with runc; unit tests mock it.
// Every method may be called from any thread, for different containers at once.

namespace skiff::kubelet {

struct MountSpec {
  std::string destination;
  std::string source;
  std::string type;  // "bind", "tmpfs", "proc", ...
  std::vector<std::string> options;
};

struct ResourceLimits {
  std::optional<uint64_t> cpu_shares;   // from requests.cpu (cgroup v1 shares)
  std::optional<int64_t> cpu_quota_us;  // from limits.cpu, per cpu_period_us
  uint64_t cpu_period_us = 100000;
  std::optional<int64_t> memory_limit;  // bytes, from limits.memory
  std::optional<int64_t> pids_limit;
};

// What to run; the pod worker fills it from the Pod and the image (container_spec.h).
struct ContainerConfig {
  std::string id;          // [A-Za-z0-9][A-Za-z0-9_.-]*, unique on the node
  std::string bundle_dir;  // config.json is written here
  std::string rootfs;      // absolute path of the root filesystem
  std::vector<std::string> args;
  std::vector<std::string> env;  // "KEY=value"
  std::string cwd = "/";
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
  std::string hostname;
  // An existing network namespace to join (the pod sandbox's); empty: a new, empty one.
  std::string netns_path;
  // Share the runtime's own network namespace (hostNetwork pods); netns_path is then ignored.
  bool host_network = false;
  // Below the runtime's cgroup parent in every hierarchy: "/skiff/pod<uid>/<id>".
  std::string cgroups_path;
  std::vector<MountSpec> mounts;  // after the standard /proc, /dev, /sys
  ResourceLimits resources;
  bool readonly_rootfs = false;
  bool privileged = false;
  bool no_new_privileges = false;
  std::vector<std::string> capabilities_add;  // "NET_ADMIN" or "CAP_NET_ADMIN"; "ALL"
  std::vector<std::string> capabilities_drop;
  std::string log_path;  // CRI-format log: "2026-01-01T00:00:00.000000000Z stdout F line"
};

enum class ContainerState { kCreated, kRunning, kStopped, kUnknown };

struct ContainerStatus {
  std::string id;
  ContainerState state = ContainerState::kUnknown;
  int pid = 0;
  std::optional<int> exit_code;  // when stopped: exit status, or 128 + signal
  int64_t started_at_ns = 0;     // wall clock, 0 when not started
  int64_t finished_at_ns = 0;
  std::string reason;  // when stopped: "Completed", "Error", "OOMKilled"
};

// What a command run inside a running container (exec probes, preStop hooks) did.
struct ExecResult {
  int exit_code = -1;  // exit status, or 128 + signal
  std::string output;  // stdout and stderr, truncated to a few KiB
  bool timed_out = false;
};

class RuntimeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Which of its stdio an interactive exec (kubectl exec) connects.
struct ExecStreamOptions {
  bool with_stdin = false;
  bool with_stdout = true;
  bool with_stderr = true;
  bool tty = false;  // a terminal: stdout carries both output streams, stderr is not separate
};

// A command started in a running container with its stdio on descriptors of this process.
// Destroying it kills the command if it still runs.
class ExecProcess {
 public:
  virtual ~ExecProcess() = default;
  // Where to write the command's stdin and read its stdout and stderr; -1 for a stream not asked
  // for. With a tty, stdin and stdout are the same terminal descriptor and stderr is -1; reading
  // it ends (EIO) when the command is gone.
  virtual int stdinFd() const = 0;
  virtual int stdoutFd() const = 0;
  virtual int stderrFd() const = 0;
  // Ends the command's stdin (EOF; end-of-file character on a terminal).
  virtual void closeStdin() = 0;
  // Sets the terminal's size (columns, rows); nothing without a tty.
  virtual void resize(uint16_t width, uint16_t height) = 0;
  // Waits for the command to end: its exit status, or 128 + signal. Throws RuntimeError with the
  // runtime's reason when the command could not be started (no such executable).
  virtual int wait() = 0;
  // SIGKILL to the command if it still runs; may be called while another thread waits.
  virtual void kill() = 0;
};

class ContainerRuntime {
 public:
  virtual ~ContainerRuntime() = default;

  // Writes the bundle and creates the container (not yet running). Throws RuntimeError with the
  // runtime's reason (a missing executable, a bad mount) and leaves nothing behind.
  virtual void create(const ContainerConfig& config) = 0;
  virtual void start(const std::string& id) = 0;
  // kUnknown when the runtime knows no such container.
  virtual ContainerStatus status(const std::string& id) = 0;
  virtual void kill(const std::string& id, int signal) = 0;
  // Sends `signal`, waits up to `grace` for the container to exit, then SIGKILL. Returns the
  // final status.
  virtual ContainerStatus stop(const std::string& id, std::chrono::milliseconds grace,
                               int signal) = 0;
  // Deletes a stopped (or, forcibly, a running) container and its runtime state. Idempotent.
  virtual void remove(const std::string& id) = 0;
  // Ids of the containers the runtime has.
  virtual std::vector<std::string> list() = 0;
  // Runs `argv` in the running container `id` (its namespaces, cgroup, environment) and waits up
  // to `timeout`; a command still running then is killed and timed_out set. Throws RuntimeError
  // when the runtime cannot run it at all (no such container).
  virtual ExecResult exec(const std::string& id, const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout) {
    (void)argv;
    (void)timeout;
    throw RuntimeError("container " + id + ": this runtime cannot exec");
  }
  // Starts `argv` in the running container `id` with its stdio connected as `options` asks, and
  // returns at once. Throws RuntimeError when the container is not running.
  virtual std::unique_ptr<ExecProcess> execStream(const std::string& id,
                                                  const std::vector<std::string>& argv,
                                                  const ExecStreamOptions& options) {
    (void)argv;
    (void)options;
    throw RuntimeError("container " + id + ": this runtime cannot exec");
  }
};

using ContainerRuntimePtr = std::unique_ptr<ContainerRuntime>;

}  // namespace skiff::kubelet

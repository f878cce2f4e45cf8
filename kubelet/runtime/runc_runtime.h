#pragma once

#include <string>

#include "kubelet/runtime/runtime.h"

// ContainerRuntime on runc (never crun: it refuses this machine's hybrid cgroups). Each container
// has a skiff-shim parent (shim_main.cc) that holds its stdio, writes its CRI log and records its
// exit code, so containers outlive a kubelet restart.
//
//   RUNC_ROOT/<id>/          runc's own state (`runc --root RUNC_ROOT`)
//   STATE_DIR/<id>/pid       the container's init pid (runc --pid-file)
//   STATE_DIR/<id>/exit      "CODE FINISHED_NS" once it exited (written by the shim)
//   STATE_DIR/<id>/started   wall-clock ns of `runc start`

namespace skiff::kubelet {

struct RuncOptions {
  std::string runc = "runc";
  std::string root = "/run/skiff/runc";
  std::string state_dir = "/run/skiff/containers";
  // The skiff-shim binary; empty: next to the running executable.
  std::string shim;
  std::chrono::milliseconds command_timeout{30000};
};

class RuncRuntime : public ContainerRuntime {
 public:
  explicit RuncRuntime(RuncOptions options);

  void create(const ContainerConfig& config) override;
  void start(const std::string& id) override;
  ContainerStatus status(const std::string& id) override;
  void kill(const std::string& id, int signal) override;
  ContainerStatus stop(const std::string& id, std::chrono::milliseconds grace, int signal) override;
  void remove(const std::string& id) override;
  std::vector<std::string> list() override;
  ExecResult exec(const std::string& id, const std::vector<std::string>& argv,
                  std::chrono::milliseconds timeout) override;
  // `runc exec` with pipes (or, with a tty, a terminal whose other side is runc's stdio), its
  // own log (to tell runc's failures from the command's exit status) and a pid file (to kill the
  // command, not only runc). Scratch files under STATE_DIR/<id>/exec-N/.
  std::unique_ptr<ExecProcess> execStream(const std::string& id,
                                          const std::vector<std::string>& argv,
                                          const ExecStreamOptions& options) override;

  const RuncOptions& options() const { return options_; }

 private:
  std::vector<std::string> runc(std::vector<std::string> args) const;
  std::string stateDir(const std::string& id) const { return options_.state_dir + "/" + id; }

  RuncOptions options_;
};

// Throws std::invalid_argument unless `id` is a valid runc container id.
void validateContainerId(const std::string& id);

}  // namespace skiff::kubelet

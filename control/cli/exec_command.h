#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "control/cli/cli_context.h"

namespace CLI {
class App;
}

// `skiff exec [-n NS] [-c CONTAINER] [-i] [-t] POD -- CMD ARGS...`, as kubectl exec: a WebSocket
// to pods/{name}/exec (subprotocol v5.channel.k8s.io, else v4), which the apiserver proxies to the
// pod's kubelet. The exit code is the command's.
namespace skiff::cli {

struct ExecOptions {
  std::string pod;
  std::string container;    // empty: the kubectl.kubernetes.io/default-container, else the first
  bool pass_stdin = false;  // -i: forward our stdin (its end ends the command's, on v5)
  bool tty = false;         // -t: a terminal in the container (ours raw while it runs)
  std::vector<std::string> command;
};

// Runs the command; returns its exit code, or 1 with kubectl's message on `err` when it could not
// be run (no such pod or container, a server or transport error).
int runExec(CliContext& context, const ExecOptions& options, int in_fd, std::ostream& out,
            std::ostream& err);

void addExecCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

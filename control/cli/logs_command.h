#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "control/cli/cli_context.h"

namespace CLI {
class App;
}

// `skiff logs POD|deploy/NAME [-c CONTAINER] [--tail N] [--timestamps] [-p] [--since D]
// [--limit-bytes N]`, as kubectl logs: GET pods/{name}/log, which the apiserver proxies to the
// pod's kubelet.
namespace skiff::cli {

struct LogsOptions {
  std::string target;  // POD, pod/POD, or deploy(ment)/NAME (its first pod by name)
  std::string container;
  bool follow = false;
  int64_t tail = -1;  // -1: all
  bool timestamps = false;
  bool previous = false;
  std::string since;  // a duration ("5m")
  int64_t limit_bytes = 0;
};

int runLogs(CliContext& context, const LogsOptions& options, std::ostream& out, std::ostream& err);

void addLogsCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

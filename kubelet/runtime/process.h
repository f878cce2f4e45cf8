#pragma once

#include <chrono>
#include <string>
#include <vector>

// Runs a helper program (runc, ip) to completion from a multi-threaded process: posix_spawn, its
// output captured, a deadline after which it is killed.

namespace skiff::kubelet {

struct ProcessResult {
  int exit_code = -1;  // exit status, or 128 + signal
  std::string out;
  std::string err;
  bool timed_out = false;
  bool ok() const { return exit_code == 0 && !timed_out; }
};

// `argv[0]` is looked up in PATH. stdin is /dev/null.
ProcessResult runProcess(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

// "runc start x: <stderr or stdout, trimmed>" for error messages.
std::string describeFailure(const std::vector<std::string>& argv, const ProcessResult& result);

}  // namespace skiff::kubelet

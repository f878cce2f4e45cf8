#pragma once

#include <sys/types.h>

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace skiff::cli {

// A `skiff` child (this binary) that a benchmark starts: `skiff up`, `skiff server`, a hollow
// `skiff agent`. Its stdout goes to our stderr, or to a pipe we read, so that our stdout carries
// only the figures. It dies with us (PR_SET_PDEATHSIG) and is stopped with SIGTERM (then SIGKILL
// after a grace) when destroyed.
class SkiffChild {
 public:
  SkiffChild(std::vector<std::string> args, bool pipe_stdout);
  ~SkiffChild();
  SkiffChild(const SkiffChild&) = delete;
  SkiffChild& operator=(const SkiffChild&) = delete;

  // Reads the child's stdout (copying it to stderr) until a line contains `marker`; from then on
  // the rest is drained in the background so the child never blocks on a full pipe. False when
  // the child closed its stdout first.
  bool waitForLine(std::string_view marker);

  // The exit status if the child has exited.
  std::optional<int> poll();
  // SIGTERM, and SIGKILL if it has not exited within 600 s (skiff up removes its pods first).
  void stop();

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  std::thread drain_;
};

}  // namespace skiff::cli

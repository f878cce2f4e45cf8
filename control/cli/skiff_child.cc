#include "control/cli/skiff_child.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <stdexcept>

namespace skiff::cli {

using Clock = std::chrono::steady_clock;

SkiffChild::SkiffChild(std::vector<std::string> args, bool pipe_stdout) {
  int fds[2] = {-1, -1};
  if (pipe_stdout && ::pipe(fds) != 0) {
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    // Killed with the benchmark, the cluster still stops (and `skiff up` removes its pods).
    // And its output to a closed pipe must not kill it (SIGPIPE) before it has cleaned up.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    ::signal(SIGPIPE, SIG_IGN);
    ::dup2(pipe_stdout ? fds[1] : 2, 1);
    if (pipe_stdout) {
      ::close(fds[0]);
      ::close(fds[1]);
    }
    ::execv("/proc/self/exe", argv.data());
    std::fprintf(stderr, "skiff bench: cannot run skiff %s: %s\n", args[1].c_str(),
                 std::strerror(errno));
    ::_exit(127);
  }
  if (pipe_stdout) {
    ::close(fds[1]);
    out_ = ::fdopen(fds[0], "r");
  }
}

SkiffChild::~SkiffChild() {
  stop();
  if (out_) std::fclose(out_);
}

bool SkiffChild::waitForLine(std::string_view marker) {
  char line[4096];
  while (out_ && std::fgets(line, sizeof(line), out_)) {
    std::cerr << "  | " << line << std::flush;
    if (std::string_view(line).find(marker) != std::string_view::npos) {
      FILE* out = out_;
      out_ = nullptr;
      drain_ = std::thread([out] {
        char rest[4096];
        while (std::fgets(rest, sizeof(rest), out))
          std::cerr << "  | " << rest << std::flush;
        std::fclose(out);
      });
      return true;
    }
  }
  return false;
}

std::optional<int> SkiffChild::poll() {
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
  pid_ = -1;
  return status;
}

void SkiffChild::stop() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + std::chrono::seconds(600);
    while (pid_ > 0 && Clock::now() < deadline && !poll())
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  if (drain_.joinable()) drain_.join();
}

}  // namespace skiff::cli

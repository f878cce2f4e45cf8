#include "kubelet/network/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace skiff::kubelet::network {

void createNetns(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0) throw std::runtime_error("create " + path + ": " + std::strerror(errno));
  ::close(fd);
  std::string error;
  std::thread worker([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      error = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
      return;
    }
    if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
      error = "bind mount of the new namespace on " + path + ": " + std::strerror(errno);
    }
    // The thread ends here; the bind mount keeps the namespace.
  });
  worker.join();
  if (!error.empty()) {
    ::unlink(path.c_str());
    throw std::runtime_error(error);
  }
}

void deleteNetns(const std::string& path) {
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    throw std::runtime_error("unmount " + path + ": " + std::strerror(errno));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    throw std::runtime_error("remove " + path + ": " + std::strerror(errno));
  }
}

ProcessResult runInNetns(const std::string& netns, std::vector<std::string> argv) {
  if (!netns.empty()) {
    argv.insert(argv.begin(), {"nsenter", "--net=" + netns, "--"});
  }
  return runProcess(argv, std::chrono::seconds(20));
}

std::string mustRunInNetns(const std::string& netns, std::vector<std::string> argv) {
  const ProcessResult r = runInNetns(netns, argv);
  if (!r.ok()) {
    throw std::runtime_error(describeFailure(argv, r) +
                             (netns.empty() ? "" : " (in network namespace " + netns + ")"));
  }
  return r.out;
}

}  // namespace skiff::kubelet::network

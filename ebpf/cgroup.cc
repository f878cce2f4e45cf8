#include "ebpf/cgroup.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace skiff::ebpf {
namespace {

using dataplane::Result;
using dataplane::Status;

std::string errnoText() {
  return std::strerror(errno);
}

bool isCgroup2(const std::string& path) {
  struct statfs fs {};
  return ::statfs(path.c_str(), &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

std::string parentOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string trimmed(std::string path) {
  while (path.size() > 1 && path.back() == '/')
    path.pop_back();
  return path;
}

std::string hint() {
  const std::string mount = cgroup2Mount();
  return mount.empty() ? " (cgroup v2 is not mounted)" : " (cgroup v2 is mounted at " + mount + ")";
}

}  // namespace

std::string cgroup2Mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // "36 25 0:31 / /sys/fs/cgroup/unified rw,... shared:9 - cgroup2 cgroup2 rw"
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, dash));
    std::string id, parent, dev, root, mountPoint;
    head >> id >> parent >> dev >> root >> mountPoint;
    if (!mountPoint.empty()) return mountPoint;
  }
  return {};
}

std::string defaultCgroupPath() {
  const std::string mount = cgroup2Mount();
  return (mount.empty() ? std::string("/sys/fs/cgroup") : mount) + "/skiff";
}

Status ensureCgroup(const std::string& rawPath) {
  const std::string path = trimmed(rawPath);
  if (path.empty() || path[0] != '/') {
    return Status::failure("cgroup path \"" + rawPath + "\" must be absolute");
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode) || !isCgroup2(path)) {
      return Status::failure(path + " is not a cgroup v2 directory" + hint());
    }
    // The root of the hierarchy is where the parent is another filesystem.
    const std::string parent = parentOf(path);
    struct stat up {};
    if (path == "/" || !isCgroup2(parent) ||
        (::stat(parent.c_str(), &up) == 0 && up.st_ino == st.st_ino && up.st_dev == st.st_dev)) {
      return Status::failure("refusing the root cgroup " + path +
                             ": the socket LB attaches to Skiff's own subtree, for example " +
                             path + "/skiff");
    }
    return {};
  }
  if (errno != ENOENT) return Status::failure("stat " + path + ": " + errnoText());
  const std::string parent = parentOf(path);
  if (parent == path) return Status::failure("cgroup path \"" + rawPath + "\" has no parent");
  if (::stat(parent.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::failure("stat " + parent + ": " + errnoText());
    if (Status s = ensureCgroup(parent); !s.ok()) return s;
  } else if (!isCgroup2(parent)) {
    return Status::failure("cannot make cgroup " + path + ": " + parent +
                           " is not a cgroup v2 directory" + hint());
  }
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::failure("mkdir cgroup " + path + ": " + errnoText());
  }
  return {};
}

Result<uint64_t> cgroupId(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::failure("stat " + path + ": " + errnoText());
  return static_cast<uint64_t>(st.st_ino);
}

Status joinCgroup(const std::string& path, pid_t pid) {
  const std::string procs = trimmed(path) + "/cgroup.procs";
  std::ofstream out(procs);
  if (!out) return Status::failure("open " + procs + ": " + errnoText());
  out << (pid == 0 ? ::getpid() : pid) << "\n";
  out.flush();
  if (!out) return Status::failure("move process into " + path + ": " + errnoText());
  return {};
}

Status removeCgroup(const std::string& path) {
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT) {
    return Status::failure("rmdir cgroup " + path + ": " + errnoText());
  }
  return {};
}

}  // namespace skiff::ebpf

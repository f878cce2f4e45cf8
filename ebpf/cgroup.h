#pragma once

// The cgroup v2 directory the socket LB attaches to: Skiff's own subtree (by default `skiff` under
// the cgroup v2 mount), never the machine's root cgroup. Processes in it or below it (pods, and
// host processes run through `skiff lb exec`) get ClusterIP access.

#include <sys/types.h>
#include <cstdint>
#include <string>

#include "dataplane/status.h"

namespace skiff::ebpf {

// Where cgroup v2 is mounted ("/sys/fs/cgroup" on a unified host, "/sys/fs/cgroup/unified" on a
// hybrid one), from /proc/self/mountinfo; empty if it is not mounted.
std::string cgroup2Mount();
// "<cgroup2 mount>/skiff" ("/sys/fs/cgroup/skiff" when cgroup v2 is not mounted: create() then
// says why it cannot attach).
std::string defaultCgroupPath();
// The sub-cgroup of Skiff's subtree that host processes join (`skiff lb exec`).
inline constexpr const char* kHostCgroupName = "host";

// Makes `path` (and missing parents) a cgroup v2 directory. Refuses the root of the cgroup v2
// hierarchy and paths outside it, naming the path.
dataplane::Status ensureCgroup(const std::string& path);
// The cgroup id (kernfs inode) of the directory `path`, as BPF link info reports it.
dataplane::Result<uint64_t> cgroupId(const std::string& path);
// Moves process `pid` (0: the caller) into the cgroup v2 directory `path`.
dataplane::Status joinCgroup(const std::string& path, pid_t pid = 0);
// Removes `path` if it is an empty cgroup (no processes, no children); missing is fine.
dataplane::Status removeCgroup(const std::string& path);

}  // namespace skiff::ebpf

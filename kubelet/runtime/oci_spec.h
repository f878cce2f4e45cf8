#pragma once

#include <string>
#include <vector>

#include "control/api/value.h"
#include "kubelet/runtime/runtime.h"

// The OCI runtime-spec config.json runc reads, from a ContainerConfig: process, root, the
// standard mounts (/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys, /sys/fs/cgroup), namespaces
// (pid, ipc, uts, mount, network: joined when a path is given), cgroupsPath and resources, the
// default capability set of Docker and containerd with securityContext's add/drop, and the masked
// and read-only paths of an unprivileged container.

namespace skiff::kubelet {

api::Value makeRuntimeSpec(const ContainerConfig& config);

// "NET_ADMIN" -> "CAP_NET_ADMIN"; throws std::invalid_argument for an unknown capability.
std::string normalizeCapability(const std::string& name);
// The capabilities a container gets: the default set (all for privileged), plus add, minus drop
// ("ALL" in drop removes every default; add is applied after drop as Kubernetes does).
std::vector<std::string> effectiveCapabilities(const ContainerConfig& config);

}  // namespace skiff::kubelet

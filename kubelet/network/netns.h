#pragma once

#include <string>
#include <vector>

#include "kubelet/runtime/process.h"

// Named network namespaces as files (what `ip netns add` does, in a directory of our own): a
// namespace made by unshare(CLONE_NEWNET) on a short-lived thread, kept alive by a bind mount of
// its /proc/thread-self/ns/net onto PATH. Safe in a multi-threaded process: only that thread ever
// changes namespace.

namespace skiff::kubelet::network {

// Creates PATH (its directory must exist) holding a new, empty network namespace. Throws
// std::runtime_error; on failure nothing is left at PATH.
void createNetns(const std::string& path);
// Unmounts and removes PATH. Missing is fine.
void deleteNetns(const std::string& path);

// Runs `argv` (an iproute2 command) inside the network namespace at `netns` ("" = this process's
// own) through nsenter.
ProcessResult runInNetns(const std::string& netns, std::vector<std::string> argv);
// runInNetns() that throws std::runtime_error with the command's error output when it fails.
std::string mustRunInNetns(const std::string& netns, std::vector<std::string> argv);

}  // namespace skiff::kubelet::network

#pragma once

#include <string>
#include <vector>

#include "control/apiserver/upgraded_stream.h"
#include "kubelet/runtime/runtime.h"

namespace skiff::kubelet {

// One exec on a connection already upgraded to WebSocket with `protocol` (v4 or v5.channel.k8s.io):
// starts `argv` in container `container_id`, copies channel 0 to its stdin, its stdout and stderr
// to channels 1 and 2, applies resizes from channel 4 and (v5) ends stdin on [255, 0]; at the end
// writes the Status on channel 3 (the exit code, or why it could not run) and closes. A client
// that leaves first gets the command killed.
void runExecSession(ContainerRuntime& runtime, const std::string& container_id,
                    const std::vector<std::string>& argv, const ExecStreamOptions& options,
                    const std::string& protocol, apiserver::ByteStream& stream);

}  // namespace skiff::kubelet

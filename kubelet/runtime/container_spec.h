#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kubelet/images/oci.h"
#include "kubelet/runtime/runtime.h"
#include "skiff/api/core_v1.pb.h"

// From a Pod's container and its image config to what runs, as Kubernetes decides it:
//   - command/args: `command` replaces the image Entrypoint and drops its Cmd; `args` alone
//     replaces Cmd; $(VAR) refers to the container's env ($$ escapes, unknown names stay).
//   - env: the image's Env, then the container's env in order (later wins; $(VAR) expands to
//     variables defined before it).
//   - workingDir: the container's, else the image's, else "/".
//   - user: runAsUser/runAsGroup of the container, else of the pod, else the image's User
//     ("uid", "uid:gid", "name[:group]" looked up in the image's /etc/passwd and /etc/group).
//   - resources: requests.cpu -> cpu shares, limits.cpu -> CFS quota per 100 ms, limits.memory.
//   - securityContext: privileged, readOnlyRootFilesystem, capabilities, allowPrivilegeEscalation.
// Errors throw std::invalid_argument naming the field, "spec.containers[0].securityContext...".

namespace skiff::kubelet {

namespace core = skiff::api::core::v1;

// Kubernetes' $(VAR) expansion (third_party/forked/golang/expansion).
std::string expandVars(std::string_view in, const std::map<std::string, std::string>& vars);

// Fills args, env, cwd, uid, gid, additional_gids, resources and the security fields of `out`.
// `field` is the container's path for errors ("spec.containers[1]"); `rootfs` is where the
// image's /etc/passwd is read for a named User. `extra_env` (service links, downward API values
// resolved by the caller) come after the image's and before the container's own.
void applyContainerSpec(const core::PodSpec& pod, const core::Container& container,
                        const images::ImageConfig& image, const std::string& rootfs,
                        const std::string& field, ContainerConfig& out,
                        const std::vector<std::pair<std::string, std::string>>& extra_env = {});

}  // namespace skiff::kubelet

#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff up`: a single-node cluster on this machine. The control plane (apiserver on the embedded
// store, controller manager, scheduler, EndpointSlice controller) runs in this process; the node
// agent (kubelet and the eBPF service load balancer) runs as a supervised `skiff agent` child, so
// each can be measured and restarted on its own.
void addUpCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

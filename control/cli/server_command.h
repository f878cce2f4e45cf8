#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff apiserver`: the Kubernetes-compatible apiserver on the embedded store.
void addApiserverCommand(CLI::App& app, int& exit_code);
// `skiff server`: the apiserver plus the control loops (controller manager, scheduler,
// EndpointSlice controller), which reach it through the admin kubeconfig like any client.
void addServerCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff controller-manager --kubeconfig FILE [--leader-elect] [--controllers=*]`: the controllers
// of control/controllers/ against an apiserver, until SIGINT or SIGTERM.
void addControllerManagerCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

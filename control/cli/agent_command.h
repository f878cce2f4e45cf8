#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff agent`: the node agent (kubelet and node proxier), or hollow nodes for scale tests.
void addAgentCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

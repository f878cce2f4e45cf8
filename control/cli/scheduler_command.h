#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff scheduler`: assigns pending pods to nodes (optionally leader-elected).
void addSchedulerCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

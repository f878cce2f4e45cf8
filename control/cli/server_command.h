#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff apiserver`: the Kubernetes-compatible apiserver on the embedded store.
void addApiserverCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

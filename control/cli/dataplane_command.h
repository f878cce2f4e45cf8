#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff dataplane [options] -- [EAL args]`: the DPDK data path (control socket, metrics);
// `skiff dataplane stats`: its statistics; `skiff bench dpdk`: its packet-rate benchmark.
void addDataplaneCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff bench socklb [--connects N] [--quick] [--json]`: connect() latency through the eBPF
// socket LB (issue LB-EBPF, part 7). A child process in its own network namespace and a cgroup
// made for the run (skiff-bench-PID under the cgroup v2 mount, removed afterwards) connects N
// times to a ClusterIP whose one backend is a loopback listener, and N times to that listener
// directly, interleaved in rounds of 100; each connect is connect + accept + close of both ends.
// Metrics: socklb_connect_us, direct_connect_us (medians of the rounds' means) and their ratio.
// Needs root. --quick: 300 connects.
void addBenchSocklbCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

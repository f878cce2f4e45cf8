#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff bench scheduler [--nodes N] [--pods P] [--json]`: the scheduler's throughput through the
// apiserver. Starts a control plane in this process (apiserver and scheduler, no controllers),
// registers N hollow Node objects (no agents: the scheduler only needs Nodes), creates P pending
// pods and watches them until every one has spec.nodeName. Metrics: pods_per_second (pods bound
// from the first create to the last bind), bind_p50_ms and bind_p99_ms (creation to bound).
void addBenchSchedulerCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

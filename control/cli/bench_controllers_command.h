#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff bench controllers [--replicas R] [--nodes N] [--quick] [--json]`: the controllers end to
// end. Starts a control plane in this process (apiserver, controller manager, scheduler,
// EndpointSlice controller) and N hollow nodes beside it, creates a Deployment of R replicas and
// waits until all are available, then changes its pod template (an annotation) and waits until the
// rollout completes (observedGeneration, updated = available = R replicas, no old pod left).
// Metrics: seconds_to_available, pods_created_per_second (R over the time from the Deployment's
// create to the R-th pod a watch sees), rolling_update_seconds. --quick: 300 replicas on 30 nodes.
void addBenchControllersCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff bench endpoints [--services N] [--endpoints-per-service M] [--changes-per-second R]
// [--seconds S | --quick] [--dataplane auto|ebpf|fake] [--json]`: the node proxier and its data
// path, fed Services and EndpointSlices directly (no apiserver). Metrics: full_sync_ms (from
// handing over N services of M endpoints to the first apply() completing) and
// programming_latency_p50_ms / _p99_ms (R endpoint changes per second for S seconds, each
// stamped with its last-change-trigger-time, as the proxier's own histogram records them). The
// eBPF data path needs root (only its maps are programmed: nothing is attached); `fake` counts.
void addBenchEndpointsCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

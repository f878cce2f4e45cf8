#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff bench pod-startup [--pods N] [--rate R] [--kubeconfig FILE] [--hollow] [--json]`: pod
// startup latency, from the create call to Running and to Ready as a watch sees them, for N plain
// Pods created at R a second in a fresh namespace (deleted at the end), image
// skiff.local/busybox-httpd:1.35. Against the cluster of --kubeconfig; without it, on a
// single-node cluster of its own: `skiff up` as a child (root, runc, the image imported), or with
// --hollow the control plane in this process and a `skiff agent --hollow` child (no containers).
// Metrics: startup_p50_ms, startup_p99_ms, startup_max_ms (to Ready), running_p50_ms,
// running_p99_ms, pods.
void addBenchPodStartupCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

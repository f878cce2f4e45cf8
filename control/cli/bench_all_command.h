#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff bench all [--quick] [--json DIR] [--only SUITES] [--timeout S]`: every suite of
// `skiff bench` on this machine, one after another, each a child process of this binary
// (/proc/self/exe), so one that crashes or hangs (killed after its timeout) does not stop the
// rest. Suites: micro (the Google Benchmark binaries under the build's bench/ folder), store,
// apiserver (request latency against concurrent clients), scheduler (a sweep of node counts),
// controllers, pod-startup, endpoints, dpdk (a sweep of service counts), xdp, socklb, baselines;
// one that is not built is "skipped: not built", one that cannot run here (not root, no BPF, a
// child exiting 77) "skipped" with the reason. Progress (each suite's own lines, indented) goes to
// stderr while it runs. Into DIR (default ./bench-results): <suite>.json (and
// <suite>-<param>-<value>.json for sweep points), <suite>.log, results.md (the summary and every
// figure as Markdown tables, and which plots could not be drawn and why) and PNG plots drawn with
// gnuplot: dpdk_services.png, programming_latency_cdf.png, scheduler_nodes.png,
// apiserver_latency_load.png (p99 per verb against clients, with Kubernetes' SLO thresholds drawn
// as definitions), baselines_requests.png.
// --quick: small loads, under 3 minutes in all. Exits 1 if a suite failed (skipped ones do not
// count).
void addBenchAllCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

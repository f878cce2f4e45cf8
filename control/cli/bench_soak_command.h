#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff bench soak [--duration S] [--api-rate R] [--replicas N] [--hollow] [--check] [--json]`:
// a single-node cluster under mixed load for S seconds (default 600), sampling the memory (RSS)
// and open file descriptors of the server and of the agent:
// - API load: R requests a second (create, get, update, list, delete of ConfigMaps), and watches
//   opened and closed again;
// - pod churn: a Deployment behind a Service scaled between 0 and N replicas, with a rolling
//   update every few cycles.
// The cluster is `skiff up` as a child (root, runc, the busybox-httpd image imported; the agent is
// its child), or with --hollow `skiff server` and a `skiff agent --hollow` as children (no
// containers). Growth is measured after a warm-up (a fifth of the run): the median of the last
// samples against the median of the first ones. With --check the exit status says whether memory
// and descriptors stayed flat (RSS growth <= max(8 MB, 5%), descriptors <= 8) and no request
// failed. Metrics: server_rss_mb, agent_rss_mb, server_rss_growth_mb, agent_rss_growth_mb,
// server_fds, agent_fds, server_fds_growth, agent_fds_growth, api_requests, api_errors,
// scale_changes, flat.
void addBenchSoakCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

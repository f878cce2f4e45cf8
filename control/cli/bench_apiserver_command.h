#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff bench apiserver [--quick] [--json] [--clients N,...] [--seconds S] [--objects N]
// [--watchers W]`: the apiserver's request latency against load. Starts an apiserver in this
// process on the embedded SQLite store (fsync on) in a temporary directory, preloads N pods and
// N/10 ConfigMaps in one namespace, then for each load level (concurrent clients, each a RestClient
// of its own on a keep-alive TLS connection) runs one phase per verb of Kubernetes' SLO categories,
// S seconds each: GET of one pod, LIST of the namespace's pods (resourceVersion="", consistent,
// from the store; and "0", from the watch cache), CREATE, UPDATE (PUT) and DELETE of small
// ConfigMaps. W watchers of the namespace's ConfigMaps measure watch latency: from a write's
// answer at its client to the event's arrival at each watcher (0 when the event came first), and
// from the write's request to the event's arrival.
// Metrics (at the highest load level): <verb>_p50_ms, <verb>_p99_ms, <verb>_requests_per_second
// for verb in get, list, list_rv0, create, update, delete; watch_p50_ms, watch_p99_ms,
// watch_from_request_p50_ms, watch_from_request_p99_ms, watch_before_answer_fraction,
// watch_events_per_second (deliveries over the write phases' time); requests_per_second (every
// verb phase's requests over their time), clients. "levels": the same figures for every load level;
// "slo": Kubernetes' SLO thresholds (definitions, not measurements). --quick: 1, 4 and 16 clients,
// 0.3 s per phase, 200 pods.
void addBenchApiserverCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

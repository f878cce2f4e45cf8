#pragma once

#include <CLI/CLI.hpp>

namespace skiff::cli {

// The `skiff bench` group, made on first use: every system benchmark is a subcommand of it
// (`skiff bench store`, `skiff bench apiserver`, ...). Other files add theirs with
// `benchGroup(app).add_subcommand(...)`.
CLI::App& benchGroup(CLI::App& app);

// `skiff bench store [--backend sqlite|etcd] [--quick] [--json] [--runs N]
// [--etcd-endpoints URLS | --etcd-members N] [--data-dir DIR]`: acknowledged writes/s and p50/p99
// latency with 1, 16 and 256 concurrent writers, and watch events/s to 1,000 watchers of one
// prefix; medians of several runs. A human table, or with --json one JSON object on stdout:
// {"suite":"store","params":{...},"metrics":{"writes_per_second_1":...,"p99_ms_256":...,
// "watch_events_per_second":...}}.
void addBenchStoreCommand(CLI::App& app, int& exit_code);

}  // namespace skiff::cli

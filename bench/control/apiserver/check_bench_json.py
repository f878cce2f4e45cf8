#!/usr/bin/env python3
"""Runs `skiff bench apiserver --quick --json` and checks its one JSON object: the suite, the
params of --quick, every metric key the apiserver latency suite names as a positive number, the
same figures for each load level, and Kubernetes' SLO thresholds beside them."""
import json
import subprocess
import sys

VERBS = ["get", "list", "list_rv0", "create", "update", "delete"]
REQUIRED = [f"{verb}_{figure}" for verb in VERBS
            for figure in ("p50_ms", "p99_ms", "requests_per_second")]
REQUIRED += ["watch_p99_ms", "watch_from_request_p50_ms", "watch_from_request_p99_ms",
             "watch_events_per_second", "requests_per_second", "clients"]
# 0 when most events reach the watchers before the writer has its answer.
NON_NEGATIVE = ["watch_p50_ms", "watch_before_answer_fraction"]


def positive(where, figures):
    for key in REQUIRED:
        value = figures.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            sys.exit(f"{where}: {key} is {value!r}, expected a positive number")
    for key in NON_NEGATIVE:
        value = figures.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            sys.exit(f"{where}: {key} is {value!r}, expected a number >= 0")
    if figures["watch_before_answer_fraction"] > 1:
        sys.exit(f"{where}: watch_before_answer_fraction is above 1")
    for verb in VERBS + ["watch", "watch_from_request"]:
        if figures[f"{verb}_p99_ms"] < figures[f"{verb}_p50_ms"]:
            sys.exit(f"{where}: {verb} p99 {figures[verb + '_p99_ms']} is below its p50")


def main():
    command = sys.argv[1:] + ["--quick", "--json"]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            timeout=60)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if len(lines) != 1:
        sys.exit(f"expected one JSON line on stdout, got {len(lines)}:\n{result.stdout}")
    document = json.loads(lines[0])
    if document.get("suite") != "apiserver":
        sys.exit(f"suite is {document.get('suite')!r}, expected 'apiserver'")
    params = document.get("params")
    if not isinstance(params, dict) or params.get("clients") != [1, 4, 16] or \
            params.get("pods") != 200 or params.get("quick") is not True:
        sys.exit(f"params are not those of --quick (1, 4, 16 clients; 200 pods): {params!r}")
    metrics = document.get("metrics")
    if not isinstance(metrics, dict):
        sys.exit("metrics missing")
    positive("metrics", metrics)
    if metrics["clients"] != 16:
        sys.exit(f"metrics are of {metrics['clients']} clients, expected the highest load, 16")
    # The headline keys: pod creates by 1 and 64 clients, the watch fan-out's delivery.
    for key in ["creates_per_second_1", "creates_per_second_64", "create_p99_ms_1",
                "create_p99_ms_64", "watch_delivery_p99_ms", "watch_fanout_written_per_second",
                "watch_fanout_events_per_second"]:
        value = metrics.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            sys.exit(f"metrics: {key} is {value!r}, expected a positive number")
    if metrics["watch_delivery_p99_ms"] < metrics.get("watch_delivery_p50_ms", -1):
        sys.exit("metrics: watch_delivery_p99_ms is below watch_delivery_p50_ms")
    if params.get("create_clients") != [1, 64] or params.get("fanout_watchers") != 50:
        sys.exit(f"params are not those of --quick (pod creates by 1 and 64 clients; 50 fan-out "
                 f"watchers): {params!r}")
    # Every watcher gets every event (the server drops no watcher at this load).
    if metrics.get("watch_fanout_delivered") != metrics.get("watch_fanout_expected") or \
            metrics.get("watch_fanout_expected") != 50 * 200:
        sys.exit(f"fan-out delivered {metrics.get('watch_fanout_delivered')!r} of "
                 f"{metrics.get('watch_fanout_expected')!r} events, expected all of 50 x 200")
    levels = document.get("levels")
    if not isinstance(levels, list) or [level.get("clients") for level in levels] != [1, 4, 16]:
        sys.exit(f"levels are not one per load level 1, 4, 16: {levels!r}")
    for level in levels:
        positive(f"level of {level['clients']} clients", level)
    slo = document.get("slo")
    if not isinstance(slo, dict) or slo.get("mutating_p99_ms") != 1000 or \
            slo.get("single_object_read_p99_ms") != 1000 or \
            slo.get("namespace_list_p99_ms") != 5000 or "not measurements" not in slo.get(
                "source", ""):
        sys.exit(f"slo is not Kubernetes' thresholds marked as definitions: {slo!r}")
    print(lines[0])
    print(result.stderr, file=sys.stderr)


if __name__ == "__main__":
    main()

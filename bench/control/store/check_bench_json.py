#!/usr/bin/env python3
"""Runs `skiff bench store --quick --json ...` and checks its one JSON object: the suite, its
params, and every metric key the store issue names, each a positive number."""
import json
import subprocess
import sys

REQUIRED = [
    "writes_per_second_1", "writes_per_second_16", "writes_per_second_256",
    "p50_ms_1", "p99_ms_1", "p50_ms_256", "p99_ms_256", "watch_events_per_second",
    "watch_fanout_events_per_s", "watch_setup_ms",
]
# etcd also measures its watch fan-out with a stream per watch, beside the shared stream.
REQUIRED_ETCD = ["watch_fanout_events_per_s_stream_per_watch", "watch_setup_ms_stream_per_watch"]


def main():
    command = sys.argv[1:] + ["--quick", "--json"]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            timeout=240)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if len(lines) != 1:
        sys.exit(f"expected one JSON line on stdout, got {len(lines)}:\n{result.stdout}")
    document = json.loads(lines[0])
    if document.get("suite") != "store":
        sys.exit(f"suite is {document.get('suite')!r}, expected 'store'")
    if not isinstance(document.get("params"), dict) or "backend" not in document["params"]:
        sys.exit(f"params missing or without backend: {document.get('params')!r}")
    metrics = document.get("metrics")
    if not isinstance(metrics, dict):
        sys.exit("metrics missing")
    required = REQUIRED + (REQUIRED_ETCD if document["params"]["backend"] == "etcd" else [])
    for key in required:
        value = metrics.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            sys.exit(f"metric {key} is {value!r}, expected a positive number")
    print(lines[0])


if __name__ == "__main__":
    main()

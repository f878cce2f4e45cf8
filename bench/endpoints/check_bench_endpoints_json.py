#!/usr/bin/env python3
"""Runs `skiff bench endpoints ... --json` (with --dataplane fake unless root, where the eBPF data
path is used) and checks its one JSON object: the suite, its params, and the three metric keys
the endpoints issue names, each a positive number, with every change programmed."""
import json
import os
import subprocess
import sys

REQUIRED = ["full_sync_ms", "programming_latency_p50_ms", "programming_latency_p99_ms"]


def main():
    command = sys.argv[1:] + ["--json"]
    if os.geteuid() != 0:
        command += ["--dataplane", "fake"]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            timeout=240)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if len(lines) != 1:
        sys.exit(f"expected one JSON line on stdout, got {len(lines)}:\n{result.stdout}")
    document = json.loads(lines[0])
    if document.get("suite") != "endpoints":
        sys.exit(f"suite is {document.get('suite')!r}, expected 'endpoints'")
    params = document.get("params")
    if not isinstance(params, dict) or params.get("dataplane") not in ("ebpf", "fake"):
        sys.exit(f"params missing or without dataplane ebpf|fake: {params!r}")
    metrics = document.get("metrics")
    if not isinstance(metrics, dict):
        sys.exit("metrics missing")
    for key in REQUIRED:
        value = metrics.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            sys.exit(f"metric {key} is {value!r}, expected a positive number")
    expected = params["changes_per_second"] * params["seconds"]
    if metrics.get("changes_programmed") != expected:
        sys.exit(f"changes_programmed is {metrics.get('changes_programmed')!r}, expected {expected}")
    print(lines[0])


if __name__ == "__main__":
    main()

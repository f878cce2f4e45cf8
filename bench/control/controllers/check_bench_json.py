#!/usr/bin/env python3
"""Runs `skiff bench controllers --quick --json` and checks its one JSON object: the suite, its
params, and every metric key the controllers issue names, each a positive number."""
import json
import subprocess
import sys

REQUIRED = ["seconds_to_available", "pods_created_per_second", "rolling_update_seconds"]


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
    if document.get("suite") != "controllers":
        sys.exit(f"suite is {document.get('suite')!r}, expected 'controllers'")
    params = document.get("params")
    if not isinstance(params, dict) or params.get("replicas") != 300 or params.get("nodes") != 30:
        sys.exit(f"params are not those of --quick (300 replicas on 30 nodes): {params!r}")
    metrics = document.get("metrics")
    if not isinstance(metrics, dict):
        sys.exit("metrics missing")
    for key in REQUIRED:
        value = metrics.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            sys.exit(f"metric {key} is {value!r}, expected a positive number")
    print(lines[0])
    print(result.stderr, file=sys.stderr)


if __name__ == "__main__":
    main()

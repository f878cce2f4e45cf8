#!/usr/bin/env python3
"""Runs `skiff bench xdp|socklb ... --json` and checks its one JSON object: the suite, its params,
and the metric keys issue LB-EBPF (part 7) names, each a positive number. Exits 77 (skipped) when
not root: the benchmarks load BPF programs."""
import json
import os
import subprocess
import sys

REQUIRED = {
    "xdp": ["established_ns", "new_flow_ns", "floor_ns", "established_to_floor_ratio",
            "program_all_ms", "program_one_change_ms", "tc_ns_per_packet"],
    "socklb": ["socklb_connect_us", "direct_connect_us"],
}


def main():
    suite = sys.argv[1]
    command = sys.argv[2:] + ["--json"]
    if os.geteuid() != 0:
        print("skipped: needs root (BPF, cgroups, network namespaces)")
        sys.exit(77)
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            timeout=110)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if len(lines) != 1:
        sys.exit(f"expected one JSON line on stdout, got {len(lines)}:\n{result.stdout}")
    document = json.loads(lines[0])
    if document.get("suite") != suite:
        sys.exit(f"suite is {document.get('suite')!r}, expected {suite!r}")
    if not isinstance(document.get("params"), dict):
        sys.exit("params missing")
    metrics = document.get("metrics")
    if not isinstance(metrics, dict):
        sys.exit("metrics missing")
    for key in REQUIRED[suite]:
        value = metrics.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            sys.exit(f"metric {key} is {value!r}, expected a positive number")
    if suite == "xdp":
        expected = metrics["established_ns"] / metrics["floor_ns"]
        if abs(metrics["established_to_floor_ratio"] - expected) > 0.01 * expected:
            sys.exit(f"established_to_floor_ratio {metrics['established_to_floor_ratio']} is not "
                     f"established_ns / floor_ns = {expected}")
    print(lines[0])


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Runs `skiff bench baselines --services N --json` small and checks its one JSON object: every
mode that ran (iptables-legacy, iptables-nft, nftables, ebpf; a mode whose tool is missing must say why it was skipped)
reports its sync times, its one-change samples and its requests/s and p99 to the first and the last
service, each a positive number, and none failed. Exits 77 (skipped) when not root."""
import json
import os
import subprocess
import sys

SERVICES = 50
CHANGES = 3


def main():
    skiff = sys.argv[1]
    if os.geteuid() != 0:
        print("skipped: skiff bench baselines needs root (network namespaces, iptables, BPF)")
        sys.exit(77)
    command = [skiff, "bench", "baselines", "--services", str(SERVICES), "--seconds", "0.3",
               "--changes", str(CHANGES), "--runs", "1", "--json"]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            timeout=100)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {result.returncode}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if len(lines) != 1:
        sys.exit(f"expected one JSON line on stdout, got {len(lines)}:\n{result.stdout}")
    doc = json.loads(lines[0])
    if doc.get("suite") != "baselines":
        sys.exit(f"suite is {doc.get('suite')!r}, expected 'baselines'")
    params, metrics, samples = doc.get("params"), doc.get("metrics"), doc.get("samples")
    if not all(isinstance(x, dict) for x in (params, metrics, samples)):
        sys.exit("params, metrics or samples missing")
    if params.get("services") != [SERVICES]:
        sys.exit(f"params.services is {params.get('services')!r}, expected [{SERVICES}]")
    if params.get("failed"):
        sys.exit(f"modes failed: {params['failed']!r}")
    modes, skipped = params.get("modes", []), params.get("skipped", {})
    for mode in ("iptables-legacy", "iptables-nft", "nftables", "ebpf"):
        if mode not in modes and not skipped.get(mode):
            sys.exit(f"mode {mode} neither ran nor says why it was skipped")
    if not {"iptables-legacy", "iptables-nft", "nftables"} & set(modes):
        sys.exit(f"no kube-proxy baseline ran: {skipped!r}")
    keys = []
    for name in modes:
        mode = name.replace("-", "_")
        keys += [f"{mode}_sync_ms_{SERVICES}", f"{mode}_change_ms_{SERVICES}",
                 f"{mode}_change_p99_ms_{SERVICES}"]
        for kind in ("short", "keepalive"):
            for which in ("first", "last"):
                keys += [f"{mode}_{kind}_rps_{which}", f"{mode}_{kind}_p50_ms_{which}",
                         f"{mode}_{kind}_p99_ms_{which}"]
        series = samples.get(f"{mode}_change_ms_{SERVICES}")
        if not isinstance(series, list) or len(series) != CHANGES or min(series) <= 0:
            sys.exit(f"samples.{mode}_change_ms_{SERVICES} is {series!r}: want {CHANGES} positive")
    if "ebpf" in modes:
        keys += [f"ebpf_to_{m.replace('-', '_')}_short_rps_last"
                 for m in ("iptables-legacy", "iptables-nft", "nftables") if m in modes]
    for key in keys:
        value = metrics.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            sys.exit(f"metric {key} is {value!r}, expected a positive number")
    print(f"{len(keys)} metrics of modes {modes} (skipped: {skipped})")


if __name__ == "__main__":
    main()

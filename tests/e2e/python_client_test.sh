#!/usr/bin/env bash
# Starts `skiff apiserver` and runs the official Python client against it (Debian's
# python3-kubernetes, for /usr/bin/python3).
set -euo pipefail
skiff=$1
script=$2
work=$(mktemp -d /tmp/skiff-e2e-python.XXXXXX)
"$skiff" apiserver --data-dir "$work/data" --secure-port 0 >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  grep -q "admin kubeconfig" "$work/server.log" && break
  sleep 0.1
done
/usr/bin/python3 "$script" "$work/data/admin.kubeconfig"

#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs Skiff's main job as far as
# it exists today: `skiff server` (the apiserver on the embedded store, HTTPS with a CA, serving
# certificate and admin token made on first start, plus the controller manager, scheduler and
# EndpointSlice controller), with the examples applied by `skiff apply`. Deployments become
# ReplicaSets and Pods; the Pods wait for a node, because the kubelet (`skiff agent`) and the
# load balancer's node side arrive with their issues (see README.md). Ctrl-C stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build_dir=${BUILD_DIR:-build}
BUILD_DIR=$build_dir scripts/build.sh

data_dir=${SKIFF_DATA_DIR:-/var/lib/skiff/run}
port=${SKIFF_PORT:-6443}
log=$(mktemp /tmp/skiff-server.XXXXXX.log)
echo
"$build_dir"/bin/skiff version --client
echo
echo "Starting skiff server (data in $data_dir, log in $log)"
"$build_dir"/bin/skiff server --data-dir "$data_dir" --secure-port "$port" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 100); do
  grep -q "control loops running" "$log" && break
  kill -0 "$server" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
url=$(grep -o 'https://[^ ]*' "$log")
export KUBECONFIG=$data_dir/admin.kubeconfig
echo "Serving $url; admin kubeconfig: $KUBECONFIG"
echo
echo "skiff apply -f examples/"
"$build_dir"/bin/skiff apply -f examples/
sleep 2
echo
"$build_dir"/bin/skiff get deployments,replicasets,pods,services,endpointslices -o wide
echo
echo "Try: KUBECONFIG=$KUBECONFIG kubectl get all -A    (Ctrl-C stops the server)"
wait "$server"

#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs Skiff's main job as far as
# it exists today: the apiserver on the embedded store (HTTPS, with a CA, serving certificate and
# admin token made on first start), with the examples applied by the real kubectl. Pods do not run yet: controllers, scheduler, kubelet and the load balancer's control side
# arrive with their issues (see README.md). Ctrl-C stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build_dir=${BUILD_DIR:-build}
BUILD_DIR=$build_dir scripts/build.sh

data_dir=${SKIFF_DATA_DIR:-/var/lib/skiff/run}
port=${SKIFF_PORT:-6443}
log=$(mktemp /tmp/skiff-apiserver.XXXXXX.log)
echo
"$build_dir"/bin/skiff version
echo
echo "Starting skiff apiserver (data in $data_dir, log in $log)"
"$build_dir"/bin/skiff apiserver --data-dir "$data_dir" --secure-port "$port" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 100); do
  grep -q "admin kubeconfig" "$log" && break
  kill -0 "$server" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
url=$(grep -o 'https://[^ ]*' "$log")
export KUBECONFIG=$data_dir/admin.kubeconfig
echo "Serving $url; admin kubeconfig: $KUBECONFIG"
echo
echo "kubectl apply -f examples/"
kubectl apply -f examples/
echo
kubectl get deployments,services -o wide
echo
echo "Try: KUBECONFIG=$KUBECONFIG kubectl get all -A    (Ctrl-C stops the server)"
wait "$server"

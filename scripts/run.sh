#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs Skiff's main job on this
# machine: `skiff up` (a single-node cluster on the embedded store: control plane, kubelet on runc,
# eBPF service load balancer), the examples applied with `skiff apply`, and requests answered
# through the load balancer, from a host process and from a pod, spread over the backends, with
# the load balancer's per-backend counters. Ctrl-C stops the cluster and removes what it made.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build_dir=${BUILD_DIR:-build}
BUILD_DIR=$build_dir scripts/build.sh
skiff=$build_dir/bin/skiff

data_dir=${SKIFF_DATA_DIR:-/var/lib/skiff}
port=${SKIFF_PORT:-6443}
log=$data_dir/up.log
mkdir -p "$data_dir"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

echo
"$skiff" version --client
echo
echo "== Building the example image (busybox httpd, from Debian's busybox-static)"
examples/images/make-httpd-image.sh "$skiff"

echo
echo "== skiff up --data-dir $data_dir   (log: $log)"
"$skiff" up --data-dir "$data_dir" --secure-port "$port" >"$log" 2>&1 &
up=$!
trap 'kill -INT $up 2>/dev/null || true; wait $up 2>/dev/null || true; tail -5 "$log"' EXIT
trap 'exit 130' INT TERM
shown=0
for _ in $(seq 600); do
  lines=$(grep -c '' "$log" || true)
  if ((lines > shown)); then sed -n "$((shown + 1)),${lines}p" "$log"; shown=$lines; fi
  grep -q "cluster up in" "$log" && break
  kill -0 "$up" 2>/dev/null || { echo "skiff up failed (see above)"; exit 1; }
  sleep 0.2
done
export KUBECONFIG=$data_dir/admin.kubeconfig

echo
echo "== skiff apply -f examples/"
"$skiff" apply -f examples/
"$skiff" rollout status deployment/web --timeout=120s
echo
"$skiff" get deployments,pods,services,endpointslices -o wide

cluster_ip=$("$skiff" get service web -o jsonpath='{.spec.clusterIP}')
node_ip=$("$skiff" get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')
# The proxier programs the new endpoints within milliseconds; allow for the first sync.
for _ in $(seq 50); do
  timeout 3 "$skiff" lb exec -- wget -qO- "http://$cluster_ip/" >/dev/null 2>&1 && break
  sleep 0.2
done

echo
echo "== From a host process: skiff lb exec runs it in Skiff's cgroup subtree, where the eBPF"
echo "   socket load balancer answers ClusterIPs (other host processes are left alone)"
for _ in $(seq 6); do
  printf '  skiff lb exec -- wget -qO- http://%s/  ->  ' "$cluster_ip"
  timeout 3 "$skiff" lb exec -- wget -qO- "http://$cluster_ip/"
done
printf '  NodePort: skiff lb exec -- wget -qO- http://%s:30080/  ->  ' "$node_ip"
timeout 3 "$skiff" lb exec -- wget -qO- "http://$node_ip:30080/"

echo
echo "== From a pod (skiff exec, or kubectl exec, into the first web pod)"
pod=$("$skiff" get pods -l app=web -o jsonpath='{.items[0].metadata.name}')
for _ in $(seq 6); do
  printf '  skiff exec %s -- wget -qO- http://%s/  ->  ' "$pod" "$cluster_ip"
  timeout 10 "$skiff" exec "$pod" -- wget -qO- "http://$cluster_ip/"
done

echo
echo "== Logs through the apiserver and the node's kubelet API (skiff logs, or kubectl logs)"
"$skiff" logs deploy/web --timestamps

echo
echo "== Per-backend counters of the load balancer (skiff lb backends)"
"$skiff" lb backends || true

echo
echo "The cluster keeps running: KUBECONFIG=$KUBECONFIG kubectl get all -A   (Ctrl-C stops it)"
wait "$up"

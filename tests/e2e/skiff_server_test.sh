#!/usr/bin/env bash
# `skiff server` runs the control plane as one process: a Deployment applied with `skiff apply`
# becomes a ReplicaSet and Pods (controller manager), the Pods are bound to a node (scheduler), and
# the Services get EndpointSlices (EndpointSlice controller). There is no kubelet here: the test
# registers a hollow Node itself, so Pods stay Pending on it and the slices have no ready endpoints.
# Usage: skiff_server_test.sh SKIFF_BINARY SOURCE_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/e2e.sh"
skiff=$1
source_dir=$2
e2e_workdir server
fail_log "server log" "$work/server.log"
# Polls (wait_eq) 10 s at most.
e2e_tries=100

start_server server "$work/data"
k() { kubectl "$@"; }

"$skiff" apply -f "$source_dir/examples/web.yaml" >"$work/apply.out" || fail "skiff apply"
# Deployment -> ReplicaSet -> 3 Pods, owned in a chain.
wait_eq "3" "pods created" bash -c "kubectl get pods -l app=web -o name | wc -l"
rs=$(k get rs -l app=web -o jsonpath='{.items[0].metadata.name}')
[[ $rs == web-* ]] || fail "replica set name '$rs'"
wait_eq "ReplicaSet/$rs ReplicaSet/$rs ReplicaSet/$rs" "pod owners" \
  bash -c "kubectl get pods -l app=web -o jsonpath='{range .items[*]}{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name} {end}' | sed 's/ \$//'"

# No node yet: the pods stay unscheduled, with Kubernetes' FailedScheduling message.
wait_eq "true" "FailedScheduling event" bash -c \
  "kubectl get events --field-selector reason=FailedScheduling -o jsonpath='{.items[*].message}' | grep -q '0/0 nodes are available' && echo true"

# A hollow node appears: the scheduler binds every pod to it.
k create -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Node
metadata:
  name: hollow-1
  labels: {kubernetes.io/hostname: hollow-1}
YAML
k patch node hollow-1 --subresource=status --type=merge -p \
  '{"status":{"capacity":{"cpu":"4","memory":"8Gi","pods":"110"},"allocatable":{"cpu":"4","memory":"8Gi","pods":"110"},"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"hollow"}]}}' >/dev/null
wait_eq "hollow-1 hollow-1 hollow-1" "pods bound" \
  bash -c "kubectl get pods -l app=web -o jsonpath='{range .items[*]}{.spec.nodeName} {end}' | sed 's/ \$//'"

# Each selector Service has its managed EndpointSlice (placeholder: no pod is ready).
wait_eq "endpointslice-controller.k8s.io" "web's slice" \
  kubectl get endpointslices -l kubernetes.io/service-name=web -o jsonpath='{.items[0].metadata.labels.endpointslice\.kubernetes\.io/managed-by}'

# Pods bound to a node are deleted gracefully: they stay, terminating, until their kubelet (here
# none) confirms. So count the pods that are not terminating.
live_pods() {
  kubectl get pods -l app=web -o json |
    python3 -c 'import json,sys; print(sum(1 for p in json.load(sys.stdin)["items"] if "deletionTimestamp" not in p["metadata"]))'
}
export -f live_pods

# Scaling goes through the same loops.
k scale deploy web --replicas=1 >/dev/null
wait_eq "1" "pods after scale" live_pods

# Deleting the Deployment removes its ReplicaSet and Pods (garbage collector, background).
k delete deploy web >/dev/null
wait_eq "" "replica sets after delete" kubectl get rs -o name
wait_eq "0" "pods after delete" live_pods

kill "$server_pid"
wait "$server_pid" || fail "skiff server did not exit cleanly on SIGTERM"
server_pid=
grep -q "SIGTERM, shutting down" "$work/server.log" || fail "no shutdown message"
echo "PASS"

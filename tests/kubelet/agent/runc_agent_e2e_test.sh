#!/usr/bin/env bash
# `skiff agent` with the runc pod syncer against `skiff server`, everything inside a network
# namespace of its own (the node bridge and veths never touch the host's): a pod runs from a local
# image and becomes Running and Ready; restarting the agent adopts it without restarting its
# container; a pod force-deleted while the agent is down is cleaned up when it comes back; a
# graceful delete stops the container and the agent confirms it; nothing is left (runc
# containers, network namespaces, pod cgroups).
# Usage: runc_agent_e2e_test.sh SKIFF_BINARY SOURCE_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib/e2e.sh"
skiff=$1
source_dir=$2
e2e_require_root "runc"
e2e_require_tools runc umoci
e2e_in_netns "$@"

e2e_workdir runc-agent
cgroup_parent=/skiff-e2e-agent-$$
agent_pid=
on_exit 'remove_cgroups "$cgroup_parent"'
fail_log "agent log" "$work/agent.log"
fail_log "server log (tail)" "$work/server.log" 20
containers() { runc --root "$work/run/runc" list -q 2>/dev/null | sort | tr '\n' ' ' | sed 's/ $//'; }
netns_count() { find "$work/run/netns" -mindepth 1 2>/dev/null | wc -l; }

e2e_busybox_image "$source_dir" "$work/images"

start_server server "$work/data"
on_exit 'stop_pids $agent_pid'

start_agent() {
  "$skiff" agent --kubeconfig "$KUBECONFIG" --node-name runc-1 --data-dir "$work/agent" \
    --run-dir "$work/run" --image-root "$work/images" --pod-log-dir "$work/logs" \
    --pod-cidr 10.250.0.0/24 --bridge skiffe2e0 --cgroup-parent "$cgroup_parent" \
    --proxy-mode none >>"$work/agent.log" 2>&1 &
  agent_pid=$!
}
stop_agent() {
  kill -TERM "$agent_pid"
  wait "$agent_pid" || fail "skiff agent did not exit cleanly on SIGTERM"
  agent_pid=
}
pod() {
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: "busybox:test", imagePullPolicy: Never, command: [sleep, "3600"]}
YAML
}
ready() { kubectl get pod "$1" -o jsonpath='{.status.phase}/{.status.conditions[?(@.type=="Ready")].status}'; }

start_agent
wait_eq "runc-1=True" "node Ready" \
  kubectl get node runc-1 -o jsonpath='{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}'
pod kept
pod orphan
wait_eq "Running/True" "kept Running and Ready" ready kept
wait_eq "Running/True" "orphan Running and Ready" ready orphan
ip=$(kubectl get pod kept -o jsonpath='{.status.podIP}')
[[ $ip == 10.250.0.* ]] || fail "pod IP '$ip' outside the podCIDR"
before=$(kubectl get pod kept -o jsonpath='{.status.containerStatuses[0].containerID} {.status.containerStatuses[0].state.running.startedAt}')
[[ $(containers | wc -w) == 2 ]] || fail "runc containers: '$(containers)'"

# The agent goes away; one pod is force-deleted meanwhile.
stop_agent
[[ $(containers | wc -w) == 2 ]] || fail "stopping the agent stopped containers: '$(containers)'"
kubectl delete pod orphan --grace-period=0 --force >/dev/null 2>&1
start_agent
# The kept pod is adopted: same container, same start, no restart; the orphan is cleaned up.
wait_eq "1" "containers after the restart" bash -c "runc --root '$work/run/runc' list -q | wc -l"
wait_eq "1" "netns after the restart" netns_count
sleep 1
after=$(kubectl get pod kept -o jsonpath='{.status.containerStatuses[0].containerID} {.status.containerStatuses[0].state.running.startedAt}')
[[ $after == "$before" ]] || fail "the container changed over the restart: '$before' -> '$after'"
[[ $(kubectl get pod kept -o jsonpath='{.status.containerStatuses[0].restartCount}') == 0 ]] ||
  fail "restartCount"
wait_eq "Running/True" "kept still Ready" ready kept
grep -q "cleaned up pod" "$work/agent.log" || fail "no orphan cleanup logged"

# Graceful delete: stopped, confirmed by the agent, nothing left.
kubectl delete pod kept --wait=false >/dev/null
wait_eq "0" "pods after delete" bash -c "kubectl get pods -o name | wc -l"
wait_eq "" "containers after delete" containers
wait_eq "0" "netns after delete" netns_count
leftover=$(find /sys/fs/cgroup -path "*$cgroup_parent/pod*" -maxdepth 4 -type d 2>/dev/null | head -3)
[[ -z $leftover ]] || fail "pod cgroups left: $leftover"
wait_eq "Started" "kubelet events" bash -c \
  "kubectl get events --field-selector reason=Started,involvedObject.name=kept -o jsonpath='{.items[0].reason}'"

stop_agent
echo "PASS"

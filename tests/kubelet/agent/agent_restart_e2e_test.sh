#!/usr/bin/env bash
# kill -9 of `skiff agent` and a restart with the same flags and state, everything in a network
# namespace of its own: the agent runs as in the multi-node e2e (runc pods, the eBPF socket load
# balancer with pinned maps, the kubelet API on 10250, the proxier's ports), a Deployment of 2
# behind a ClusterIP Service serves. Then:
# - kill -9: the pods keep running and the Service keeps answering (pinned maps and links); the
#   node goes Unknown after the grace period (4 s); a pod created meanwhile waits;
# - the containers' shims hold none of the dead agent's sockets (they were its children: a
#   leaked listening socket on 10250 made every restart fail with "Address already in use");
# - the restarted agent, same flags: the node is Ready again within 10 s, the running pods are
#   adopted (same container, same start, restartCount 0), the Service still answers, the kubelet
#   API (the port the old agent had) serves logs, the pod created meanwhile runs, a graceful delete is confirmed;
# - SIGTERM and `skiff cleanup` leave no container, pod namespace or pin.
# Prints the time from the restart to the node Ready.
# Usage: agent_restart_e2e_test.sh SKIFF_BINARY SOURCE_DIR   (root: runc, umoci, netns, BPF)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib/e2e.sh"
skiff=$1
source_dir=$2
e2e_require_root
e2e_require_tools runc umoci ip unshare python3
[[ -x /bin/busybox ]] || e2e_skip "busybox-static missing"
e2e_in_netns "$@"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
cgroup2=/sys/fs/cgroup
mountpoint -q /sys/fs/cgroup/unified && cgroup2=/sys/fs/cgroup/unified

e2e_workdir agent-restart
e2e_private_skiff
export KUBECACHEDIR=$work/kube-cache
cgroup_parent=/skiff-restart-$$
pins=/sys/fs/bpf/skiff-restart-$$
bridge=skrst$(($$ % 100000))
grace=4
agent_pid=
now_ms() { date +%s%3N; }
node_cleanup() {
  "$skiff" cleanup --data-dir "$work/server" --agent-data-dir "$work/agent" --bridge "$bridge" \
    --cgroup-parent "$cgroup_parent" --run-dir "$work/run" --bpf-pin-dir "$pins"
}
on_exit 'for _ in 1 2 3; do node_cleanup >"$work/trap-cleanup.log" 2>&1 && break; sleep 1; done'
kc() { "$skiff" "$@"; }
on_fail 'kc get nodes -o wide 2>/dev/null'
on_fail 'kc get pods -o wide 2>/dev/null'
fail_log "agent log" "$work/agent.log"
fail_log "server log (tail)" "$work/server.log" 20

"$source_dir"/examples/images/make-httpd-image.sh "$skiff" "$work/images" >/dev/null ||
  fail "building the httpd image"
e2e_server_tries=150
start_server server "$work/server" --node-monitor-grace-period "$grace"
on_exit 'stop_pids $agent_pid'

start_agent() {
  "$skiff" agent --kubeconfig "$KUBECONFIG" --node-name restart-1 --node-ip 127.0.0.1 \
    --pod-cidr 10.251.0.0/24 --bridge "$bridge" --run-dir "$work/run" --data-dir "$work/agent" \
    --cgroup-parent "$cgroup_parent" --bpf-pin-dir "$pins" --image-root "$work/images" \
    --pod-log-dir "$work/logs" --node-status-update-frequency 1 --node-lease-renew-interval 1 \
    >>"$work/agent.log" 2>&1 &
  agent_pid=$!
}
node_ready() { kc get node restart-1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'; }
# Pods of app=web as "NAME CONTAINER-ID STARTED-AT RESTARTS", sorted.
web_containers() {
  kc get pods -l app=web -o jsonpath='{range .items[*]}{.metadata.name} {.status.containerStatuses[0].containerID} {.status.containerStatuses[0].state.running.startedAt} {.status.containerStatuses[0].restartCount}{"\n"}{end}' | sort
}
ready_web() {
  kc get pods -l app=web -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status} {end}'
}
# One request to the web ClusterIP through the socket load balancer.
get_web() {
  timeout 3 "$skiff" lb exec --cgroup "$cgroup2$cgroup_parent" -- wget -q -T 2 -t 1 -O- "http://$cluster_ip/"
}
serves() {
  local n=$1 k body
  for k in $(seq "$n"); do
    body=$(get_web) || { echo "request $k failed"; return; }
    [[ $body == "hello from web-"* ]] || { echo "request $k: '$body'"; return; }
  done
  echo ok
}
pod_named() { kc get pods -o jsonpath='{.items[*].metadata.name}' | tr ' ' '\n' | grep -x "$1"; }
# Sockets held by the skiff-shims of this test's containers (each shim names its --root).
shim_sockets() {
  local pid n=0
  for pid in $(pgrep -f "skiff-shim .*$work/run/runc" || true); do
    n=$((n + $(find "/proc/$pid/fd" -lname 'socket:*' 2>/dev/null | wc -l)))
  done
  echo "$n"
}

start_agent
wait_eq_n 300 "True" "node Ready" node_ready
kc apply -f - >/dev/null <<'YAML' || fail "apply"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      # Not evicted while the agent is away: the restart must adopt these very pods.
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute}
      containers:
      - name: httpd
        image: skiff.local/busybox-httpd:1.35
        imagePullPolicy: Never
        command: ["/bin/sh", "-c"]
        args:
        - |
          mkdir -p /tmp/www
          echo "hello from $(hostname)" > /tmp/www/index.html
          echo "serving as $(hostname)"
          httpd -f -p 8080 -h /tmp/www & pid=$!
          trap 'kill $pid; exit 0' TERM
          wait $pid
        readinessProbe:
          httpGet: {path: /index.html, port: 8080}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {port: 80, targetPort: 8080}
YAML
wait_eq_n 300 "True True " "2 web pods Ready" ready_web
cluster_ip=$(kc get service web -o jsonpath='{.spec.clusterIP}')
wait_eq_n 100 "ok" "the web Service answers" serves 1
[[ $(serves 10) == ok ]] || fail "the web Service: $(serves 10)"
before=$(web_containers)
[[ $(wc -l <<<"$before") == 2 && $before != *" 1"* ]] || fail "web pods: $before"

# kill -9: the pods keep serving, the node goes Unknown; a pod created meanwhile waits.
kill -9 "$agent_pid"
wait "$agent_pid" 2>/dev/null || true  # (bash reports the job as Killed)
agent_pid=
[[ $(shim_sockets) == 0 ]] || fail "the shims hold $(shim_sockets) sockets of the dead agent: $(ss -ltnp | grep skiff-shim | head -3)"
[[ $(serves 5) == ok ]] || fail "the web Service while the agent is down: $(serves 5)"
wait_eq_n 200 "Unknown" "node Ready while its agent is down" node_ready
kc apply -f - >/dev/null <<'YAML' || fail "apply late"
apiVersion: v1
kind: Pod
metadata: {name: late}
spec:
  terminationGracePeriodSeconds: 1
  tolerations:
  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute}
  - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute}
  containers:
  - {name: main, image: "skiff.local/busybox-httpd:1.35", imagePullPolicy: Never, command: [sleep, "3600"]}
YAML

# The restart, same flags and state: Ready within 10 s, everything adopted.
echo "=== restart after kill -9" >>"$work/agent.log"
t0=$(now_ms)
start_agent
for _ in $(seq 100); do
  [[ $(node_ready 2>/dev/null) == True ]] && break
  kill -0 "$agent_pid" 2>/dev/null || fail "the restarted agent exited"
  sleep 0.1
done
[[ $(node_ready) == True ]] || fail "node not Ready 10 s after the agent restarted: $(node_ready)"
ready_ms=$(( $(now_ms) - t0 ))
kill -0 "$agent_pid" 2>/dev/null || fail "the restarted agent exited"
wait_eq_n 100 "True True " "web pods Ready after the restart" ready_web
[[ $(serves 10) == ok ]] || fail "the web Service after the restart: $(serves 10)"
wait_eq_n 200 "Running" "the pod created while the agent was down" \
  kc get pod late -o jsonpath='{.status.phase}'
after=$(web_containers)
[[ $after == "$before" ]] || fail "the web containers changed over the restart: '$before' -> '$after'"
first=$(head -1 <<<"$after" | cut -d' ' -f1)
# The kubelet API (plain HTTP on loopback here: the apiserver would speak TLS to it) answers.
token=$(sed -n 's/^ *token: *//p' "$KUBECONFIG" | head -1)
logs=$(python3 -c '
import sys, urllib.request
r = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
print(urllib.request.urlopen(r, timeout=3).read().decode())' \
  "http://127.0.0.1:10250/containerLogs/default/$first/httpd" "$token" 2>&1) ||
  fail "logs from the kubelet API after the restart: $logs"
[[ $logs == *"serving as $first"* ]] || fail "logs of $first: '$logs'"
grep -q "Address already in use" "$work/agent.log" && fail "a port of the old agent was still taken"
# Syncing resumed: a graceful delete is confirmed by the agent.
kc delete pod late --wait=false >/dev/null
wait_eq_n 100 "" "pod late after its delete" pod_named late
echo "node Ready $ready_ms ms after the agent restarted (2 pods adopted, no container restarted)"

kc delete deployment web >/dev/null
kc delete service web >/dev/null
wait_eq_n 200 "" "web pods after delete" kc get pods -l app=web -o name
kill -TERM "$agent_pid"
wait "$agent_pid" || fail "the agent did not exit cleanly on SIGTERM"
agent_pid=
node_cleanup >"$work/cleanup.log" 2>&1 || fail "skiff cleanup: $(cat "$work/cleanup.log")"
[[ -z $(runc --root "$work/run/runc" list -q 2>/dev/null) ]] || fail "containers left"
[[ -z $(ls -A "$work/run/netns" 2>/dev/null) ]] || fail "pod namespaces left"
[[ ! -e $pins ]] || fail "BPF pins left in $pins"
echo "PASS"

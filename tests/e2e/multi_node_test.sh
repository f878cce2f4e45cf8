#!/usr/bin/env bash
# Three real nodes end to end. `skiff server` runs in a "fabric" network namespace holding a bridge
# with 10.90.0.1/24; three node namespaces hang off that bridge by veth pairs (node i: 10.90.0.1i,
# pod CIDR 10.91.i.0/24, routes to the other nodes' pod CIDRs via their node addresses), each with
# a `skiff agent` on runc and the eBPF socket load balancer. Nothing of the host's own interfaces or
# routes is touched; everything made goes in the EXIT trap.
#
# On that one cluster the same scenario runs once per driver: `skiff` (the CLI), then the real
# `kubectl` (KUBECONFIG=<server data dir>/admin.kubeconfig):
# - apply a Deployment of 6 busybox httpd replicas behind a ClusterIP and a NodePort Service; they
#   spread over the three nodes (get pods -o wide); from each node the ClusterIP reaches all six
#   pods (so pods on the other nodes: cross-node pod routing) and the node's NodePort answers;
# - scale to 3 and back to 6, and a rolling update (rollout restart, rollout status), each under a
#   bounded request loop from every node: zero failed requests;
# - a StatefulSet of 3 starts in order (a watch shows web-N Running and Ready before web-N+1 is
#   created), a Job of completions 3 / parallelism 2 completes (wait --for=condition=complete,
#   never more than 2 pods at once), a DaemonSet puts one pod on every Ready node;
# - node loss: node3's agent is killed (kill -9) and its link cut while node1 and node2 send
#   requests. After the grace period (--node-monitor-grace-period 10) node3 is NotReady, its pods
#   are marked not ready (the Service stops sending to them: traffic recovers) and, after the
#   Deployment's 2 s tolerationSeconds for node.kubernetes.io/unreachable, evicted and recreated
#   on node1/node2;
# - node return: the link comes back and node3's agent starts again with the same flags and state
#   (the killed one's containers still run under their shims); node3 is Ready again, the evicted
#   pods' deletion is confirmed, a DaemonSet puts a pod back on node3 and it serves a Service from
#   node1 and node2, and node3's load balancer answers the web ClusterIP again;
# - delete everything (delete -f) before the next driver, which finds all three nodes Ready.
# Printed for the closing note: time from node loss to traffic recovered, time from the agent's
# restart to its node Ready, failed requests during the rolling update, StatefulSet ordering, Job
# completion time, RSS of the server and each agent.
# Usage: multi_node_test.sh SKIFF_BINARY SOURCE_DIR [skiff|kubectl|both]   (root: runc, netns, BPF)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/e2e.sh"
skiff=$1
source_dir=$2
mode=${3:-both}
case $mode in
  skiff) drivers=(skiff) ;;
  kubectl) drivers=(kubectl) ;;
  both) drivers=(skiff kubectl) ;;
  *) echo "multi_node_test.sh: unknown driver '$mode' (skiff, kubectl or both)" >&2; exit 2 ;;
esac
e2e_require_root
e2e_require_tools runc umoci ip nsenter python3
if [[ " ${drivers[*]} " == *" kubectl "* ]]; then e2e_require_tools kubectl; fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
cgroup2=/sys/fs/cgroup
mountpoint -q /sys/fs/cgroup/unified && cgroup2=/sys/fs/cgroup/unified

e2e_workdir mn
# Private copies: a rebuild of the build tree while this runs must not swap the binaries under
# the agents or the cleanup.
e2e_private_skiff
# kubectl's discovery cache of its own: another run's server at the same address is not this one.
export KUBECACHEDIR=$work/kube-cache
tag=$$
fabric=skmn$tag-fab
port=6443
grace=10      # --node-monitor-grace-period, seconds
toleration=2  # the Deployment's tolerationSeconds for unreachable / not-ready
nodes=(1 2 3)
server_pid=
declare -A agent_pid=()
netns() { echo "skmn$tag-n$1"; }
cgroup() { echo "/skiff-mn-$tag-$1"; }
pins() { echo "/sys/fs/bpf/skiff-mn-$tag-$1"; }
# nsenter, not `ip netns exec`: that one remounts /sys, hiding /sys/fs/cgroup and /sys/fs/bpf.
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }
in_fabric() { in_ns "$fabric" "$@"; }
sk() { in_fabric "$skiff" "$@"; }
now_ms() { date +%s%3N; }

node_cleanup() {
  in_ns "$(netns "$1")" "$skiff" cleanup --data-dir "$work/node$1" --agent-data-dir "$work/node$1/agent" \
    --bridge "skmn$1" --cgroup-parent "$(cgroup "$1")" --run-dir "$work/node$1/run" --bpf-pin-dir "$(pins "$1")"
}
bg_pids=()
cleanup() {
  local i
  for i in "${bg_pids[@]}"; do kill "$i" 2>/dev/null || true; done
  for i in "${!agent_pid[@]}"; do kill -TERM "${agent_pid[$i]}" 2>/dev/null || true; done
  for i in "${!agent_pid[@]}"; do wait "${agent_pid[$i]}" 2>/dev/null || true; done
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  for i in "${nodes[@]}"; do
    if [[ -e /run/netns/$(netns "$i") ]]; then
      # A pod's cgroup can stay busy a moment after its processes were killed: try again.
      local tries=3
      until node_cleanup "$i" >"$work/trap-cleanup$i.log" 2>&1; do
        tries=$((tries - 1))
        if ((tries == 0)); then
          echo "skiff cleanup on node$i failed (state kept in $work):" >&2
          cut -c1-300 "$work/trap-cleanup$i.log" >&2
          e2e_keep_work=1
          break
        fi
        sleep 1
      done
      ip netns del "$(netns "$i")" 2>/dev/null || true
    fi
  done
  ip netns del "$fabric" 2>/dev/null || true
}
on_exit cleanup
on_fail 'echo "driver: ${driver:-setup}"'
on_fail 'sk get nodes -o wide 2>/dev/null'
on_fail 'sk get pods -o wide 2>/dev/null'
fail_log "server log (tail)" "$work/server.log" 30
for i in "${nodes[@]}"; do fail_log "node$i agent log (tail)" "$work/agent$i.log" 30; done
# One HTTP GET from node $1's namespace, in that node's load-balanced cgroup: one try, 2 s at most.
get_from() {
  local i=$1 url=$2
  timeout 3 nsenter --net="/run/netns/$(netns "$i")" "$skiff" lb exec --cgroup "$cgroup2$(cgroup "$i")" \
    -- wget -q -T 2 -t 1 -O- "$url"
}

# The fabric: a bridge with the server's address, one veth into each node namespace.
ip netns add "$fabric"
in_fabric ip link set lo up
in_fabric ip link add skmn-br type bridge
in_fabric ip addr add 10.90.0.1/24 dev skmn-br
in_fabric ip link set skmn-br up
for i in "${nodes[@]}"; do
  ns=$(netns "$i")
  ip netns add "$ns"
  in_fabric ip link add "fab-n$i" type veth peer name eth0 netns "$ns"
  in_fabric ip link set "fab-n$i" master skmn-br up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "10.90.0.1$i/24" dev eth0
  ip -n "$ns" link set eth0 up
  in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1
  for j in "${nodes[@]}"; do
    [[ $j == "$i" ]] || ip -n "$ns" route add "10.91.$j.0/24" via "10.90.0.1$j"
  done
done

"$source_dir"/examples/images/make-httpd-image.sh "$skiff" "$work/images" >/dev/null

start=$(now_ms)
# Started by nsenter itself (it execs skiff), so $! is the skiff process the trap stops.
nsenter --net="/run/netns/$fabric" "$skiff" server --data-dir "$work/server" --bind-address 10.90.0.1 --secure-port "$port" \
  --tls-san 10.90.0.1 --service-cluster-ip-range 10.98.0.0/16 --node-monitor-grace-period "$grace" \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 150); do
  grep -q "control loops running" "$work/server.log" && break
  kill -0 "$server_pid" 2>/dev/null || fail "skiff server exited"
  sleep 0.1
done
grep -q "control loops running" "$work/server.log" || fail "the server did not start"
export KUBECONFIG=$work/server/admin.kubeconfig
server_url=$(sed -n 's/^ *server: *//p' "$KUBECONFIG" | head -1)
[[ $server_url == "https://10.90.0.1:$port" ]] || fail "admin kubeconfig server '$server_url'"

# Each agent joins as a kubelet with its own identity (system:node:node$i, group system:nodes),
# from the node kubeconfig `skiff node-kubeconfig` issues on the server's machine: everything the
# agents do below, through node loss and return, passes the Node authorizer and NodeRestriction.
for i in "${nodes[@]}"; do
  "$skiff" node-kubeconfig "node$i" --data-dir "$work/server" >/dev/null || fail "skiff node-kubeconfig node$i"
done
start_agent() {
  local i=$1
  mkdir -p "$work/node$i"
  nsenter --net="/run/netns/$(netns "$i")" "$skiff" agent --kubeconfig "$work/server/pki/nodes/node$i.kubeconfig" \
    --node-ip "10.90.0.1$i" --pod-cidr "10.91.$i.0/24" --bridge "skmn$i" \
    --run-dir "$work/node$i/run" --data-dir "$work/node$i/agent" --cgroup-parent "$(cgroup "$i")" \
    --bpf-pin-dir "$(pins "$i")" --image-root "$work/images" --pod-log-dir "$work/node$i/logs" \
    --node-status-update-frequency 2 --node-lease-renew-interval 2 >>"$work/agent$i.log" 2>&1 &
  agent_pid[$i]=$!
}
for i in "${nodes[@]}"; do start_agent "$i"; done
ready_nodes() {
  sk get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}'
}
wait_eq_n 300 "node1=True node2=True node3=True " "nodes Ready" ready_nodes
echo "3 nodes Ready after $(( $(now_ms) - start )) ms"
addresses=$(sk get nodes -o jsonpath='{range .items[*]}{.status.addresses[?(@.type=="InternalIP")].address} {end}')
[[ $addresses == "10.90.0.11 10.90.0.12 10.90.0.13 " ]] || fail "node addresses '$addresses'"

# --- Manifests -----------------------------------------------------------------------------------
# The example Deployment with 6 replicas, tolerating an unreachable or not-ready node for 2 s only
# (the default is 300 s), so that a lost node's pods are evicted and recreated within seconds.
python3 - "$source_dir/examples/web.yaml" "$work/web.yaml" "$toleration" <<'PY' ||
import sys
src, dst, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(src).read()
assert text.count("\n  replicas: 3\n") == 1 and text.count("\n      containers:\n") == 1, "shape"
tolerations = "".join(
    f"      - key: node.kubernetes.io/{key}\n        operator: Exists\n"
    f"        effect: NoExecute\n        tolerationSeconds: {seconds}\n"
    for key in ("unreachable", "not-ready"))
text = text.replace("\n  replicas: 3\n", "\n  replicas: 6\n")
text = text.replace("\n      containers:\n", "\n      tolerations:\n" + tolerations + "      containers:\n")
open(dst, "w").write(text)
PY
  fail "examples/web.yaml changed shape: no single 'replicas: 3' / 'containers:' to edit"
# The server script of examples/web.yaml, for the other workloads' pods.
httpd_args='        command: ["/bin/sh", "-c"]
        args:
        - |
          mkdir -p /tmp/www
          echo "hello from $(hostname)" > /tmp/www/index.html
          httpd -f -p 8080 -h /tmp/www & pid=$!
          trap '"'"'kill $pid; exit 0'"'"' TERM
          wait $pid'
cat >"$work/workloads.yaml" <<EOF
# A StatefulSet of 3 (OrderedReady: web-N+1 only once web-N is Running and Ready) with its
# headless Service, a Job of 3 completions 2 at a time, and a DaemonSet.
apiVersion: v1
kind: Service
metadata:
  name: web-sts
spec:
  clusterIP: None
  selector:
    app: web-sts
  ports:
  - name: http
    port: 80
    targetPort: 8080
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web-sts
  replicas: 3
  selector:
    matchLabels:
      app: web-sts
  template:
    metadata:
      labels:
        app: web-sts
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: httpd
        image: skiff.local/busybox-httpd:1.35
        imagePullPolicy: IfNotPresent
$httpd_args
        readinessProbe:
          httpGet:
            path: /index.html
            port: 8080
          periodSeconds: 1
---
apiVersion: batch/v1
kind: Job
metadata:
  name: count
spec:
  completions: 3
  parallelism: 2
  backoffLimit: 2
  template:
    metadata:
      labels:
        app: count
    spec:
      restartPolicy: Never
      containers:
      - name: count
        image: skiff.local/busybox-httpd:1.35
        imagePullPolicy: IfNotPresent
        command: ["/bin/sh", "-c", "echo counting on \$(hostname); sleep 2"]
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-httpd
spec:
  selector:
    matchLabels:
      app: node-httpd
  template:
    metadata:
      labels:
        app: node-httpd
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: httpd
        image: skiff.local/busybox-httpd:1.35
        imagePullPolicy: IfNotPresent
$httpd_args
        readinessProbe:
          httpGet:
            path: /index.html
            port: 8080
          periodSeconds: 1
EOF
# For a node's return: the DaemonSet again, and a Service on its pods.
python3 - "$work/workloads.yaml" "$work/node-return.yaml" <<'PY' || fail "workloads.yaml has no DaemonSet"
import sys
docs = open(sys.argv[1]).read().split("\n---\n")
daemonset = [d for d in docs if "\nkind: DaemonSet\n" in d]
assert len(daemonset) == 1
service = """apiVersion: v1
kind: Service
metadata:
  name: node-httpd
spec:
  selector:
    app: node-httpd
  ports:
  - name: http
    port: 80
    targetPort: 8080
"""
open(sys.argv[2], "w").write("# The DaemonSet of workloads.yaml and a ClusterIP Service on its pods.\n"
                             + daemonset[0].strip() + "\n---\n" + service)
PY

# --- Helpers the scenario uses; `kc` is the driver under test ------------------------------------
kc() { in_fabric "${driver_cmd[@]}" "$@"; }
# Pods of a label selector as "live ready" counts (terminating ones are not live).
live_ready() {
  kc get pods -l "$1" -o json | python3 -c '
import json, sys
pods = [p for p in json.load(sys.stdin)["items"] if "deletionTimestamp" not in p["metadata"]]
ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                for c in p.get("status", {}).get("conditions", []))]
print(len(pods), len(ready))'
}
# The web pods (terminating ones included) whose names are among $1, space-separated.
pods_among() {
  local name names out=
  names=$(kc get pods -l app=web -o jsonpath='{.items[*].metadata.name}') || { echo "(get pods failed)"; return; }
  for name in $names; do
    [[ " $1 " == *" $name "* ]] && out+="$name "
  done
  echo "$out"
}
# Ready endpoints of the web Service (or of Service $2), and how many of them are on node $1
# (optional; "": all).
endpoints() {
  kc get endpointslices -l kubernetes.io/service-name="${2:-web}" -o json | python3 -c '
import json, sys
node = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None
print(sum(1 for s in json.load(sys.stdin)["items"] for e in s.get("endpoints") or []
          if (e.get("conditions") or {}).get("ready", True) and (node is None or e.get("nodeName") == node)))' "${1:-}"
}
# Waits until node $1's load balancer answers the ClusterIP (the slice and the proxier follow the
# pods' readiness a moment later).
wait_answer() {
  for _ in $(seq 100); do
    get_from "$1" "http://$cluster_ip/" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "node$1: no answer from $cluster_ip"
}
# From node $1, $2 requests to the ClusterIP: all answered; prints how many pods answered.
spread_from() {
  local i=$1 n=$2 body k
  declare -A seen=()
  for k in $(seq "$n"); do
    body=$(get_from "$i" "http://$cluster_ip/") || fail "node$i: request $k to $cluster_ip failed"
    [[ $body == "hello from web-"* ]] || fail "node$i: request $k: unexpected answer '$body'"
    seen[$body]=1
  done
  echo "${#seen[@]}"
}
# Requests from node $1 in a loop until $work/stop exists (bounded: 3000 requests, 240 s): one line
# per request, "START_MS END_MS ok|failed ANSWER".
traffic() {
  local body s n=0 deadline=$(( $(now_ms) + 240000 ))
  while [[ ! -e $work/stop ]] && ((n < 3000 && $(now_ms) < deadline)); do
    n=$((n + 1))
    s=$(now_ms)
    if body=$(get_from "$1" "http://$cluster_ip/" 2>/dev/null) && [[ $body == "hello from web-"* ]]; then
      echo "$s $(now_ms) ok ${body#hello from }"
    else
      echo "$s $(now_ms) failed '$body'"
    fi
  done
}
senders=()
start_traffic() {
  local i
  rm -f "$work/stop" "$work"/traffic?
  senders=()
  for i in "$@"; do
    traffic "$i" >"$work/traffic$i" &
    senders+=($!)
  done
  bg_pids+=("${senders[@]}")
}
stop_traffic() {
  touch "$work/stop"
  wait "${senders[@]}"
  bg_pids=()
}
# Fails unless the loops sent at least $2 requests, all answered; $1 says during what.
check_traffic() {
  local sent failed
  sent=$(cat "$work"/traffic? | wc -l)
  failed=$(cat "$work"/traffic? | grep -c -v ' ok ' || true)
  ((sent >= $2)) || fail "$1: only $sent requests sent"
  ((failed == 0)) || fail "$1: $failed of $sent requests failed: $(grep -h -v ' ok ' "$work"/traffic? | head -3)"
  echo "$sent"
}
scale_under_traffic() {
  local replicas=$1 sent
  start_traffic "${nodes[@]}"
  sleep 0.5
  kc scale deployment web --replicas="$replicas" >/dev/null
  for _ in $(seq 300); do
    [[ $(live_ready app=web) == "$replicas $replicas" && $(endpoints) == "$replicas" ]] && break
    sleep 0.1
  done
  sleep 0.5
  stop_traffic
  [[ $(live_ready app=web) == "$replicas $replicas" ]] || fail "scale to $replicas: pods (live, ready) $(live_ready app=web)"
  [[ $(endpoints) == "$replicas" ]] || fail "scale to $replicas: $(endpoints) ready endpoints"
  sent=$(check_traffic "scale to $replicas" 30)
  echo "[$driver] scaled to $replicas: $sent requests from the 3 nodes during it, all answered"
}
rss_mb() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
# A watch of pods with label $1 into file $2, one line per event: NAME PHASE READY DELETING; its
# pid in watch_pid.
watch_pods() {
  nsenter --net="/run/netns/$fabric" "${driver_cmd[@]}" get pods -l "$1" -w -o \
    jsonpath='{.metadata.name} {.status.phase} {.status.conditions[?(@.type=="Ready")].status} {.metadata.deletionTimestamp}{"\n"}' \
    >"$2" 2>"$2.err" &
  watch_pid=$!
  bg_pids+=("$watch_pid")
}
pods_gone() {
  [[ -z $(kc get pods -l "$1" -o jsonpath='{.items[*].metadata.name}' 2>/dev/null) ]]
}
wait_gone() {
  for _ in $(seq 600); do pods_gone "$1" && return 0; sleep 0.1; done
  fail "pods $1 still there: $(kc get pods -l "$1" -o wide 2>&1 | tr '\n' ';')"
}

# --- The scenario, for one driver ----------------------------------------------------------------
scenario() {
  local t0 i got body k sent

  # 1. The Deployment and its Services: 6 pods over 3 nodes.
  t0=$(now_ms)
  kc apply -f "$work/web.yaml" >"$work/apply.out" || fail "apply -f web.yaml: $(cat "$work/apply.out")"
  kc rollout status deployment/web --timeout=120s >/dev/null || fail "rollout status deployment/web"
  wait_eq_n 600 "6 6" "6 pods Ready" live_ready app=web
  echo "[$driver] Deployment of 6 Ready $(( $(now_ms) - t0 )) ms after apply"
  # Spread: every node runs some of the six, and each pod's IP is from its node's pod CIDR; the
  # wide table names the same nodes and IPs.
  kc get pods -l app=web -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP}{"\n"}{end}' >"$work/placement"
  kc get pods -l app=web -o wide >"$work/wide"
  declare -A per_node=()
  local name node ip
  while read -r name node ip; do
    [[ $ip == "10.91.${node#node}."* ]] || fail "pod IP $ip not from $node's pod CIDR"
    per_node[$node]=$(( ${per_node[$node]:-0} + 1 ))
    grep -qE "^$name +1/1 +Running .* $ip +$node( |$)" "$work/wide" ||
      fail "get pods -o wide has no row '$name 1/1 Running ... $ip $node': $(cat "$work/wide")"
  done <"$work/placement"
  [[ ${#per_node[@]} == 3 ]] || fail "6 pods on ${#per_node[@]} nodes: $(tr '\n' ';' <"$work/placement")"
  echo "[$driver] placement: $(for n in node1 node2 node3; do printf '%s=%s ' "$n" "${per_node[$n]}"; done)"
  cluster_ip=$(kc get service web -o jsonpath='{.spec.clusterIP}')
  [[ $cluster_ip == 10.98.* ]] || fail "ClusterIP '$cluster_ip' not from the service range"

  # 2. From each node: 40 requests reach all six pods, four of which run on other nodes.
  for i in "${nodes[@]}"; do
    wait_answer "$i"
    got=$(spread_from "$i" 40)
    [[ $got == 6 ]] || fail "node$i: 40 requests reached $got of 6 pods"
    body=$(get_from "$i" "http://10.90.0.1$i:30080/") || fail "node$i: NodePort 10.90.0.1$i:30080 failed"
    [[ $body == "hello from web-"* ]] || fail "node$i: NodePort answer '$body'"
  done
  echo "[$driver] ClusterIP from each node reached all 6 pods; NodePort answered on each node"

  # 3. Scale to 3 and back to 6 under traffic from the 3 nodes: every request is answered.
  scale_under_traffic 3
  scale_under_traffic 6

  # 4. A rolling update (25% surge, 25% unavailable: new pods come and old ones go on every node)
  # under traffic from the 3 nodes: zero failed requests.
  local before
  before=$(kc get pods -l app=web -o jsonpath='{.items[*].metadata.name}')
  start_traffic "${nodes[@]}"
  sleep 0.5
  t0=$(now_ms)
  kc rollout restart deployment/web >/dev/null || fail "rollout restart deployment/web"
  kc rollout status deployment/web --timeout=120s >/dev/null || fail "rollout status after the restart"
  wait_eq_n 300 "6 6" "6 pods Ready after the rolling update" live_ready app=web
  wait_eq_n 100 "6" "6 ready endpoints after the rolling update" endpoints
  local rollout_ms=$(( $(now_ms) - t0 ))
  sleep 1
  stop_traffic
  # The rollout is complete once the new pods are available; the old ones may still be in their
  # graceful termination (preStop, SIGTERM) for a moment, and must then be gone.
  wait_eq_n 300 "" "pods from before the rolling update still there" pods_among "$before"
  sent=$(check_traffic "rolling update" 30)
  local answered_by
  answered_by=$(awk '$3 == "ok" {print $4}' "$work"/traffic? | sort -u | wc -l)
  echo "[$driver] rolling update of 6 pods in $rollout_ms ms: $sent requests from 3 nodes, 0 failed (answered by $answered_by pods, old and new)"

  # 5. StatefulSet, Job and DaemonSet at once, each watched.
  local sts_watch job_watch
  watch_pods app=web-sts "$work/sts.events"
  sts_watch=$watch_pid
  watch_pods app=count "$work/job.events"
  job_watch=$watch_pid
  sleep 0.5
  t0=$(now_ms)
  kc apply -f "$work/workloads.yaml" >"$work/apply.out" || fail "apply -f workloads.yaml: $(cat "$work/apply.out")"
  kc wait --for=condition=complete job/count --timeout=90s >/dev/null || fail "job/count did not complete"
  local job_ms=$(( $(now_ms) - t0 ))
  # (skiff rollout knows Deployments only: the sets are waited for by their status fields.)
  kc wait --for=jsonpath='{.status.readyReplicas}'=3 statefulset/web --timeout=90s >/dev/null ||
    fail "statefulset/web: readyReplicas $(kc get statefulset web -o jsonpath='{.status.readyReplicas}')"
  [[ $driver != kubectl ]] || kc rollout status statefulset/web --timeout=30s >/dev/null ||
    fail "kubectl rollout status statefulset/web"
  wait_eq_n 300 "3 3" "3 StatefulSet pods Ready" live_ready app=web-sts
  local sts_ms=$(( $(now_ms) - t0 ))
  kc wait --for=jsonpath='{.status.numberReady}'=3 daemonset/node-httpd --timeout=90s >/dev/null ||
    fail "daemonset/node-httpd: numberReady $(kc get daemonset node-httpd -o jsonpath='{.status.numberReady}')"
  [[ $driver != kubectl ]] || kc rollout status daemonset/node-httpd --timeout=30s >/dev/null ||
    fail "kubectl rollout status daemonset/node-httpd"
  wait_eq_n 300 "3 3" "3 DaemonSet pods Ready" live_ready app=node-httpd
  sleep 0.5
  kill "$sts_watch" "$job_watch" 2>/dev/null || true
  wait "$sts_watch" "$job_watch" 2>/dev/null || true
  bg_pids=()
  # Ordered start: in the watch, web-N first appears after an event with web-(N-1) Running, Ready.
  python3 - "$work/sts.events" <<'PY' >"$work/sts.order" || fail "StatefulSet order: $(cat "$work/sts.order"); events: $(tr '\n' ';' <"$work/sts.events")"
import sys
events = [l.split() for l in open(sys.argv[1]) if l.strip()]
first, ready = {}, {}
for n, e in enumerate(events):
    first.setdefault(e[0], n)
    if len(e) >= 3 and e[1] == "Running" and e[2] == "True":
        ready.setdefault(e[0], n)
assert sorted(first) == ["web-0", "web-1", "web-2"], f"pods seen: {sorted(first)}"
for k in (1, 2):
    prev, cur = f"web-{k-1}", f"web-{k}"
    assert prev in ready and ready[prev] < first[cur], f"{cur} created (event {first[cur]}) before {prev} was Running and Ready (event {ready.get(prev)})"
print(f"web-0 Ready at event {ready['web-0']}, web-1 created at {first['web-1']}, Ready at {ready['web-1']}, "
      f"web-2 created at {first['web-2']} (of {len(events)} events)")
PY
  echo "[$driver] StatefulSet started in order in $sts_ms ms: $(cat "$work/sts.order")"
  # The Job: 3 pods Succeeded, never more than 2 running at once.
  python3 - "$work/job.events" <<'PY' >"$work/job.check" || fail "Job: $(cat "$work/job.check"); events: $(tr '\n' ';' <"$work/job.events")"
import sys
phase, most = {}, 0
for line in open(sys.argv[1]):
    e = line.split()
    if not e:
        continue
    phase[e[0]] = e[1] if len(e) > 1 else ""
    most = max(most, sum(1 for p in phase.values() if p not in ("Succeeded", "Failed")))
done = sorted(n for n, p in phase.items() if p == "Succeeded")
assert len(done) == 3 and len(phase) == 3, f"pods: {phase}"
assert most <= 2, f"{most} pods at once"
print(f"3 pods Succeeded, at most {most} at once")
PY
  [[ $(kc get job count -o jsonpath='{.status.succeeded}') == 3 ]] || fail "job/count: status.succeeded $(kc get job count -o jsonpath='{.status.succeeded}')"
  echo "[$driver] Job (completions 3, parallelism 2) complete $job_ms ms after apply: $(cat "$work/job.check")"
  # The DaemonSet: one pod on each Ready node.
  local ds_nodes ready_list
  ds_nodes=$(kc get pods -l app=node-httpd -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort | tr '\n' ' ')
  ready_list=$(ready_nodes | tr ' ' '\n' | sed -n 's/=True$//p' | sort | tr '\n' ' ')
  [[ $ready_list == "node1 node2 node3 " ]] || fail "Ready nodes: '$ready_list'"
  [[ $ds_nodes == "$ready_list" ]] || fail "DaemonSet pods on '$ds_nodes', want one on each Ready node: $ready_list"
  [[ $(kc get daemonset node-httpd -o jsonpath='{.status.desiredNumberScheduled} {.status.numberReady}') == "3 3" ]] ||
    fail "daemonset status: $(kc get daemonset node-httpd -o jsonpath='{.status}')"
  echo "[$driver] DaemonSet: one Ready pod on each Ready node ($ds_nodes)"
  echo "[$driver] memory RSS with this cluster (6 web + 3 StatefulSet + 3 DaemonSet pods, a finished Job): server $(rss_mb "$server_pid") MB, agents node1 $(rss_mb "${agent_pid[1]}") MB, node2 $(rss_mb "${agent_pid[2]}") MB, node3 $(rss_mb "${agent_pid[3]}") MB"
  # Issue #12's targets for this cluster: server <= 150 MB, each agent <= 50 MB.
  awk -v rss="$(rss_mb "$server_pid")" 'BEGIN { exit !(rss <= 150) }' ||
    fail "server RSS $(rss_mb "$server_pid") MB is over 150 MB"
  for i in "${nodes[@]}"; do
    awk -v rss="$(rss_mb "${agent_pid[$i]}")" 'BEGIN { exit !(rss <= 50) }' ||
      fail "node$i agent RSS $(rss_mb "${agent_pid[$i]}") MB is over 50 MB"
  done
  kc delete -f "$work/workloads.yaml" >"$work/delete.out" || fail "delete -f workloads.yaml: $(cat "$work/delete.out")"
  for label in app=web-sts app=count app=node-httpd; do wait_gone "$label"; done

  # 6. Node loss: node3's agent dies and its link goes down while node1 and node2 send requests.
  wait_eq_n 100 "6" "6 ready endpoints" endpoints
  local node3_pods attempt
  # The loss must take web pods with it. Where a rolling update puts its pods is the scheduler's
  # choice (old pods still Terminating on node3 count against it while it spreads), so when none
  # landed there, a pod from the fullest node is deleted: its replacement spreads onto node3.
  for attempt in 1 2 3 4; do
    node3_pods=$(kc get pods -l app=web --field-selector spec.nodeName=node3 -o jsonpath='{.items[*].metadata.name}')
    [[ -n $node3_pods || $attempt == 4 ]] && break
    local fullest
    fullest=$(kc get pods -l app=web -o jsonpath='{range .items[*]}{.spec.nodeName} {.metadata.name}{"\n"}{end}' |
      sort | awk '{n[$1]++; p[$1]=$2} END {for (k in n) print n[k], p[k]}' | sort -rn | head -1 | cut -d' ' -f2)
    echo "[$driver] no web pod on node3 after the update; deleting $fullest (attempt $attempt)"
    kc delete pod "$fullest" --wait=false >/dev/null || fail "delete pod $fullest"
    wait_eq_n 400 "6 6" "6 live Ready web pods after deleting $fullest" live_ready app=web
    wait_eq_n 100 "6" "6 ready endpoints after deleting $fullest" endpoints
  done
  [[ -n $node3_pods ]] || fail "no web pod on node3 before the node loss"
  start_traffic 1 2
  sleep 1
  kill -9 "${agent_pid[3]}"
  in_fabric ip link set fab-n3 down
  local lost
  lost=$(now_ms)
  wait "${agent_pid[3]}" 2>/dev/null || true
  unset "agent_pid[3]"
  node3_ready() { kc get node node3 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'; }
  wait_eq_n 400 "Unknown" "node3's Ready after its loss" node3_ready
  local notready_ms=$(( $(now_ms) - lost ))
  wait_eq_n 100 "0" "ready endpoints on node3" endpoints node3
  # Eviction after tolerationSeconds; the ReplicaSet puts 6 live pods on node1 and node2.
  wait_eq_n 400 "6 6" "6 live Ready web pods after node3's loss" live_ready app=web
  local evicted_ms=$(( $(now_ms) - lost ))
  local live_nodes
  live_nodes=$(kc get pods -l app=web -o json | python3 -c '
import json, sys
print(" ".join(sorted({p["spec"]["nodeName"] for p in json.load(sys.stdin)["items"] if "deletionTimestamp" not in p["metadata"]})))')
  [[ $live_nodes == "node1 node2" ]] || fail "live web pods on '$live_nodes' after node3's loss"
  for name in $node3_pods; do
    [[ -n $(kc get pod "$name" -o jsonpath='{.metadata.deletionTimestamp}' 2>/dev/null) ]] ||
      fail "pod $name on lost node3 was not evicted"
  done
  wait_eq_n 100 "6" "6 ready endpoints after the eviction" endpoints
  sleep 2
  stop_traffic
  python3 - "$lost" "$work"/traffic1 "$work"/traffic2 <<'PY' >"$work/recovery" || fail "traffic after node3's loss: $(cat "$work/recovery")"
import sys
lost = int(sys.argv[1])
reqs = []
for path in sys.argv[2:]:
    for line in open(path):
        f = line.split(maxsplit=3)
        reqs.append((int(f[0]), int(f[1]), f[2] == "ok"))
reqs.sort()
failed = [r for r in reqs if not r[2]]
assert failed, "no request failed after node3 was cut off: was it?"
last = max(r[0] for r in failed)
after = [r for r in reqs if r[0] > last]
assert len(after) >= 5, f"only {len(after)} requests after the last failure"
assert all(r[2] for r in after)
recovered = after[0][0] - lost
print(f"{recovered} {len(failed)} {len(reqs)} {len(after)}")
PY
  local recovered_ms nfailed nsent nafter
  read -r recovered_ms nfailed nsent nafter <"$work/recovery"
  echo "[$driver] node loss: node3 NotReady after $notready_ms ms (grace ${grace} s); traffic recovered $recovered_ms ms after the loss ($nfailed of $nsent requests failed before, $nafter answered since); pods evicted and 6 Ready on node1/node2 after $evicted_ms ms"
  echo "[$driver] time from node loss to traffic recovered: $recovered_ms ms (target <= $(( (grace + 5) * 1000 )) ms)"
  ((recovered_ms <= (grace + 5) * 1000)) || fail "traffic recovered after $recovered_ms ms, more than the grace period + 5 s"
  # Every answer since came from a live pod.
  for name in $(awk -v t="$(( lost + recovered_ms ))" '$1 >= t && $3 == "ok" {print $4}' "$work"/traffic? | sort -u); do
    [[ " $node3_pods " != *" $name "* ]] || fail "answer from $name on lost node3 after the recovery"
  done

  # 7. The node returns: its link comes back and its agent starts again with the same flags and
  # state (the old one's containers still run under their shims). The node is Ready again, the
  # restarted agent confirms the evicted pods' deletion (their containers stop), the DaemonSet
  # puts a pod back on node3 and that pod serves a Service from node1 and node2; node3's own load
  # balancer, whose pinned tables still named its evicted pods, answers the web ClusterIP again.
  in_fabric ip link set fab-n3 up
  local back
  back=$(now_ms)
  start_agent 3
  wait_eq_n 150 "True" "node3's Ready after its agent restarted" node3_ready
  local ready_ms=$(( $(now_ms) - back ))
  wait_eq_n 200 "" "evicted pods still on node3 after its return" pods_among "$node3_pods"
  local confirmed_ms=$(( $(now_ms) - back ))
  wait_eq_n 100 "" "taints on node3 after its return" kc get node node3 -o jsonpath='{.spec.taints}'
  kc apply -f "$work/node-return.yaml" >"$work/apply.out" || fail "apply -f node-return.yaml: $(cat "$work/apply.out")"
  kc wait --for=jsonpath='{.status.numberReady}'=3 daemonset/node-httpd --timeout=60s >/dev/null ||
    fail "daemonset/node-httpd after node3's return: numberReady $(kc get daemonset node-httpd -o jsonpath='{.status.numberReady}')"
  local ds_pod3 ds_ip
  read -r ds_pod3 ds_ip < <(kc get pods -l app=node-httpd --field-selector spec.nodeName=node3 \
    -o jsonpath='{range .items[*]}{.metadata.name} {.status.podIP}{"\n"}{end}')
  [[ -n $ds_pod3 && $ds_ip == 10.91.3.* ]] || fail "no DaemonSet pod on node3 after its return: '$ds_pod3' '$ds_ip'"
  local ds_ready_ms=$(( $(now_ms) - back ))
  local ds_cluster_ip
  ds_cluster_ip=$(kc get service node-httpd -o jsonpath='{.spec.clusterIP}')
  wait_eq_n 100 "3" "ready endpoints of node-httpd" endpoints "" node-httpd
  for i in 1 2; do
    body=$(get_from "$i" "http://$ds_ip:8080/") || fail "node$i: no answer from $ds_pod3 ($ds_ip) on node3"
    [[ $body == "hello from $ds_pod3" ]] || fail "node$i: $ds_ip answered '$body'"
    # Through the Service: within 30 requests one lands on node3's pod (each does with p = 1/3).
    got=
    for k in $(seq 30); do
      body=$(get_from "$i" "http://$ds_cluster_ip/") || fail "node$i: request $k to node-httpd's $ds_cluster_ip failed"
      [[ $body == "hello from $ds_pod3" ]] && { got=1; break; }
    done
    [[ -n $got ]] || fail "node$i: 30 requests to node-httpd's $ds_cluster_ip, none served by $ds_pod3 on node3"
  done
  wait_answer 3
  got=$(spread_from 3 20)
  ((got >= 2)) || fail "node3: 20 requests to $cluster_ip after its return reached only $got pods"
  local served_ms=$(( $(now_ms) - back ))
  echo "[$driver] node return: node3 Ready $ready_ms ms after its agent restarted; evicted pods confirmed gone after $confirmed_ms ms; DaemonSet pod $ds_pod3 Ready after $ds_ready_ms ms, serving node-httpd from node1 and node2, and node3's ClusterIP answering after $served_ms ms"

  # 8. Delete: nothing of the scenario is left.
  kc delete -f "$work/node-return.yaml" >"$work/delete.out" || fail "delete -f node-return.yaml: $(cat "$work/delete.out")"
  kc delete -f "$work/web.yaml" >"$work/delete.out" || fail "delete -f web.yaml: $(cat "$work/delete.out")"
  wait_gone app=node-httpd
  wait_gone app=web
  for what in deployment/web service/web service/web-nodeport service/node-httpd; do
    ! kc get "$what" >/dev/null 2>&1 || fail "$what left after delete -f"
  done
}

for driver in "${drivers[@]}"; do
  case $driver in
    skiff) driver_cmd=("$skiff") ;;
    kubectl) driver_cmd=(kubectl) ;;
  esac
  t_driver=$(now_ms)
  scenario
  echo "[$driver] scenario passed in $(( $(now_ms) - t_driver )) ms"
done

# No request of the node agents was refused by the Node authorizer or NodeRestriction.
denied=$(grep -E "403 .*(system:node:node|node 'node)" "$work/server.log" || true)
[[ -z $denied ]] || fail "node agents were refused: $denied"

# Shutdown: the agents stop on SIGTERM, then skiff cleanup leaves no container, pod namespace,
# bridge, cgroup or pin behind on any node.
for i in "${!agent_pid[@]}"; do kill -TERM "${agent_pid[$i]}"; done
for i in "${!agent_pid[@]}"; do
  wait "${agent_pid[$i]}" || fail "node$i's agent exited with $?"
  unset "agent_pid[$i]"
done
for i in "${nodes[@]}"; do
  ns=$(netns "$i")
  node_cleanup "$i" >"$work/cleanup$i.log" 2>&1 || fail "node$i: skiff cleanup: $(cat "$work/cleanup$i.log")"
  [[ -z $(runc --root "$work/node$i/run/runc" list -q 2>/dev/null) ]] || fail "node$i: containers left"
  [[ -z $(ls -A "$work/node$i/run/netns" 2>/dev/null) ]] || fail "node$i: pod namespaces left"
  for c in "$cgroup2$(cgroup "$i")" /sys/fs/cgroup/*"$(cgroup "$i")"; do [[ ! -d $c ]] || fail "node$i: cgroup $c left"; done
  [[ ! -e $(pins "$i") ]] || fail "node$i: BPF pins left in $(pins "$i")"
done
echo "PASS (${drivers[*]}) in $(( $(now_ms) - start )) ms"

#!/usr/bin/env bash
# Three real nodes end to end. `skiff server` runs in a "fabric" network namespace holding a bridge
# with 10.90.0.1/24; three node namespaces hang off that bridge by veth pairs (node i: 10.90.0.1i,
# pod CIDR 10.91.i.0/24, routes to the other nodes' pod CIDRs via their node addresses), each with
# a `skiff agent` on runc and the eBPF socket load balancer. A Deployment of 6 busybox httpd
# replicas behind a ClusterIP and a NodePort Service spreads over the three nodes; from each node
# the ClusterIP reaches all six pods (so pods on the other nodes: cross-node pod routing) and the
# node's NodePort answers; scaling to 3 and back to 6 keeps answering; when node3's agent is
# killed, node3 goes NotReady and the Service stops sending to its pods. Nothing of the host's own
# interfaces or routes is touched; everything made goes in the EXIT trap.
# Usage: multi_node_test.sh SKIFF_BINARY SOURCE_DIR    (root: runc, namespaces, BPF)
set -euo pipefail
skiff=$1
source_dir=$2
if [[ $(id -u) != 0 ]]; then echo "SKIP: needs root"; exit 0; fi
for tool in runc umoci ip nsenter; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 0; }
done
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
cgroup2=/sys/fs/cgroup
mountpoint -q /sys/fs/cgroup/unified && cgroup2=/sys/fs/cgroup/unified

work=$(mktemp -d /tmp/skiff-e2e-mn.XXXXXX)
# Private copies (skiff finds skiff-shim beside itself): a rebuild of the build tree while this
# runs must not swap the binaries under the agents or the cleanup.
mkdir "$work/bin"
cp "$skiff" "$work/bin/skiff"
cp "$(dirname "$skiff")/skiff-shim" "$work/bin/skiff-shim"
skiff=$work/bin/skiff
"$skiff" --help >/dev/null 2>&1 || { echo "FAIL: $1 does not run (being linked right now?)" >&2; rm -rf "$work"; exit 1; }
tag=$$
fabric=skmn$tag-fab
port=6443
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

node_cleanup() {
  in_ns "$(netns "$1")" "$skiff" cleanup --data-dir "$work/node$1" --agent-data-dir "$work/node$1/agent" \
    --bridge "skmn$1" --cgroup-parent "$(cgroup "$1")" --run-dir "$work/node$1/run" --bpf-pin-dir "$(pins "$1")"
}
keep=
cleanup() {
  local i
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
          keep=1
          break
        fi
        sleep 1
      done
      ip netns del "$(netns "$i")" 2>/dev/null || true
    fi
  done
  ip netns del "$fabric" 2>/dev/null || true
  [[ -n $keep ]] || rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  sk get nodes -o wide >&2 2>/dev/null || true
  sk get pods -o wide >&2 2>/dev/null || true
  echo "--- server log (tail)" >&2; tail -30 "$work/server.log" >&2 || true
  for i in "${nodes[@]}"; do echo "--- node$i agent log (tail)" >&2; tail -30 "$work/agent$i.log" >&2 || true; done
  exit 1
}
# Polls a command until its output equals the wanted text (at most $3 tenths of a second).
wait_eq() {
  local want=$1 what=$2 tries=$3 got=
  shift 3
  for _ in $(seq "$tries"); do
    got=$("$@" 2>/dev/null || true)
    [[ $got == "$want" ]] && return 0
    sleep 0.1
  done
  fail "$what: got '$got', want '$want'"
}
# One HTTP GET from node $1's namespace, in that node's load-balanced cgroup.
get_from() {
  local i=$1 url=$2
  timeout 3 nsenter --net="/run/netns/$(netns "$i")" "$skiff" lb exec --cgroup "$cgroup2$(cgroup "$i")" \
    -- wget -qO- "$url"
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

start=$(date +%s%N)
# Started by nsenter itself (it execs skiff), so $! is the skiff process the trap stops.
nsenter --net="/run/netns/$fabric" "$skiff" server --data-dir "$work/server" --bind-address 10.90.0.1 --secure-port "$port" \
  --tls-san 10.90.0.1 --service-cluster-ip-range 10.98.0.0/16 >"$work/server.log" 2>&1 &
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

for i in "${nodes[@]}"; do
  mkdir -p "$work/node$i"
  nsenter --net="/run/netns/$(netns "$i")" "$skiff" agent --kubeconfig "$KUBECONFIG" --node-name "node$i" \
    --node-ip "10.90.0.1$i" --pod-cidr "10.91.$i.0/24" --bridge "skmn$i" \
    --run-dir "$work/node$i/run" --data-dir "$work/node$i/agent" --cgroup-parent "$(cgroup "$i")" \
    --bpf-pin-dir "$(pins "$i")" --image-root "$work/images" --pod-log-dir "$work/node$i/logs" \
    --node-status-update-frequency 2 --node-lease-renew-interval 2 >"$work/agent$i.log" 2>&1 &
  agent_pid[$i]=$!
done
ready_nodes() {
  sk get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}'
}
wait_eq "node1=True node2=True node3=True " "nodes Ready" 300 ready_nodes
echo "3 nodes Ready after $(( ($(date +%s%N) - start) / 1000000 )) ms"
addresses=$(sk get nodes -o jsonpath='{range .items[*]}{.status.addresses[?(@.type=="InternalIP")].address} {end}')
[[ $addresses == "10.90.0.11 10.90.0.12 10.90.0.13 " ]] || fail "node addresses '$addresses'"

sed 's/^  replicas: 3$/  replicas: 6/' "$source_dir/examples/web.yaml" >"$work/web.yaml"
grep -q '^  replicas: 6$' "$work/web.yaml" || fail "examples/web.yaml changed shape: no 'replicas: 3'"
sk apply -f "$work/web.yaml" >/dev/null
sk wait --for=condition=Available deployment/web --timeout=90s >/dev/null || fail "web not Available"
ready_pods() {
  sk get pods -l app=web -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status} {end}'
}
wait_eq "True True True True True True " "6 pods Ready" 600 ready_pods
# Spread: every node runs some of the six, and each pod's IP is from its node's pod CIDR.
sk get pods -l app=web -o jsonpath='{range .items[*]}{.spec.nodeName} {.status.podIP}{"\n"}{end}' >"$work/placement"
declare -A per_node=()
while read -r node ip; do
  [[ $ip == "10.91.${node#node}."* ]] || fail "pod IP $ip not from $node's pod CIDR"
  per_node[$node]=$(( ${per_node[$node]:-0} + 1 ))
done <"$work/placement"
[[ ${#per_node[@]} == 3 ]] || fail "6 pods on ${#per_node[@]} nodes: $(tr '\n' ';' <"$work/placement")"
echo "placement: $(for n in node1 node2 node3; do printf '%s=%s ' "$n" "${per_node[$n]}"; done)"
cluster_ip=$(sk get service web -o jsonpath='{.spec.clusterIP}')
[[ $cluster_ip == 10.98.* ]] || fail "ClusterIP '$cluster_ip' not from the service range"

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

# From each node: 40 requests reach all six pods, four of which run on other nodes.
for i in "${nodes[@]}"; do
  wait_answer "$i"
  got=$(spread_from "$i" 40)
  [[ $got == 6 ]] || fail "node$i: 40 requests reached $got of 6 pods"
  body=$(get_from "$i" "http://10.90.0.1$i:30080/") || fail "node$i: NodePort 10.90.0.1$i:30080 failed"
  [[ $body == "hello from web-"* ]] || fail "node$i: NodePort answer '$body'"
done
echo "ClusterIP from each node reached all 6 pods; NodePort answered on each node"

# Scale to 3 and back to 6 while node1 keeps sending requests: every one is answered.
live_ready() {
  sk get pods -l app=web -o json | python3 -c '
import json, sys
pods = [p for p in json.load(sys.stdin)["items"] if "deletionTimestamp" not in p["metadata"]]
ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                for c in p.get("status", {}).get("conditions", []))]
print(len(pods), len(ready))'
}
endpoints() {
  sk get endpointslices -l kubernetes.io/service-name=web -o json | python3 -c '
import json, sys
print(sum(1 for s in json.load(sys.stdin)["items"] for e in s.get("endpoints") or []
          if (e.get("conditions") or {}).get("ready", True)))'
}
# Requests from node $1 in a loop until $work/stop exists: one line per request, "ok" or "failed".
traffic() {
  local body
  while [[ ! -e $work/stop ]]; do
    if body=$(get_from "$1" "http://$cluster_ip/" 2>/dev/null) && [[ $body == "hello from web-"* ]]; then
      echo ok
    else
      echo "failed $(date +%T.%N) '$body'"
    fi
  done
}
scale_under_traffic() {
  local replicas=$1 i sent failed senders=()
  rm -f "$work/stop"
  for i in "${nodes[@]}"; do
    traffic "$i" >"$work/traffic$i" &
    senders+=($!)
  done
  sleep 0.5
  sk scale deployment web --replicas="$replicas" >/dev/null
  for _ in $(seq 300); do
    [[ $(live_ready) == "$replicas $replicas" && $(endpoints) == "$replicas" ]] && break
    sleep 0.1
  done
  sleep 0.5
  touch "$work/stop"
  wait "${senders[@]}"
  [[ $(live_ready) == "$replicas $replicas" ]] || fail "scale to $replicas: pods (live, ready) $(live_ready)"
  [[ $(endpoints) == "$replicas" ]] || fail "scale to $replicas: $(endpoints) ready endpoints"
  sent=$(cat "$work"/traffic? | wc -l)
  failed=$(cat "$work"/traffic? | grep -c -v '^ok$' || true)
  ((sent >= 30)) || fail "scale to $replicas: only $sent requests sent"
  ((failed == 0)) || fail "scale to $replicas: $failed of $sent requests failed: $(grep -h -v '^ok$' "$work"/traffic? | head -3)"
  echo "scaled to $replicas: $sent requests from the 3 nodes during it, all answered"
}
scale_under_traffic 3
scale_under_traffic 6
for i in "${nodes[@]}"; do
  wait_answer "$i"
  got=$(spread_from "$i" 40)
  [[ $got == 6 ]] || fail "node$i after scaling: 40 requests reached $got of 6 pods"
done

# A node dies: node3's agent is killed (its pods keep running, unsupervised). The node lifecycle
# controller finds no heartbeat for its grace period (40 s, kube-controller-manager's default),
# marks node3 NotReady and its pods not ready, and the Service stops sending to them.
kill -9 "${agent_pid[3]}"
wait "${agent_pid[3]}" 2>/dev/null || true
unset "agent_pid[3]"
killed=$(date +%s%N)
node3_ready() { sk get node node3 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'; }
wait_eq "Unknown" "node3's Ready after its agent died" 700 node3_ready
echo "node3 NotReady $(( ($(date +%s%N) - killed) / 1000000 )) ms after its agent was killed"
node3_endpoints() {
  sk get endpointslices -l kubernetes.io/service-name=web -o json | python3 -c '
import json, sys
print(sum(1 for s in json.load(sys.stdin)["items"] for e in s.get("endpoints") or []
          if e.get("nodeName") == "node3" and (e.get("conditions") or {}).get("ready", True)))'
}
wait_eq "0" "ready endpoints on node3" 100 node3_endpoints
node3_pods=$(sk get pods -l app=web --field-selector spec.nodeName=node3 -o jsonpath='{.items[*].metadata.name}')
[[ -n $node3_pods ]] || fail "no pod left bound to node3"
for i in 1 2; do
  wait_answer "$i"
  for k in $(seq 20); do
    body=$(get_from "$i" "http://$cluster_ip/") || fail "node$i: request $k with node3 down failed"
    [[ $body == "hello from web-"* ]] || fail "node$i: request $k with node3 down: '$body'"
    [[ " $node3_pods " != *" ${body#hello from } "* ]] || fail "node$i: request $k answered by $body on dead node3"
  done
done
echo "node3 down: 40 requests from node1 and node2 answered, none by node3's pods ($node3_pods)"

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
  # Not checked: the bridge skmn$i. skiff cleanup looks for it in /sys/class/net, which shows the
  # host's links under nsenter (cleanup.cc removeLink), so it stays; `ip netns del` removes it.
  for c in "$cgroup2$(cgroup "$i")" /sys/fs/cgroup/*"$(cgroup "$i")"; do [[ ! -d $c ]] || fail "node$i: cgroup $c left"; done
  [[ ! -e $(pins "$i") ]] || fail "node$i: BPF pins left in $(pins "$i")"
done
echo "PASS in $(( ($(date +%s%N) - start) / 1000000 )) ms"

#!/bin/bash
# `skiff lb attach|apply|detach` end to end with the real binary, no control plane: the socket LB
# attached to a cgroup subtree made for the test (never the root cgroup), pinned under a temporary
# pin directory, programmed from a Service + EndpointSlice file whose endpoints are TCP servers in
# a network namespace; a client in the subtree (and in its own network namespace) connects to the
# ClusterIP and is answered by the backends; a client outside the subtree connects to the
# NodePort on the backends' namespace, whose veth has the tc entries (skiff lb attach runs in that
# network namespace), and `skiff lb flows` shows those flows, `skiff lb stats` counts both; a
# re-apply without one backend moves new connections
# to the other and keeps the service's id; a bad file changes nothing; detach leaves nothing.
# Usage: lb_cli_test.sh SKIFF (as root).
set -u
skiff=$1
if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 77; fi
cg2=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
[ -n "$cg2" ] || { echo "SKIP: cgroup v2 is not mounted"; exit 77; }

id=$$
subtree=$cg2/skiff-lbcli-test-$id
pin=/sys/fs/bpf/skiff-lbcli-test-$id
cli=skiff-lbcli-c-$id
srv=skiff-lbcli-s-$id
work=$(mktemp -d)
pids=()
fail=0

cleanup() {
  "$skiff" lb detach --pin-dir "$pin" >/dev/null 2>&1
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  ip netns del "$cli" 2>/dev/null
  ip netns del "$srv" 2>/dev/null
  rmdir "$subtree/host" "$subtree" 2>/dev/null
  rm -rf "$work" /sys/fs/bpf/skiff-lbcli-root-$id
}
trap cleanup EXIT

check() {  # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}

ip netns add "$cli" && ip netns add "$srv" &&
  ip link add vc netns "$cli" type veth peer name vb netns "$srv" &&
  ip -n "$cli" addr add 10.201.0.1/24 dev vc && ip -n "$cli" link set vc up &&
  ip -n "$cli" link set lo up &&
  ip -n "$srv" addr add 10.201.0.11/24 dev vb && ip -n "$srv" addr add 10.201.0.12/24 dev vb &&
  ip -n "$srv" link set vb up && ip -n "$srv" link set lo up || { echo "FAIL: netns setup"; exit 1; }

# The backends: each answers a connection with its own address, for at most 60 s.
cat >"$work/server.py" <<'PY'
import socket, sys, threading, time
def serve(addr):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 8080)); s.listen(64)
    while True:
        c, _ = s.accept(); c.sendall(addr.encode()); c.close()
for a in sys.argv[1:]:
    threading.Thread(target=serve, args=(a,), daemon=True).start()
time.sleep(60)
PY
ip netns exec "$srv" python3 "$work/server.py" 10.201.0.11 10.201.0.12 &
pids+=($!)
# The client: N connections to the ClusterIP; prints who answered, one line each.
cat >"$work/client.py" <<'PY'
import socket, sys
host, port = (sys.argv[2], int(sys.argv[3])) if len(sys.argv) > 3 else ("10.96.8.8", 80)
for _ in range(int(sys.argv[1])):
    s = socket.create_connection((host, port), timeout=2)
    print(s.recv(64).decode() or "empty"); s.close()
PY
connect() {  # connect N: from a cgroup of the subtree and the client namespace
  "$skiff" lb exec --cgroup "$subtree" -- ip netns exec "$cli" python3 "$work/client.py" "$1"
}
nodeport() {  # nodeport N: from the client namespace, outside the subtree (no socket LB)
  ip netns exec "$cli" python3 "$work/client.py" "$1" 10.201.0.11 30080
}
sleep 0.5

service() {  # service ENDPOINT-ADDRESSES...
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: web, namespace: lbtest}
spec:
  type: NodePort
  clusterIP: 10.96.8.8
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: lbtest
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
YAML
  for a in "$@"; do echo "- addresses: [$a]"; done
}

# The root cgroup is refused, and nothing is pinned for it.
out=$("$skiff" lb attach --cgroup "$cg2" --pin-dir /sys/fs/bpf/skiff-lbcli-root-$id 2>&1)
check "attach refuses the root cgroup ($out)" test $? -ne 0
check "nothing pinned for the refused attach" test ! -e /sys/fs/bpf/skiff-lbcli-root-$id

# apply before attach: a clear error.
service 10.201.0.11 >"$work/web.yaml"
out=$("$skiff" lb apply -f "$work/web.yaml" --pin-dir "$pin" 2>&1)
check "apply without attach fails ($out)" sh -c "test $? -ne 0 && echo '$out' | grep -q 'skiff lb attach'"

check "attach" nsenter --net=/run/netns/"$srv" "$skiff" lb attach --cgroup "$subtree" \
  --pin-dir "$pin" --nodeport-devices vb --nodeport-mode tc
check "attach pinned links" sh -c "ls '$pin' | grep -q '^link_'"
"$skiff" lb status --pin-dir "$pin" | grep -q "8 socket hooks (cgroup), 0 XDP interfaces, 1 tc interfaces" &&
  echo "ok: 8 socket hooks, tc on vb" ||
  { echo "FAIL: status"; "$skiff" lb status --pin-dir "$pin"; fail=1; }

service 10.201.0.11 10.201.0.12 >"$work/web.yaml"
check "apply two backends" "$skiff" lb apply -f "$work/web.yaml" --pin-dir "$pin"
answers=$(connect 40)
check "40 answers through the ClusterIP" test "$(echo "$answers" | grep -c '^10\.201\.0\.1[12]$')" -eq 40
check "both backends answered" sh -c "echo '$answers' | grep -q 10.201.0.11 && echo '$answers' | grep -q 10.201.0.12"
backends=$("$skiff" lb backends --pin-dir "$pin" -o json)
flows=$(echo "$backends" | python3 -c 'import json,sys; print(sum(b["newFlows"] for b in json.load(sys.stdin)["backends"]))')
check "lb backends counts 40 connections ($flows)" test "$flows" -eq 40
answers=$(nodeport 6)
check "6 answers through the NodePort" test "$(echo "$answers" | grep -c '^10\.201\.0\.1[12]$')" -eq 6
flows=$("$skiff" lb flows --pin-dir "$pin" -o json)
nflows=$(echo "$flows" | python3 -c '
import json, sys
f = [x for x in json.load(sys.stdin)["flows"] if x["frontend"] == "10.201.0.11:30080/TCP"
     and x["client"].startswith("10.201.0.1:") and x["service"] == "lbtest/web:http"
     and x["backend"] in ("10.201.0.11:8080", "10.201.0.12:8080") and x["protocol"] == "TCP"
     and x["seenReply"] and x["closing"] and x["ageNs"] > 0 and x["ageNs"] < 60e9]
print(len(f))')
check "lb flows shows the 6 NodePort flows ($nflows)" test "$nflows" -eq 6
"$skiff" lb flows --pin-dir "$pin" | grep -q "lbtest/web:http.*10.201.0.11:30080/TCP.*replied,closing" &&
  echo "ok: lb flows table" || { echo "FAIL: lb flows table"; "$skiff" lb flows --pin-dir "$pin"; fail=1; }
stats=$("$skiff" lb stats --pin-dir "$pin" -o json)
read -r snew spackets bnew <<<"$(echo "$stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
w = [x for x in s["services"] if x["service"] == "lbtest/web:http"][0]
print(w["newFlows"], w["packets"], sum(b["newFlows"] for b in s["backends"]))')"
check "lb stats: 46 new flows on the service and its backends, packets counted ($snew $spackets $bnew)" \
  sh -c "test '$snew' -eq 46 && test '$bnew' -eq 46 && test '$spackets' -gt 0"
"$skiff" lb stats --pin-dir "$pin" | grep -q "dsrEncapsulated=0" && echo "ok: lb stats table" ||
  { echo "FAIL: lb stats table"; "$skiff" lb stats --pin-dir "$pin"; fail=1; }
svcid() { "$skiff" lb services --pin-dir "$pin" -o json | python3 -c 'import json,sys; s=json.load(sys.stdin)["services"]; print(",".join(sorted({str(x["svcId"]) + "/" + str(x["inCluster"]["backends"]) for x in s})))'; }
before=$(svcid)
check "one service, two backends ($before)" sh -c "echo '$before' | grep -Eq '^[0-9]+/2$'"

# Re-apply the same file: nothing changes, counters and ids stay.
check "re-apply the same file" "$skiff" lb apply -f "$work/web.yaml" --pin-dir "$pin"
same=$("$skiff" lb backends --pin-dir "$pin" -o json | python3 -c 'import json,sys; print(sum(b["newFlows"] for b in json.load(sys.stdin)["backends"]))')
check "same file: same service id, backend counters kept ($(svcid), $same)" \
  sh -c "test '$(svcid)' = '$before' && test '$same' -eq 46"

# Re-apply without 10.201.0.12: same service id, one backend, every new connection to .11.
service 10.201.0.11 >"$work/web.yaml"
check "re-apply one backend" "$skiff" lb apply -f "$work/web.yaml" --pin-dir "$pin"
after=$(svcid)
check "same service id, one backend ($before -> $after)" test "$after" = "${before%/2}/1"
answers=$(connect 10)
check "10 answers, all from 10.201.0.11" test "$(echo "$answers" | grep -c '^10\.201\.0\.11$')" -eq 10

# Bad input: an EndpointSlice for a Service the file does not hold; nothing changes.
service 10.201.0.11 10.201.0.12 | sed 's/service-name: web/service-name: nosuch/' >"$work/bad.yaml"
out=$("$skiff" lb apply -f "$work/bad.yaml" --pin-dir "$pin" 2>&1)
rc=$?
check "bad file refused, naming file and field ($out)" sh -c "test $rc -ne 0 && echo '$out' | grep -q 'bad.yaml:.*kubernetes.io/service-name'"
check "bad file changed nothing" test "$(svcid)" = "$after"

# An empty desired state removes the service.
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: other, namespace: lbtest}\nspec:\n  clusterIP: 10.96.8.9\n  ports: [{port: 81, protocol: TCP}]\n' >"$work/other.yaml"
check "apply another file" "$skiff" lb apply -f "$work/other.yaml" --pin-dir "$pin"
check "web is gone, other has no backends ($(svcid))" sh -c "test \"\$('$skiff' lb services --pin-dir '$pin' -o json | grep -c 10.96.8.8)\" -eq 0"

check "detach" "$skiff" lb detach --pin-dir "$pin"
check "nothing pinned after detach" test ! -e "$pin"
progs=$(bpftool cgroup show "$subtree" 2>/dev/null | grep -vc '^ID')
check "nothing attached to the subtree after detach" test "$progs" -eq 0
exit $fail

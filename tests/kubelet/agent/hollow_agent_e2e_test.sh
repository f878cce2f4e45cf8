#!/usr/bin/env bash
# `skiff agent --hollow-nodes 3` against `skiff server`: three Nodes register and turn Ready, with
# Leases renewed; a Deployment of 6 replicas is scheduled over the three nodes and every pod
# becomes Running and Ready with an address from its node's podCIDR (hollow: no containers); the
# kubelet's Events are recorded; deleting the Deployment deletes the pods (the agents confirm the
# graceful deletions); SIGTERM stops the agent cleanly. Before that, a hollow node that joins with
# its own certificate from `skiff node-kubeconfig`.
# Usage: hollow_agent_e2e_test.sh SKIFF_BINARY
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib/e2e.sh"
skiff=$1
e2e_workdir agent
agent_pid=
joined_pid=
fail_log "agent log" "$work/agent.log"
fail_log "server log (tail)" "$work/server.log" 30

start_server server "$work/data"
on_exit 'stop_pids $joined_pid $agent_pid'

# Bad input first: clear messages, exit 1.
if "$skiff" agent --kubeconfig "$KUBECONFIG" --hollow --proxy-mode bogus >"$work/bad.log" 2>&1; then
  fail "--proxy-mode bogus was accepted"
fi
grep -q -- '--proxy-mode "bogus": want ebpf or none' "$work/bad.log" || fail "bad proxy mode: $(cat "$work/bad.log")"
if "$skiff" agent --kubeconfig "$work/missing.kubeconfig" --hollow >"$work/bad.log" 2>&1; then
  fail "a missing kubeconfig was accepted"
fi
grep -q "missing.kubeconfig" "$work/bad.log" || fail "missing kubeconfig: $(cat "$work/bad.log")"

# A node that joins with a credential of its own: `skiff node-kubeconfig NODE` on the server's
# machine issues DATA/pki/nodes/NODE.{crt,key} (system:node:NODE, group system:nodes) and a
# kubeconfig; the agent takes its node name from the certificate, refuses to act as another node,
# and under the Node authorizer registers, renews its Lease and runs the pod bound to it.
out=$("$skiff" node-kubeconfig joined --data-dir "$work/data" --node-ip 192.0.2.9) || fail "skiff node-kubeconfig: $out"
node_kc=$work/data/pki/nodes/joined.kubeconfig
[[ $out == *"kubeconfig $node_kc"* && -f $work/data/pki/nodes/joined.crt ]] || fail "skiff node-kubeconfig: $out"
[[ $out == *"--kubelet-cert-file $work/data/pki/nodes/joined-kubelet.crt"* ]] || fail "no kubelet API certificate: $out"
openssl verify -CAfile "$work/data/pki/ca.crt" -purpose sslserver "$work/data/pki/nodes/joined-kubelet.crt" >/dev/null ||
  fail "the kubelet API certificate does not verify against the cluster CA"
openssl x509 -in "$work/data/pki/nodes/joined-kubelet.crt" -noout -ext subjectAltName | grep -q "IP Address:192.0.2.9" ||
  fail "the kubelet API certificate does not cover 192.0.2.9"
if "$skiff" node-kubeconfig Not_A_Node --data-dir "$work/data" >"$work/bad.log" 2>&1; then
  fail "node-kubeconfig took an invalid node name"
fi
grep -q 'invalid node name "Not_A_Node"' "$work/bad.log" || fail "invalid node name: $(cat "$work/bad.log")"
if "$skiff" agent --kubeconfig "$node_kc" --hollow --node-name other >"$work/bad.log" 2>&1; then
  fail "an agent with node joined's certificate ran as node other"
fi
grep -q "the kubeconfig's client certificate is for node joined" "$work/bad.log" ||
  fail "--node-name other with joined's certificate: $(cat "$work/bad.log")"
"$skiff" agent --kubeconfig "$node_kc" --hollow --node-lease-renew-interval 1 >"$work/joined.log" 2>&1 &
joined_pid=$!
kubectl run on-joined --image=busybox --restart=Never --overrides='{"spec":{"nodeName":"joined"}}' >/dev/null
wait_eq "Running" "the pod on node joined" kubectl get pod on-joined -o jsonpath='{.status.phase}'
wait_eq "joined" "node joined's Lease" kubectl get lease -n kube-node-lease joined -o jsonpath='{.spec.holderIdentity}'
kill -TERM "$joined_pid"
wait "$joined_pid" || fail "the joined agent did not exit cleanly: $(cat "$work/joined.log")"
grep -E "403 .*(system:node:joined|node 'joined')" "$work/server.log" && fail "node joined was refused"
kubectl delete pod on-joined --grace-period=0 --force >/dev/null 2>&1 || true
kubectl delete node joined >/dev/null

"$skiff" agent --kubeconfig "$KUBECONFIG" --hollow-nodes 3 --node-lease-renew-interval 1 \
  >"$work/agent.log" 2>&1 &
agent_pid=$!

nodes_ready() {
  kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}' | sed 's/ $//'
}
wait_eq "hollow-node-0=True hollow-node-1=True hollow-node-2=True" "nodes Ready" nodes_ready
wait_eq "10.244.0.0/24 10.244.1.0/24 10.244.2.0/24" "pod CIDRs" \
  bash -c "kubectl get nodes -o jsonpath='{range .items[*]}{.spec.podCIDR} {end}' | sed 's/ \$//'"

# Leases: one per node in kube-node-lease, held by the node, renewed (every second here).
wait_eq "hollow-node-0 hollow-node-1 hollow-node-2" "lease holders" \
  bash -c "kubectl get leases -n kube-node-lease -o jsonpath='{range .items[*]}{.spec.holderIdentity} {end}' | sed 's/ \$//'"
first=$(kubectl get lease -n kube-node-lease hollow-node-1 -o jsonpath='{.spec.renewTime}')
sleep 1.5
later=$(kubectl get lease -n kube-node-lease hollow-node-1 -o jsonpath='{.spec.renewTime}')
[[ -n $first && $later > $first ]] || fail "lease not renewed: '$first' then '$later'"
[[ $(kubectl get lease -n kube-node-lease hollow-node-1 -o jsonpath='{.spec.leaseDurationSeconds}') == 40 ]] ||
  fail "leaseDurationSeconds"

"$skiff" apply -f - >/dev/null <<'YAML' || fail "skiff apply"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 6
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: busybox, command: [sleep, "3600"]}
YAML

ready_pods() {
  kubectl get pods -l app=web -o json | python3 -c '
import json, sys
pods = json.load(sys.stdin)["items"]
ok = [p for p in pods if p["status"].get("phase") == "Running" and
      any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
print(len(ok))'
}
wait_eq "6" "pods Running and Ready" ready_pods
wait_eq "6" "deployment available" kubectl get deploy web -o jsonpath='{.status.availableReplicas}'

# Spread over the three nodes; every IP unique and inside its node's podCIDR; containers running.
kubectl get pods -l app=web -o json | python3 -c '
import ipaddress, json, sys
pods = json.load(sys.stdin)["items"]
nodes = {p["spec"]["nodeName"] for p in pods}
assert nodes == {"hollow-node-0", "hollow-node-1", "hollow-node-2"}, nodes
ips = [p["status"]["podIP"] for p in pods]
assert len(set(ips)) == 6, ips
for p in pods:
    i = p["spec"]["nodeName"].rsplit("-", 1)[1]
    assert ipaddress.ip_address(p["status"]["podIP"]) in ipaddress.ip_network("10.244.%s.0/24" % i), p["status"]["podIP"]
    cs = p["status"]["containerStatuses"][0]
    assert cs["ready"] and "running" in cs["state"], cs
    assert any(c["type"] == "PodScheduled" for c in p["status"]["conditions"]), p["status"]["conditions"]
' || fail "pod placement or status: $(kubectl get pods -o wide)"

# The kubelet's Events, about the pods.
wait_eq "kubelet" "Started events" bash -c \
  "kubectl get events --field-selector reason=Started -o jsonpath='{.items[0].source.component}'"

# Deleting the Deployment: the garbage collector deletes the pods gracefully, the agents stop them
# and confirm; none is left.
kubectl delete deploy web >/dev/null
wait_eq "0" "pods after delete" bash -c "kubectl get pods -o name | wc -l"
wait_eq "Ready=True" "node still Ready" \
  kubectl get node hollow-node-0 -o jsonpath='Ready={.status.conditions[?(@.type=="Ready")].status}'

kill -TERM "$agent_pid"
wait "$agent_pid" || fail "skiff agent did not exit cleanly on SIGTERM"
agent_pid=
grep -q "SIGTERM, shutting down" "$work/agent.log" || fail "no shutdown message"
echo "PASS"

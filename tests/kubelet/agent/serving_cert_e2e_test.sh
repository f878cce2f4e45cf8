#!/usr/bin/env bash
# `skiff agent --rotate-server-certificates`: the kubelet API serves the certificate it was given
# (skiff node-kubeconfig --node-ip) while its kubernetes.io/kubelet-serving CSR waits (nothing
# approves it by itself, as in Kubernetes); after `kubectl certificate approve` the same running
# agent serves the issued certificate (CN system:node:NODE, its address as SAN) to new
# connections; a restarted agent serves the kept one at once and asks for nothing.
# Everything in a network namespace of its own.
# Usage: serving_cert_e2e_test.sh SKIFF_BINARY
set -euo pipefail
skiff=$1
if [[ -z ${SKIFF_SERVING_E2E_IN_NETNS:-} ]]; then
  if [[ $(id -u) != 0 ]] || ! command -v runc >/dev/null; then
    echo "SKIP: needs root and runc"
    exit 77
  fi
  SKIFF_SERVING_E2E_IN_NETNS=1 exec unshare --net "$0" "$@"
fi
ip link set lo up

work=$(mktemp -d /tmp/skiff-e2e-serving.XXXXXX)
server_pid=
agent_pid=
cleanup() {
  for pid in $agent_pid $server_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  echo "--- agent log" >&2; cat "$work/agent.log" >&2 || true
  exit 1
}
wait_eq() {
  local want=$1 what=$2 got=
  shift 2
  for _ in $(seq 200); do
    got=$("$@" 2>/dev/null || true)
    [[ $got == "$want" ]] && return 0
    sleep 0.1
  done
  fail "$what: got '$got', want '$want'"
}

"$skiff" server --data-dir "$work/data" --secure-port 0 >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  grep -q "control loops running" "$work/server.log" 2>/dev/null && break
  sleep 0.1
done
grep -q "control loops running" "$work/server.log" || fail "the server did not start"
export KUBECONFIG="$work/data/admin.kubeconfig"
"$skiff" node-kubeconfig serve-1 --data-dir "$work/data" --node-ip 127.0.0.1 >/dev/null ||
  fail "skiff node-kubeconfig"
node_kc="$work/data/pki/nodes/serve-1.kubeconfig"
port=$((20000 + RANDOM % 20000))

start_agent() {
  "$skiff" agent --kubeconfig "$node_kc" --data-dir "$work/agent" --run-dir "$work/run" \
    --image-root "$work/images" --pod-log-dir "$work/logs" --pod-cidr 10.252.0.0/24 \
    --bridge skiffsv0 --cgroup-parent /skiff-e2e-serving-$$ --proxy-mode none --node-ip 127.0.0.1 \
    --kubelet-port "$port" --kubelet-cert-file "$work/data/pki/nodes/serve-1-kubelet.crt" \
    --kubelet-key-file "$work/data/pki/nodes/serve-1-kubelet.key" \
    --rotate-server-certificates >>"$work/agent.log" 2>&1 &
  agent_pid=$!
}
served() {  # the leaf certificate the kubelet API presents
  openssl s_client -connect "127.0.0.1:$port" </dev/null 2>/dev/null | openssl x509 2>/dev/null
}
serving_csrs() {
  kubectl get csr --field-selector spec.signerName=kubernetes.io/kubelet-serving -o name | wc -l
}

start_agent
wait_eq "1" "a kubelet-serving CSR" serving_csrs
csr=$(kubectl get csr --field-selector spec.signerName=kubernetes.io/kubelet-serving \
  -o jsonpath='{.items[0].metadata.name}')
[[ $(kubectl get csr "$csr" -o jsonpath='{.spec.username}') == system:node:serve-1 ]] ||
  fail "the CSR's requester"
given=$(openssl x509 <"$work/data/pki/nodes/serve-1-kubelet.crt")
wait_eq "$given" "the given certificate served" served
sleep 2
[[ -z $(kubectl get csr "$csr" -o jsonpath='{.status.conditions}') ]] || fail "the CSR was approved by itself"
[[ $(served) == "$given" ]] || fail "the served certificate changed before approval"

kubectl certificate approve "$csr" >/dev/null
issued=$(for _ in $(seq 100); do
  c=$(kubectl get csr "$csr" -o jsonpath='{.status.certificate}')
  [[ -n $c ]] && { echo "$c" | base64 -d | openssl x509; break; }
  sleep 0.1
done)
[[ -n $issued ]] || fail "no certificate issued"
wait_eq "$issued" "the issued certificate served without a restart" served
subject=$(served | openssl x509 -noout -subject -ext subjectAltName 2>/dev/null | tr '\n' ' ')
[[ $subject == *"CN = system:node:serve-1"* && $subject == *"IP Address:127.0.0.1"* ]] ||
  fail "served certificate: $subject"
grep -q "serving certificate: $csr issued; serving it" "$work/agent.log" || fail "no 'issued' line"

# A restart serves the kept certificate and asks for no new one.
kill -TERM "$agent_pid"
wait "$agent_pid" || fail "skiff agent did not exit cleanly"
start_agent
wait_eq "$issued" "the kept certificate served after a restart" served
sleep 1
[[ $(serving_csrs) == 1 ]] || fail "a restarted agent asked again"
kill -TERM "$agent_pid"
wait "$agent_pid" || fail "skiff agent did not exit cleanly"
agent_pid=
echo "PASS"

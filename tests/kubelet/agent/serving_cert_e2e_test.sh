#!/usr/bin/env bash
# `skiff agent --rotate-server-certificates`: the kubelet API serves the certificate it was given
# (skiff node-kubeconfig --node-ip) while its kubernetes.io/kubelet-serving CSR waits (nothing
# approves it by itself, as in Kubernetes); after `kubectl certificate approve` the same running
# agent serves the issued certificate (CN system:node:NODE, its address as SAN) to new
# connections; a restarted agent serves the kept one at once and asks for nothing.
# Then, as the kubelet without --tls-cert-file and without rotation: `--cert-dir DIR` alone makes
# a self-signed DIR/kubelet.crt (CN HOSTNAME@SECONDS, then its CA) and kubelet.key, serves it over
# HTTPS, and a restarted agent serves the same pair.
# Everything in a network namespace of its own.
# Usage: serving_cert_e2e_test.sh SKIFF_BINARY
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib/e2e.sh"
skiff=$1
e2e_require_root "runc"
e2e_require_tools runc
e2e_in_netns "$@"

e2e_workdir serving
agent_pid=
fail_log "agent log" "$work/agent.log"

start_server server "$work/data"
on_exit 'stop_pids $agent_pid'
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

# The self-signed pair in --cert-dir.
start_self_signed() {
  "$skiff" agent --kubeconfig "$node_kc" --data-dir "$work/agent2" --run-dir "$work/run2" \
    --image-root "$work/images" --pod-log-dir "$work/logs2" --pod-cidr 10.252.0.0/24 \
    --bridge skiffsv1 --cgroup-parent /skiff-e2e-serving-$$ --proxy-mode none --node-ip 127.0.0.1 \
    --kubelet-port "$port" --cert-dir "$work/certs" >>"$work/agent.log" 2>&1 &
  agent_pid=$!
}
start_self_signed
wait_eq "yes" "the self-signed kubelet.crt" bash -c "[[ -s '$work/certs/kubelet.crt' ]] && echo yes"
made=$(openssl x509 <"$work/certs/kubelet.crt")
wait_eq "$made" "the self-signed certificate served" served
[[ $(stat -c %a "$work/certs/kubelet.key") == 600 ]] || fail "kubelet.key mode $(stat -c %a "$work/certs/kubelet.key")"
host=$(hostname | tr '[:upper:]' '[:lower:]')
info=$(served | openssl x509 -noout -subject -issuer -ext subjectAltName,extendedKeyUsage 2>/dev/null | tr '\n' ' ')
[[ $info =~ "subject=CN = $host@"[0-9]+" " && $info =~ "issuer=CN = $host-ca@"[0-9]+" " ]] ||
  fail "self-signed subject and issuer: $info"
[[ $info == *"DNS:$host"* && $info == *"DNS:serve-1"* && $info == *"IP Address:127.0.0.1"* &&
   $info == *"TLS Web Server Authentication"* ]] || fail "self-signed SANs and usage: $info"
# kubelet.crt: the serving certificate, then the CA that signed it.
[[ $(grep -c "BEGIN CERTIFICATE" "$work/certs/kubelet.crt") == 2 ]] || fail "kubelet.crt is not leaf + CA"
awk '/BEGIN CERT/{n++} n==2' "$work/certs/kubelet.crt" >"$work/ca.crt"
openssl verify -CAfile "$work/ca.crt" <(served) >/dev/null || fail "the served certificate is not signed by kubelet.crt's CA"
grep -q "self-signed serving certificate $work/certs/kubelet.crt (made now)" "$work/agent.log" ||
  fail "no 'made now' line"
kill -TERM "$agent_pid"
wait "$agent_pid" || fail "skiff agent did not exit cleanly"
start_self_signed
wait_eq "$made" "the kept self-signed certificate served after a restart" served
grep -q "self-signed serving certificate $work/certs/kubelet.crt (kept)" "$work/agent.log" ||
  fail "no 'kept' line"
kill -TERM "$agent_pid"
wait "$agent_pid" || fail "skiff agent did not exit cleanly"
agent_pid=
echo "PASS"

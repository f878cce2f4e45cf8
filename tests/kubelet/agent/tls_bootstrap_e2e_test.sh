#!/usr/bin/env bash
# Kubelet TLS bootstrap with the real binaries: `skiff server`, `skiff token create/list`,
# `skiff bootstrap-kubeconfig`, the real kubectl (get csr, certificate approve and deny, auth
# whoami) and a hollow `skiff agent --bootstrap-kubeconfig` that joins with a bootstrap token: its
# CSR is approved by csrapproving and signed by csrsigning, it writes its node kubeconfig and its
# Node turns Ready under the Node authorizer. An expired bootstrap token gets 401.
# Usage: tls_bootstrap_e2e_test.sh SKIFF_BINARY
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib/e2e.sh"
skiff=$1
e2e_workdir tls-bootstrap
agent_pid=
fail_log "agent log" "$work/agent.log"
fail_log "server log (tail)" "$work/server.log" 40

start_server server "$work/data"
on_exit 'stop_pids $agent_pid'
ca="$work/data/pki/ca.crt"

# A bootstrap token, kubeadm's shape.
token=$("$skiff" token create --kubeconfig "$KUBECONFIG" --ttl 1h --description e2e) || fail "token create: $token"
[[ $token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || fail "token create printed '$token'"
id=${token%%.*}
wait_eq "bootstrap.kubernetes.io/token" "the token's secret" \
  kubectl get secret -n kube-system "bootstrap-token-$id" -o jsonpath='{.type}'
"$skiff" token list --kubeconfig "$KUBECONFIG" | grep -q "^$token .*authentication,signing .*e2e" ||
  fail "token list: $("$skiff" token list --kubeconfig "$KUBECONFIG")"
if "$skiff" token create --kubeconfig "$KUBECONFIG" --ttl soon >"$work/bad.log" 2>&1; then fail "--ttl soon was taken"; fi
grep -q -- "--ttl soon" "$work/bad.log" || fail "bad ttl: $(cat "$work/bad.log")"
"$skiff" bootstrap-kubeconfig --kubeconfig "$KUBECONFIG" --token "$token" -o "$work/bootstrap.kubeconfig"
boot() { kubectl --kubeconfig "$work/bootstrap.kubeconfig" "$@"; }
expect_user=$(boot auth whoami -o jsonpath='{.status.userInfo.username}')
[[ $expect_user == "system:bootstrap:$id" ]] || fail "whoami with the token: '$expect_user'"
if boot get secrets -n kube-system >/dev/null 2>&1; then fail "a bootstrap token read secrets"; fi

# An expired token: 401.
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Secret
metadata: {name: bootstrap-token-old000, namespace: kube-system}
type: bootstrap.kubernetes.io/token
stringData:
  token-id: old000
  token-secret: 0123456789abcdef
  usage-bootstrap-authentication: "true"
  expiration: "2020-01-01T00:00:00Z"
YAML
if kubectl --kubeconfig /dev/null --server "$server_url" \
  --certificate-authority "$ca" --token old000.0123456789abcdef get csr >"$work/expired.log" 2>&1; then
  fail "an expired bootstrap token was accepted"
fi
grep -q "Unauthorized" "$work/expired.log" || fail "expired token: $(cat "$work/expired.log")"

# A CSR for a user certificate, made by the bootstrap token's user: not auto-approved.
csr_for() {
  local name=$1 cn=$2
  openssl ecparam -name prime256v1 -genkey -noout -out "$work/$name.key" 2>/dev/null
  openssl req -new -key "$work/$name.key" -subj "/O=devs/CN=$cn" -out "$work/$name.csr" 2>/dev/null
  boot apply -f - >/dev/null <<YAML
apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata: {name: $name}
spec:
  request: $(base64 -w0 <"$work/$name.csr")
  signerName: kubernetes.io/kube-apiserver-client
  expirationSeconds: 86400
  usages: [digital signature, client auth]
YAML
}
csr_for alice alice
csr_for mallory mallory
line=$(kubectl get csr alice --no-headers)
read -r name _age signer requestor duration condition <<<"$line"
[[ $name == alice && $signer == kubernetes.io/kube-apiserver-client && $requestor == "system:bootstrap:$id" &&
   $duration == 24h && $condition == Pending ]] || fail "kubectl get csr alice: '$line'"
kubectl certificate approve alice >/dev/null
wait_eq "Approved,Issued" "alice's CSR" bash -c "kubectl get csr alice --no-headers | awk '{print \$6}'"
kubectl get csr alice -o jsonpath='{.status.certificate}' | base64 -d >"$work/alice.crt"
openssl verify -CAfile "$ca" "$work/alice.crt" >/dev/null || fail "alice's certificate does not verify"
subject=$(openssl x509 -in "$work/alice.crt" -noout -subject -nameopt compat)
[[ $subject == "subject=/O=devs/CN=alice" ]] || fail "alice's subject: $subject"
openssl x509 -in "$work/alice.crt" -noout -ext extendedKeyUsage | grep -q "TLS Web Client Authentication" ||
  fail "alice's certificate is not for client auth"
who=$(kubectl --kubeconfig /dev/null --server "$server_url" \
  --certificate-authority "$ca" --client-certificate "$work/alice.crt" --client-key "$work/alice.key" \
  auth whoami -o jsonpath='{.status.userInfo.username}')
[[ $who == alice ]] || fail "whoami with alice's certificate: '$who'"
# The bootstrapper may not approve.
if boot certificate approve mallory >"$work/bad.log" 2>&1; then fail "the bootstrap token approved a CSR"; fi
grep -q "forbidden" "$work/bad.log" || fail "approve by the bootstrap token: $(cat "$work/bad.log")"
kubectl certificate deny mallory >/dev/null
wait_eq "Denied" "mallory's CSR" bash -c "kubectl get csr mallory --no-headers | awk '{print \$6}'"
sleep 1
[[ -z $(kubectl get csr mallory -o jsonpath='{.status.certificate}') ]] || fail "a denied CSR was signed"

# A hollow node joins with the bootstrap kubeconfig.
"$skiff" agent --bootstrap-kubeconfig "$work/bootstrap.kubeconfig" --kubeconfig "$work/node/kubelet.kubeconfig" \
  --node-name joined --hollow --node-lease-renew-interval 1 >"$work/agent.log" 2>&1 &
agent_pid=$!
wait_eq "True" "node joined Ready" kubectl get node joined -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'
[[ $(stat -c %a "$work/node/kubelet.kubeconfig") == 600 ]] || fail "the node kubeconfig is not private"
node_csr=$(kubectl get csr --no-headers | awk -v r="system:bootstrap:$id" '$1 ~ /^node-csr-/ && $4 == r {print $1 "=" $6}')
[[ $node_csr == node-csr-*=Approved,Issued ]] || fail "the node's CSR: '$node_csr' in $(kubectl get csr)"
kubectl get csr "${node_csr%%=*}" -o jsonpath='{.status.conditions[0].reason}' | grep -q AutoApproved ||
  fail "the node's CSR was not auto-approved"
whoami_node=$(kubectl --kubeconfig "$work/node/kubelet.kubeconfig" auth whoami -o jsonpath='{.status.userInfo.username}')
[[ $whoami_node == "system:node:joined" ]] || fail "the node kubeconfig is '$whoami_node'"
grep -E "403 .*(system:node:joined|node 'joined')" "$work/server.log" && fail "node joined was refused"
kill -TERM "$agent_pid"
wait "$agent_pid" || fail "the agent did not exit cleanly"
agent_pid=
echo PASS

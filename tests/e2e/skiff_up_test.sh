#!/usr/bin/env bash
# The main job end to end: `skiff up` starts a single-node cluster (control plane, kubelet on runc,
# eBPF socket load balancer), `skiff apply -f examples/` deploys three busybox httpd replicas behind
# a ClusterIP and a NodePort Service, and requests through the load balancer reach every backend:
# from a host process run with `skiff lb exec`, and from inside a pod. Then the bad-input cases (a
# second `skiff up` on the same data dir, a port in use) and a clean shutdown that leaves no pod,
# network namespace, bridge, cgroup or BPF pin behind.
# Usage: skiff_up_test.sh SKIFF_BINARY SOURCE_DIR    (root: runc, namespaces, BPF)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/e2e.sh"
skiff=$1
source_dir=$2
e2e_require_root
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

e2e_workdir up
tag=$$
bridge=skup$((tag % 100000))
cgroup=/skiff-e2e-up-$tag
run_dir=$work/run
pin_dir=/sys/fs/bpf/skiff-e2e-up-$tag
up_pid=
kubelet_port=$(free_port)
up_args=(--data-dir "$work/data" --secure-port 0 --kubelet-port "$kubelet_port" --image-root "$work/images" --pod-cidr 10.252.0.0/24
  --service-cluster-ip-range 10.98.0.0/16 --node-name up-e2e --bridge "$bridge"
  --cgroup-parent "$cgroup" --run-dir "$run_dir" --bpf-pin-dir "$pin_dir")
on_exit '"$skiff" cleanup --agent-data-dir "$work/data/agent" --bridge "$bridge" --cgroup-parent "$cgroup" \
  --run-dir "$run_dir" --bpf-pin-dir "$pin_dir" >/dev/null 2>&1'
on_exit 'if [[ -n $up_pid ]]; then kill -INT "$up_pid" 2>/dev/null; wait "$up_pid" 2>/dev/null; fi'
fail_log "skiff up log" "$work/up.log"

"$source_dir"/examples/images/make-httpd-image.sh "$skiff" "$work/images" >/dev/null

start=$(date +%s%N)
"$skiff" up "${up_args[@]}" >"$work/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 300); do
  grep -q "cluster up in" "$work/up.log" && break
  kill -0 "$up_pid" 2>/dev/null || fail "skiff up exited"
  sleep 0.1
done
grep -q "cluster up in" "$work/up.log" || fail "the node did not become Ready"
echo "skiff up ready after $(( ($(date +%s%N) - start) / 1000000 )) ms"
export KUBECONFIG=$work/data/admin.kubeconfig
[[ -f $KUBECONFIG ]] || fail "no admin kubeconfig at $KUBECONFIG"

# The node agent is a kubelet with an identity of its own: its only credential is the node
# kubeconfig skiff up wrote, a client certificate for system:node:up-e2e (group system:nodes) from
# the cluster CA and no token, so everything the agent does below (registration, Lease, pod
# status, volumes, tokens, events, the proxier's watches) passes the Node authorizer and
# NodeRestriction. Another node's objects and unrelated secrets are refused with Kubernetes' 403.
node_kc=$work/data/pki/nodes/up-e2e.kubeconfig
agent_cmd=
for child in $(pgrep -P "$up_pid"); do
  cmd=$(tr '\0' ' ' <"/proc/$child/cmdline" 2>/dev/null || true)
  [[ $cmd == *" agent "* ]] && agent_cmd=$cmd
done
[[ $agent_cmd == *" --kubeconfig $node_kc "* ]] || fail "the agent does not run with $node_kc: '$agent_cmd'"
grep -q 'token' "$node_kc" && fail "the node kubeconfig holds a token"
subject=$(kubectl config view --kubeconfig "$node_kc" --raw -o jsonpath='{.users[0].user.client-certificate-data}' |
  base64 -d | openssl x509 -noout -subject -nameopt RFC2253)
[[ $subject == "subject=CN=system:node:up-e2e,O=system:nodes" ]] || fail "node certificate subject '$subject'"
whoami=$(kubectl --kubeconfig "$node_kc" auth whoami -o jsonpath='{.status.userInfo.username} {.status.userInfo.groups}')
[[ $whoami == 'system:node:up-e2e ["system:nodes","system:authenticated"]' ]] || fail "node whoami: '$whoami'"
kubectl create secret generic unrelated --from-literal=k=v >/dev/null
got=$(kubectl --kubeconfig "$node_kc" get secret unrelated 2>&1) && fail "the node read an unrelated secret"
[[ $got == *'secrets "unrelated" is forbidden: User "system:node:up-e2e" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node '"'up-e2e'"' and this object'* ]] ||
  fail "the node's get of an unrelated secret: '$got'"
got=$(kubectl --kubeconfig "$node_kc" create -f - <<<'{"apiVersion":"v1","kind":"Node","metadata":{"name":"other-node"}}' 2>&1) &&
  fail "the node created another Node"
[[ $got == *"node 'up-e2e' cannot modify node 'other-node'"* ]] || fail "the node creating another Node: '$got'"

# Bad input: a second skiff up on the same data dir says who holds it, and changes nothing.
set +e
second=$("$skiff" up "${up_args[@]}" 2>&1)
code=$?
set -e
[[ $code == 1 && $second == *"another skiff up (pid $up_pid) is running on $work/data"* ]] ||
  fail "second skiff up: exit $code: $second"
# ... and so does one on another data dir that would share the node's runtime state.
set +e
second=$("$skiff" up --data-dir "$work/other" --secure-port 0 --run-dir "$run_dir" 2>&1)
code=$?
set -e
[[ $code == 1 && $second == *"another skiff up (pid $up_pid) is running on $run_dir"* ]] ||
  fail "skiff up on the same run dir: exit $code: $second"

"$skiff" apply -f "$source_dir/examples/" >/dev/null
"$skiff" wait --for=condition=Available deployment/web --timeout=90s >/dev/null ||
  { "$skiff" get pods -o wide; "$skiff" describe pods; fail "the Deployment did not become Available"; }
ready=$("$skiff" get pods -l app=web -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}')
[[ $ready == "True True True " ]] || fail "pods Ready: '$ready'"
cluster_ip=$("$skiff" get service web -o jsonpath='{.spec.clusterIP}')
[[ $cluster_ip == 10.98.* ]] || fail "ClusterIP '$cluster_ip' not from the service range"
node_ip=$("$skiff" get node up-e2e -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')

# The EndpointSlice controller and the proxier need a moment after the pods turned Ready.
for _ in $(seq 50); do
  timeout 3 "$skiff" lb exec --cgroup "/sys/fs/cgroup/unified$cgroup" -- wget -qO- "http://$cluster_ip/" \
    >/dev/null 2>&1 && break
  sleep 0.2
done

# From a host process in Skiff's cgroup subtree: 30 requests, all answered, by all three pods.
declare -A seen=()
for i in $(seq 30); do
  body=$(timeout 3 "$skiff" lb exec --cgroup "/sys/fs/cgroup/unified$cgroup" -- wget -qO- "http://$cluster_ip/") ||
    fail "request $i to $cluster_ip failed"
  [[ $body == "hello from web-"* ]] || fail "request $i: unexpected answer '$body'"
  seen[$body]=1
done
[[ ${#seen[@]} == 3 ]] || fail "30 requests reached ${#seen[@]} backends: ${!seen[*]}"

# The NodePort on the node's address.
body=$(timeout 3 "$skiff" lb exec --cgroup "/sys/fs/cgroup/unified$cgroup" -- wget -qO- "http://$node_ip:30080/") ||
  fail "NodePort $node_ip:30080 failed"
[[ $body == "hello from web-"* ]] || fail "NodePort answer '$body'"

# The load balancer's per-backend counters (pinned maps): the web backends took new connections.
"$skiff" lb backends --pin-dir "$pin_dir" -o json >"$work/backends.json" || fail "skiff lb backends"
python3 - "$work/backends.json" <<'PY' || fail "per-backend counters: $(cat "$work/backends.json")"
import json, sys
doc = json.load(open(sys.argv[1]))
rows = doc if isinstance(doc, list) else next(v for v in doc.values() if isinstance(v, list))
counted = [r for r in rows if any(k.startswith("new") and v for k, v in r.items() if isinstance(v, int))]
assert len(counted) >= 3, rows
PY

# Logs through the apiserver and the node's kubelet API, with real kubectl and with skiff.
pod=$("$skiff" get pods -l app=web -o jsonpath='{.items[0].metadata.name}')
logs=$(kubectl logs "$pod" 2>&1) || fail "kubectl logs $pod: $logs"
[[ $logs == *"serving $pod on :8080"* ]] || fail "kubectl logs $pod: '$logs'"
[[ $("$skiff" logs "$pod" --tail 1 --timestamps 2>&1) == 20*"serving $pod on :8080" ]] ||
  fail "skiff logs --tail 1 --timestamps: '$("$skiff" logs "$pod" --tail 1 --timestamps 2>&1)'"

# The kubelet API itself, as a user reaches it: no credentials 401; a ServiceAccount token goes to
# the apiserver (TokenReview) and each request is authorized there (SubjectAccessReview of
# nodes/proxy): 403 without RBAC, the log with a ClusterRole granting nodes/proxy.
container=$(kubectl get pod "$pod" -o jsonpath='{.spec.containers[0].name}')
kubelet_url="https://127.0.0.1:$kubelet_port/containerLogs/default/$pod/$container"
kubelet_get() {  # TOKEN -> "CODE BODY"
  local code
  code=$(curl -s -o "$work/kubelet.out" -w '%{http_code}' --cacert "$work/data/pki/ca.crt" \
    ${1:+-H "Authorization: Bearer $1"} "$kubelet_url") || fail "curl $kubelet_url: exit $?"
  echo "$code $(cat "$work/kubelet.out")"
}
[[ $(kubelet_get "") == "401 Unauthorized" ]] || fail "kubelet API without credentials: '$(kubelet_get "")'"
kubectl create serviceaccount kubelet-reader >/dev/null || fail "create serviceaccount kubelet-reader"
kubectl create serviceaccount kubelet-nobody >/dev/null || fail "create serviceaccount kubelet-nobody"
kubectl create clusterrole kubelet-proxy --verb=get --resource=nodes/proxy >/dev/null ||
  fail "create clusterrole kubelet-proxy"
kubectl create clusterrolebinding kubelet-reader --clusterrole=kubelet-proxy \
  --serviceaccount=default:kubelet-reader >/dev/null || fail "create clusterrolebinding kubelet-reader"
got=$(kubelet_get "$(kubectl create token kubelet-reader)")
[[ $got == "200 "*"serving $pod on :8080"* ]] || fail "kubelet API with nodes/proxy: '$got'"
got=$(kubelet_get "$(kubectl create token kubelet-nobody)")
[[ $got == "403 Forbidden (user=system:serviceaccount:default:kubelet-nobody, verb=get, resource=nodes, subresource(s)=[proxy])" ]] ||
  fail "kubelet API without RBAC: '$got'"

# From inside a pod (the pods' cgroups are under the same subtree), with skiff exec.
body=$(timeout 10 "$skiff" exec "$pod" -- wget -qO- "http://$cluster_ip/") ||
  fail "request from pod $pod failed: $body"
[[ $body == "hello from web-"* ]] || fail "answer inside the pod: '$body'"

# Exec through the apiserver and the node's kubelet API (WebSocket, v5.channel.k8s.io), with real
# kubectl and with skiff: output, stdout and stderr apart, exit codes, stdin.
expect_exec() {  # WANT_CODE WANT_STDOUT WANT_STDERR_PART CMD...
  local want_code=$1 want_out=$2 want_err=$3 got_code=0
  shift 3
  timeout 20 "$@" >"$work/exec.out" 2>"$work/exec.err" </dev/null || got_code=$?
  [[ $got_code == "$want_code" && $(cat "$work/exec.out") == "$want_out" &&
     $(cat "$work/exec.err") == *"$want_err"* ]] ||
    fail "$*: exit $got_code (want $want_code), stdout '$(cat "$work/exec.out")' (want '$want_out'), stderr '$(cat "$work/exec.err")' (want '*$want_err*')"
}
for client in kubectl "$skiff"; do
  expect_exec 0 "$pod" "" "$client" exec "$pod" -- hostname
  expect_exec 0 "out" "err" "$client" exec "$pod" -- sh -c 'echo out; echo err >&2'
  expect_exec 3 "" "command terminated with exit code 3" "$client" exec "$pod" -- sh -c 'exit 3'
  expect_exec 0 "$pod" "" "$client" exec "$pod" -c httpd -- hostname
  got=$(printf 'line one\nline two\n' | timeout 20 "$client" exec -i "$pod" -- sh -c 'cat; echo done') ||
    fail "$client exec -i: exit $?: '$got'"
  [[ $got == $'line one\nline two\ndone' ]] || fail "$client exec -i: stdin came back as '$got'"
  # Bad input: a missing pod, a missing container, a command the image does not have.
  expect_exec 1 "" 'pods "nosuch" not found' "$client" exec nosuch -- true
  expect_exec 1 "" "container nosuch is not valid for pod $pod" "$client" exec "$pod" -c nosuch -- true
  expect_exec 1 "" '"/bin/nosuch": stat /bin/nosuch: no such file or directory' \
    "$client" exec "$pod" -- /bin/nosuch
done

# The pod's ServiceAccount token (admission's kube-api-access-* projected volume, written by the
# kubelet from a TokenRequest bound to the pod), the cluster CA (the kube-root-ca.crt ConfigMap
# the root CA publisher keeps) and the namespace; the apiserver accepts the token (TokenReview).
sa_dir=/var/run/secrets/kubernetes.io/serviceaccount
token=$(timeout 10 "$skiff" exec "$pod" -- cat $sa_dir/token) || fail "no token in $pod: $token"
[[ $(timeout 10 "$skiff" exec "$pod" -- cat $sa_dir/namespace) == default ]] || fail "no namespace file in $pod"
timeout 10 "$skiff" exec "$pod" -- cat $sa_dir/ca.crt >"$work/pod-ca.crt" || fail "no ca.crt in $pod"
cmp -s "$work/pod-ca.crt" "$work/data/pki/ca.crt" || fail "the pod's ca.crt is not the cluster CA"
admin_token=$(kubectl config view --raw -o jsonpath='{.users[0].user.token}')
server=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.server}')
curl -sf --cacert "$work/data/pki/ca.crt" -H "Authorization: Bearer $admin_token" \
  -H 'Content-Type: application/json' -X POST "$server/apis/authentication.k8s.io/v1/tokenreviews" \
  -d '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"'"$token"'"}}' \
  >"$work/review.json" || fail "TokenReview of the pod's token failed"
python3 - "$work/review.json" <<'PY' || fail "TokenReview: $(cat "$work/review.json")"
import json, sys
status = json.load(open(sys.argv[1]))["status"]
assert status.get("authenticated") is True, status
assert status["user"]["username"] == "system:serviceaccount:default:default", status
PY
# ... and as a bearer token it is the pod's ServiceAccount, which RBAC lets see nothing.
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/pod-ca.crt" -H "Authorization: Bearer $token" \
  "$server/api/v1/namespaces/default/secrets")
[[ $code == 403 ]] || fail "the pod's token listing secrets: HTTP $code (want 403)"

# In-cluster access to the apiserver: the default/kubernetes Service (the first address of the
# service range, 443 to the apiserver's port on the pod bridge's gateway, where skiff up has the
# apiserver listen besides 127.0.0.1, and nowhere else), the service environment variables in
# every container, and HTTPS from the pod's network namespace through the load balancer to
# https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT with the pod's token, verified against
# the pod's ca.crt (the image's busybox wget has no TLS this apiserver accepts: curl in the pod's
# namespace and cgroup subtree instead).
[[ $("$skiff" get service kubernetes -o jsonpath='{.spec.clusterIP} {.spec.ports[0].name} {.spec.ports[0].port}') == "10.98.0.1 https 443" ]] ||
  fail "the kubernetes Service: $("$skiff" get service kubernetes -o yaml)"
api_port=${server##*:}
[[ $("$skiff" get endpointslice kubernetes -o jsonpath='{.endpoints[*].addresses[*]} {.ports[0].port}') == "10.252.0.1 $api_port" ]] ||
  fail "the kubernetes EndpointSlice: $("$skiff" get endpointslice kubernetes -o yaml)"
listening=$(ss -Hltn "sport = :$api_port" | awk '{print $4}' | sort | tr '\n' ' ')
[[ $listening == "10.252.0.1:$api_port 127.0.0.1:$api_port " ]] || fail "the apiserver listens on: $listening"
env=$(timeout 10 "$skiff" exec "$pod" -- env) || fail "env in $pod: $env"
for want in KUBERNETES_SERVICE_HOST=10.98.0.1 KUBERNETES_SERVICE_PORT=443 KUBERNETES_SERVICE_PORT_HTTPS=443 \
  KUBERNETES_PORT=tcp://10.98.0.1:443 KUBERNETES_PORT_443_TCP=tcp://10.98.0.1:443 \
  KUBERNETES_PORT_443_TCP_PROTO=tcp KUBERNETES_PORT_443_TCP_PORT=443 KUBERNETES_PORT_443_TCP_ADDR=10.98.0.1; do
  grep -qx "$want" <<<"$env" || fail "$pod lacks $want: $env"
done
uid=$("$skiff" get pod "$pod" -o jsonpath='{.metadata.uid}')
for url in "https://10.98.0.1:443/api" "https://kubernetes.default.svc:443/api"; do
  got=$(nsenter --net="$run_dir/netns/$uid" timeout 10 "$skiff" lb exec --cgroup "/sys/fs/cgroup/unified$cgroup" -- \
    curl -sS --cacert "$work/pod-ca.crt" --resolve kubernetes.default.svc:443:10.98.0.1 \
    -H "Authorization: Bearer $token" "$url" 2>&1) || fail "$url from $pod's network namespace: $got"
  [[ $got == *'"kind":"APIVersions"'* ]] || fail "$url from $pod's network namespace: '$got'"
done

# A rolling update driven by real kubectl under a request loop: no request fails.
loop() {
  local ok=0 bad=0
  while [[ ! -e $work/stop-loop ]]; do
    if timeout 3 "$skiff" lb exec --cgroup "/sys/fs/cgroup/unified$cgroup" -- wget -qO- "http://$cluster_ip/" >/dev/null 2>&1; then
      ok=$((ok + 1))
    else
      bad=$((bad + 1))
    fi
  done
  echo "$ok $bad" >"$work/loop"
}
loop &
loop_pid=$!
sleep 1
kubectl rollout restart deployment/web >/dev/null
kubectl rollout status deployment/web --timeout=90s >/dev/null || fail "kubectl rollout status failed"
sleep 1
touch "$work/stop-loop"
wait "$loop_pid"
read -r ok bad <"$work/loop"
echo "rolling update: $ok requests answered, $bad failed"
((ok >= 10)) || fail "only $ok requests during the rolling update"
((bad == 0)) || fail "$bad of $((ok + bad)) requests failed during the rolling update"

# kubectl scale: two backends left, and only they answer.
kubectl scale deployment/web --replicas=2 >/dev/null
for _ in $(seq 150); do
  [[ $("$skiff" get pods -l app=web -o name | wc -l) == 2 ]] && break
  sleep 0.2
done
[[ $("$skiff" get pods -l app=web -o name | wc -l) == 2 ]] || fail "scale to 2 left $("$skiff" get pods -l app=web -o name)"
names=$("$skiff" get pods -l app=web -o jsonpath='{.items[*].metadata.name}')
sleep 0.5
for i in $(seq 20); do
  body=$(timeout 3 "$skiff" lb exec --cgroup "/sys/fs/cgroup/unified$cgroup" -- wget -qO- "http://$cluster_ip/") ||
    fail "request $i after scaling down failed"
  [[ " $names " == *" ${body#hello from } "* ]] || fail "answer from '$body', not one of: $names"
done

# The first pod's token was bound to it: once the rolling update has removed the pod, the token
# is refused.
for _ in $(seq 150); do "$skiff" get pod "$pod" >/dev/null 2>&1 || break; sleep 0.2; done
"$skiff" get pod "$pod" >/dev/null 2>&1 && fail "pod $pod still there 30 s after the rolling update"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/pod-ca.crt" -H "Authorization: Bearer $token" \
  "$server/api/v1/namespaces/default/secrets")
[[ $code == 401 ]] || fail "the token of the deleted pod $pod: HTTP $code (want 401)"

# Nothing the agent asked for was refused (only the two refusals above name its user; the
# apiserver logs each refusal).
grep -F '403 ' "$work/up.log" | grep -qF '/secrets/unrelated' || fail "the node's refusal was not logged"
denied=$(grep -F '403 ' "$work/up.log" | grep -E "system:node:up-e2e|node 'up-e2e'" | grep -vF '/secrets/unrelated' | grep -vF 'other-node' || true)
[[ -z $denied ]] || fail "the node agent was refused: $denied"

# Shutdown: every pod, namespace, veth, bridge, cgroup and pin goes.
kill -INT "$up_pid"
for _ in $(seq 300); do kill -0 "$up_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$up_pid" 2>/dev/null && fail "skiff up did not stop within 30 s"
wait "$up_pid" || fail "skiff up exited with $?"
up_pid=
[[ -z $(runc --root "$run_dir/runc" list -q 2>/dev/null) ]] || fail "containers left: $(runc --root "$run_dir/runc" list -q)"
[[ -z $(ls -A "$run_dir/netns" 2>/dev/null) ]] || fail "network namespaces left: $(ls "$run_dir/netns")"
[[ ! -e /sys/class/net/$bridge ]] || fail "bridge $bridge left"
[[ -z $(ip -o link show type veth 2>/dev/null | grep -F "master $bridge") ]] || fail "veths left"
[[ ! -d /sys/fs/cgroup/unified$cgroup ]] || fail "cgroup /sys/fs/cgroup/unified$cgroup left"
[[ ! -d /sys/fs/cgroup/memory$cgroup ]] || fail "cgroup /sys/fs/cgroup/memory$cgroup left"
grep -q "removing pods" "$work/up.log" || fail "no cleanup in the log"
[[ ! -e $pin_dir ]] || fail "BPF pins left in $pin_dir: $(ls "$pin_dir")"

# Bad input: the port in use.
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(30)' >"$work/port" &
holder=$!
for _ in $(seq 50); do [[ -s $work/port ]] && break; sleep 0.1; done
port=$(cat "$work/port")
set +e
out=$("$skiff" up --data-dir "$work/data2" --secure-port "$port" --image-root "$work/images" \
  --bridge "$bridge" --cgroup-parent "$cgroup" --run-dir "$run_dir" 2>&1)
code=$?
set -e
kill "$holder"
[[ $code == 1 && $out == *"127.0.0.1:$port is in use"* ]] || fail "port in use: exit $code: $out"
echo "PASS"

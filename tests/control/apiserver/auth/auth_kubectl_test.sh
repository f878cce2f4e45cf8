#!/usr/bin/env bash
# The real apiserver (`skiff apiserver`) driven by the real kubectl: a ServiceAccount token from
# the TokenRequest API, RBAC through a Role and RoleBinding, `kubectl auth can-i` and `whoami`, a
# client certificate from the cluster CA, forged and revoked tokens refused with 401.
# Usage: auth_kubectl_test.sh SKIFF_BINARY
set -euo pipefail
skiff=$1
work=$(mktemp -d /tmp/skiff-auth-kubectl.XXXXXX)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; echo "--- server log" >&2; cat "$work/server.log" >&2; exit 1; }
expect_eq() { [[ "$1" == "$2" ]] || fail "$3: got '$1', want '$2'"; }

"$skiff" apiserver --data-dir "$work/data" --secure-port 0 >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  grep -q "admin kubeconfig" "$work/server.log" && break
  sleep 0.1
done
url=$(grep -o 'https://127.0.0.1:[0-9]*' "$work/server.log" | head -1) || fail "the server did not start"
ca="$work/data/pki/ca.crt"
k() { kubectl --kubeconfig "$work/data/admin.kubeconfig" "$@"; }
# A client with nothing but a bearer token (no kubeconfig user).
as_token() { local t=$1; shift; kubectl --kubeconfig /dev/null --server "$url" --certificate-authority "$ca" --token "$t" "$@"; }

# The signing key is made on first start, private.
[[ $(stat -c %a "$work/data/pki/sa.key") == 600 ]] || fail "sa.key is not private"
# The bootstrap policy is there.
expect_eq "$(k get clusterrole cluster-admin view edit admin -o name | tr '\n' ' ')" \
  "clusterrole.rbac.authorization.k8s.io/cluster-admin clusterrole.rbac.authorization.k8s.io/view clusterrole.rbac.authorization.k8s.io/edit clusterrole.rbac.authorization.k8s.io/admin " \
  "bootstrap cluster roles"

k apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: builder, namespace: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: team-a}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: builder-reads-pods, namespace: team-a}
subjects:
- kind: ServiceAccount
  name: builder
  namespace: team-a
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: pod-reader
YAML

# The TokenRequest API (serviceaccounts/builder/token) signs a JWT for the ServiceAccount.
token=$(k -n team-a create token builder --duration=1h) || fail "kubectl create token"
[[ $(tr -cd . <<<"$token" | wc -c) == 2 ]] || fail "the token is not a JWT: $token"

expect_eq "$(as_token "$token" auth whoami -o jsonpath='{.status.userInfo.username}')" \
  "system:serviceaccount:team-a:builder" "whoami"

# Allowed in its namespace, forbidden in another, with Kubernetes' message.
as_token "$token" -n team-a get pods >"$work/out" 2>&1 || fail "get pods in team-a: $(cat "$work/out")"
if as_token "$token" -n team-b get pods >"$work/out" 2>&1; then fail "get pods in team-b was allowed"; fi
grep -qF 'pods is forbidden: User "system:serviceaccount:team-a:builder" cannot list resource "pods" in API group "" in the namespace "team-b"' "$work/out" \
  || fail "403 message: $(cat "$work/out")"
if as_token "$token" -n team-a get secrets >"$work/out" 2>&1; then fail "get secrets was allowed"; fi
grep -qF 'secrets is forbidden' "$work/out" || fail "secrets 403: $(cat "$work/out")"

# kubectl auth can-i (SelfSubjectAccessReview).
expect_eq "$(as_token "$token" auth can-i list pods -n team-a)" "yes" "can-i list pods in team-a"
expect_eq "$(as_token "$token" auth can-i list pods -n team-b || true)" "no" "can-i list pods in team-b"
expect_eq "$(as_token "$token" auth can-i delete pods -n team-a || true)" "no" "can-i delete pods"
expect_eq "$(k auth can-i '*' '*')" "yes" "the admin may do everything"
# SubjectAccessReview: the admin asks about the builder (what a webhook or the kubelet asks).
admin_token=$(k config view --raw -o jsonpath='{.users[0].user.token}')
sar() {
  curl -s --cacert "$ca" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
    -d '{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"system:serviceaccount:team-a:builder","groups":["system:serviceaccounts"],"resourceAttributes":{"namespace":"'"$2"'","verb":"get","resource":"pods"}}}' \
    "$url/apis/authorization.k8s.io/v1/subjectaccessreviews" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"].get("allowed", False))'
}
expect_eq "$(sar "$admin_token" team-a)" "True" "SubjectAccessReview in team-a"
expect_eq "$(sar "$admin_token" team-b)" "False" "SubjectAccessReview in team-b"
# The builder itself may not ask about others.
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{}' "$url/apis/authorization.k8s.io/v1/subjectaccessreviews")" \
  "403" "SubjectAccessReview by the builder"

# A forged token (our claims, another signature) and garbage: 401 with a Status body, logged.
forged="${token%.*}.$(head -c 64 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"
if as_token "$forged" -n team-a get pods >"$work/out" 2>&1; then fail "a forged token was accepted"; fi
grep -q "Unauthorized" "$work/out" || fail "forged token: $(cat "$work/out")"
status=$(curl -s --cacert "$ca" -H "Authorization: Bearer $forged" -w ' %{http_code}' "$url/api/v1/namespaces/team-a/pods")
[[ $status == *'"kind":"Status"'*'"code":401'*' 401' ]] || fail "forged token answer: $status"
grep -q "401 GET /api/v1/namespaces/team-a/pods .*invalid signature" "$work/server.log" || fail "the forged token was not logged"

# A client certificate signed by the cluster CA: CN is the user, O the groups.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/jane.key" \
  -subj "/CN=jane/O=developers" -out "$work/jane.csr" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' >"$work/ext"
openssl x509 -req -in "$work/jane.csr" -CA "$ca" -CAkey "$work/data/pki/ca.key" -CAcreateserial \
  -days 1 -extfile "$work/ext" -out "$work/jane.crt" 2>/dev/null
as_jane() { kubectl --kubeconfig /dev/null --server "$url" --certificate-authority "$ca" \
  --client-certificate "$work/jane.crt" --client-key "$work/jane.key" "$@"; }
expect_eq "$(as_jane auth whoami -o jsonpath='{.status.userInfo.username} {.status.userInfo.groups}')" \
  'jane ["developers","system:authenticated"]' "certificate whoami"
if as_jane -n team-b get deploy >"$work/out" 2>&1; then fail "jane listed deployments before any binding"; fi
grep -qF 'deployments.apps is forbidden: User "jane" cannot list resource "deployments" in API group "apps" in the namespace "team-b"' "$work/out" \
  || fail "jane 403: $(cat "$work/out")"
k apply -f - >/dev/null <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: developers-edit, namespace: team-b}
subjects:
- kind: Group
  name: developers
  apiGroup: rbac.authorization.k8s.io
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: edit
YAML
# The authorizer's index follows the store's watch: the binding takes effect without a restart.
for _ in $(seq 50); do
  as_jane -n team-b get deploy >/dev/null 2>&1 && break
  sleep 0.1
done
as_jane -n team-b get deploy >"$work/out" 2>&1 || fail "jane after the binding: $(cat "$work/out")"
expect_eq "$(as_jane auth can-i create deployments -n team-b)" "yes" "jane can-i create"
expect_eq "$(as_jane auth can-i create deployments -n team-a || true)" "no" "jane can-i elsewhere"

# Deleting the ServiceAccount revokes its tokens.
k -n team-a delete serviceaccount builder >/dev/null
for _ in $(seq 50); do
  as_token "$token" -n team-a get pods >/dev/null 2>&1 || break
  sleep 0.1
done
if as_token "$token" -n team-a get pods >"$work/out" 2>&1; then fail "a deleted ServiceAccount's token still works"; fi
grep -q "Unauthorized" "$work/out" || fail "revoked token: $(cat "$work/out")"

# The server kept serving.
expect_eq "$(curl -s --cacert "$ca" "$url/healthz")" "ok" "healthz"
echo PASS

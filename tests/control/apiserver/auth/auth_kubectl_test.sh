#!/usr/bin/env bash
# The real apiserver (`skiff apiserver`) driven by the real kubectl: a ServiceAccount token from
# the TokenRequest API, RBAC through a Role and RoleBinding, `kubectl auth can-i` and `whoami`, a
# client certificate from the cluster CA, forged and revoked tokens refused with 401, RBAC's
# escalation checks (escalate, bind), impersonation (kubectl --as, --as-group) and ClusterRole
# aggregation (with `skiff controller-manager`).
# Usage: auth_kubectl_test.sh SKIFF_BINARY
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../../lib/e2e.sh"
skiff=$1
e2e_workdir auth-kubectl
fail_log "server log" "$work/server.log"
expect_eq() { [[ "$1" == "$2" ]] || fail "$3: got '$1', want '$2'"; }

start_server apiserver "$work/data"
url=$server_url
cm_pid=
on_exit 'stop_pids $cm_pid'
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

# Privilege escalation (Kubernetes' RBAC registry checks): jane, edit in team-b, may also write
# Roles and RoleBindings there, but grants only what she holds herself.
k apply -f - >/dev/null <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: rbac-manager, namespace: team-b}
rules:
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, list, create, update, patch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: developers-rbac, namespace: team-b}
subjects:
- {kind: Group, name: developers, apiGroup: rbac.authorization.k8s.io}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: rbac-manager}
YAML
for _ in $(seq 50); do
  [[ $(as_jane auth can-i create roles -n team-b) == yes ]] 2>/dev/null && break
  sleep 0.1
done
# (kubectl's create role/rolebinding generators send protobuf, which Skiff does not read: apply.)
jane_role() { as_jane apply -f - <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: $1, namespace: team-b}
rules:
- {apiGroups: [""], resources: [$2], verbs: [$3]}
YAML
}
jane_binding() { as_jane apply -f - <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: $1, namespace: team-b}
subjects:
- {kind: User, name: bob, apiGroup: rbac.authorization.k8s.io}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: $2}
YAML
}
jane_role pod-killer pods delete >"$work/out" 2>&1 \
  || fail "jane could not grant what she holds: $(cat "$work/out")"
if jane_role ns-deleter namespaces delete >"$work/out" 2>&1; then
  fail "jane granted namespaces/delete, which she does not hold"
fi
grep -qF 'roles.rbac.authorization.k8s.io "ns-deleter" is forbidden: user "jane" (groups=["developers" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:' "$work/out" \
  || fail "escalation 403: $(cat "$work/out")"
grep -qF '{APIGroups:[""], Resources:["namespaces"], Verbs:["delete"]}' "$work/out" \
  || fail "escalation 403 names the missing rule: $(cat "$work/out")"
jane_binding bob-view view >"$work/out" 2>&1 \
  || fail "jane could not bind view: $(cat "$work/out")"
if jane_binding bob-admin admin >"$work/out" 2>&1; then
  fail "jane bound admin"
fi
grep -qF 'rolebindings.rbac.authorization.k8s.io "bob-admin" is forbidden: user "jane"' "$work/out" \
  || fail "bind 403: $(cat "$work/out")"
# A patch that adds a rule is an update: checked the same way.
if as_jane -n team-b patch role pod-killer --type=json \
  -p '[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["nodes"],"verbs":["get"]}}]' >"$work/out" 2>&1; then
  fail "a patch escalated"
fi
grep -qF 'is attempting to grant RBAC permissions not currently held' "$work/out" || fail "patch 403: $(cat "$work/out")"
# With `escalate` on roles and `bind` on the ClusterRole admin she may.
k apply -f - >/dev/null <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: escalator, namespace: team-b}
rules:
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles]
  verbs: [escalate]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterroles]
  verbs: [bind]
  resourceNames: [admin]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: jane-escalates, namespace: team-b}
subjects:
- {kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: escalator}
YAML
for _ in $(seq 50); do
  jane_role ns-deleter namespaces delete >"$work/out" 2>&1 && break
  sleep 0.1
done
as_jane -n team-b get role ns-deleter >/dev/null 2>&1 || fail "escalate did not allow the role: $(cat "$work/out")"
jane_binding bob-admin admin >"$work/out" 2>&1 || fail "bind did not allow the binding: $(cat "$work/out")"

# Impersonation (kubectl --as, --as-group): the admin may; jane only as far as `impersonate` says.
expect_eq "$(k auth whoami --as=bob --as-group=testers -o jsonpath='{.status.userInfo.username} {.status.userInfo.groups}')" \
  'bob ["testers","system:authenticated"]' "admin --as bob"
expect_eq "$(k auth can-i list pods -n team-b --as=bob)" "yes" "bob may list pods in team-b (view)"
expect_eq "$(k auth can-i list pods -n team-a --as=bob || true)" "no" "bob may not in team-a"
if as_jane -n team-b get pods --as=bob >"$work/out" 2>&1; then fail "jane impersonated bob unasked"; fi
grep -qF 'users "bob" is forbidden: User "jane" cannot impersonate resource "users" in API group "" at the cluster scope' "$work/out" \
  || fail "impersonation 403: $(cat "$work/out")"
k apply -f - >/dev/null <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: impersonate-bob}
rules:
- apiGroups: [""]
  resources: [users]
  verbs: [impersonate]
  resourceNames: [bob]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: jane-impersonates-bob}
subjects:
- {kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: impersonate-bob}
YAML
for _ in $(seq 50); do
  as_jane auth whoami --as=bob >/dev/null 2>&1 && break
  sleep 0.1
done
expect_eq "$(as_jane auth whoami --as=bob -o jsonpath='{.status.userInfo.username} {.status.userInfo.groups}')" \
  'bob ["system:authenticated"]' "jane --as bob"
# As bob she has bob's rights, not hers: bob's bindings in team-b, nothing in team-a.
as_jane -n team-b get pods --as=bob >"$work/out" 2>&1 || fail "jane as bob lists pods: $(cat "$work/out")"
if as_jane -n team-a get configmaps --as=bob >"$work/out" 2>&1; then fail "bob listed team-a"; fi
grep -qF 'configmaps is forbidden: User "bob" cannot list resource "configmaps" in API group "" in the namespace "team-a"' "$work/out" \
  || fail "as bob 403: $(cat "$work/out")"
# A group she may not take on.
if as_jane -n team-b get pods --as=bob --as-group=system:masters >"$work/out" 2>&1; then fail "jane became system:masters"; fi
grep -qF 'groups "system:masters" is forbidden: User "jane" cannot impersonate resource "groups" in API group "" at the cluster scope' "$work/out" \
  || fail "group impersonation 403: $(cat "$work/out")"
# A service account: its groups come with it.
expect_eq "$(k auth whoami --as=system:serviceaccount:team-a:builder -o jsonpath='{.status.userInfo.groups}')" \
  '["system:serviceaccounts","system:serviceaccounts:team-a","system:authenticated"]' "--as a service account"
expect_eq "$(k auth can-i list pods -n team-a --as=system:serviceaccount:team-a:builder)" "yes" "the builder's rights by impersonation"

# ClusterRole aggregation (the controller manager's clusterrole-aggregation controller): a role
# labelled aggregate-to-view reaches view, edit (which aggregates view) and admin, and so jane,
# who is edit in team-b.
expect_eq "$(as_jane auth can-i list nodes -n team-b || true)" "no" "jane lists nodes before"
"$skiff" controller-manager --kubeconfig "$work/data/admin.kubeconfig" \
  --controllers clusterrole-aggregation >"$work/cm.log" 2>&1 &
cm_pid=$!
k apply -f - >/dev/null <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: nodes-view
  labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}
rules:
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch]
YAML
has_nodes() { k get clusterrole "$1" -o jsonpath='{.rules[*].resources}' | grep -qw nodes; }
for role in view edit admin; do
  for _ in $(seq 100); do
    has_nodes "$role" && break
    sleep 0.1
  done
  has_nodes "$role" || { cat "$work/cm.log" >&2; fail "the nodes rule did not reach $role"; }
done
expect_eq "$(k get clusterrole view -o jsonpath='{.aggregationRule.clusterRoleSelectors[0].matchLabels}')" \
  '{"rbac.authorization.k8s.io/aggregate-to-view":"true"}' "view's aggregationRule"
for _ in $(seq 50); do
  [[ $(as_jane auth can-i list nodes -n team-b) == yes ]] && break
  sleep 0.1
done
expect_eq "$(as_jane auth can-i list nodes -n team-b)" "yes" "jane lists nodes through edit"
k delete clusterrole nodes-view >/dev/null
for _ in $(seq 100); do
  has_nodes edit || break
  sleep 0.1
done
has_nodes edit && fail "the nodes rule stayed in edit"
for _ in $(seq 50); do
  [[ $(as_jane auth can-i list nodes -n team-b || true) == no ]] && break
  sleep 0.1
done
expect_eq "$(as_jane auth can-i list nodes -n team-b || true)" "no" "the nodes rule left edit"

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

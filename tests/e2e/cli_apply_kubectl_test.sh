#!/usr/bin/env bash
# `skiff apply` and the real `kubectl apply` of the same manifests leave the same stored objects
# (client-side and server-side apply), and bad input is refused whole, with its place, as kubectl
# would refuse it.
# Usage: cli_apply_kubectl_test.sh SKIFF_BINARY SOURCE_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/e2e.sh"
skiff=$1
source_dir=$2
fixtures=$source_dir/tests/fixtures/cli
e2e_workdir cli-apply
fail_log "server log (tail)" "$work/server.log" 20
expect_eq() { [[ "$1" == "$2" ]] || fail "$3: got '$1', want '$2'"; }

start_server apiserver "$work/data"
k() { kubectl "$@"; }
s() { "$skiff" "$@"; }

s create namespace by-skiff >/dev/null
s create namespace by-kubectl >/dev/null

# Version 1, then the same again (nothing to do), then version 2.
s apply -n by-skiff -f "$fixtures/v1" >"$work/s1"
k apply -n by-kubectl -f "$fixtures/v1" >"$work/k1"
expect_eq "$(cat "$work/s1")" "$(cat "$work/k1")" "first apply output"
expect_eq "$(cat "$work/s1" | tr '\n' ' ')" \
  "configmap/app-config created deployment.apps/shop created service/shop created " "first apply"
s apply -n by-skiff -f "$fixtures/v1" >"$work/s1b"
expect_eq "$(cat "$work/s1b" | tr '\n' ' ')" \
  "configmap/app-config unchanged deployment.apps/shop unchanged service/shop unchanged " "re-apply"
s apply -n by-skiff -f "$fixtures/v2/app.yaml" >"$work/s2"
k apply -n by-kubectl -f "$fixtures/v2/app.yaml" >"$work/k2"
expect_eq "$(cat "$work/s2")" "$(cat "$work/k2")" "second apply output"
expect_eq "$(cat "$work/s2" | tr '\n' ' ')" \
  "configmap/app-config configured deployment.apps/shop configured service/shop configured secret/shop-secret created " \
  "second apply"
# kubectl applying over what skiff applied has nothing to change, and the other way round.
expect_eq "$(k apply -n by-skiff -f "$fixtures/v2/app.yaml" | tr '\n' ' ')" \
  "configmap/app-config unchanged deployment.apps/shop unchanged service/shop unchanged secret/shop-secret unchanged " \
  "kubectl over skiff"
expect_eq "$(s apply -n by-kubectl -f "$fixtures/v2/app.yaml" | tr '\n' ' ')" \
  "configmap/app-config unchanged deployment.apps/shop unchanged service/shop unchanged secret/shop-secret unchanged " \
  "skiff over kubectl"

# The stored objects are the same, but for identity, times, allocations and the namespace.
normalize() {
  python3 -c '
import json, sys
ns = sys.argv[1]
o = json.load(sys.stdin)
m = o["metadata"]
for f in ("uid", "creationTimestamp", "resourceVersion", "managedFields", "namespace", "selfLink"):
    m.pop(f, None)
ann = m.get("annotations", {})
key = "kubectl.kubernetes.io/last-applied-configuration"
if key in ann:
    ann[key] = ann[key].replace("\"namespace\":\"%s\"" % ns, "\"namespace\":\"NS\"")
spec = o.get("spec", {})
for f in ("clusterIP", "clusterIPs"):
    spec.pop(f, None)
print(json.dumps(o, indent=1, sort_keys=True))' "$1"
}
for obj in configmap/app-config deployment/shop service/shop secret/shop-secret; do
  k get -n by-skiff "$obj" -o json | normalize by-skiff >"$work/a.json"
  k get -n by-kubectl "$obj" -o json | normalize by-kubectl >"$work/b.json"
  diff -u "$work/b.json" "$work/a.json" >"$work/diff" || fail "$obj differs (kubectl vs skiff): $(cat "$work/diff")"
done
grep -q '"image": "skiff.local/busybox-httpd:1.36"' "$work/a.json" 2>/dev/null ||
  k get -n by-skiff deploy shop -o json | grep -q 'busybox-httpd:1.36' || fail "v2 image"
expect_eq "$(k get -n by-skiff deploy shop -o jsonpath='{.spec.template.spec.containers[*].name} {.spec.strategy.type} {.spec.template.spec.containers[0].env[*].name}')" \
  "web Recreate MODE" "v2 deployment"

# --dry-run=server changes nothing and says so.
sed 's/replicas: 2/replicas: 5/' "$fixtures/v2/app.yaml" >"$work/v3.yaml"
s apply -n by-skiff -f "$work/v3.yaml" --dry-run=server >"$work/dry"
grep -qx "deployment.apps/shop configured (server dry run)" "$work/dry" || fail "dry run: $(cat "$work/dry")"
expect_eq "$(k get -n by-skiff deploy shop -o jsonpath='{.spec.replicas}')" "2" "dry run left replicas"

# Bad input applies nothing: an unknown field (with its file, line and path), broken YAML, and an
# object the server refuses after another that would have been fine.
s create namespace bad >/dev/null
if s apply -n bad -f "$fixtures/bad/unknown-field.yaml" 2>"$work/err"; then fail "unknown field applied"; fi
grep -q 'unknown-field.yaml:23:9: spec.template.spec.containers\[0\].imagePullPolcy: unknown field' "$work/err" ||
  fail "unknown field message: $(cat "$work/err")"
if s apply -n bad -f "$fixtures/bad/broken.yaml" 2>"$work/err"; then fail "broken yaml applied"; fi
grep -q 'broken.yaml:[0-9]*:[0-9]*: ' "$work/err" || fail "broken yaml message: $(cat "$work/err")"
if s apply -n bad -f "$fixtures/bad/server-invalid.yaml" 2>"$work/err"; then fail "invalid service applied"; fi
grep -q 'Error from server (Invalid): error when creating "[^"]*server-invalid.yaml:[0-9]*:1"' "$work/err" ||
  fail "server refusal message: $(cat "$work/err")"
grep -q 'nothing was applied' "$work/err" || fail "no 'nothing was applied': $(cat "$work/err")"
if s apply -n bad -f "$fixtures/bad" 2>"$work/err"; then fail "bad directory applied"; fi
expect_eq "$(k get -n bad cm,deploy,svc -o name 2>/dev/null | grep -v kube-root-ca || true)" "" "objects after bad applies"

# Prune: an object made by apply that is no longer in the files is deleted.
s apply -n by-skiff -f "$fixtures/v1" --prune -l app=shop >"$work/prune"
grep -qx "secret/shop-secret pruned" "$work/prune" && fail "pruned an object without the label"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  labels: {app: shop}\n' >"$work/extra.yaml"
s apply -n by-skiff -f "$work/extra.yaml" >/dev/null
s apply -n by-skiff -f "$fixtures/v1" --prune -l app=shop >"$work/prune"
grep -qx "configmap/extra pruned" "$work/prune" || fail "prune: $(cat "$work/prune")"
k get -n by-skiff cm extra 2>/dev/null && fail "pruned configmap still there"

# Server-side apply: skiff and kubectl leave the same objects (managedFields included, but for the
# managers' names and times); a field `kubectl scale` took is a conflict for both, and
# --force-conflicts takes it back.
s create namespace ssa-skiff >/dev/null
s create namespace ssa-kubectl >/dev/null
s apply --server-side -n ssa-skiff -f "$fixtures/v1" >"$work/ss1"
k apply --server-side -n ssa-kubectl -f "$fixtures/v1" >"$work/ks1"
expect_eq "$(cat "$work/ss1")" "$(cat "$work/ks1")" "server-side apply output"
expect_eq "$(tr '\n' ' ' <"$work/ss1")" \
  "configmap/app-config serverside-applied deployment.apps/shop serverside-applied service/shop serverside-applied " \
  "server-side apply"
normalize_ssa() {
  python3 -c '
import json, sys
o = json.load(sys.stdin)
m = o["metadata"]
for f in ("uid", "creationTimestamp", "resourceVersion", "namespace", "selfLink"):
    m.pop(f, None)
for e in m.get("managedFields", []):
    e.pop("time", None)
    e["manager"] = e["manager"].replace("kubectl", "MANAGER").replace("skiff", "MANAGER")
spec = o.get("spec", {})
for f in ("clusterIP", "clusterIPs"):
    spec.pop(f, None)
print(json.dumps(o, indent=1, sort_keys=True))'
}
for obj in configmap/app-config deployment/shop service/shop; do
  k get -n ssa-skiff "$obj" -o json --show-managed-fields | normalize_ssa >"$work/a.json"
  k get -n ssa-kubectl "$obj" -o json --show-managed-fields | normalize_ssa >"$work/b.json"
  diff -u "$work/b.json" "$work/a.json" >"$work/diff" || fail "server-side $obj differs (kubectl vs skiff): $(cat "$work/diff")"
done
grep -q '"operation": "Apply"' "$work/a.json" || fail "no Apply entry: $(cat "$work/a.json")"
grep -q 'last-applied-configuration' "$work/a.json" && fail "server-side apply wrote the last-applied annotation"
# A dry run of a changed manifest changes nothing.
sed 's/replicas: 3/replicas: 4/' "$fixtures/v1/app.yaml" >"$work/ssa4.yaml"
expect_eq "$(k apply --server-side --dry-run=server -n ssa-kubectl -f "$work/ssa4.yaml" | grep deployment)" \
  "deployment.apps/shop serverside-applied (server dry run)" "server-side dry run output"
expect_eq "$(k get -n ssa-kubectl deploy shop -o jsonpath='{.spec.replicas}')" "3" "server-side dry run left replicas"
for ns in ssa-kubectl ssa-skiff; do
  k scale -n "$ns" deployment/shop --replicas=5 >/dev/null
  if [[ $ns == ssa-kubectl ]]; then
    k apply --server-side -n "$ns" -f "$fixtures/v1" >"$work/out" 2>"$work/err" && fail "kubectl apply over kubectl scale did not conflict"
  else
    s apply --server-side -n "$ns" -f "$fixtures/v1" >"$work/out" 2>"$work/err" && fail "skiff apply over kubectl scale did not conflict"
    grep -q "nothing was applied" "$work/err" || fail "skiff conflict: $(cat "$work/err")"
  fi
  grep -q 'Apply failed with 1 conflict: conflict with "kubectl[a-z-]*" with subresource "scale" using apps/v1: .spec.replicas' "$work/err" ||
    fail "$ns conflict message: $(cat "$work/err")"
  expect_eq "$(k get -n "$ns" deploy shop -o jsonpath='{.spec.replicas}')" "5" "$ns replicas after the conflict"
done
k apply --server-side --force-conflicts -n ssa-kubectl -f "$fixtures/v1" >/dev/null
s apply --server-side --force-conflicts -n ssa-skiff -f "$fixtures/v1" >/dev/null
for ns in ssa-kubectl ssa-skiff; do
  expect_eq "$(k get -n "$ns" deploy shop -o jsonpath='{.spec.replicas}')" "3" "$ns replicas after --force-conflicts"
done
for obj in deployment/shop; do
  k get -n ssa-skiff "$obj" -o json --show-managed-fields | normalize_ssa >"$work/a.json"
  k get -n ssa-kubectl "$obj" -o json --show-managed-fields | normalize_ssa >"$work/b.json"
  diff -u "$work/b.json" "$work/a.json" >"$work/diff" || fail "forced $obj differs (kubectl vs skiff): $(cat "$work/diff")"
done
# kubectl get shows no managedFields unless asked.
k get -n ssa-skiff deploy shop -o yaml | grep -q managedFields && fail "kubectl get -o yaml showed managedFields"

# Errors: an unknown kind, an unreachable server, a missing kubeconfig.
if s get foo 2>"$work/err"; then fail "get foo succeeded"; fi
expect_eq "$(cat "$work/err")" 'error: the server doesn'"'"'t have a resource type "foo"' "unknown kind"
sed 's#server: https://127.0.0.1:[0-9]*#server: https://127.0.0.1:1#' "$KUBECONFIG" >"$work/dead.kubeconfig"
if s get pods --kubeconfig "$work/dead.kubeconfig" 2>"$work/err"; then fail "unreachable server"; fi
expect_eq "$(wc -l <"$work/err")" "1" "one line for an unreachable server"
grep -q "127.0.0.1:1" "$work/err" || fail "unreachable message: $(cat "$work/err")"
if s get pods --kubeconfig "$work/none.kubeconfig" 2>"$work/err"; then fail "missing kubeconfig"; fi
grep -q "none.kubeconfig" "$work/err" || fail "missing kubeconfig message: $(cat "$work/err")"
echo "cli apply e2e: all checks passed"

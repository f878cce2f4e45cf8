#!/usr/bin/env bash
# Drives a running `skiff apiserver` with the real kubectl: what a user does first.
# Usage: kubectl_apiserver_test.sh SKIFF_BINARY SOURCE_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/e2e.sh"
skiff=$1
source_dir=$2
e2e_workdir kubectl
fail_log "server log" "$work/server.log"
expect_eq() { [[ "$1" == "$2" ]] || fail "$3: got '$1', want '$2'"; }

start_server apiserver "$work/data"
url=$server_url
# HTTPS with the CA and admin token the server made on its first start, as a user gets them.
kubeconfig="$work/data/admin.kubeconfig"
[[ $(stat -c %a "$kubeconfig") == 600 ]] || fail "admin.kubeconfig is not private"
k() { kubectl --kubeconfig "$kubeconfig" "$@"; }

# Anonymous requests are refused, except health and version.
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/data/pki/ca.crt" "$url/api/v1/pods")" "401" "anonymous list"
expect_eq "$(curl -s --cacert "$work/data/pki/ca.crt" "$url/healthz")" "ok" "anonymous healthz"

expect_eq "$(k version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["major"])')" \
  "1" "server version"
# Output is captured before grep reads it: grep -q would close the pipe early (SIGPIPE).
# Aggregated discovery: with an empty cache kubectl learns every group from /api and /apis alone,
# no request per group version.
discovery=$(k get deploy --cache-dir "$work/cache" -v=6 2>&1)
grep -q 'GET https://127.0.0.1:[0-9]*/apis?timeout' <<<"$discovery" || fail "no /apis request: $discovery"
if grep -E 'GET https://127.0.0.1:[0-9]*/apis?/[a-z0-9.]*/?v1\?timeout' <<<"$discovery"; then
  fail "kubectl fetched group versions one by one (no aggregated discovery)"
fi
resources=$(k api-resources -o name)
grep -qx "deployments.apps" <<<"$resources" || fail "api-resources lacks deployments.apps"
grep -qx "endpointslices.discovery.k8s.io" <<<"$resources" || fail "api-resources lacks endpointslices"
expect_eq "$(k get ns -o name | sort | tr '\n' ' ')" \
  "namespace/default namespace/kube-node-lease namespace/kube-public namespace/kube-system " "system namespaces"

# Create the examples, read them back in several shapes.
k create -f "$source_dir/examples/web.yaml" >/dev/null
expect_eq "$(k get deploy web -o jsonpath='{.spec.replicas} {.metadata.generation}')" "3 1" "deployment fields"
expect_eq "$(k get svc -o name | tr '\n' ' ')" "service/kubernetes service/web service/web-nodeport " "services"
# Server-side tables: kubectl's columns for each kind, -o wide included.
expect_eq "$(k get deploy | head -1 | tr -s ' ')" "NAME READY UP-TO-DATE AVAILABLE AGE" "deployment columns"
grep -q "web-nodeport NodePort .* 80:30080/TCP" <<<"$(k get svc | tr -s ' ')" || fail "service row: $(k get svc)"
expect_eq "$(k get deploy -o wide | head -1 | tr -s ' ')" \
  "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR" "wide columns"
grep -q "image: skiff.local/busybox-httpd:1.35" <<<"$(k get deploy web -o yaml)" || fail "yaml output"
expect_eq "$(k get svc -l app=nothing -o name)" "" "label selector"
k create -f "$source_dir/examples/web.yaml" 2>"$work/err" && fail "a second create succeeded"
grep -q 'AlreadyExists\|already exists' "$work/err" || fail "second create: $(cat "$work/err")"

# Replace (PUT) changes the spec and bumps the generation.
k get deploy web -o json | python3 -c '
import json, sys
d = json.load(sys.stdin); d["spec"]["replicas"] = 4; json.dump(d, sys.stdout)' >"$work/web.json"
k replace -f "$work/web.json" >/dev/null
expect_eq "$(k get deploy web -o jsonpath='{.spec.replicas} {.metadata.generation}')" "4 2" "replace"

# A watch sees a change made by another client.
# The change is made once the watcher has printed the current state, and the watcher is given
# until a deadline to print the change (a fixed sleep raced a slow start on a loaded machine).
timeout 30 kubectl --kubeconfig "$kubeconfig" get deploy web -w -o jsonpath='{.spec.replicas}{"\n"}' >"$work/watch" 2>&1 &
watcher=$!
for _ in $(seq 200); do grep -qx 4 "$work/watch" && break; sleep 0.1; done
python3 -c '
import json, sys
d = json.load(open(sys.argv[1])); d["spec"]["replicas"] = 6; del d["metadata"]["resourceVersion"]
json.dump(d, open(sys.argv[2], "w"))' "$work/web.json" "$work/web6.json"
k replace -f "$work/web6.json" >/dev/null
for _ in $(seq 200); do grep -qx 6 "$work/watch" && break; sleep 0.1; done
kill "$watcher" 2>/dev/null || true
wait "$watcher" || true
grep -qx 6 "$work/watch" || fail "the watch did not see replicas 6: $(cat "$work/watch")"

# PATCH as kubectl sends it: scale (merge patch on /scale), label and annotate, the three patch types.
k scale deploy web --replicas=7 >/dev/null
expect_eq "$(k get deploy web -o jsonpath='{.spec.replicas}')" "7" "scale"
k label deploy web tier=front >/dev/null
k annotate deploy web note=hi >/dev/null
k patch deploy web --type merge -p '{"spec":{"paused":true}}' >/dev/null
k patch deploy web --type json -p '[{"op":"replace","path":"/spec/replicas","value":4}]' >/dev/null
k patch deploy web -p '{"spec":{"template":{"spec":{"containers":[{"name":"httpd","image":"x:2"}]}}}}' >/dev/null
expect_eq "$(k get deploy web -o jsonpath='{.spec.replicas} {.metadata.labels.tier} {.metadata.annotations.note} {.spec.paused} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}')" \
  "4 front hi true x:2 8080" "patches"
k label deploy web tier- >/dev/null
expect_eq "$(k get deploy web -o jsonpath='{.metadata.labels}')" '{"app":"web"}' "unlabel"

# Client-side apply: the second apply is a three-way strategic merge patch.
k delete deploy web >/dev/null
k apply -f "$source_dir/examples/web.yaml" >"$work/apply1"
grep -q "deployment.apps/web created" "$work/apply1" || fail "first apply: $(cat "$work/apply1")"
sed 's/replicas: 3/replicas: 2/' "$source_dir/examples/web.yaml" >"$work/web2.yaml"
k apply -f "$work/web2.yaml" >"$work/apply2"
grep -q "deployment.apps/web configured" "$work/apply2" || fail "second apply: $(cat "$work/apply2")"
grep -q "service/web unchanged" "$work/apply2" || fail "second apply: $(cat "$work/apply2")"
expect_eq "$(k get deploy web -o jsonpath='{.spec.replicas} {.metadata.generation}')" "2 2" "re-apply"

# kubectl validates through the server (OpenAPI v3 says fieldValidation is supported): a typo is
# refused with its path, on create and on apply alike.
sed 's/imagePullPolicy/imagePullPolcy/' "$work/web2.yaml" >"$work/typo.yaml"
k apply -f "$work/typo.yaml" 2>"$work/err" && fail "apply of a typo succeeded"
grep -q 'strict decoding error: unknown field "spec.template.spec.containers\[0\].imagePullPolcy"' "$work/err" ||
  fail "typo: $(cat "$work/err")"
grep -q "FIELD: replicas <integer>" <<<"$(k explain deployment.spec.replicas)" || fail "explain"
# A kind with no PATCH path in its own v3 document (autoscaling/v1 Scale) is checked through
# OpenAPI v2, which kubectl reads in protobuf: validation passes and the kind is then unmapped,
# as against kube-apiserver (there is no "scales" resource).
printf 'apiVersion: autoscaling/v1\nkind: Scale\nmetadata: {name: web, namespace: default}\nspec: {replicas: 3}\n' >"$work/scale.yaml"
k apply --server-side --subresource=scale -f "$work/scale.yaml" 2>"$work/err" && fail "apply of a Scale succeeded"
grep -q 'no matches for kind "Scale" in version "autoscaling/v1"' "$work/err" ||
  fail "Scale apply did not get past validation: $(cat "$work/err")"
k get --raw /openapi/v2 | python3 -c '
import json, sys
d = json.load(sys.stdin)
op = d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
assert op["x-kubernetes-group-version-kind"]["kind"] == "Scale", op
assert "fieldValidation" in [p["name"] for p in op["parameters"]], op
' || fail "openapi v2 JSON"

# Delete, and errors as kubectl reports them.
k delete -f "$source_dir/examples/web.yaml" >/dev/null
k get deploy web 2>"$work/err" && fail "deleted deployment still there"
grep -q 'NotFound' "$work/err" || fail "get after delete: $(cat "$work/err")"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n' >"$work/cm.yaml"
k create -n nowhere -f "$work/cm.yaml" 2>"$work/err" && fail "created in a missing namespace"
grep -q 'namespaces "nowhere" not found' "$work/err" || fail "missing namespace: $(cat "$work/err")"

# kubectl's typed generators send Kubernetes' protobuf (application/vnd.kubernetes.protobuf).
k create configmap gen-cm --from-literal=a=b >/dev/null || fail "create configmap (protobuf)"
k create secret generic gen-secret --from-literal=x=y >/dev/null || fail "create secret (protobuf)"
k create deployment gen-deploy --image=busybox:1.35 --replicas=2 >/dev/null || fail "create deployment"
k create role gen-role --verb=get --resource=pods >/dev/null || fail "create role (protobuf)"
k create rolebinding gen-rb --role=gen-role --user=jane >/dev/null || fail "create rolebinding"
k create namespace gen-ns >/dev/null || fail "create namespace (protobuf)"
k create serviceaccount gen-sa >/dev/null || fail "create serviceaccount (protobuf)"
k create job gen-job --image=busybox:1.35 -- echo hi >/dev/null || fail "create job (protobuf)"
k create service clusterip gen-svc --tcp=80:8080 >/dev/null || fail "create service (protobuf)"
expect_eq "$(k get cm gen-cm -o jsonpath='{.data.a}')" "b" "protobuf configmap data"
expect_eq "$(k get secret gen-secret -o jsonpath='{.data.x}')" "eQ==" "protobuf secret data"
expect_eq "$(k get deploy gen-deploy -o jsonpath='{.spec.replicas} {.spec.template.spec.containers[0].image}')" \
  "2 busybox:1.35" "protobuf deployment"
expect_eq "$(k get role gen-role -o jsonpath='{.rules[0].verbs[0]} {.rules[0].resources[0]}')" "get pods" \
  "protobuf role"
expect_eq "$(k get rolebinding gen-rb -o jsonpath='{.roleRef.name} {.subjects[0].name}')" "gen-role jane" \
  "protobuf rolebinding"
expect_eq "$(k get job gen-job -o jsonpath='{.spec.template.spec.containers[0].command}')" '["echo","hi"]' \
  "protobuf job"
expect_eq "$(k get svc gen-svc -o jsonpath='{.spec.ports[0].port} {.spec.ports[0].targetPort}')" "80 8080" \
  "protobuf service"
# Go's zero values that kubectl writes are not echoed back as set fields.
k get cm gen-cm -o yaml >"$work/gen-cm.yaml"
grep -q 'generateName' "$work/gen-cm.yaml" && fail "empty generateName kept: $(cat "$work/gen-cm.yaml")"
# A body that is not protobuf is a 400 that names the kind, and the server keeps serving.
code=$(curl -s -o "$work/pb.out" -w '%{http_code}' --cacert "$work/data/pki/ca.crt" \
  -H "Authorization: Bearer $(k config view --raw -o jsonpath='{.users[0].user.token}')" \
  -H 'Content-Type: application/vnd.kubernetes.protobuf' --data-binary 'not protobuf' \
  "$url/api/v1/namespaces/default/configmaps")
expect_eq "$code" "400" "malformed protobuf body"
grep -q 'ConfigMap' "$work/pb.out" || fail "malformed protobuf answer: $(cat "$work/pb.out")"
k delete ns gen-ns --wait=false >/dev/null  # no namespace controller runs here
# The typed clients ask for protobuf answers too (Accept: application/vnd.kubernetes.protobuf,...)
# and get them: kubectl decodes the created object and describe's reads from protobuf.
k create configmap pb-answer --from-literal=a=b -v=8 >"$work/pb-create.out" 2>&1 || fail "protobuf answer"
grep -q 'Response Status: 201' "$work/pb-create.out" || fail "protobuf create: $(cat "$work/pb-create.out")"
grep -A20 'Response Status: 201' "$work/pb-create.out" | grep -q 'Content-Type: application/vnd.kubernetes.protobuf' ||
  fail "create not answered in protobuf: $(cat "$work/pb-create.out")"
grep -q 'configmap/pb-answer created' "$work/pb-create.out" || fail "protobuf create output"
grep -q 'Replicas: *2 desired' <<<"$(k describe deployment gen-deploy)" || fail "describe (protobuf reads)"
token=$(k config view --raw -o jsonpath='{.users[0].user.token}')
curl -s --cacert "$work/data/pki/ca.crt" -H "Authorization: Bearer $token" \
  -H 'Accept: application/vnd.kubernetes.protobuf' "$url/api/v1/namespaces/default/configmaps/pb-answer" \
  >"$work/pb.bin"
[[ $(head -c 3 "$work/pb.bin") == k8s ]] || fail "protobuf get lacks the k8s magic"
tail -c +5 "$work/pb.bin" | protoc --decode_raw >"$work/pb.txt" || fail "protobuf get does not decode"
grep -q '"ConfigMap"' "$work/pb.txt" && grep -q '"pb-answer"' "$work/pb.txt" || fail "protobuf get: $(cat "$work/pb.txt")"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/data/pki/ca.crt" -H "Authorization: Bearer $token" \
  -H 'Accept: text/plain' "$url/api/v1/namespaces/default/configmaps")" "406" "nothing acceptable"

# Clean shutdown on SIGTERM; a restart reuses the CA and the data.
uid_before=$(k get ns default -o jsonpath='{.metadata.uid}')
kill -TERM "$server_pid"
wait "$server_pid" || fail "the server exited with an error on SIGTERM"
server_pid=
grep -q "shutting down" "$work/server.log" || fail "no shutdown message"
ca_before=$(sha256sum "$work/data/pki/ca.crt")
"$skiff" apiserver --data-dir "$work/data" --secure-port 0 >"$work/server2.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  grep -q "admin kubeconfig" "$work/server2.log" && break
  sleep 0.1
done
expect_eq "$(sha256sum "$work/data/pki/ca.crt")" "$ca_before" "CA reused"
expect_eq "$(k get ns default -o jsonpath='{.metadata.uid}')" "$uid_before" "data kept across a restart"

# Plain HTTP is there for tests, and only on loopback.
"$skiff" apiserver --data-dir "$work/plain" --secure-port 0 --plain-http --bind-address 0.0.0.0 2>"$work/err" &&
  fail "plain HTTP on 0.0.0.0 was accepted"
grep -q "only on loopback" "$work/err" || fail "plain HTTP refusal: $(cat "$work/err")"
echo "kubectl e2e: all checks passed"

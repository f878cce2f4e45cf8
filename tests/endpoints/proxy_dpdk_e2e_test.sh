#!/usr/bin/env bash
# `skiff agent --hollow --proxy-mode dpdk` programs `skiff dataplane` (EAL --no-huge --no-pci, a
# net_null port, its own file prefix) over the control socket, against `skiff server`:
# - a LoadBalancer Service with externalTrafficPolicy Local and two hollow pods: programmed with
#   both pods as backends (`skiff dataplane stats`), its health-check node port (allocated by the
#   apiserver) answers 200 with localEndpoints 2; a ClusterIP Service without pods is programmed
#   with no backends;
# - scaling to 3 reaches the data path, deleting a Service removes it;
# - the proxier's /metrics (programming latency histogram under skiff's and kube-proxy's names)
#   and /healthz on the ports given by --proxy-metrics-bind-address/--proxy-healthz-bind-address;
# - the data path restarts empty: the proxier's failed syncs are counted and its full resync
#   programs everything again.
# Usage: proxy_dpdk_e2e_test.sh SKIFF_BINARY
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/e2e.sh"
skiff=$1
e2e_require_root "DPDK EAL"
e2e_workdir proxy-dpdk
agent_pid=
dp_pid=
fail_log "agent log" "$work/agent.log"
fail_log "dataplane log" "$work/dp.log"
fail_log "server log (tail)" "$work/server.log" 30
# Polls (wait_eq) 30 s at most.
e2e_tries=300

start_server server "$work/data"
on_exit 'stop_pids $dp_pid'

sock="$work/dataplane.sock"
start_dataplane() {
  "$skiff" dataplane --socket "$sock" --metrics-port -1 -- -l 0-1 --no-huge -m 256 --no-pci \
    --no-telemetry --vdev=net_null0 --file-prefix "skiff-e2e-proxy-$$" --log-level lib.eal:error \
    >"$work/dp.log" 2>&1 &
  dp_pid=$!
  wait_until 100 "skiff dataplane did not start" grep -q "control socket" "$work/dp.log"
}
start_dataplane

# Bad input first: clear messages, exit 1.
if "$skiff" agent --kubeconfig "$KUBECONFIG" --hollow --proxy-mode dpdk \
  --proxy-metrics-bind-address 10249 >"$work/bad.log" 2>&1; then
  fail "--proxy-metrics-bind-address 10249 was accepted"
fi
grep -q -- '--proxy-metrics-bind-address: address "10249": no port' "$work/bad.log" ||
  fail "bad metrics address: $(cat "$work/bad.log")"

metrics_port=$(free_port)
healthz_port=$(free_port)
"$skiff" agent --kubeconfig "$KUBECONFIG" --hollow --node-name dpdk-node --data-dir "$work/agent" \
  --proxy-mode dpdk --dataplane-socket "$sock" \
  --proxy-metrics-bind-address "127.0.0.1:$metrics_port" \
  --proxy-healthz-bind-address "127.0.0.1:$healthz_port" >"$work/agent.log" 2>&1 &
agent_pid=$!
on_exit 'stop_pids $agent_pid'
wait_eq "True" "node Ready" \
  kubectl get node dpdk-node -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'
grep -q "DPDK service load balancer through skiff dataplane at $sock" "$work/agent.log" ||
  fail "no dpdk mode in the agent log"

"$skiff" apply -f - >/dev/null <<'YAML' || fail "skiff apply"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: busybox, command: [sleep, "3600"], ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  selector: {app: db}
  ports: [{name: pg, port: 5432}]
YAML

# The data path's view: services and their backends, by the control protocol's stats.
services() {
  "$skiff" dataplane stats --socket "$sock" | awk '/^SERVICE/ {s = 1; next} s && NF {print $1}' |
    grep -E '^default/(web|db):' | sort | tr '\n' ' ' | sed 's/ $//'
}
backends() {  # SERVICE_ID -> its backends, sorted
  "$skiff" dataplane stats --socket "$sock" --prometheus |
    sed -n "s#^skiff_dpdk_backend_packets_total{service=\"$1\",backend=\"\([^\"]*\)\".*#\1#p" |
    sort | tr '\n' ' ' | sed 's/ $//'
}
pod_backends() {
  kubectl get pods -l app=web -o jsonpath='{range .items[*]}{.status.podIP}:8080 {end}' |
    tr ' ' '\n' | grep -v '^$' | sort | tr '\n' ' ' | sed 's/ $//'
}
wait_eq "2" "pods Ready" bash -c \
  "kubectl get pods -l app=web -o jsonpath='{range .items[*]}{.status.podIP} {end}' | wc -w"
wait_eq "default/db:pg default/web:http" "services in the data path" services
wait_eq "$(pod_backends)" "web's backends" backends default/web:http
[[ $(backends default/web:http | wc -w) == 2 ]] || fail "want 2 backends: $(backends default/web:http)"
[[ -z $(backends default/db:pg) ]] || fail "db has backends: $(backends default/db:pg)"

# The health-check node port of web: allocated by the apiserver, served by the proxier.
hc_port=$(kubectl get svc web -o jsonpath='{.spec.healthCheckNodePort}')
[[ $hc_port -ge 30000 && $hc_port -le 32767 ]] || fail "healthCheckNodePort '$hc_port'"
wait_eq "200" "health-check node port" \
  curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hc_port/"
curl -s "http://127.0.0.1:$hc_port/" | python3 -c '
import json, sys
body = json.load(sys.stdin)
assert body == {"service": {"namespace": "default", "name": "web"}, "localEndpoints": 2,
                "serviceProxyHealthy": True}, body' || fail "health-check answer"

# Scaling reaches the data path; a deleted Service leaves it.
kubectl scale deploy web --replicas 3 >/dev/null
wait_eq "3" "pods after scale" bash -c \
  "kubectl get pods -l app=web -o jsonpath='{range .items[*]}{.status.podIP} {end}' | wc -w"
wait_eq "$(pod_backends)" "web's backends after scale" backends default/web:http
kubectl delete svc db >/dev/null
wait_eq "default/web:http" "services after deleting db" services

# /metrics and /healthz of the proxier.
metrics=$(curl -sf "http://127.0.0.1:$metrics_port/metrics") || fail "no /metrics"
for series in skiff_proxy_network_programming_duration_seconds_count \
  kubeproxy_network_programming_duration_seconds_count kubeproxy_sync_proxy_rules_duration_seconds_count \
  skiff_proxy_syncs_total; do
  n=$(sed -n "s/^$series \([0-9]*\)$/\1/p" <<<"$metrics")
  [[ -n $n && $n -gt 0 ]] || fail "$series: '$n'"
done
grep -q '^skiff_proxy_sync_failures_total 0$' <<<"$metrics" || fail "sync failures before restart"
grep -q '^skiff_proxy_healthcheck_node_ports 1$' <<<"$metrics" || fail "health-check ports gauge"
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$healthz_port/healthz") == 200 ]] ||
  fail "/healthz not 200"
curl -s "http://127.0.0.1:$healthz_port/healthz" | grep -q '"nodeEligible": true' || fail "healthz body"

# The data path restarts with empty tables: while it is down the proxier's syncs fail (counted);
# once it is back, the retried full sync programs the current state again.
kill -TERM "$dp_pid"
wait "$dp_pid" || fail "skiff dataplane did not exit cleanly"
dp_pid=
kubectl scale deploy web --replicas 1 >/dev/null
failures() {
  curl -s "http://127.0.0.1:$metrics_port/metrics" | sed -n 's/^skiff_proxy_sync_failures_total \([0-9]*\)$/\1/p'
}
for _ in $(seq 100); do
  [[ $(failures) -gt 0 ]] && break
  sleep 0.1
done
[[ $(failures) -gt 0 ]] || fail "no failed sync counted while the data path was down"
start_dataplane
# The hollow node confirms the graceful deletions: one pod left.
wait_eq "1" "pods after scale down" bash -c "kubectl get pods -l app=web -o name | wc -l"
wait_eq "default/web:http" "services after the data path restarted" services
wait_eq "$(pod_backends)" "web's backends after the restart" backends default/web:http

kill -TERM "$agent_pid"
wait "$agent_pid" || fail "skiff agent did not exit cleanly on SIGTERM"
agent_pid=
echo "PASS"

#!/usr/bin/env bash
# Graceful node shutdown with real runc containers: `skiff agent --shutdown-grace-period 12s
# --shutdown-grace-period-critical-pods 4s` on a private dbus-daemon (DBUS_SYSTEM_BUS_ADDRESS)
# with a fake systemd-logind (fake_logind.py) whose InhibitDelayMaxSec (5 s) is below the grace
# period first writes --logind-conf-dir/99-kubelet.conf and has logind reloaded (systemd KillUnit
# SIGHUP), then takes a delay inhibitor lock; PrepareForShutdown(true) records the kubelet's Node
# Event (Shutdown), makes the node NotReady ("node is shutting down"), stops the regular pod (preStop hook, then
# SIGTERM) before the critical one (priorityClassName system-node-critical), sets both Failed with
# reason Terminated, and only then closes the lock's fd. A pod created afterwards is rejected
# (NodeShutdown). Everything in a network namespace of its own.
# Usage: runc_shutdown_e2e_test.sh SKIFF_BINARY SOURCE_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib/e2e.sh"
skiff=$1
source_dir=$2
e2e_require_root "runc"
e2e_require_tools runc umoci
e2e_in_netns "$@"

e2e_workdir shutdown
cgroup_parent=/skiff-e2e-shutdown-$$
agent_pid=
bus_pid=
logind_pid=
on_exit 'remove_cgroups "$cgroup_parent"'
on_exit 'runc --root "$work/run/runc" list -q 2>/dev/null | while read -r id; do
  runc --root "$work/run/runc" delete -f "$id" 2>/dev/null || true
done'
on_exit 'stop_pids $bus_pid'
on_exit 'stop_pids $logind_pid'
on_exit 'exec 7>&-'
fail_log "agent log" "$work/agent.log"
fail_log "fake logind" "$work/logind.out"
fail_log "pod output" "$work/out/log"
fail_log "server log (tail)" "$work/server.log" 20
containers() { runc --root "$work/run/runc" list -q 2>/dev/null | sort | tr '\n' ' ' | sed 's/ $//'; }

# The bus and the fake logind.
cat >"$work/bus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$work/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
XML
dbus-daemon --config-file="$work/bus.conf" --print-address --nofork >"$work/bus.address" 2>/dev/null &
bus_pid=$!
wait_eq "1" "dbus-daemon address" bash -c "grep -c '^unix:path=' '$work/bus.address'"
bus=$(head -1 "$work/bus.address")
mkfifo "$work/logind.in"
# InhibitDelayMaxSec 5 s, below the grace period: the agent raises it with its drop-in in
# $work/logind.conf.d (never /etc), which the fake reads when systemd is asked to SIGHUP logind.
/usr/bin/python3 "$source_dir/tests/kubelet/agent/fake_logind.py" "$bus" 5000000 "$work/logind.conf.d" \
  <"$work/logind.in" >"$work/logind.out" 2>&1 &
logind_pid=$!
exec 7>"$work/logind.in"
wait_eq "ready" "fake logind" head -1 "$work/logind.out"

e2e_busybox_image "$source_dir" "$work/images"

start_server server "$work/data"
on_exit 'stop_pids $agent_pid'

DBUS_SYSTEM_BUS_ADDRESS=$bus "$skiff" agent --kubeconfig "$KUBECONFIG" --node-name shut-1 \
  --data-dir "$work/agent" --run-dir "$work/run" --image-root "$work/images" \
  --pod-log-dir "$work/logs" --pod-cidr 10.251.0.0/24 --bridge skiffsd0 \
  --cgroup-parent "$cgroup_parent" --proxy-mode none --kubelet-port 0 \
  --shutdown-grace-period 12s --shutdown-grace-period-critical-pods 4s \
  --logind-conf-dir "$work/logind.conf.d" >>"$work/agent.log" 2>&1 &
agent_pid=$!
ready_cond() {
  kubectl get node shut-1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'
}
wait_eq "True" "node Ready" ready_cond
# The drop-in and the reload came before the lock.
wait_eq "inhibit shutdown|skiff agent|Kubelet needs time to handle node shutdown|delay 1" \
  "the agent's inhibitor lock" sed -n 4p "$work/logind.out"
[[ $(sed -n 2,3p "$work/logind.out" | tr '\n' ,) == \
   "killunit systemd-logind.service all 1,reloaded InhibitDelayMaxUSec=12000000," ]] ||
  fail "logind reload: $(sed -n 2,3p "$work/logind.out" | tr '\n' ,)"
grep -qx "InhibitDelayMaxSec=12" "$work/logind.conf.d/99-kubelet.conf" ||
  fail "the drop-in: $(cat "$work/logind.conf.d/99-kubelet.conf")"

mkdir -p "$work/out"
: >"$work/out/log"
pod() {  # NAME PRIORITY_CLASS
  local cls=
  [[ -n $2 ]] && cls="priorityClassName: $2"
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  $cls
  terminationGracePeriodSeconds: 30
  volumes: [{name: out, hostPath: {path: "$work/out", type: Directory}}]
  containers:
  - name: main
    image: "busybox:test"
    imagePullPolicy: Never
    command: [sh, -c, "trap 'echo $1 TERM >> /out/log; exit 0' TERM; while true; do sleep 0.1; done"]
    lifecycle:
      preStop:
        exec: {command: [sh, -c, "echo $1 preStop >> /out/log"]}
    volumeMounts: [{name: out, mountPath: /out}]
YAML
}
pod web ""
pod dns system-node-critical
phase() { kubectl get pod "$1" -o jsonpath='{.status.phase}'; }
wait_eq "Running" "web Running" phase web
wait_eq "Running" "dns Running" phase dns
[[ $(containers | wc -w) == 2 ]] || fail "runc containers: '$(containers)'"

echo shutdown >&7
wait_eq "1" "the lock released" bash -c "grep -c '^released 0$' '$work/logind.out'"
# When the lock's fd was closed, both pods had run their hook and taken their SIGTERM, the
# regular one first.
got=$(tr '\n' ',' <"$work/out/log")
[[ $got == "web preStop,web TERM,dns preStop,dns TERM," ]] || fail "pod output order: '$got'"
for p in web dns; do
  got=$(kubectl get pod "$p" -o jsonpath='{.status.phase}|{.status.reason}|{.status.message}')
  [[ $got == "Failed|Terminated|Pod was terminated in response to imminent node shutdown." ]] ||
    fail "pod $p status: '$got'"
  got=$(kubectl get pod "$p" -o jsonpath='{.status.conditions[?(@.type=="DisruptionTarget")].reason}')
  [[ $got == "TerminationByKubelet" ]] || fail "pod $p DisruptionTarget: '$got'"
done
wait_eq "" "containers after the shutdown" containers
wait_eq "False|KubeletNotReady|node is shutting down" "node NotReady" kubectl get node shut-1 \
  -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}|{.status.conditions[?(@.type=="Ready")].reason}|{.status.conditions[?(@.type=="Ready")].message}'
grep -q "graceful shutdown: done, inhibitor lock released" "$work/agent.log" ||
  fail "no 'done' line in the agent log"
node_events() {
  kubectl get events -o jsonpath='{range .items[?(@.reason=="Shutdown")]}{.involvedObject.kind}/{.involvedObject.name}|{.type}|{.source.component}|{.message}{"\n"}{end}'
}
wait_eq "Node/shut-1|Normal|kubelet|Shutdown manager detected shutdown event" \
  "the kubelet's Shutdown Event" node_events

# A pod bound now (by name: the scheduler places nothing on a NotReady node) is rejected.
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: late}
spec:
  nodeName: shut-1
  containers:
  - {name: main, image: "busybox:test", imagePullPolicy: Never, command: [sleep, "3600"]}
YAML
wait_eq "Failed|NodeShutdown" "late pod rejected" kubectl get pod late \
  -o jsonpath='{.status.phase}|{.status.reason}'
[[ -z $(containers) ]] || fail "the late pod started: '$(containers)'"

kill -TERM "$agent_pid"
wait "$agent_pid" || fail "skiff agent did not exit cleanly on SIGTERM"
agent_pid=
echo "PASS"

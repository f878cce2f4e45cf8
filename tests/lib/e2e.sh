# Helpers shared by the shell end-to-end tests. Sourced, not run, from a test's directory:
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib/e2e.sh"        (tests/e2e/*.sh)
#   source "$(dirname "${BASH_SOURCE[0]}")/../../lib/e2e.sh"     (tests/kubelet/agent/*.sh)
# The test runs with `set -euo pipefail` and sets `skiff` to the binary under test. The library
# owns the EXIT trap: a test stacks what it must undo with on_exit, never with `trap ... EXIT`.
#
# Skipping (exit 77: register the test with SKIP_RETURN_CODE 77)
#   e2e_skip MESSAGE             prints "SKIP: MESSAGE" and exits 77
#   e2e_require_root [WHY]       skips unless root
#   e2e_require_tools TOOL...    skips unless every TOOL is on the PATH
#   e2e_in_netns "$@"            runs the test again in a network namespace of its own (once),
#                                then brings its loopback up
# Work directory and cleanup
#   e2e_workdir NAME             work=/tmp/skiff-e2e-NAME.XXXXXX, removed at exit unless
#                                e2e_keep_work is set (by the test, or SKIFF_E2E_KEEP=1 from outside)
#   e2e_private_skiff            copies $skiff and the skiff-shim beside it (skiff finds it there;
#                                if it is built) to $work/bin and points skiff at the copy: a
#                                rebuild of the build tree while the test runs swaps no binary
#                                under it; fails if the copy does not run
#   on_exit 'COMMANDS'           stacked: run at exit, the last registered first; variables in
#                                single quotes expand at exit; every entry runs, whatever fails
#   stop_pids PID...             kill (SIGTERM) and reap each PID given; empty ones are skipped
#   remove_cgroups PARENT        removes the (emptied) cgroup directory PARENT and those below it
#                                in every hierarchy, v1 and v2
# Failing and logging
#   log MESSAGE                  a time-stamped line on standard output
#   fail MESSAGE                 "FAIL: MESSAGE" and the diagnostics below, in order; exit 1
#   fail_log LABEL FILE [LINES]  on failure: "--- LABEL" and FILE (its last LINES lines if given)
#   on_fail 'COMMANDS'           on failure: COMMANDS, their output on standard error
# Waiting (one try every 0.1 s)
#   wait_until TRIES WHAT CMD... until CMD succeeds (its standard output discarded), else
#                                fail "WHAT"
#   wait_eq WANT WHAT CMD...     until CMD prints WANT, else fail "WHAT: got '...', want '...'";
#                                e2e_tries tries (200 unless the test sets it)
#   wait_eq_n TRIES WANT WHAT CMD...   the same with TRIES tries
# The control plane
#   start_server SUBCOMMAND DATA_DIR [ARG...]   `skiff server` or `skiff apiserver` with
#                                --data-dir DATA_DIR --secure-port 0 (a free port) and ARGs, its
#                                log in $work/server.log, stopped at exit. Waits e2e_server_tries
#                                tries (100 unless set) for it to be ready, then sets server_pid,
#                                server_url (https://127.0.0.1:PORT) and exports
#                                KUBECONFIG=DATA_DIR/admin.kubeconfig.
#   free_port                    prints a TCP port free now on every IPv4 address (0.0.0.0)
# Images
#   e2e_busybox_image SOURCE_DIR IMAGE_ROOT   builds the busybox test image from busybox-static
#                                (tests/fixtures/images) in $work/layout and imports it into
#                                IMAGE_ROOT as busybox:test

e2e_tries=${e2e_tries:-200}
e2e_keep_work=${SKIFF_E2E_KEEP:-}
e2e_server_tries=${e2e_server_tries:-100}
server_pid=
server_url=
_e2e_exit_cmds=()
_e2e_fail_cmds=()

e2e_skip() {
  echo "SKIP: $*"
  exit 77
}
e2e_require_root() {
  [[ $(id -u) == 0 ]] || e2e_skip "needs root${1:+ ($1)}"
}
e2e_require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || e2e_skip "$tool missing"
  done
}
# The marker is the script's own path, so a test started from inside another one still gets a
# namespace of its own.
e2e_in_netns() {
  if [[ ${SKIFF_E2E_NETNS_OF:-} != "$0" ]]; then
    SKIFF_E2E_NETNS_OF=$0 exec unshare --net "$0" "$@"
  fi
  ip link set lo up
}

_e2e_run_exit() {
  local i
  for ((i = ${#_e2e_exit_cmds[@]} - 1; i >= 0; i--)); do
    eval "${_e2e_exit_cmds[i]}" || true
  done
}
trap _e2e_run_exit EXIT
on_exit() {
  _e2e_exit_cmds+=("$1")
}
stop_pids() {
  local pid
  for pid in "$@"; do
    [[ -n $pid ]] || continue
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
remove_cgroups() {
  local d
  for d in /sys/fs/cgroup/*"$1" /sys/fs/cgroup/*/*"$1" /sys/fs/cgroup"$1"; do
    if [[ -d $d ]]; then find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
  done
}
e2e_workdir() {
  work=$(mktemp -d "/tmp/skiff-e2e-$1.XXXXXX")
  on_exit 'if [[ -z $e2e_keep_work ]]; then rm -rf "$work"; else echo "kept $work" >&2; fi'
}
e2e_private_skiff() {
  local shim
  shim=$(dirname "$skiff")/skiff-shim
  mkdir -p "$work/bin"
  cp "$skiff" "$work/bin/skiff"
  if [[ -e $shim ]]; then cp "$shim" "$work/bin/skiff-shim"; fi
  "$work/bin/skiff" --help >/dev/null 2>&1 || fail "$skiff does not run (being linked right now?)"
  skiff=$work/bin/skiff
}

log() {
  echo "$(date -u +%H:%M:%S.%3N) $*"
}
_e2e_show_log() {
  echo "--- $1"
  if [[ -n ${3:-} ]]; then tail -n "$3" "$2"; else cat "$2"; fi
}
fail_log() {
  _e2e_fail_cmds+=("_e2e_show_log $(printf '%q ' "$@")")
}
on_fail() {
  _e2e_fail_cmds+=("$1")
}
fail() {
  echo "FAIL: $*" >&2
  local cmd
  for cmd in "${_e2e_fail_cmds[@]}"; do
    eval "$cmd" >&2 || true
  done
  exit 1
}

wait_until() {
  local tries=$1 what=$2 _
  shift 2
  for _ in $(seq "$tries"); do
    "$@" >/dev/null && return 0
    sleep 0.1
  done
  "$@" >/dev/null || fail "$what"
}
wait_eq_n() {
  local tries=$1 want=$2 what=$3 got= _
  shift 3
  for _ in $(seq "$tries"); do
    got=$("$@" 2>/dev/null || true)
    [[ $got == "$want" ]] && return 0
    sleep 0.1
  done
  fail "$what: got '$got', want '$want'"
}
wait_eq() {
  wait_eq_n "$e2e_tries" "$@"
}

_e2e_server_ready() {
  grep -q "$1" "$work/server.log" 2>/dev/null && return 0
  kill -0 "$server_pid" 2>/dev/null || fail "skiff $2 exited before it was ready"
  return 1
}
start_server() {
  local cmd=$1 data=$2 ready
  shift 2
  case $cmd in
    server) ready="control loops running" ;;
    apiserver) ready="admin kubeconfig" ;;
    *) fail "start_server: '$cmd' is not server or apiserver" ;;
  esac
  "$skiff" "$cmd" --data-dir "$data" --secure-port 0 "$@" >"$work/server.log" 2>&1 &
  server_pid=$!
  on_exit 'stop_pids $server_pid'
  wait_until "$e2e_server_tries" "the server did not start" _e2e_server_ready "$ready" "$cmd"
  server_url=$(sed -n 's/^.*: serving \(https:\/\/[^ ]*\) .*$/\1/p' "$work/server.log" | head -1)
  [[ -n $server_url ]] || fail "no serving address in the server log"
  export KUBECONFIG=$data/admin.kubeconfig
  log "skiff $cmd ready at $server_url"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'
}

e2e_busybox_image() {
  "$1/tests/fixtures/images/make-busybox-image.sh" "$work/layout" test >/dev/null 2>&1 ||
    fail "building the busybox image"
  "$skiff" image --root "$2" import "$work/layout" --name busybox:test >/dev/null ||
    fail "importing the image"
}

#!/usr/bin/env bash
# Tests of tests/lib/e2e.sh, the e2e scripts' helpers: each case is a small script that sources
# the library, run in a child bash; its exit code and output are checked. start_server runs a fake
# `skiff` (a shell script printing what the real one prints), so no build is needed.
# Usage: e2e_lib_test.sh
set -euo pipefail
lib=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/e2e.sh
tmp=$(mktemp -d /tmp/skiff-e2e-lib-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
bad() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# run NAME SCRIPT: runs SCRIPT (after `set -euo pipefail` and the library) as $tmp/NAME.sh; sets
# code, out (standard output) and err (standard error).
run() {
  printf '#!/usr/bin/env bash\nset -euo pipefail\nsource %q\n%s\n' "$lib" "$2" >"$tmp/$1.sh"
  chmod +x "$tmp/$1.sh"
  code=0
  bash "$tmp/$1.sh" >"$tmp/$1.out" 2>"$tmp/$1.err" || code=$?
  out=$(cat "$tmp/$1.out")
  err=$(cat "$tmp/$1.err")
}
expect() {  # WHAT GOT WANT
  [[ $2 == "$3" ]] || bad "$1: got '$2', want '$3'"
}

# on_exit: last registered first, every entry run even when one fails, variables expanded at exit.
run exit_order '
x=early
on_exit "echo one"
on_exit "false; echo two"
on_exit '"'"'echo three $x'"'"'
x=late
exit 3'
expect "exit code kept" "$code" 3
expect "on_exit order" "$out" $'three late\ntwo\none'

# e2e_workdir: made under /tmp, removed at exit, after what was registered later.
run workdir '
e2e_workdir libtest
echo "$work"
[[ -d $work ]] || echo "no dir"
on_exit '"'"'[[ -d $work ]] && echo "dir still there at exit"'"'"''
expect "workdir code" "$code" 0
[[ $out == /tmp/skiff-e2e-libtest.*$'\n'"dir still there at exit" ]] || bad "workdir output: '$out'"
[[ ! -e ${out%%$'\n'*} ]] || bad "the work dir was left: ${out%%$'\n'*}"

# e2e_keep_work (or SKIFF_E2E_KEEP=1 from outside) keeps the work dir, and says where.
run keep '
e2e_workdir libtest-keep
e2e_keep_work=1
echo "$work"'
[[ -d $out && $err == "kept $out" ]] || bad "e2e_keep_work: dir '$out', stderr '$err'"
rm -rf "$out"
code=0
out=$(SKIFF_E2E_KEEP=1 bash -c "source '$lib'; e2e_workdir libtest-keep; echo \$work" 2>/dev/null) || code=$?
[[ $code == 0 && -d $out ]] || bad "SKIFF_E2E_KEEP=1: exit $code, dir '$out'"
rm -rf "$out"

# fail: the message, then the diagnostics in the order registered, on standard error; exit 1; the
# exit stack runs.
printf 'l1\nl2\nl3\n' >"$tmp/some.log"
run fail "
on_exit 'echo cleaned'
fail_log 'whole log' '$tmp/some.log'
on_fail 'echo from on_fail; false'
fail_log 'log (tail)' '$tmp/some.log' 1
fail_log 'missing' '$tmp/none.log'
fail 'it broke' 'badly'
echo 'not reached'"
expect "fail code" "$code" 1
expect "fail stdout" "$out" "cleaned"
[[ $err == "FAIL: it broke badly"$'\n'"--- whole log"$'\nl1\nl2\nl3\n'"from on_fail"$'\n'"--- log (tail)"$'\nl3\n'"--- missing"$'\n'*"none.log"* ]] ||
  bad "fail stderr: '$err'"

# wait_eq: returns once the command prints the wanted text; otherwise fails after its tries
# (e2e_tries, or wait_eq_n's), one every 0.1 s, with what it last got.
run wait_eq_ok "
count() { echo x >>'$tmp/count'; wc -l <'$tmp/count'; }
wait_eq 3 'count to 3' count
echo \"tries=\$(wc -l <'$tmp/count')\""
expect "wait_eq ok" "$code/$out" "0/tries=3"
start=$(date +%s%N)
run wait_eq_timeout "
e2e_tries=5
wait_eq want 'the thing' echo got"
ms=$((($(date +%s%N) - start) / 1000000))
expect "wait_eq timeout" "$code/$err" "1/FAIL: the thing: got 'got', want 'want'"
((ms >= 500)) || bad "wait_eq gave up after $ms ms, before 5 tries of 0.1 s"
start=$(date +%s%N)
run wait_eq_n "wait_eq_n 10 want 'ten tries' echo got"
ms=$((($(date +%s%N) - start) / 1000000))
expect "wait_eq_n timeout" "$code/$err" "1/FAIL: ten tries: got 'got', want 'want'"
((ms >= 1000)) || bad "wait_eq_n 10 gave up after $ms ms"
run wait_eq_default 'echo "$e2e_tries"'
expect "default tries" "$out" 200

# wait_until: the command's status counts (its output is discarded); one last try after the loop.
run wait_until "
wait_until 3 'the file' test -e '$tmp/flag'
echo late"
expect "wait_until fails" "$code/$err" "1/FAIL: the file"
run wait_until_ok "
( sleep 0.2; touch '$tmp/flag2' ) &
wait_until 50 'the file' ls '$tmp/flag2'
echo found"
expect "wait_until ok" "$code/$out" "0/found"

# Skips exit 77 with a SKIP line.
run skip 'e2e_skip "no frobnicator"'
expect "skip" "$code/$out" "77/SKIP: no frobnicator"
run tools 'e2e_require_tools bash no-such-tool-e2e; echo ran'
expect "require_tools" "$code/$out" "77/SKIP: no-such-tool-e2e missing"

# start_server: a fake skiff that prints the real one's lines; KUBECONFIG and server_url are set,
# the server is stopped at exit. One that exits first is a failure that says so at once.
cat >"$tmp/skiff" <<'SH'
#!/usr/bin/env bash
# fake skiff: SUBCOMMAND --data-dir DIR --secure-port 0 [--die]
[[ " $* " == *" --die "* ]] && { echo "skiff $1: cannot bind"; exit 1; }
echo "skiff $1: serving https://127.0.0.1:40123 (data in $3)"
sleep 0.3
echo "skiff $1: admin kubeconfig $3/admin.kubeconfig"
[[ $1 == server ]] && echo "skiff server: control loops running"
trap 'echo stopped >"$3.stopped"; exit 0' TERM
while true; do sleep 0.1; done
SH
chmod +x "$tmp/skiff"
for sub in server apiserver; do
  run "start_$sub" "
skiff='$tmp/skiff'
e2e_workdir libtest-server
start_server $sub '$tmp/data-$sub'
echo \"\$KUBECONFIG \$server_url\"
kill -0 \$server_pid"
  expect "start_server $sub" "$code/${out#* * ready at https://127.0.0.1:40123$'\n'}" \
    "0/$tmp/data-$sub/admin.kubeconfig https://127.0.0.1:40123"
  [[ -f $tmp/data-$sub.stopped ]] || bad "start_server $sub: the server was not stopped at exit"
done
start=$(date +%s%N)
run start_dies "
skiff='$tmp/skiff'
e2e_workdir libtest-server
fail_log 'server log' \"\$work/server.log\"
start_server server '$tmp/data-die' --die"
ms=$((($(date +%s%N) - start) / 1000000))
expect "start_server of a dying server" "$code/$err" \
  "1/FAIL: skiff server exited before it was ready"$'\n'"--- server log"$'\n'"skiff server: cannot bind"
((ms < 5000)) || bad "a dying server took $ms ms to be noticed"

# e2e_in_netns: the script runs again, once, in a network namespace of its own with only a
# loopback, up (root only: unshare --net).
if [[ $(id -u) == 0 ]] && command -v unshare >/dev/null; then
  run netns "
echo \"run \$(readlink /proc/self/ns/net)\"
e2e_in_netns a 'b c'
echo \"args \$*\"
ip -o link show | awk '{print \$2, \$9}'"
  outer=$(readlink /proc/self/ns/net)
  [[ $code == 0 && $out == "run $outer"$'\n'"run net:"*$'\n'"args a b c"$'\n'"lo: UNKNOWN" &&
     $(sed -n 2p <<<"$out") != "run $outer" ]] || bad "e2e_in_netns: exit $code: '$out' '$err'"
fi

# free_port: a port nothing listens on.
run free_port 'free_port'
[[ $out =~ ^[0-9]+$ ]] && ((out > 0 && out < 65536)) || bad "free_port: '$out'"

if ((failures > 0)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo PASS

#!/usr/bin/env bash
# `skiff bench store --backend etcd --quick` against a real etcd that serves TLS and asks for a
# client certificate (--client-cert-auth): with --etcd-cafile, --etcd-certfile and --etcd-keyfile
# it runs and prints its JSON metrics; a missing file, a certificate without its key and the
# flags without --etcd-endpoints (or with --backend sqlite) are clear errors.
# Usage: bench_store_tls_test.sh SKIFF_BINARY
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib/e2e.sh"
skiff=$1
e2e_workdir bench-store-tls
etcd_pid=
on_exit 'stop_pids $etcd_pid'
fail_log "etcd log (tail)" "$work/etcd.log" 20

# A CA, etcd's serving certificate for 127.0.0.1 and a client certificate the CA signed. (A wrong
# CA waits out the benchmark's 30 s request timeout: etcd_store_test's EtcdTls tests cover it.)
(
  cd "$work"
  key="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
  exec >openssl.log 2>&1
  openssl req -x509 $key -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca
  openssl req $key -keyout server.key -out server.csr -subj /CN=etcd
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile server.ext -out server.crt
  openssl req $key -keyout client.key -out client.csr -subj /CN=skiff
  printf 'extendedKeyUsage=clientAuth\n' >client.ext
  openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile client.ext -out client.crt
) || fail "openssl: $(cat "$work/openssl.log")"

# Two free loopback ports (client, peer).
read -r client_port peer_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
endpoint=https://127.0.0.1:$client_port
etcd --name bench-tls --data-dir "$work/etcd" \
  --listen-client-urls "$endpoint" --advertise-client-urls "$endpoint" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "bench-tls=http://127.0.0.1:$peer_port" \
  --cert-file "$work/server.crt" --key-file "$work/server.key" \
  --trusted-ca-file "$work/ca.crt" --client-cert-auth \
  --heartbeat-interval 100 --election-timeout 1000 --max-request-bytes 2097152 \
  >"$work/etcd.log" 2>&1 &
etcd_pid=$!
ready=
for _ in $(seq 200); do
  if ETCDCTL_API=3 etcdctl --endpoints "$endpoint" --cacert "$work/ca.crt" \
    --cert "$work/client.crt" --key "$work/client.key" --command-timeout 1s \
    get --consistency=l /ready >/dev/null 2>&1; then
    ready=1
    break
  fi
  kill -0 "$etcd_pid" 2>/dev/null || fail "etcd exited"
  sleep 0.1
done
[[ -n $ready ]] || fail "etcd at $endpoint did not serve reads within 20 s"

tls=(--etcd-cafile "$work/ca.crt" --etcd-certfile "$work/client.crt"
  --etcd-keyfile "$work/client.key")

# Runs skiff with the rest of the arguments and expects exit code $1 and text $2 in its output.
expect_run() {
  local want_code=$1 want_text=$2 code=0 start=$SECONDS
  shift 2
  "$skiff" "$@" >"$work/out" 2>"$work/err" || code=$?
  [[ $code == "$want_code" ]] ||
    fail "skiff $*: exit $code, want $want_code: $(cat "$work/out" "$work/err")"
  grep -qF -- "$want_text" "$work/out" "$work/err" ||
    fail "skiff $*: output lacks '$want_text': $(cat "$work/out" "$work/err")"
  echo "ok ($((SECONDS - start)) s): skiff $*"
}

bench=(bench store --backend etcd --etcd-endpoints "$endpoint")
expect_run 1 "etcd TLS: cannot read --etcd-cafile \"$work/missing.crt\"" "${bench[@]}" --quick \
  --etcd-cafile "$work/missing.crt" --etcd-certfile "$work/client.crt" \
  --etcd-keyfile "$work/client.key"
expect_run 1 "etcd TLS: cannot read --etcd-certfile \"$work/missing.crt\"" "${bench[@]}" \
  --quick --etcd-cafile "$work/ca.crt" --etcd-certfile "$work/missing.crt" \
  --etcd-keyfile "$work/client.key"
expect_run 1 "etcd TLS: cannot read --etcd-keyfile \"$work/missing.key\"" "${bench[@]}" \
  --quick --etcd-cafile "$work/ca.crt" --etcd-certfile "$work/client.crt" \
  --etcd-keyfile "$work/missing.key"
expect_run 1 "etcd TLS: --etcd-certfile and --etcd-keyfile go together (one is missing)" \
  "${bench[@]}" --quick --etcd-cafile "$work/ca.crt" --etcd-certfile "$work/client.crt"
expect_run 1 "need --backend etcd with --etcd-endpoints" bench store --backend etcd --quick \
  "${tls[@]}"
expect_run 1 "need --backend etcd with --etcd-endpoints" bench store --quick "${tls[@]}"

# The benchmark itself, over TLS with the client certificate: its JSON with the metric keys.
expect_run 0 '"suite":"store"' "${bench[@]}" --quick --runs 1 --json "${tls[@]}"
python3 - "$work/out" <<'EOF' || fail "bad JSON: $(cat "$work/out")"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc['params']['backend'] == 'etcd', doc['params']
for key in ('writes_per_second_1', 'writes_per_second_256', 'p99_ms_256',
            'watch_events_per_second'):
    value = doc['metrics'][key]
    assert type(value) in (int, float) and value > 0, '%s is %r' % (key, value)
EOF
echo "PASS: skiff bench store over TLS to $endpoint"

#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (sanitizers on) and runs each for a bounded time,
# starting from its seed corpus: FUZZ_SECONDS (the first argument, default 60) is the total, split
# evenly across the targets. Prints each target's executions (stat::number_of_executed_units); a
# crash fails the run and leaves its input (crash-*) in the build dir.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-${FUZZ_SECONDS:-60}}
build_dir=${FUZZ_BUILD_DIR:-build-fuzz}
# name:binary:max_len:corpus dirs (relative to the repository)
targets=(
  "codec:tests/control/api/api_codec_fuzz:8192:tests/fixtures/manifests tests/fixtures/fuzz/codec"
  "request:tests/control/apiserver/apiserver_request_fuzz:4096:tests/fixtures/fuzz/request"
  "patch:tests/control/apiserver/apiserver_patch_fuzz:4096:tests/fixtures/fuzz/patch"
  "dpdk_pipeline:tests/dataplane/dpdk_pipeline_fuzz:2048:tests/fixtures/fuzz/dpdk_pipeline"
)
# The XDP program through BPF_PROG_TEST_RUN needs root (and the eBPF build: libbpf, bpftool);
# FUZZ_XDP=0 leaves it out, FUZZ_XDP=1 insists on it.
xdp=${FUZZ_XDP:-auto}
if [[ $xdp == auto ]]; then
  if [[ $(id -u) == 0 ]] && { command -v bpftool >/dev/null || [[ -x /usr/sbin/bpftool ]]; }; then
    xdp=1
  else
    xdp=0
    echo "fuzz: no root or bpftool: the XDP target is left out" >&2
  fi
fi
ebpf=OFF
if [[ $xdp == 1 ]]; then
  ebpf=ON
  targets+=("xdp:tests/ebpf/ebpf_xdp_fuzz:2048:tests/fixtures/fuzz/dpdk_pipeline")
fi
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DSKIFF_FUZZ=ON \
  -DSKIFF_BUILD_BENCH=OFF -DSKIFF_WITH_DPDK=OFF -DSKIFF_WITH_EBPF=$ebpf >/dev/null
bins=()
for t in "${targets[@]}"; do
  IFS=: read -r _ bin _ _ <<<"$t"
  bins+=("$(basename "$bin")")
done
cmake --build "$build_dir" -j "${JOBS:-$(nproc)}" --target "${bins[@]}"
# The fuzz build's UBSan recovers (SkiffCompiler.cmake has no -fno-sanitize-recover for SKIFF_FUZZ):
# stop at the first report so that undefined behaviour fails the run like a crash.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
per=$((seconds / ${#targets[@]}))
((per >= 1)) || per=1
summary=()
for t in "${targets[@]}"; do
  IFS=: read -r name bin max_len dirs <<<"$t"
  corpus="$build_dir/corpus/$name"
  mkdir -p "$corpus"
  seeds=()
  for d in $dirs; do seeds+=("$root/$d"); done
  echo "fuzz: $name for ${per}s"
  log="$build_dir/fuzz-$name.log"
  if ! (cd "$build_dir" && "./$bin" -max_total_time="$per" -max_len="$max_len" -timeout=10 \
      -rss_limit_mb=4096 -print_final_stats=1 "corpus/$name" "${seeds[@]}") >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: $name FAILED (log: $log, input: $build_dir/crash-* or leak-*/timeout-*)" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  summary+=("$name: ${runs:-?} executions in ${per}s")
done
printf 'fuzz: %s\n' "${summary[@]}"

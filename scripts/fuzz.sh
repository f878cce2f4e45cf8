#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (sanitizers on) and runs each for a bounded time,
# starting from the seed corpus. A crash fails the run and leaves its input in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-60}
build_dir=${FUZZ_BUILD_DIR:-build-fuzz}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DSKIFF_FUZZ=ON \
  -DSKIFF_BUILD_BENCH=OFF -DSKIFF_WITH_DPDK=OFF -DSKIFF_WITH_EBPF=OFF >/dev/null
cmake --build "$build_dir" -j "${JOBS:-$(nproc)}" --target api_codec_fuzz
corpus="$build_dir/corpus/codec"
mkdir -p "$corpus"
echo "fuzz: api_codec_fuzz for ${seconds}s"
(cd "$build_dir" && ./tests/control/api/api_codec_fuzz -max_total_time="$seconds" -max_len=8192 \
  -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
  "corpus/codec" "$root/tests/fixtures/manifests" "$root/tests/fixtures/fuzz/codec")

#!/usr/bin/env bash
# The README's test command: installs what is missing, builds with warnings as errors, runs every
# ctest label (unit, privileged, e2e, bench-smoke), then fuzzes the decoders for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build} scripts/build.sh -DSKIFF_WERROR=ON
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "${JOBS:-$(nproc)}"
scripts/fuzz.sh "${FUZZ_SECONDS:-60}"

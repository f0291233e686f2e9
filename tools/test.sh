#!/usr/bin/env bash
# Builds everything and runs every test: unit and integration tests through ctest (GPU-labelled
# tests skip themselves without a GPU), then the libFuzzer targets from their committed seed
# corpora. Works on a fresh Debian 12 machine: installs what it needs first.
#
#   bash tools/test.sh                 # everything (CI runs exactly this)
#   MXPORT_FUZZ_SECONDS=5 bash tools/test.sh   # shorter fuzzing while developing
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FUZZ_SECONDS=${MXPORT_FUZZ_SECONDS:-60}
JOBS=${MXPORT_JOBS:-$(nproc)}

bash tools/install-deps.sh

echo "== build (g++, $JOBS jobs)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$JOBS"

echo "== fuzz (clang libFuzzer, ${FUZZ_SECONDS}s per target)"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DMXPORT_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "$JOBS"
for fuzzer in build-fuzz/fuzz/*_fuzzer; do
  name=$(basename "$fuzzer" _fuzzer)
  work=$(mktemp -d)
  echo "-- $name: $FUZZ_SECONDS s from fuzz/corpus/$name"
  "$fuzzer" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$work/" "$work" "$ROOT/fuzz/corpus/$name" \
    2>"$work/log" || { tail -50 "$work/log"; echo "fuzzer $name failed"; exit 1; }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$work/log" | sed 's/^/   /'
  rm -rf "$work"
done

echo "== benchmarks"
./build/bin/plan_benchmark
./build/bin/coordinator_load_benchmark build/bin "${MXPORT_LOAD_WORKERS:-500}" 50 \
  "${MXPORT_LOAD_SECONDS:-60}"
# local-run against cp -r on a synthetic checkpoint of MXPORT_EXPORT_BENCH_GB GB (default 4),
# with per-worker peak RSS and a full check of the output; fails only on a wrong export. Writes
# up to 2 × that at a time under build/export-bench and removes it afterwards.
/usr/bin/python3 bench/export_benchmark.py --bin build/bin --work build/export-bench \
  --gb "${MXPORT_EXPORT_BENCH_GB:-4}"

echo "== deploy checks"; bash tools/deploy-check.sh build/bin

echo "== tests (ctest)"
cd build
ctest --output-on-failure -j "$JOBS" --timeout 600

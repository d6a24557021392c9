#!/usr/bin/env bash
# README command (b): install what is missing, build every configuration the
# suite needs, and run the whole test suite. .ci/run calls this script.
#
#   release  all tests, including the long crash/fault suites (A3: 20,000
#            simulated power losses)
#   fuzz     libFuzzer targets (clang): corpus replay + HORIZON_FUZZ_SECONDS each
#   tsan     the concurrency tests (label "engine") under ThreadSanitizer
#   asan     the whole suite again under ASan + UBSan
# The run ends with one line per pass: passed, or FAILED and the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/install-deps.sh
# Test peers from npm (s3rver), pinned by package-lock.json.
[ -d node_modules/s3rver ] || npm ci --no-audit --no-fund --loglevel=error
scripts/build.sh release fuzz asan
# TSan only for the concurrency suites (a full TSan build of Beast is slow).
[ -f build-tsan/build.ninja ] || cmake --preset tsan >/dev/null
CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1 cmake --build build-tsan --target writer_test -- -j2

status=0
summary=()
# stage NAME BUILD_DIR ctest-args...: runs one ctest pass; its outcome (and
# the tests that failed) goes into the closing summary, which is the last
# thing the run prints.
stage() {
  local name=$1 dir=$2
  shift 2
  if ctest --test-dir "$dir" "$@"; then
    summary+=("$name: passed")
  else
    status=1
    summary+=("$name: FAILED: $(cut -d: -f2- "$dir/Testing/Temporary/LastTestsFailed.log" 2>/dev/null | tr '\n' ' ')")
  fi
}

echo "== release suite" >&2
stage release build -j2 --output-on-failure

echo "== fuzzing (${HORIZON_FUZZ_SECONDS:-30}s per target)" >&2
cmake -B build-fuzz -DHORIZON_FUZZ_SECONDS="${HORIZON_FUZZ_SECONDS:-30}" >/dev/null
stage fuzz build-fuzz -j2 --output-on-failure
grep -h "executions in" build-fuzz/fuzz/work/*/summary.txt 2>/dev/null || true

echo "== TSan: concurrency tests" >&2
TSAN_OPTIONS=halt_on_error=1 stage tsan build-tsan -j2 --output-on-failure -L engine

echo "== ASan+UBSan suite (elapsed so far: $(( $(date +%s) - start ))s)" >&2
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
stage asan build-asan -j2 --output-on-failure

echo "== summary ($(( $(date +%s) - start ))s)"
printf '%s\n' "${summary[@]}"
exit $status

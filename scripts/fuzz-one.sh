#!/usr/bin/env bash
# fuzz-one.sh FUZZER SEED_CORPUS WORK_DIR SECONDS
# Replays the committed seed corpus, then fuzzes for SECONDS into a scratch
# corpus. Fails on any crash, sanitizer report, leak or slow input, and prints
# the number of executions.
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 seconds=$4
rm -rf "$work" && mkdir -p "$work/corpus" "$work/artifacts"
"$fuzzer" -runs=0 "$seeds" >"$work/replay.log" 2>&1 || { cat "$work/replay.log"; echo "seed corpus replay failed"; exit 1; }
"$fuzzer" -max_total_time="$seconds" -timeout=2 -rss_limit_mb=1024 -max_len=4096 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds" >"$work/fuzz.log" 2>&1 || {
  tail -50 "$work/fuzz.log"; echo "FUZZ FINDING in $(basename "$fuzzer"): see $work/artifacts"; exit 1; }
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/fuzz.log" | grep -o '[0-9]*$' || echo '?')
echo "$(basename "$fuzzer"): $execs executions in ${seconds}s, 0 findings" | tee "$work/summary.txt"

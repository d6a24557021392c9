#!/usr/bin/env bash
# End-to-end shipping under S3 faults (RELIABILITY B1 and B2): the real
# Writer ships sealed chunks to a real S3 peer (s3rver) through
# s3_fault_proxy.py while clients append continuously.
#
# Phases (one run): baseline (no faults) -> faults (scripted: every fault
# kind once, then 30 % of requests faulty, seeded; a 1 KiB/s slow window) ->
# outage (503 with appends, then no appends: 503, then connection refused)
# -> SIGTERM with the backlog and a slow store, restart -> recovery (appends
# again) -> a second no-fault window -> padding, drain, Writer stopped.
# Checks:
#   - appends: p99 latency with faults vs the baseline of the same run
#     (printed; asserted only within a generous bound, 2 shared cores);
#   - outage: backlog grows, /health stays 200, the engine does not fail,
#     the Writer's CPU with a dead store and no appends stays < 5 % of a
#     core, attempts keep failing while the port refuses connections;
#   - SIGTERM with a backlog waits for the chunk in flight only (issue 6),
#     and the restarted Writer still has the backlog (durable ship queue);
#     SIGTERM while the store holds requests unanswered exits within the
#     shipper's grace (the store's calls are cancelled) and keeps the backlog;
#   - recovery: backlog drains to 0 within the backoff cap + a drain bound;
#     every sealed chunk is in the bucket; with the Writer stopped, a fresh
#     `reader-read` (empty cache, only STORE/HORIZON_TOKEN/HORIZON_KEY,
#     straight at s3rver) returns every acknowledged line exactly once and in
#     order (lost, duplicate, phantom, reorder, offset = 0);
#   - every fault kind was injected at least once; no secret in the log.
#
# Usage: shipping_faults.sh [SEED]
# Environment (seconds): BASELINE_SECONDS (20), FAULT_SECONDS (60),
# OUTAGE_SECONDS (45), SHIP_BACKOFF_MAX (8, the Writer's --ship-backoff-max),
# DRAIN_SECONDS (30, allowed on top of the cap), P99_RATIO_MAX (3: the
# append p99 bound is max(P99_RATIO_MAX x no-fault p99, no-fault p99 + 25 ms)),
# KEEP (a directory to copy the run's files to, for a look afterwards).
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
SEED=${1:-${SEED:-1}}
BASELINE_SECONDS=${BASELINE_SECONDS:-20}
FAULT_SECONDS=${FAULT_SECONDS:-60}
OUTAGE_SECONDS=${OUTAGE_SECONDS:-45}
SHIP_BACKOFF_MAX=${SHIP_BACKOFF_MAX:-8}
DRAIN_SECONDS=${DRAIN_SECONDS:-30}
P99_RATIO_MAX=${P99_RATIO_MAX:-3}
SLOW_SECONDS=12
AFTER_SECONDS=15
CHUNK=16384
STREAMS="/s0 /s1 /s2 /s3"
BUCKET=horizon-e2e
T_START=$(date +%s.%N)

PROXY="" LOAD="" S3PID=""
cleanup_extra() {
  [ -n "$LOAD" ] && kill "$LOAD" 2>/dev/null && wait "$LOAD" 2>/dev/null
  [ -n "$PROXY" ] && kill "$PROXY" 2>/dev/null && wait "$PROXY" 2>/dev/null
  [ -n "$S3PID" ] && kill "$S3PID" 2>/dev/null
  LOAD="" PROXY="" S3PID=""
}
keep() { [ -n "${KEEP:-}" ] && [ -d "$TMP" ] && cp -r "$TMP" "$KEEP" && echo "kept the run's files in $KEEP"; }
# Also on a failure or a ctest timeout (SIGTERM): nothing left running.
on_exit() {
  cleanup_extra
  [ -n "$WRITER_PID" ] && kill -KILL "$WRITER_PID" 2>/dev/null
  keep
  rm -rf "$TMP"
}
trap on_exit EXIT
trap 'exit 143' TERM INT
abort() { fail "$1"; [ -f "$TMP/writer.log" ] && tail -20 "$TMP/writer.log" >&2; cleanup_extra; finish; exit 1; }
ctl() { curl -sf "http://127.0.0.1:$CTL_PORT/$1" >/dev/null || fail "proxy control $1"; }
phase() { echo "$1" >"$TMP/phase.tmp" && mv "$TMP/phase.tmp" "$TMP/phase"; echo "phase $1 at +$(elapsed "$T_START") s"; }
health() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$CA" "https://$API/health"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$WRITER_PID/stat"; }

echo "shipping_faults: seed $SEED, baseline ${BASELINE_SECONDS}s, faults ${FAULT_SECONDS}s, outage ${OUTAGE_SECONDS}s," \
  "--ship-backoff-max $SHIP_BACKOFF_MAX"

# The S3 peer and the proxy in front of it.
start_s3_behind_proxy "$BUCKET" --seed "$SEED" --probability 0.3 --max-timeouts 1 \
  --counts-file "$TMP/proxy_counts.json" || abort "the S3 peer did not start"

DATA=$TMP/data
export API_LISTEN=127.0.0.1:$(free_port)  # the same port after the restart: the clients reconnect
start_writer "$DATA" --chunk-size "$CHUNK" --store "$STORE_PROXY" --ship-backoff-max "$SHIP_BACKOFF_MAX" \
  || abort "writer did not start"
for s in $STREAMS; do
  api POST /writer/create_stream "{\"Name\":\"$s\"}"
  check "create $s" 201 "$STATUS"
done

# Baseline: appends, shipping through the proxy without faults.
phase baseline
python3 "$HERE/shipping_load.py" load --data "$DATA" --api "$API" --streams "${STREAMS// /,}" \
  --phase-file "$TMP/phase" --ops "$TMP/ops.jsonl" --seed "$SEED" --chunk-size "$CHUNK" >"$TMP/load.log" 2>&1 &
LOAD=$!
sleep "$BASELINE_SECONDS"
shipped_baseline=$(metric horizon_chunks_shipped_total)
echo "baseline: $shipped_baseline chunks shipped, backlog $(metric horizon_ship_backlog_chunks)"
[ "${shipped_baseline:-0}" -ge 3 ] && pass || fail "only ${shipped_baseline:-0} chunks shipped in the baseline phase"

# Faults: scripted (each kind once), then probabilistic; a slow window late
# in the phase (after the one timeout, which holds the shipper ~30 s).
phase faults
ctl mode/faults
T_FAULTS=$(now)
# Until every scripted fault was taken and the timeout's hold is over
# (bounded), then probabilistic faults until the slow window. Polled once a
# second and without starting an interpreter: the load here is measured.
for _ in $(seq 1 "$FAULT_SECONDS"); do
  curl -s "http://127.0.0.1:$CTL_PORT/counts" | grep -q '"script_done": true' && break
  sleep 1
done
echo "scripted faults done at +$(elapsed "$T_START") s"
rest=$(python3 -c "import sys; print(max(2.0, float(sys.argv[1]) - (float(sys.argv[3]) - float(sys.argv[2]))))" \
  "$((FAULT_SECONDS - SLOW_SECONDS - 8))" "$T_FAULTS" "$(now)")
sleep "$rest"
ctl "slow/$SLOW_SECONDS/1024"
echo "slow window (1 KiB/s) for ${SLOW_SECONDS}s at +$(elapsed "$T_START") s"
sleep $((SLOW_SECONDS + 8))
slow_requests=$(proxy_count slow)
[ "$slow_requests" -ge 1 ] && pass || fail "no request was trickled in the 1 KiB/s window"

# Outage: 503 while appending (the backlog grows), then no appends: 503,
# then connection refused. The Writer's CPU is measured without appends.
phase outage
ctl mode/outage503
T_OUTAGE=$(now)
backlog_start=$(metric horizon_ship_backlog_chunks)
third=$((OUTAGE_SECONDS / 3))
sleep "$third"
backlog_grown=$(metric horizon_ship_backlog_chunks)
echo "backlog at the outage start: $backlog_start, after ${third}s of appends: $backlog_grown"
[ "${backlog_grown:-0}" -gt "${backlog_start:-0}" ] && pass || fail "backlog did not grow ($backlog_start -> $backlog_grown)"
phase idle
sleep 1
check "health during the outage" 200 "$(health)"
ticks0=$(cpu_ticks); t0=$(now)
sleep $((third - 1))
failures_before_refuse=$(metric horizon_ship_failures_total)
ctl mode/refuse
echo "connections refused from +$(elapsed "$T_START") s"
sleep $((OUTAGE_SECONDS - 2 * third))
ticks1=$(cpu_ticks); t1=$(now)
failures_after_refuse=$(metric horizon_ship_failures_total)
check "health while the store refuses connections" 200 "$(health)"
check "engine not failed" 0 "$(metric horizon_engine_failed)"
[ "${failures_after_refuse:-0}" -gt "${failures_before_refuse:-0}" ] && pass ||
  fail "no failed ship attempt while connections were refused ($failures_before_refuse -> $failures_after_refuse)"
cpu_pct=$(python3 -c "import sys; t, a, b = map(float, sys.argv[1:]); print(f'{100 * t / $(getconf CLK_TCK) / (b - a):.2f}')" \
  "$((ticks1 - ticks0))" "$t0" "$t1")
backlog_down=$(metric horizon_ship_backlog_chunks)
echo "writer CPU with the store down and no appends: ${cpu_pct}% of a core over $(elapsed "$t0" "$t1") s" \
  "(backlog $backlog_down, failures $failures_before_refuse -> $failures_after_refuse)"
le "$cpu_pct" 5 && pass || fail "writer CPU ${cpu_pct}% of a core while the store is down (limit 5%)"

# SIGTERM with a backlog and a slow store (4 KiB/s): the Writer waits for
# the chunk in flight, not for the backlog; after the restart the backlog is
# still there (the ship queue is durable) and ships.
ctl slow/120/4096
ctl mode/faults
shipped0=$(metric horizon_chunks_shipped_total)
for _ in $(seq 1 300); do [ "$(metric horizon_chunks_shipped_total)" -gt "$shipped0" ] && break; sleep 0.1; done
shipped_before_stop=$(metric horizon_chunks_shipped_total)
backlog_before_stop=$(metric horizon_ship_backlog_chunks)
sigterm_wait "$WRITER_PID" 60 "the Writer (backlog $backlog_before_stop, slow store)"; WRITER_PID=""
echo "SIGTERM with backlog $backlog_before_stop and a 4 KiB/s store: exit $STOP_RC after $STOP_S s"
check "writer exit after SIGTERM with a backlog" 0 "$STOP_RC"
le "$STOP_S" 20 && pass || fail "stopping with a backlog took $STOP_S s (the chunk in flight takes ~5 s)"
cp "$TMP/writer.log" "$TMP/writer.1.log"
start_writer "$DATA" --chunk-size "$CHUNK" --store "$STORE_PROXY" --ship-backoff-max "$SHIP_BACKOFF_MAX" \
  || abort "writer did not restart"
backlog_restart=$(metric horizon_ship_backlog_chunks)
echo "after the restart: backlog $backlog_restart (was $backlog_before_stop at SIGTERM," \
  "$shipped_before_stop chunks shipped by the first Writer)"
[ "$backlog_restart" -ge 1 ] && [ "$backlog_restart" -le "$backlog_before_stop" ] && pass ||
  fail "backlog after the restart is $backlog_restart (at SIGTERM $backlog_before_stop)"

# SIGTERM while the store stopped answering (every request read, never
# answered): the Writer waits for the chunk in flight no longer than its
# grace (5 s), then cancels the store's calls. Without the cancel an s3://
# upload waits out the stall timeout (30 s) on each of its attempts.
ctl mode/hang
for _ in $(seq 1 $(((SHIP_BACKOFF_MAX + 20) * 10))); do [ "$(proxy_count hanging)" -ge 1 ] && break; sleep 0.1; done
hanging=$(proxy_count hanging)
[ "$hanging" -ge 1 ] && pass || fail "no store request was being held in hang mode"
sigterm_wait "$WRITER_PID" 60 "the Writer (the store hangs)"; WRITER_PID=""
echo "SIGTERM with $hanging store request(s) held unanswered: exit $STOP_RC after $STOP_S s"
check "writer exit after SIGTERM with a hanging store" 0 "$STOP_RC"
le "$STOP_S" 15 && pass || fail "stopping with a hanging store took $STOP_S s (grace 5 s, then cancelled)"
grep -q "cancelling the store's calls" "$TMP/writer.log" && pass ||
  fail "the Writer's log does not say the stuck upload was cancelled"
cat "$TMP/writer.log" >>"$TMP/writer.1.log"
ctl mode/pass
start_writer "$DATA" --chunk-size "$CHUNK" --store "$STORE_PROXY" --ship-backoff-max "$SHIP_BACKOFF_MAX" \
  || abort "writer did not restart after the hanging store"
backlog_hang_restart=$(metric horizon_ship_backlog_chunks)
echo "after the second restart: backlog $backlog_hang_restart"
[ "$backlog_hang_restart" -ge 1 ] && pass || fail "backlog after the second restart is $backlog_hang_restart"

# Recovery: faults stop, appends go on; the backlog must drain.
ctl mode/pass
phase recovery
T_RECOVER=$(now)
echo "store back at +$(elapsed "$T_START") s (outage $(elapsed "$T_OUTAGE" "$T_RECOVER") s)"
# wait_drained BOUND: polls until the backlog is 0 (sets backlog).
wait_drained() {
  backlog=""
  for _ in $(seq 1 $(($1 * 10))); do
    backlog=$(metric horizon_ship_backlog_chunks)
    [ "$backlog" == "0" ] && break
    sleep 0.1
  done
}
limit=$((SHIP_BACKOFF_MAX + DRAIN_SECONDS))
wait_drained "$limit"
echo "backlog drained to ${backlog} in $(elapsed "$T_RECOVER") s after the store came back" \
  "(bound ${limit} s = cap + ${DRAIN_SECONDS})"
check "backlog drained within cap + drain" 0 "$backlog"
# A second no-fault window for the latency baseline, then the appends end
# with one padding line per stream so that every acknowledged line is in a
# sealed chunk.
phase after
sleep "$AFTER_SECONDS"
phase stop
wait "$LOAD"; load_rc=$?; LOAD=""
cat "$TMP/load.log"
check "load driver" 0 "$load_rc"
wait_drained 30
check "backlog drained after the padding" 0 "$backlog"
shipped=$(metric horizon_chunks_shipped_total)
failures=$(metric horizon_ship_failures_total)
echo "chunks shipped: $shipped_before_stop by the first Writer (before SIGTERM), $shipped by the second;" \
  "failed ship attempts (second Writer): $failures"

# Writer stopped: a fresh reader straight at s3rver reads everything.
TOKEN_=$(sed -n 's/^HORIZON_TOKEN=//p' "$DATA/client.env"); KEY_=$(sed -n 's/^HORIZON_KEY=//p' "$DATA/client.env")
stop_writer
check "writer clean exit" 0 "${LAST_EXIT:-x}"
reads=()
for s in $STREAMS; do
  out="$TMP/read${s//\//_}.jsonl"
  env -i PATH="$PATH" HOME="$TMP/fresh-home" STORE="$STORE_DIRECT" HORIZON_TOKEN="$TOKEN_" HORIZON_KEY="$KEY_" \
    "$HORIZON" reader-read "$s:0:0" 1000000 --json >"$out" 2>"$TMP/read.err"
  rc=$?
  # The read ends at the live chunk (number = sealed chunks), which only the
  # stopped Writer holds: reader-read says so, with why the Writer could not
  # be asked, and exits 1.
  sealed=$(grep -c '"MetaType":"Rotated"' "$out")
  if [ $rc -eq 0 ] || grep -q "chunk $sealed of $s is not in store .*, and the Writer, which holds the chunks not yet shipped, could not be asked: " "$TMP/read.err"; then
    pass
  else
    fail "reader-read $s (exit $rc, $sealed sealed chunks read): $(head -c 600 "$TMP/read.err")"
  fi
  reads+=(--read "$s=$out")
done
python3 "$HERE/shipping_load.py" check --ops "$TMP/ops.jsonl" "${reads[@]}" --bucket-dir "$TMP/s3/buckets/$BUCKET" \
  >"$TMP/check.out" || fail "oracle crashed"
grep -v '^result ' "$TMP/check.out"
result() { sed -n "s/^result $1=//p" "$TMP/check.out"; }
for k in lost duplicate phantom reorder inconsistent_offset unread_chunks missing_objects extra_objects; do
  check "oracle $k" 0 "$(result $k)"
done
[ "$(result acked_lines)" -gt 1000 ] && pass || fail "only $(result acked_lines) acked lines"
check "every sealed chunk is an object in the bucket" "$(result sealed_total)" "$(result objects_total)"
# RELIABILITY's target is a change < 20 %; on 2 cores shared with other
# builds a p99 of ~1 ms appends moves by more than that between windows.
# Asserted: p99 <= max(P99_RATIO_MAX x baseline, baseline + 25 ms); an
# append that waited on the store (timeouts of 30 s, trickles of seconds,
# retries of 100s of ms) is far beyond that.
base=$(result p99_baseline_ms)
p99_bound=$(python3 -c "import sys; b = float(sys.argv[1]); print(f'{max(b * float(sys.argv[2]), b + 25):.2f}')" \
  "$base" "$P99_RATIO_MAX")
echo "append p99: no faults $base ms, faults $(result p99_faults_ms) ms (ratio $(result p99_ratio_faults))," \
  "outage $(result p99_outage_ms) ms (ratio $(result p99_ratio_outage)); target ratio < 1.2, asserted <= $p99_bound ms"
le "$(result p99_faults_ms)" "$p99_bound" && pass || fail "append p99 with faults $(result p99_faults_ms) ms > $p99_bound ms"
le "$(result p99_outage_ms)" "$p99_bound" && pass || fail "append p99 during the outage $(result p99_outage_ms) ms > $p99_bound ms"

# No secret in the Writer's logs (the S3 access key id and secret are both S3RVER).
for secret in "$TOKEN_" "$KEY_" S3RVER; do
  grep -qF -- "$secret" "$TMP/writer.1.log" "$TMP/writer.log" && fail "a secret is in the Writer's log" || pass
done

# Every fault kind was injected.
kill "$PROXY"; wait "$PROXY" 2>/dev/null; PROXY=""
cat "$TMP/proxy.log"
required="http500 slowdown503 timeout reset_mid_put reset_before_reply put_wrong_etag get_short get_altered slow outage503"
multipart=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['multipart_requests'])" "$TMP/proxy_counts.json")
if [ "$multipart" -gt 0 ]; then
  required="$required mp_create mp_part mp_complete"
else
  echo "multipart: the client sent no multipart request (single PUT per chunk): mp_* faults not applicable"
fi
for k in $required; do
  n=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$TMP/proxy_counts.json" "$k")
  [ "$n" -ge 1 ] && pass || fail "fault $k never injected"
done
python3 -c "import json,sys; c=json.load(open(sys.argv[1])); sys.exit(0 if c['refused_seconds'] > 0 else 1)" \
  "$TMP/proxy_counts.json" && pass || fail "no refused-connection window"
echo "total time: $(elapsed "$T_START") s"
cleanup_extra
keep
finish

#!/usr/bin/env bash
# RELIABILITY D1 for the Pusher: its wall clock jumps (libfaketime, Debian
# package faketime; the monotonic clock stays real) while it delivers a
# stream to an application: +1 h, -1 h, +10 years, frozen for 2 s, back.
# The Writer runs without pub/sub, so every delivery waits on the Pusher's
# own timers (the 2 s periodic path, backoff): a timer on the wall clock
# would stall for an hour after -1 h, or spin after +10 years.
#
# A real-clock client appends one line every 50 ms (tests/e2e/
# pusher_clock_load.py) and watches the application's database. Checks:
# every acknowledged line applied exactly once, in order; the slowest
# line seen applied within 10 s of its acknowledgement (the periodic path
# takes up to 2 s; a stuck timer would take an hour); the Pusher used less
# than half a core over the run (no timer spinning); it logged no warning
# or error (no spurious timeout or retry) but, at +10 years, the Writer's
# expired certificate refused; it stops cleanly on SIGTERM.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
APP="" PUSHER=""
cleanup_extra() {
  # shellcheck disable=SC2086 # empty when not started
  kill -9 $PUSHER $APP 2>/dev/null
  wait $PUSHER $APP 2>/dev/null
}
trap 'cleanup_extra; stop_writer; rm -rf "$TMP"' EXIT

CLOCK="$TMP/clock"  # the Pusher's offset
fake_clock "$CLOCK" || { finish; exit 1; }
jump() { echo "$1" >"$CLOCK"; sleep 2.5; }  # past libfaketime's cache, and a periodic round

DATA="$TMP/data"
PUBSUB_LISTEN=off start_writer "$DATA" --activity-interval 0.5 || { fail "writer start"; finish; exit 1; }
export HORIZON_DATA=$DATA
"$HORIZON" stream-create /_sub/app >/dev/null && "$HORIZON" stream-create /ticks >/dev/null &&
  "$HORIZON" stream-subscribe /ticks /_sub/app >/dev/null || { fail "set-up"; finish; exit 1; }

APP_PORT=$(free_port)
python3 "$HERE/push_app.py" "$TMP/app.db" "$APP_PORT" /_sub/app >"$TMP/app.log" 2>&1 &
APP=$!
for _ in $(seq 1 100); do grep -q ready "$TMP/app.log" && break; sleep 0.1; done
"${FAKE_HORIZON[@]}" "$HORIZON" pusher --endpoint "http://127.0.0.1:$APP_PORT/_eventhorizon_push" --proxy off \
  >"$TMP/pusher.log" 2>&1 &
PUSHER=$!
ticks() { awk '{ print $14 + $15 }' "/proc/$PUSHER/stat"; }
cpu0=$(ticks) t0=$(now)

python3 "$HERE/pusher_clock_load.py" "$DATA" "$API" /ticks "$TMP/app.db" "$TMP/stop" >"$TMP/load.json" 2>&1 &
LOAD=$!
sleep 2
jump "+1h"
jump "-1h"
jump "+3660d"
jump "$(date -u -d '+1 min' '+%Y-%m-%d %H:%M:%S')"  # frozen: the Pusher's wall clock stands still
jump "+0"
touch "$TMP/stop"
wait "$LOAD"
cpu1=$(ticks) t1=$(now)
result=$(cat "$TMP/load.json")
echo "load: $result"
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$1'])" "$result" 2>/dev/null; }
check "appends on the real clock" 0 "$(field append_errors)"
check "lines appended" 1 "$([ "$(field appended 2>/dev/null || echo 0)" -gt 150 ] && echo 1 || echo 0)"
check "every acknowledged line applied exactly once, in order" True "$(field exactly_once_in_order)"
check "slowest line applied within 10 s (no stuck timer)" 1 "$(le "$(field max_delay_s)" 10 && echo 1 || echo 0)"
cpu=$(python3 -c "import sys; print(f'{(int(sys.argv[2]) - int(sys.argv[1])) / int(sys.argv[3]) / (float(sys.argv[5]) - float(sys.argv[4])):.3f}')" \
  "$cpu0" "$cpu1" "$(getconf CLK_TCK)" "$t0" "$t1")
echo "pusher: $cpu cores on average over the jumps"
check "the Pusher used under half a core (no timer spinning)" 1 "$(le "$cpu" 0.5 && echo 1 || echo 0)"
# One warning is right: at +10 years the Writer's certificate has expired
# for the Pusher, so a new TLS connection (e.g. after the Writer closed an
# idle one) is refused, and the next periodic round retries. Any other
# warning (a timeout, a failed push) is a failure.
check "the Pusher logged no warning or error but a refused certificate" "" \
  "$(grep -E ' (warning|error|critical) ' "$TMP/pusher.log" | grep -v 'certificate' | head -3)"
kill -TERM "$PUSHER"
wait "$PUSHER"
check "the Pusher stops cleanly on SIGTERM" 0 "$?"
PUSHER=""
finish

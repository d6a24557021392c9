#!/usr/bin/env bash
# End-to-end delivery (RELIABILITY C3-C6): Writer + Pusher + an application
# (tests/e2e/push_app.py: Python + SQLite, transactional offset check,
# independent of pushlib) with a fault-injecting proxy between Pusher and
# application (drops, delays, 503, duplicated requests, replies lost after
# the commit). During the load the Pusher is killed with SIGKILL and
# restarted many times (C5) and the Writer is restarted (C6). Afterwards,
# per stream, the application's applied lines must equal the stream
# exactly: no gap, no duplicate, no reorder.
# Usage: push_delivery.sh [PUSHER_KILLS] [WRITER_RESTARTS] [LINES_PER_STREAM]
# With SQLITE_APP=<path of examples' sqlite_app> the application is the
# pushlib + SQLite example instead (its `events` table is the applied list).
# With PUBSUB=off the Writer runs without pub/sub: delivery must complete
# through the Pusher's periodic path alone (RELIABILITY C1). With
# MOVE_PORTS=1 every Writer restart binds new ports (C6, Pushers attached:
# they follow the Writer without being restarted for it).
source "$(dirname "$0")/lib.sh"
KILLS=${1:-50}
RESTARTS=${2:-3}
LINES=${3:-2000}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$TMP/data
export API_LISTEN=127.0.0.1:$(free_port) PUBSUB_LISTEN=${PUBSUB:-127.0.0.1:$(free_port)}
start_writer "$DATA" --chunk-size 16384 --activity-interval 0.5 || { fail "writer"; finish; exit 1; }
export HORIZON_DATA=$DATA
STREAMS="/orders /users /payments /audit"
"$HORIZON" stream-create /_sub/app >/dev/null
for s in $STREAMS; do
  "$HORIZON" stream-create "$s" >/dev/null
  "$HORIZON" stream-subscribe "$s" /_sub/app >/dev/null
done

APP_PORT=$(free_port); PROXY_PORT=$(free_port)
if [ -n "${SQLITE_APP:-}" ]; then
  "$SQLITE_APP" --db "$TMP/app.db" --port "$APP_PORT" --subscription /_sub/app >"$TMP/app.log" 2>&1 &
  APPLIED_SQL="select content from events where stream=? order by seq"
  READY_WORD="serving pushes"
else
  python3 "$HERE/push_app.py" "$TMP/app.db" "$APP_PORT" /_sub/app >"$TMP/app.log" 2>&1 &
  APPLIED_SQL="select content from applied where stream=? order by seq"
  READY_WORD="ready"
fi
APP=$!
python3 "$HERE/fault_proxy.py" "$PROXY_PORT" "$APP_PORT" 0.2 7 >"$TMP/proxy.out" 2>"$TMP/proxy.log" &
PROXY=$!
for _ in $(seq 1 100); do grep -q ready "$TMP/proxy.out" 2>/dev/null && grep -q "$READY_WORD" "$TMP/app.log" && break; sleep 0.1; done

PUSHER=""
start_pusher() {
  "$HORIZON" pusher --endpoint "http://127.0.0.1:$PROXY_PORT/_eventhorizon_push" --proxy off >>"$TMP/pusher.log" 2>&1 &
  PUSHER=$!
}
cleanup_extra() {
  kill -9 $PUSHER $APP $PROXY 2>/dev/null
  wait $PUSHER $APP $PROXY 2>/dev/null
}
start_pusher

# Load: every stream gets LINES unique lines, appended in batches of 1,000
# by the CLI while the Pusher is killed and the Writer restarted.
for s in $STREAMS; do
  python3 -c "import sys; [print(f'{sys.argv[1]}-{i}') for i in range($LINES)]" "$s" >"$TMP/${s#/}.txt"
done
(
  for s in $STREAMS; do
    for part in 0 1; do
      half=$((LINES / 2))
      sed -n "$((part * half + 1)),$(((part + 1) * half))p" "$TMP/${s#/}.txt" >"$TMP/${s#/}.$part"
    done
  done
  for part in 0 1; do
    for s in $STREAMS; do
      # Each line exactly once through the Writer's restarts (it retries
      # with After; docs/protocol/http-api.md): no retry around it.
      "$HORIZON" stream-appendfromfile --retry-for 120 "$s" "$TMP/${s#/}.$part" >/dev/null 2>"$TMP/loader.err" ||
        echo "$s part $part: $(tail -1 "$TMP/loader.err")" >>"$TMP/loader.failed"
    done
    sleep 0.5
  done
) &
LOADER=$!

kills=0
for i in $(seq 1 "$KILLS"); do
  sleep "0.$((RANDOM % 3 + 1))"
  kill -9 "$PUSHER" 2>/dev/null; wait "$PUSHER" 2>/dev/null
  kills=$((kills + 1))
  start_pusher
  if [ "${restarted:-0}" -lt "$RESTARTS" ] && [ $((i % (KILLS / (RESTARTS + 1)))) -eq 0 ]; then
    stop_writer
    # MOVE_PORTS=1: every restart on new ports; the running Pusher finds
    # them in the store's discovery record (docs/format/discovery.md). A
    # port free_port found may be taken (an outgoing connection's port) by
    # the time the Writer binds it: then other ports.
    for attempt in 1 2 3; do
      if [ -n "${MOVE_PORTS:-}" ]; then
        export API_LISTEN=127.0.0.1:$(free_port) PUBSUB_LISTEN=${PUBSUB:-127.0.0.1:$(free_port)}
      fi
      start_writer "$DATA" --chunk-size 16384 --activity-interval 0.5 2>>"$TMP/restarts.log" && break
      if [ -z "${MOVE_PORTS:-}" ] || ! grep -q "Address already in use" "$TMP/writer.log" || [ $attempt = 3 ]; then
        cat "$TMP/restarts.log" >&2
        fail "writer restart"
        break
      fi
    done
    restarted=$((${restarted:-0} + 1))
  fi
done
wait $LOADER
[ -s "$TMP/loader.failed" ] && fail "the loader's imports failed: $(cat "$TMP/loader.failed")"

# The oracle: what each stream holds, read back from the Writer and the
# store, must be the file (the import appends each line once through the
# Writer's restarts), and the application must have applied exactly the
# stream.
for s in $STREAMS; do
  "$HORIZON" reader-read --json "$s:0:0" 1000000 >"$TMP/${s#/}.stream" || fail "read back $s"
done
want=$(python3 - "$TMP" $STREAMS <<'PY'
import json, sys
total = 0
for s in sys.argv[2:]:
    lines = [json.loads(l) for l in open(f"{sys.argv[1]}/{s[1:]}.stream")]
    total += sum(1 for l in lines if l["MetaType"] == "")
print(total)
PY
)
# Everything arrives (bounded wait), then compare exactly.
deadline=$(( $(date +%s) + 90 ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  total=$(python3 -c "import sqlite3,sys; print(sum(len(list(sqlite3.connect(sys.argv[1]).execute(sys.argv[2], (s,)))) for s in sys.argv[3:]))" "$TMP/app.db" "$APPLIED_SQL" $STREAMS 2>/dev/null || echo 0)
  [ "$total" -ge "$want" ] && break
  sleep 0.5
done
for s in $STREAMS; do
  python3 - "$TMP/app.db" "$s" "$TMP/${s#/}.txt" "$APPLIED_SQL" "$TMP/${s#/}.stream" <<'PY' && pass || fail "stream $s: application state differs (see above)"
import json, sqlite3, sys
db, stream, expected = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().split("\n")[:-1]
held = [l["Content"] for l in map(json.loads, open(sys.argv[5])) if l["MetaType"] == ""]
if held != expected:
    print(f"{stream}: the stream is not the file ({len(held)} lines, {len(set(held))} distinct; "
          f"{len(expected)} expected; missing {len(set(expected) - set(held))})", file=sys.stderr)
    sys.exit(1)
got = [r[0] for r in sqlite3.connect(db).execute(sys.argv[4], (stream,))]
if got != held:
    dup = len(got) - len(set(got))
    print(f"{stream}: applied {len(got)} lines, the stream holds {len(held)}; duplicates {dup}", file=sys.stderr)
    sys.exit(1)
print(f"{stream}: {len(got)} lines applied exactly once, in order", file=sys.stderr)
PY
done
check "pusher kill cycles" "$KILLS" "$kills"
kill -TERM $PROXY 2>/dev/null; wait $PROXY 2>/dev/null
cat "$TMP/proxy.log" >&2
faults=$(sed -n 's/.*drop=\([0-9]*\) delay=\([0-9]*\) http503=\([0-9]*\) duplicate=\([0-9]*\) lost_reply=\([0-9]*\).*/\1 \2 \3 \4 \5/p' "$TMP/proxy.log")
for n in $faults; do [ "$n" -gt 0 ] && pass || fail "a fault kind was never injected ($faults)"; done
check "writer restarts" "$RESTARTS" "${restarted:-0}"
cleanup_extra
finish

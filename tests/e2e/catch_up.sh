#!/usr/bin/env bash
# A subscriber that starts from nothing catches up a stream whose chunks are
# all sealed in the store (the Writer no longer holds them), then follows
# the live tail (issue 7). Application: the pushlib + SQLite example when
# SQLITE_APP is set, else tests/e2e/push_app.py.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$TMP/data
start_writer "$DATA" --chunk-size 4096 --activity-interval 0.3 || { fail "writer"; finish; exit 1; }
export HORIZON_DATA=$DATA
"$HORIZON" stream-create /_sub/late >/dev/null
"$HORIZON" stream-create /history >/dev/null
"$HORIZON" stream-subscribe /history /_sub/late >/dev/null
python3 -c 'import sys; [print(f"h-{i}") for i in range(5000)]' >"$TMP/history.txt"
for part in 1 2 3 4 5; do
  sed -n "$(( (part - 1) * 1000 + 1 )),$(( part * 1000 ))p" "$TMP/history.txt" >"$TMP/part"
  "$HORIZON" stream-appendfromfile /history "$TMP/part" >/dev/null || fail "import"
done
for _ in $(seq 1 100); do
  backlog=$(curl -s "http://$METRICS/metrics" | sed -n 's/^horizon_ship_backlog_chunks \(.*\)/\1/p')
  [ "$backlog" == "0" ] && break
  sleep 0.1
done
check "all sealed chunks shipped before the subscriber starts" "0" "$backlog"
out=$("$HORIZON" stream-liveread /history:0:0 1 2>&1); contains "chunk 0 only in the store" "chunk_not_found" "$out"

APP_PORT=$(free_port)
if [ -n "${SQLITE_APP:-}" ]; then
  "$SQLITE_APP" --db "$TMP/app.db" --port "$APP_PORT" --subscription /_sub/late >"$TMP/app.log" 2>&1 &
  SQL="select content from events where stream=? order by seq"; WORD="serving pushes"
else
  python3 "$HERE/push_app.py" "$TMP/app.db" "$APP_PORT" /_sub/late >"$TMP/app.log" 2>&1 &
  SQL="select content from applied where stream=? order by seq"; WORD="ready"
fi
APP=$!
for _ in $(seq 1 50); do grep -q "$WORD" "$TMP/app.log" && break; sleep 0.1; done
"$HORIZON" pusher --endpoint "http://127.0.0.1:$APP_PORT/push" --proxy off >"$TMP/pusher.log" 2>&1 &
PUSHER=$!
applied() { python3 -c "import sqlite3,sys; print('\n'.join(r[0] for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2], ('/history',))))" "$TMP/app.db" "$SQL" 2>/dev/null; }
for _ in $(seq 1 300); do [ "$(applied | wc -l)" -ge 5000 ] && break; sleep 0.1; done
if [ "$(applied)" == "$(cat "$TMP/history.txt")" ]; then pass; else fail "catch-up from the store differs ($(applied | wc -l) lines)"; fi
# Then it follows the live tail.
for i in 1 2 3; do "$HORIZON" stream-append /history "live-$i" >/dev/null; done
for _ in $(seq 1 100); do applied | grep -q live-3 && break; sleep 0.1; done
check "live tail followed" "live-1 live-2 live-3" "$(applied | tail -3 | tr '\n' ' ' | sed 's/ $//')"
kill $PUSHER $APP 2>/dev/null; wait $PUSHER $APP 2>/dev/null
finish

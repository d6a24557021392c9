#!/usr/bin/env bash
# Stopping a Pusher while its s3:// store stopped answering (s3_fault_proxy.py
# in mode hang: every request read, never answered nor forwarded). Without a
# cancel, each store call would wait out its stall timeout (30 s) on each of
# its attempts, minutes in all; SIGTERM must end the Pusher within seconds:
#   1. while it starts (its configuration is the store's discovery record);
#   2. while a worker reads a sealed chunk from the store;
# then, with the store answering again, a new Pusher delivers every line
# exactly once and in order (nothing was lost or skipped by the stops).
# The Writer's SIGTERM with a hanging store is in shipping_faults.sh.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
BUCKET=horizon-hang
STOP_LIMIT=10  # seconds allowed from SIGTERM to exit

PROXY="" S3PID="" APP="" PUSHER=""
on_exit() {
  for p in $PUSHER $APP $PROXY $S3PID; do kill "$p" 2>/dev/null; done
  [ -n "$WRITER_PID" ] && kill -KILL "$WRITER_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap on_exit EXIT
trap 'exit 143' TERM INT
abort() { fail "$1"; for f in "$TMP"/*.log; do echo "--- $f" >&2; tail -15 "$f" >&2; done; finish; exit 1; }
ctl() { curl -sf "http://127.0.0.1:$CTL_PORT/mode/$1" >/dev/null || fail "proxy control mode/$1"; }
# wait_hanging N: until at least N requests are held (30 s at most).
wait_hanging() { for _ in $(seq 1 300); do [ "$(proxy_count hanging)" -ge "$1" ] && return 0; sleep 0.1; done; return 1; }
# stop_pusher NAME: SIGTERM; it must exit 0 within STOP_LIMIT seconds.
stop_pusher() {
  sigterm_wait "$PUSHER" $((STOP_LIMIT * 3)) "$1: the Pusher"; PUSHER=""
  echo "$1: exit $STOP_RC after $STOP_S s"
  check "$1: exit status" 0 "$STOP_RC"
  le "$STOP_S" "$STOP_LIMIT" && pass || fail "$1: stopping took $STOP_S s (limit $STOP_LIMIT s)"
}
start_pusher() {
  XDG_CACHE_HOME="$TMP/cache-$1" "$HORIZON" pusher --endpoint "http://127.0.0.1:$APP_PORT/push" --proxy off \
    >"$TMP/pusher-$1.log" 2>&1 &
  PUSHER=$!
}

start_s3_behind_proxy "$BUCKET" --probability 0 || abort "the S3 peer did not start"

DATA=$TMP/data
start_writer "$DATA" --chunk-size 4096 --activity-interval 0.3 --store "$STORE_PROXY" || abort "writer did not start"
export HORIZON_DATA=$DATA  # client.env: STORE (the proxy), token, key
"$HORIZON" stream-create /history >/dev/null || abort "stream-create"
"$HORIZON" stream-create /_sub/late >/dev/null || abort "stream-create"
python3 -c 'import sys; [print(f"h-{i}") for i in range(5000)]' >"$TMP/history.txt"
"$HORIZON" stream-appendfromfile /history "$TMP/history.txt" >/dev/null || abort "import"
for _ in $(seq 1 200); do [ "$(metric horizon_ship_backlog_chunks)" == "0" ] && break; sleep 0.1; done
check "every sealed chunk shipped" 0 "$(metric horizon_ship_backlog_chunks)"
shipped=$(metric horizon_chunks_shipped_total)
[ "${shipped:-0}" -ge 3 ] && pass || fail "only ${shipped:-0} chunks shipped"

APP_PORT=$(free_port)
python3 "$HERE/push_app.py" "$TMP/app.db" "$APP_PORT" /_sub/late >"$TMP/app.log" 2>&1 &
APP=$!
for _ in $(seq 1 50); do grep -q ready "$TMP/app.log" && break; sleep 0.1; done
applied() {
  python3 -c "import sqlite3,sys; print('\n'.join(r[0] for r in sqlite3.connect(sys.argv[1]).execute(
    'select content from applied where stream=? order by seq', ('/history',))))" "$TMP/app.db" 2>/dev/null
}

# 1. The store hangs while the Pusher starts (discovery record).
ctl hang
start_pusher starting
wait_hanging 1 || fail "the starting Pusher's discovery request was not held"
stop_pusher "SIGTERM while starting"
grep -q "while starting: exiting" "$TMP/pusher-starting.log" && pass ||
  fail "the Pusher's log does not say it stopped while starting: $(tail -3 "$TMP/pusher-starting.log")"
# The proxy releases a held request when its client goes away.
for _ in $(seq 1 100); do [ "$(proxy_count hanging)" -eq 0 ] && break; sleep 0.1; done

# 2. The Pusher runs (subscription known, nothing to push yet), then the
# store hangs and the subscription brings a stream whose chunks are sealed.
ctl pass
start_pusher reading
for _ in $(seq 1 100); do grep -q "pushing subscription" "$TMP/pusher-reading.log" && break; sleep 0.1; done
grep -q "pushing subscription" "$TMP/pusher-reading.log" || abort "the Pusher did not start"
ctl hang
held0=$(proxy_count hanging)
# Straight to the Writer (the CLI would read the discovery record first).
api POST /writer/subscribe '{"Stream":"/history","SubscriptionId":"/_sub/late"}'
check "subscribe" 200 "$STATUS"
api POST /writer/append '{"Stream":"/history","Lines":["h-5000"]}'
check "append" 201 "$STATUS"
echo "h-5000" >>"$TMP/history.txt"
wait_hanging $((held0 + 1)) || fail "the Pusher's read of a sealed chunk was not held"
check "nothing pushed while the store hangs" 0 "$(applied | grep -c .)"
stop_pusher "SIGTERM while reading a sealed chunk"
ctl pass

# 3. A new Pusher delivers everything, exactly once and in order.
start_pusher after
for _ in $(seq 1 300); do [ "$(applied | wc -l)" -ge 5001 ] && break; sleep 0.1; done
if [ "$(applied)" == "$(cat "$TMP/history.txt")" ]; then pass; else
  fail "the app holds $(applied | wc -l) lines, not the 5001 appended in order"
fi
kill "$PUSHER" 2>/dev/null; wait "$PUSHER" 2>/dev/null; PUSHER=""
for f in "$TMP"/pusher-*.log; do
  grep -qF -- "$(sed -n 's/^HORIZON_TOKEN=//p' "$DATA/client.env")" "$f" && fail "the token is in $f"
done
pass
kill "$APP" 2>/dev/null; wait "$APP" 2>/dev/null; APP=""
finish

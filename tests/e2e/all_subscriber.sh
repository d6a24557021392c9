#!/usr/bin/env bash
# The recursive all-subscriber (issue 7): an application subscribed to "/"
# that subscribes itself, through the Pusher's writer proxy, to every child
# stream it sees created (ChildStreamCreated lines). A tree of streams is
# created while it runs; in the end the application has every stream of the
# tree, each line exactly once, in order.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$TMP/data
export API_LISTEN=127.0.0.1:$(free_port) PUBSUB_LISTEN=127.0.0.1:$(free_port)
start_writer "$DATA" --activity-interval 0.3 || { fail "writer"; finish; exit 1; }
export HORIZON_DATA=$DATA
"$HORIZON" stream-create /_sub/all >/dev/null
"$HORIZON" stream-subscribe / /_sub/all >/dev/null
APP_PORT=$(free_port); PROXY_PORT=$(free_port)
python3 "$HERE/push_app.py" "$TMP/app.db" "$APP_PORT" /_sub/all "$PROXY_PORT" >"$TMP/app.log" 2>&1 &
APP=$!
for _ in $(seq 1 50); do grep -q ready "$TMP/app.log" && break; sleep 0.1; done
"$HORIZON" pusher --endpoint "http://127.0.0.1:$APP_PORT/push" --proxy "127.0.0.1:$PROXY_PORT" >"$TMP/pusher.log" 2>&1 &
PUSHER=$!

TREE="/t1 /t1/a /t1/b /t1/a/x /t1/a/x/deep /t2 /t2/c /t2/c/d /t3"
for s in $TREE; do
  "$HORIZON" stream-create "$s" >/dev/null || fail "create $s"
  for i in 1 2 3; do "$HORIZON" stream-append "$s" "$s-line-$i" >/dev/null; done
  sleep 0.1
done

expected=$(( $(echo $TREE | wc -w) * 3 ))
for _ in $(seq 1 300); do
  n=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from applied where content like '/t%'\").fetchone()[0])" "$TMP/app.db" 2>/dev/null || echo 0)
  [ "$n" -ge "$expected" ] && break
  sleep 0.1
done
for s in $TREE; do
  got=$(python3 -c "import sqlite3,sys; print(','.join(r[0] for r in sqlite3.connect(sys.argv[1]).execute('select content from applied where stream=? order by seq', (sys.argv[2],))))" "$TMP/app.db" "$s")
  check "stream $s applied exactly" "$s-line-1,$s-line-2,$s-line-3" "$got"
  subs=$("$HORIZON" reader-read "$s:0:0" 100 | grep -c '^/Subscribed {"subscription_id":"/_sub/all"')
  check "stream $s subscribed once" "1" "$subs"
done
[ "$FAILED" -eq 0 ] || { echo "--- pusher log" >&2; tail -20 "$TMP/pusher.log" >&2; echo "--- app log" >&2; tail -20 "$TMP/app.log" >&2; }
kill $PUSHER $APP 2>/dev/null; wait $PUSHER $APP 2>/dev/null
finish

#!/usr/bin/env bash
# A running Pusher follows its Writer (docs/format/discovery.md, "Who reads
# it"): the Writer restarts on other ports, then goes through both steps of
# a CA rotation, and the same Pusher process, never restarted, keeps
# delivering every line exactly once and in order, forwards its writer
# proxy's requests to the Writer's new address, and its pub/sub client
# subscribes again at the new pub/sub address with the new CA; so does a
# `horizon pubsub-subscribe` started at the beginning, and a `horizon
# stream-tail` prints every line through all of it.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$TMP/data
export HORIZON_DATA=$DATA
start_writer "$DATA" --activity-interval 0.5 || { fail "writer"; finish; exit 1; }
"$HORIZON" stream-create /_sub/app >/dev/null
"$HORIZON" stream-create /orders >/dev/null
"$HORIZON" stream-subscribe /orders /_sub/app >/dev/null
APP_PORT=$(free_port); PROXY_PORT=$(free_port)
python3 "$HERE/push_app.py" "$TMP/app.db" "$APP_PORT" /_sub/app >"$TMP/app.log" 2>&1 &
APP=$!
for _ in $(seq 1 50); do grep -q ready "$TMP/app.log" && break; sleep 0.1; done
"$HORIZON" pusher --endpoint "http://127.0.0.1:$APP_PORT/push" --proxy "127.0.0.1:$PROXY_PORT" >"$TMP/pusher.log" 2>&1 &
PUSHER=$!
# A CLI subscriber on the same topic follows the Writer too.
"$HORIZON" pubsub-subscribe sub:/_sub/app >"$TMP/psub.out" 2>"$TMP/psub.err" &
PSUB=$!
# And a stream-tail: it waits for the Writer through every move.
"$HORIZON" stream-tail /orders --poll 0.1 >"$TMP/tail.out" 2>"$TMP/tail.err" &
TAIL=$!
trap 'kill -9 $PUSHER $APP $PSUB $TAIL 2>/dev/null; stop_writer; rm -rf "$TMP"' EXIT

EXPECTED=""
# append_through_proxy LABEL: 5 lines through the Pusher's writer proxy
# (plain HTTP on loopback, forwarded to wherever the Writer is now).
append_through_proxy() {
  local lines="" i
  for i in 1 2 3 4 5; do
    lines="$lines${lines:+,}\"$1-$i\""
    EXPECTED="$EXPECTED${EXPECTED:+,}$1-$i"
  done
  local status=""
  for _ in $(seq 1 100); do  # the Pusher may still be finding the Writer
    status=$(curl -s -o "$TMP/proxy-answer" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
      --data-binary "{\"Stream\":\"/orders\",\"Lines\":[$lines]}" "http://127.0.0.1:$PROXY_PORT/writer/append")
    [ "$status" = 201 ] && break
    sleep 0.2
  done
  check "append $1 through the writer proxy" 201 "$status"
}
# applied: the application's lines of /orders, in order, comma-separated.
applied() {
  python3 -c "import sqlite3,sys; print(','.join(r[0] for r in sqlite3.connect(sys.argv[1]).execute('select content from applied where stream=? order by seq', ('/orders',))))" "$TMP/app.db" 2>/dev/null
}
# delivered WHAT: waits (up to 60 s) until the application has EXPECTED exactly.
delivered() {
  local got=""
  for _ in $(seq 1 600); do
    got=$(applied)
    [ "$got" = "$EXPECTED" ] && break
    sleep 0.1
  done
  check "delivered exactly once, in order: $1" "$EXPECTED" "$got"
}
# subscribed WHAT: waits (up to 60 s) until the Writer has two pub/sub
# subscriptions (the Pusher's client and pubsub-subscribe, reconnected to
# this Writer).
subscribed() {
  local n=0
  for _ in $(seq 1 600); do
    n=$(metric horizon_pubsub_subscriptions)
    [ "${n:-0}" -ge 2 ] 2>/dev/null && break
    sleep 0.1
  done
  check "the Pusher's and pubsub-subscribe's clients subscribed at $1" 1 "$([ "${n:-0}" -ge 2 ] 2>/dev/null && echo 1 || echo 0)"
}

append_through_proxy start
delivered "before any move"
subscribed "the first address"

# 1. The Writer restarts on other ports (port 0: the kernel picks new ones).
old_api=$API
stop_writer
start_writer "$DATA" --activity-interval 0.5 || { fail "writer restart"; finish; exit 1; }
[ "$API" != "$old_api" ] && pass || fail "the Writer came back on the same port ($API): the test proves nothing"
append_through_proxy moved
delivered "after the Writer moved to $API"
subscribed "the new address"
contains "the Pusher logged the new address" "names the Writer anew: API https://$API" "$(cat "$TMP/pusher.log")"

# 1b. Only the pub/sub server moves (the API keeps its port): no request
# fails, and the lost pub/sub connections have the record read again.
stop_writer
API_LISTEN=$API PUBSUB_LISTEN=127.0.0.1:$(free_port) start_writer "$DATA" --activity-interval 0.5 ||
  { fail "writer restart with another pub/sub port"; finish; exit 1; }
append_through_proxy pubsub-moved
delivered "after the pub/sub server alone moved"
subscribed "the new pub/sub address (the same API address)"

# 2. CA rotation, both steps, each with a restart (on other ports again).
stop_writer
"$HORIZON" ca-rotate prepare --data "$DATA" >/dev/null 2>&1 && pass || fail "ca-rotate prepare"
start_writer "$DATA" --activity-interval 0.5 || { fail "writer start after prepare"; finish; exit 1; }
append_through_proxy prepared
delivered "after ca-rotate prepare"
stop_writer
"$HORIZON" ca-rotate finish --data "$DATA" >/dev/null 2>&1 && pass || fail "ca-rotate finish"
start_writer "$DATA" --activity-interval 0.5 || { fail "writer start after finish"; finish; exit 1; }
# The old CA alone no longer verifies the Writer: what the Pusher started with.
csplit -s -z -f "$TMP/trusted-" "$DATA/ca.pem" '/BEGIN CERTIFICATE/' '{*}'
curl -s --cacert "$TMP/trusted-01" -o /dev/null "https://$API/health" && fail "the old CA still verifies the Writer" || pass
append_through_proxy finished
delivered "after ca-rotate finish"
subscribed "the rotated Writer"
tail_end=$("$HORIZON" stream-append /orders tail 2>&1) && pass || fail "CLI append after the rotation: $tail_end"
EXPECTED="$EXPECTED,tail"
delivered "the last line, through pub/sub or the periodic path"
for _ in $(seq 1 100); do grep -qF "sub:/_sub/app $tail_end" "$TMP/psub.out" && break; sleep 0.1; done
contains "pubsub-subscribe, started before the moves, prints the last notification" "sub:/_sub/app $tail_end" "$(cat "$TMP/psub.out")"
contains "pubsub-subscribe read the discovery record again" "names the Writer anew" "$(cat "$TMP/psub.err")"
kill -0 "$PSUB" 2>/dev/null && pass || fail "pubsub-subscribe exited: $(cat "$TMP/psub.err")"
kill "$PSUB" 2>/dev/null; wait "$PSUB" 2>/dev/null
tailed=""
for _ in $(seq 1 100); do
  tailed=$(grep -v '^/' "$TMP/tail.out" | paste -sd,)
  [ "$tailed" = "$EXPECTED" ] && break
  sleep 0.1
done
check "stream-tail, started before the moves, printed every line once, in order" "$EXPECTED" "$tailed"
contains "stream-tail waited for the Writer" "waiting for the Writer" "$(cat "$TMP/tail.err")"
contains "stream-tail found it again" "the Writer answers again" "$(cat "$TMP/tail.err")"
kill -0 "$TAIL" 2>/dev/null && pass || fail "stream-tail exited: $(cat "$TMP/tail.err")"
kill "$TAIL" 2>/dev/null; wait "$TAIL" 2>/dev/null

kill -0 "$PUSHER" 2>/dev/null && pass || fail "the Pusher exited"
check "one Pusher process throughout" 1 "$(grep -c 'writer proxy on http://' "$TMP/pusher.log")"
contains "the pub/sub client moved too" "pubsub client: connecting to" "$(cat "$TMP/pusher.log")"
not_contains "no token in the Pusher's log" "$TOKEN" "$(cat "$TMP/pusher.log")"
kill -TERM "$PUSHER"; wait "$PUSHER" 2>/dev/null
kill "$APP" 2>/dev/null; wait "$APP" 2>/dev/null
finish

#!/usr/bin/env bash
# A restored older backup of a data directory is recognised at start
# (docs/format/history-mark.md, docs/operations.md "Backups"): the shipper
# leaves the history mark in the store after it shipped chunks; a data
# directory that recovers to an earlier WAL commit than the mark names is
# refused (exit 78) with nothing changed in the store. Removing the mark, as
# the message says, lets it start; the chunks of the newer history are then
# never overwritten (the shipper's conflict error). The store is outside the
# data directory (with the embedded default, a restored directory brings its
# store back with it).
source "$(dirname "$0")/lib.sh"

DATA=$TMP/data
STORE=$TMP/store
export HORIZON_DATA=$DATA
lines() { python3 -c "import sys
for i in range(int(sys.argv[2])): print('{\"type\":\"%s\",\"n\":%d,\"pad\":\"%s\"}' % (sys.argv[1], i, 'x' * 40))" "$1" "$2"; }
# wait_shipped N: until N chunks were shipped in this run and the backlog is empty.
wait_shipped() {
  for _ in $(seq 1 300); do
    [ "$(metric horizon_chunks_shipped_total)" -ge "$1" ] && [ "$(metric horizon_ship_backlog_chunks)" == "0" ] && return 0
    sleep 0.1
  done
  return 1
}
mark_commit() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['commit'])" "$STORE/_horizon/history.json"; }

start_writer "$DATA" --chunk-size 4096 --store "file://$STORE" || { fail "writer did not start"; finish; exit 1; }
WRITER_ID=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['writer_id'])" "$DATA/identity.json")
"$HORIZON" stream-create /orders >/dev/null || fail "create"
lines early 400 >"$TMP/early.txt"
"$HORIZON" stream-appendfromfile --batch 50 /orders "$TMP/early.txt" >/dev/null 2>&1 || fail "early import"
wait_shipped 3 || fail "the early chunks were not shipped"
check "the mark names the Writer" "$WRITER_ID" \
  "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['writer_id'])" "$STORE/_horizon/history.json")"
early_mark=$(mark_commit)
stop_writer; check "first stop" 0 "$LAST_EXIT"
cp -a "$DATA" "$TMP/backup"  # a backup of the stopped Writer

# The newer history: more chunks shipped.
start_writer "$DATA" --chunk-size 4096 --store "file://$STORE" || fail "restart"
lines late 400 >"$TMP/late.txt"
"$HORIZON" stream-appendfromfile --batch 50 /orders "$TMP/late.txt" >/dev/null 2>&1 || fail "late import"
wait_shipped 3 || fail "the late chunks were not shipped"
late_mark=$(mark_commit)
[ "$late_mark" -gt "$early_mark" ] && pass || fail "the mark did not advance: $early_mark then $late_mark"
stop_writer; check "second stop" 0 "$LAST_EXIT"
# A restart of the newest data directory (kill -9 included) is never refused.
start_writer "$DATA" --chunk-size 4096 --store "file://$STORE" || fail "the newest data directory was refused"
"$HORIZON" stream-append /orders after-restart >/dev/null || fail "append after restart"
kill -KILL "$WRITER_PID"; wait "$WRITER_PID" 2>/dev/null; WRITER_PID=""
start_writer "$DATA" --chunk-size 4096 --store "file://$STORE" || fail "the newest data directory was refused after kill -9"
stop_writer

# The restored backup is refused; nothing in the store changes.
(cd "$STORE" && find . -type f | sort | xargs md5sum) >"$TMP/store-before"
rm -rf "$DATA"; cp -a "$TMP/backup" "$DATA"
out=$("$HORIZON" writer --data "$DATA" --store "file://$STORE" --api 127.0.0.1:0 --pubsub off --metrics 127.0.0.1:0 \
  --chunk-size 4096 2>&1); rc=$?
check "a restored older backup: exit 78 (refused)" 78 "$rc"
contains "the message says what it is" "is older than its store: it recovered to WAL commit" "$out"
contains "the message names the mark's commit" "had reached commit $late_mark when it last shipped chunks" "$out"
contains "the message says how to go on" "remove _horizon/history.json from the store" "$out"
(cd "$STORE" && find . -type f | sort | xargs md5sum) >"$TMP/store-after"
cmp -s "$TMP/store-before" "$TMP/store-after" && pass || fail "the refused start changed the store"

# Going on with it anyway, as documented: the newer history's chunks stay.
rm "$STORE/_horizon/history.json"
start_writer "$DATA" --chunk-size 4096 --store "file://$STORE" || fail "the backup did not start without the mark"
lines other 200 >"$TMP/other.txt"
"$HORIZON" stream-appendfromfile --batch 50 /orders "$TMP/other.txt" >/dev/null 2>&1 || fail "import on the backup"
for _ in $(seq 1 100); do grep -q "already holds chunks/s/orders/" "$TMP/writer.log" && break; sleep 0.1; done
contains "a chunk of the newer history is not overwritten" "with other lines" "$(cat "$TMP/writer.log")"
(cd "$STORE" && grep ' ./chunks/' "$TMP/store-after" | md5sum -c --quiet) && pass \
  || fail "chunk objects of the newer history changed"
stop_writer
finish

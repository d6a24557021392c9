#!/usr/bin/env bash
# End-to-end: sealed chunks are shipped to the store (compressed and
# encrypted), the local copies are freed, and `reader-read` returns every
# line from any cursor, across the store and the live tail; with the Writer
# stopped, a remote-style client (only STORE, HORIZON_TOKEN, HORIZON_KEY)
# still reads every sealed chunk; `stream-tail` follows new lines.
# Usage: long_term_storage.sh [STORE_URL BUCKET_DIR [LIST_COMMAND]]   (default: file://<data>/store)
# BUCKET_DIR: where the store keeps its objects on disk (checked for plaintext).
# LIST_COMMAND: prints the store's keys, one a line, for a store whose files
# are not named after the keys (Swift); without it the key layout is checked
# on the file names under BUCKET_DIR.
source "$(dirname "$0")/lib.sh"

DATA=$TMP/data
STORE_ARG=()
[ $# -ge 1 ] && STORE_ARG=(--store "$1")
start_writer "$DATA" --chunk-size 4096 "${STORE_ARG[@]}" || { fail "writer did not start"; finish; exit 1; }
export HORIZON_DATA=$DATA
"$HORIZON" stream-create /orders >/dev/null || fail "create"
python3 -c '
for i in range(3000):
    print("{\"type\":\"OrderPlaced\",\"id\":%d,\"note\":\"%s\"}" % (i, "x" * (i % 50)))' >"$TMP/orders.txt"
# Batches of 100 lines: every batch fills a 4 KiB chunk, 30 chunks seal.
out=$("$HORIZON" stream-appendfromfile --batch 100 /orders "$TMP/orders.txt" 2>&1)
contains "import" "appended 3000 lines" "$out"

# Wait until the shipper has emptied the backlog (bounded).
for _ in $(seq 1 600); do
  backlog=$(curl -s "http://$METRICS/metrics" | sed -n 's/^horizon_ship_backlog_chunks \(.*\)/\1/p')
  [ "$backlog" == "0" ] && break
  sleep 0.1
done
check "ship backlog drained" "0" "$backlog"
shipped=$(curl -s "http://$METRICS/metrics" | sed -n 's/^horizon_chunks_shipped_total \(.*\)/\1/p')
[ "${shipped:-0}" -ge 29 ] && pass || fail "only ${shipped:-0} chunks shipped (30 batches of 100 lines seal 29 or 30 chunks)"
out=$("$HORIZON" stream-liveread /orders:0:0 1 2>&1); contains "chunk 0 freed locally" "HTTP 404 chunk_not_found" "$out"

# Every line back, in order, across the store and the live tail.
"$HORIZON" reader-read /orders:0:0 100000 | grep -v '^/' >"$TMP/read.txt"
if cmp -s "$TMP/orders.txt" "$TMP/read.txt"; then pass; else fail "reader-read differs from what was appended"; fi
out=$("$HORIZON" reader-read /orders:0:0 3 2>&1)
contains "meta lines as /Type {json}" '/Created {"subscription_ids":[]' "$out"
json=$("$HORIZON" reader-read /orders:0:0 2 --json 2>&1)
contains "json PtrAfter" '"PtrAfter":"/orders:0:' "$json"
contains "json MetaPayload" '"MetaType":"Created","MetaPayload":{"subscription_ids":[]' "$json"
out=$("$HORIZON" reader-read /orders:0:7 1 2>&1); rc=$?
[ $rc -ne 0 ] && pass || fail "mid-line cursor accepted"; contains "mid-line error" "not at the start of a line" "$out"

# The store holds no plaintext and no secret.
BUCKET_DIR=${2:-$DATA/store}
TOKEN_=$(sed -n 's/^HORIZON_TOKEN=//p' "$DATA/client.env"); KEY_=$(sed -n 's/^HORIZON_KEY=//p' "$DATA/client.env")
[ "$(find "$BUCKET_DIR" -type f -size +200c | wc -l)" -ge 3 ] && pass || fail "no chunk files under $BUCKET_DIR to check"
grep -rq -e OrderPlaced -e "$TOKEN_" -e "$KEY_" -e "PRIVATE KEY" "$BUCKET_DIR" && fail "plaintext or secret in the store" || pass
if [ $# -ge 3 ]; then
  bash -c "$3" | grep -q '^chunks/s/orders/~00000000000000000000\.ehc' && pass || fail "chunk object key layout"
else
  find "$BUCKET_DIR" -path '*chunks/s/orders/~00000000000000000000.ehc*' | grep -q . && pass || fail "chunk object key layout"
fi

# stream-tail follows new lines.
FROM=$("$HORIZON" stream-append /orders before-tail)
"$HORIZON" stream-tail /orders --from "$FROM" --poll 0.1 >"$TMP/tail.txt" 2>&1 &
TAIL=$!
"$HORIZON" stream-append /orders followed-by-tail >/dev/null
for _ in $(seq 1 150); do grep -q followed-by-tail "$TMP/tail.txt" && break; sleep 0.1; done
contains "stream-tail follows" "followed-by-tail" "$(cat "$TMP/tail.txt")"; grep -q followed-by-tail "$TMP/tail.txt" || { echo "tail output:" >&2; cat "$TMP/tail.txt" >&2; ps aux | grep stream-tail | grep -v grep >&2; }
not_contains "stream-tail --from starts after the cursor" "before-tail" "$(cat "$TMP/tail.txt")"
kill $TAIL 2>/dev/null; wait $TAIL 2>/dev/null

# Writer down: a remote-style client (no data directory) reads sealed chunks from the store.
STORE_URL=$(sed -n 's/^STORE=//p' "$DATA/client.env")
TOKEN_=$(sed -n 's/^HORIZON_TOKEN=//p' "$DATA/client.env"); KEY_=$(sed -n 's/^HORIZON_KEY=//p' "$DATA/client.env")
stop_writer
unset HORIZON_DATA
out=$(HOME=$TMP/elsewhere STORE=$STORE_URL HORIZON_TOKEN=$TOKEN_ HORIZON_KEY=$KEY_ "$HORIZON" reader-read /orders:0:0 1000 2>&1); rc=$?
check "sealed chunks readable with the Writer down" "0" "$rc"
contains "first order from the store" '{"type":"OrderPlaced","id":0,' "$out"
out=$(HOME=$TMP/elsewhere STORE=$STORE_URL HORIZON_TOKEN=$TOKEN_ HORIZON_KEY=wrong "$HORIZON" reader-read /orders:0:0 10 2>&1); rc=$?
[ $rc -ne 0 ] && pass || fail "bad HORIZON_KEY accepted"; not_contains "key not echoed" "wrong" "${out#*HORIZON_KEY}"

finish

#!/usr/bin/env bash
# RELIABILITY A6 through the real binary: a chunk file damaged on disk while
# the Writer is down (one byte flipped, the line still valid text) is never
# served. The scrub after the restart finds it first; every live read of that chunk is 500 corruption
# naming the file, the damage is logged once and counted in
# horizon_damaged_chunks_total, another stream in the same data directory
# serves every line, appends go on, and no token appears in the log.
source "$(dirname "$0")/lib.sh"
trap 'stop_writer; rm -rf "$TMP"' EXIT

DATA="$TMP/data"
export HORIZON_DATA=$DATA
start_writer "$DATA" || { fail "writer start"; finish; exit 1; }
for s in /a /b; do
  api POST /writer/create_stream "{\"Name\":\"$s\"}"; check "create $s" 201 "$STATUS"
done
for i in $(seq 1 20); do
  lines=$(python3 -c "import json,sys; print(json.dumps(['line-%s-%03d-%s' % (sys.argv[1], int(sys.argv[2]) * 10 + k, 'x' * 80) for k in range(10)]))" a "$i")
  api POST /writer/append "{\"Stream\":\"/a\",\"Lines\":$lines}"; check "append /a $i" 201 "$STATUS"
  api POST /writer/append "{\"Stream\":\"/b\",\"Lines\":${lines//line-a-/line-b-}}"; check "append /b $i" 201 "$STATUS"
done
api POST /writer/liveread '{"Cursor":"/a:0:0","MaxLinesToRead":1000}'
check "/a reads before the damage" 200 "$STATUS"
check "/a lines before the damage" 201 "$(printf '%s' "$BODY" | grep -c '')"
stop_writer  # the shutdown checkpoint writes the chunk files

# The one chunk file that holds /a's lines; flip a byte in the middle of a line.
file=$(grep -l 'line-a-100' "$DATA"/chunks/*.raw)
check "one chunk file holds /a" 1 "$(printf '%s\n' "$file" | grep -c .)"
python3 - "$file" <<'PY'
import sys
path = sys.argv[1]
data = bytearray(open(path, 'rb').read())
at = data.index(b'line-a-100') + 40  # inside the x run
assert data[at] == ord('x')
data[at] = ord('y')
with open(path, 'r+b') as f:
    f.write(data)
PY
rel=${file#"$DATA"/}

start_writer "$DATA" || { fail "writer restart"; finish; exit 1; }
# The scrub after the start finds it before anyone reads it.
for _ in $(seq 1 100); do grep -q "scrub:" "$TMP/writer.log" && break; sleep 0.05; done
contains "the scrub finds the damaged chunk" "scrub: 1 of 4 held chunks damaged" "$(grep "scrub:" "$TMP/writer.log")"
check "counted by the scrub" 1 "$(metric horizon_damaged_chunks_total)"
for attempt in 1 2; do
  api POST /writer/liveread '{"Cursor":"/a:0:0","MaxLinesToRead":1000}'
  check "damaged chunk read $attempt: status" 500 "$STATUS"
  contains "damaged chunk read $attempt: code" '"error":"corruption"' "$BODY"
  contains "damaged chunk read $attempt: names the file" "$rel" "$BODY"
  not_contains "damaged chunk read $attempt: no line served" 'line-a-' "$BODY"
done
out=$("$HORIZON" stream-liveread /a:0:0 10 2>&1); rc=$?
check "CLI exits non-zero on the damaged chunk" 1 "$([ $rc -ne 0 ] && echo 1 || echo 0)"
contains "CLI names the corruption" "corruption" "$out"
check "counted once" 1 "$(metric horizon_damaged_chunks_total)"
check "logged once" 1 "$(grep -c "fails its checksum" "$TMP/writer.log")"
api POST /writer/liveread '{"Cursor":"/b:0:0","MaxLinesToRead":1000}'
check "/b serves" 200 "$STATUS"
check "/b lines" 201 "$(printf '%s' "$BODY" | grep -c '')"
check "/b content intact" 200 "$(printf '%s' "$BODY" | grep -c "line-b-[0-9]*-x\{80\}$")"
api POST /writer/append '{"Stream":"/a","Lines":["after the damage"]}'
check "appends to /a go on" 201 "$STATUS"
check "the Writer is not failed" 0 "$(metric horizon_engine_failed)"
not_contains "no token in the log" "$TOKEN" "$(cat "$TMP/writer.log")"
stop_writer
check "clean stop" 0 "$LAST_EXIT"

finish

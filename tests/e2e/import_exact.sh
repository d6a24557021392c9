#!/usr/bin/env bash
# stream-appendfromfile appends every line of its file exactly once
# (docs/protocol/http-api.md, "Retrying an append exactly"), through:
#   1. lost requests and lost answers (cut_proxy.py in front of the Writer:
#      TLS passes through it, the client cannot tell an applied append
#      whose answer was cut from one never received);
#   2. the Writer killed with SIGKILL and restarted (on a new port each
#      time) while an import runs, besides the lost answers;
#   3. an import that gives up (every answer lost, --retry-for 1) and is
#      resumed with the command its error message prints, at another --batch;
# and it never sends a request the Writer must refuse (long lines: bodies
# under 16 MiB; --batch capped at 10,000 lines).
# The oracle: the stream read back (reader-read) is the file, line for line.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$TMP/data
export HORIZON_DATA=$DATA
PROXY_PORT=$(free_port)
SETTINGS=$TMP/proxy.json
PROXY=""
trap '[ -n "$PROXY" ] && kill $PROXY 2>/dev/null; stop_writer; rm -rf "$TMP"' EXIT

# proxy LOSE_REQUEST LOSE_ANSWER: the proxy's settings, aimed at the Writer.
proxy() { printf '{"target": %s, "lose_request": %s, "lose_answer": %s}\n' "${API##*:}" "$1" "$2" >"$SETTINGS.tmp" && mv "$SETTINGS.tmp" "$SETTINGS"; }
# via_proxy: the store's discovery record sends clients to the proxy (after
# every Writer start, which writes the record).
via_proxy() {
  python3 - "$DATA/store/_horizon/discovery.json" "$PROXY_PORT" <<'PY'
import json, os, sys
path, port = sys.argv[1], sys.argv[2]
d = json.load(open(path))
d["api"] = f"127.0.0.1:{port}"
json.dump(d, open(path + ".tmp", "w"))
os.replace(path + ".tmp", path)
PY
}
# start: the Writer (a new port each time), the proxy aimed at it.
start() {
  start_writer "$DATA" --chunk-size 65536 || return 1
  proxy "${LOSE_REQUEST:-0}" "${LOSE_ANSWER:-0}"
  via_proxy
}
# same_as_file STREAM FILE WHAT: the stream's lines are the file's.
same_as_file() {
  "$HORIZON" reader-read "$1:0:0" 1000000 2>"$TMP/read.err" | grep -v '^/' >"$TMP/readback" ||
    fail "$3: read back: $(cat "$TMP/read.err")"
  if cmp -s "$TMP/readback" "$2"; then
    pass
  else
    fail "$3: the stream is not the file ($(wc -l <"$TMP/readback") lines read back, $(wc -l <"$2") in the file; $(sort "$TMP/readback" | uniq -d | wc -l) duplicated)"
  fi
}
lines() { python3 -c "import sys; [print(f'{sys.argv[1]}-{i:07d} the quick brown fox') for i in range(int(sys.argv[2]))]" "$1" "$2" >"$3"; }

start || { fail "writer"; finish; exit 1; }
python3 "$HERE/cut_proxy.py" "$PROXY_PORT" "$SETTINGS" 7 >"$TMP/proxy.out" 2>"$TMP/proxy.log" &
PROXY=$!
for _ in $(seq 1 50); do grep -q ready "$TMP/proxy.out" && break; sleep 0.1; done
grep -q ready "$TMP/proxy.out" || fail "proxy did not start: $(cat "$TMP/proxy.log")"

# --- 1. lost requests and answers -------------------------------------------
"$HORIZON" stream-create /lossy >/dev/null || fail "create /lossy"
lines lossy 30000 "$TMP/lossy.txt"
LOSE_REQUEST=0.1 LOSE_ANSWER=0.15
proxy $LOSE_REQUEST $LOSE_ANSWER
out=$("$HORIZON" stream-appendfromfile --batch 200 /lossy "$TMP/lossy.txt" 2>"$TMP/lossy.err"); rc=$?
check "1: import through lost answers exits 0 ($(tail -1 "$TMP/lossy.err"))" 0 "$rc"
contains "1: summary" "appended 30000 lines to /lossy" "$out"
contains "1: lost answers were resolved by reading back" "read back)" "$out"
same_as_file /lossy "$TMP/lossy.txt" "1: lost requests and answers"

# --- 2. the Writer killed and restarted during an import -------------------
"$HORIZON" stream-create /killed >/dev/null || fail "create /killed"
lines killed 150000 "$TMP/killed.txt"
LOSE_REQUEST=0.02 LOSE_ANSWER=0.05
proxy $LOSE_REQUEST $LOSE_ANSWER
"$HORIZON" stream-appendfromfile --batch 250 /killed "$TMP/killed.txt" >"$TMP/killed.out" 2>"$TMP/killed.err" &
IMPORT=$!
kills=0
for i in $(seq 1 6); do
  sleep "0.$((RANDOM % 5 + 3))"
  kill -0 $IMPORT 2>/dev/null || break
  kill -9 "$WRITER_PID"; wait "$WRITER_PID" 2>/dev/null; WRITER_PID=""
  kills=$((kills + 1))
  sleep 0.3
  start || fail "2: restart $i"
done
wait $IMPORT; rc=$?
check "2: import through $kills Writer kills exits 0 ($(tail -1 "$TMP/killed.err"))" 0 "$rc"
le 3 "$kills" && pass || fail "2: the import ended before 3 kills ($kills): make the file longer"
contains "2: the import waited for the Writer" "retrying for up to 60 s" "$(cat "$TMP/killed.err")"
same_as_file /killed "$TMP/killed.txt" "2: Writer kills and lost answers"

# --- 3. give up, then go on with the printed command ----------------------
"$HORIZON" stream-create /resumed >/dev/null || fail "create /resumed"
lines resumed 5000 "$TMP/resumed.txt"
proxy 0 1  # every append is applied, and its answer lost
"$HORIZON" stream-appendfromfile --batch 300 --retry-for 1 /resumed "$TMP/resumed.txt" >/dev/null 2>"$TMP/gaveup.err"; rc=$?
check "3: an import that cannot get answers exits 1" 1 "$rc"
msg=$(tail -1 "$TMP/gaveup.err")
contains "3: the message says the stream's content" "nothing appended, stream end /resumed:" "$msg"
contains "3: the message says the lost batch may be there" "the 300 lines after them may be in the stream too" "$msg"
resume=${msg##*to go on exactly: horizon }
contains "3: the message has the command" "stream-appendfromfile --skip 0 --after /resumed:" "$resume"
proxy 0 0
out=$(eval "\"\$HORIZON\" $resume --batch 70" 2>&1); rc=$?
check "3: the resumed import exits 0 ($out)" 0 "$rc"
contains "3: the resumed import found the lost batch" "read back)" "$out"
same_as_file /resumed "$TMP/resumed.txt" "3: a resumed import"

# --- 3b. stream-append --after whose answer is lost --------------------------
# Running the same command again is safe, as its message says: the line is
# in the stream once. (The proxy cuts only requests of 4 KiB or more.)
"$HORIZON" stream-create /occ >/dev/null || fail "create /occ"
at=$("$HORIZON" stream-append /occ first) || fail "3b: first append"
second="second-$(head -c 5000 /dev/zero | tr '\0' x)"
proxy 0 1
out=$("$HORIZON" stream-append --after "$at" /occ "$second" 2>&1); rc=$?
check "3b: an append whose answer is lost exits 1" 1 "$rc"
contains "3b: the message says how to settle it" \
  "(the request may have been applied); the same command again appends the line only if /occ still ends at $at" "$out"
proxy 0 0
out=$("$HORIZON" stream-append --after "$at" /occ "$second" 2>&1); rc=$?
check "3b: the same command again finds the stream moved on (exit 3: ${out:0:200})" 3 "$rc"
check "3b: the line is there once" "first $second" "$("$HORIZON" reader-read /occ:0:0 10 | grep -v '^/' | xargs)"

# --- 4. requests the Writer would refuse are never made --------------------
"$HORIZON" stream-create /long >/dev/null || fail "create /long"
python3 -c "
for i in range(20): print(('\"' * 300000) + ('x' * 600000) + str(i))" >"$TMP/long.txt"
out=$("$HORIZON" stream-appendfromfile /long "$TMP/long.txt" 2>&1); rc=$?
check "4: 20 lines of 900 KB ($out)" 0 "$rc"
same_as_file /long "$TMP/long.txt" "4: long lines"
out=$("$HORIZON" stream-appendfromfile --batch 20000 /long "$TMP/long.txt" 2>&1); rc=$?
check "4: --batch over the Writer's limit is refused" 1 "$([ $rc -ne 0 ] && echo 1 || echo 0)"
contains "4: --batch over the Writer's limit: the message" "--batch" "$out"
out=$("$HORIZON" stream-appendfromfile --skip 21 /long "$TMP/long.txt" 2>&1); rc=$?
check "4: --skip past the end" 1 "$rc"
contains "4: --skip past the end: the message" "has only 20 lines; nothing appended" "$out"
out=$("$HORIZON" stream-appendfromfile --after /lossy:0:0 /long "$TMP/long.txt" 2>&1); rc=$?
check "4: --after of another stream" 1 "$rc"
contains "4: --after of another stream: the message" "--after names /lossy, not /long" "$out"
end=$("$HORIZON" stream-appendfromfile /long /dev/null | sed -n 's/.*; end \([^ ]*\).*/\1/p')
[ -n "$end" ] || fail "4: the end of /long"
out=$("$HORIZON" stream-appendfromfile --after /long:9:0 /long "$TMP/long.txt" 2>&1); rc=$?
check "4: --after past the stream's end" 1 "$rc"
contains "4: --after past the end: the message" \
  "--after /long:9:0 is past the end of /long ($end); nothing appended" "$out"
out=$("$HORIZON" stream-appendfromfile --after /long:0:70 /long "$TMP/long.txt" 2>&1); rc=$?
check "4: --after inside a line" 1 "$rc"
# (Chunk 0 is sealed: it is read through liveread or, once shipped, the store.)
contains "4: --after inside a line: the message" \
  "--after /long:0:70 cannot be read back: cursor /long:0:70 is not at the start of a line" "$out"
contains "4: --after inside a line: nothing appended" "; nothing appended" "$out"
same_as_file /long "$TMP/long.txt" "4: the refused commands appended nothing"

kill $PROXY; wait $PROXY 2>/dev/null
echo "proxy: $(cat "$TMP/proxy.out" | tail -1)"
PROXY=""
finish

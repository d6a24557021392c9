#!/usr/bin/env bash
# The Writer under a low open-file limit (RELIABILITY E10): started with
# RLIMIT_NOFILE 1024 (soft and hard, as in many containers) it lowers its
# connection caps and its LRU of chunk files to fit, and then
#   - 2,000 streams are all writable and read back (checkpoints write their
#     chunk files through an LRU of 240 open files);
#   - 1,100 idle TCP connections (no TLS, more than the limit) do not stop
#     appends on an open connection, checkpoints included: before the
#     descriptor budget they used up the limit and the next WAL file
#     operation failed with EMFILE, a fail-stop exit (status 74);
#   - a new client connects once they are gone; a restart recovers it all.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
N=2000
command -v prlimit >/dev/null || { fail "prlimit (util-linux) is missing"; finish; exit 1; }
export WRITER_PREFIX="prlimit --nofile=1024:1024 --"
DATA=$TMP/data
start_writer "$DATA" --chunk-size 4096 --checkpoint-bytes 65536 || { fail "writer did not start"; finish; exit 1; }
check "open-file limit of the Writer" 1024 "$(awk '/Max open files/ {print $4}' "/proc/$WRITER_PID/limits")"
contains "the Writer says it lowered its caps" "the open-file limit is 1024: connection caps lowered to API 470" \
  "$(cat "$TMP/writer.log")"
ms() { python3 "$HERE/many_streams.py" "$DATA" "$API" "$@"; }

out=$(ms create $N 2>&1); check "create $N streams" 0 $?; echo "$out"
for r in 0 1; do
  out=$(ms append $N $r 2>&1); check "append round $r" 0 $?; echo "$out"
done
out=$(ms flood $N 2 1100 2>&1); check "append round 2 while 1,100 idle connections are held" 0 $?; echo "$out"
check "Writer alive after the flood" 0 "$(kill -0 "$WRITER_PID" 2>/dev/null; echo $?)"
check "engine not failed" 0 "$(metric horizon_engine_failed)"
checkpoints=$(curl -s "http://$METRICS/metrics" | sed -n 's/^horizon_checkpoint_duration_seconds_count \(.*\)/\1/p')
echo "checkpoints so far: $checkpoints"
[ "${checkpoints:-0}" -ge 5 ] && pass || fail "only ${checkpoints:-0} checkpoints ran (the test needs chunk files written)"
# The flood is gone: a new client gets in.
HORIZON_DATA=$DATA "$HORIZON" stream-append /m/0 "after-flood" >/dev/null 2>"$TMP/cli.err"
check "a new client after the flood" 0 $?
# (verify counts only its own lines: "after-flood" in /m/0 is not one.)
out=$(ms verify $N 3 2>&1); check "every stream holds its lines in order" 0 $?; echo "$out" | head -3

stop_writer
check "clean stop" 0 "$LAST_EXIT"
grep -q "storage failed\|Too many open files" "$TMP/writer.log" && fail "EMFILE in the Writer's log: $(grep -m1 "Too many\|storage failed" "$TMP/writer.log")" || pass
start_writer "$DATA" --chunk-size 4096 --checkpoint-bytes 65536 || { fail "writer did not restart"; finish; exit 1; }
out=$(ms append $N 3 2>&1); check "append round 3 after the restart" 0 $?; echo "$out"
out=$(ms verify $N 4 2>&1); check "every stream holds its lines after the restart" 0 $?; echo "$out" | head -3
finish

# Shared helpers for the end-to-end tests: a tiny assertion library and a
# Writer started on free loopback ports in a temporary data directory.
# Every test prints "N passed, N failed" and exits non-zero on any failure.

set -u
HORIZON=${HORIZON:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/horizon}
PASSED=0
FAILED=0
TMP=$(mktemp -d /tmp/eh-e2e.XXXXXX)
# The readers' chunk cache (CLI, Pusher) of this test, not the user's ~/.cache.
export XDG_CACHE_HOME="$TMP/xdg-cache"
WRITER_PID=""

pass() { PASSED=$((PASSED + 1)); }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*" >&2; }
# check NAME EXPECTED ACTUAL
check() { if [ "$2" == "$3" ]; then pass; else fail "$1: expected [$2], got [$3]"; fi; }
# contains NAME NEEDLE HAYSTACK
contains() { if [[ "$3" == *"$2"* ]]; then pass; else fail "$1: [$2] not in [${3:0:400}]"; fi; }
not_contains() { if [[ "$3" != *"$2"* ]]; then pass; else fail "$1: [$2] unexpectedly in output"; fi; }

finish() {
  stop_writer
  rm -rf "$TMP"
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

# start_writer DATA_DIR [extra args...]: waits until the API answers /health.
# WRITER_PREFIX (words, optional) runs before the binary, e.g. a prlimit call.
start_writer() {
  local data=$1
  shift
  : >"$TMP/writer.log"
  ${WRITER_PREFIX:-} "$HORIZON" writer --data "$data" --api "${API_LISTEN:-127.0.0.1:0}" --pubsub "${PUBSUB_LISTEN:-127.0.0.1:0}" \
    --metrics 127.0.0.1:0 "$@" \
    >>"$TMP/writer.log" 2>&1 &
  WRITER_PID=$!
  for _ in $(seq 1 200); do
    if grep -q "ready: api" "$TMP/writer.log"; then break; fi
    if ! kill -0 "$WRITER_PID" 2>/dev/null; then echo "writer exited:" >&2; cat "$TMP/writer.log" >&2; return 1; fi
    sleep 0.05
  done
  API=$(sed -n 's/.*ready: api https:\/\/\([^ ]*\) .*/\1/p' "$TMP/writer.log" | tail -1)
  METRICS=$(sed -n 's/.*metrics http:\/\/\([^ ]*\)\/metrics.*/\1/p' "$TMP/writer.log" | tail -1)
  TOKEN=$(sed -n 's/^HORIZON_TOKEN=//p' "$data/client.env")
  CA="$data/ca.pem"
}

stop_writer() {
  if [ -n "$WRITER_PID" ] && kill -0 "$WRITER_PID" 2>/dev/null; then
    kill -TERM "$WRITER_PID"
    wait "$WRITER_PID"
    LAST_EXIT=$?
  fi
  WRITER_PID=""
}

# api METHOD PATH BODY [curl args...] -> sets STATUS and BODY
api() {
  local method=$1 path=$2 body=$3
  shift 3
  local out
  out=$(curl -sS --cacert "$CA" -X "$method" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary "$body" -w '\n%{http_code}' "$@" "https://$API$path")
  STATUS=${out##*$'\n'}
  BODY=${out%$'\n'*}
}

# metric NAME: its value on the Writer's metrics port ($METRICS).
metric() { curl -s "http://$METRICS/metrics" | sed -n "s/^$1 \(.*\)/\1/p"; }
now() { date +%s.%N; }
# elapsed T0 [T1]: seconds from T0 to T1 (default: now), one decimal.
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "${2:-$(now)}"; }
# le A B: A <= B (floats)
le() { python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)" "$1" "$2"; }

# sigterm_wait PID LIMIT WHAT: SIGTERM, then wait up to LIMIT seconds (past
# it: SIGKILL and a failure naming WHAT). Sets STOP_RC (the exit status)
# and STOP_S (seconds from the signal to the exit).
sigterm_wait() {
  local pid=$1 limit=$2 t0
  t0=$(now)
  kill -TERM "$pid"
  for _ in $(seq 1 $((limit * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    fail "$3: no exit within $limit s of SIGTERM"
    kill -KILL "$pid"
  fi
  wait "$pid"; STOP_RC=$?
  STOP_S=$(elapsed "$t0")
}

# start_s3_behind_proxy BUCKET [s3_fault_proxy.py options...]: s3rver
# (scripts/start-s3rver.sh) and tests/e2e/s3_fault_proxy.py in front of it.
# Sets S3PORT S3PID PROXY (pid) PROXY_PORT CTL_PORT STORE_PROXY STORE_DIRECT;
# returns 1 with a message if either does not start. The caller stops them.
start_s3_behind_proxy() {
  local bucket=$1 here
  shift
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  S3PORT=$(free_port)
  S3PID=$("$here/../../scripts/start-s3rver.sh" "$TMP/s3/buckets" "$S3PORT" "$bucket" $$) || {
    echo "s3rver did not start" >&2
    return 1
  }
  PROXY_PORT=$(free_port); CTL_PORT=$(free_port)
  python3 "$here/s3_fault_proxy.py" --listen "$PROXY_PORT" --target "$S3PORT" --control-port "$CTL_PORT" "$@" \
    >"$TMP/proxy.out" 2>"$TMP/proxy.log" &
  PROXY=$!
  for _ in $(seq 1 100); do grep -q ready "$TMP/proxy.out" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$TMP/proxy.out" || { echo "proxy did not start: $(cat "$TMP/proxy.log")" >&2; return 1; }
  STORE_PROXY="s3://S3RVER:S3RVER@us-east-1/$bucket?endpoint=http://127.0.0.1:$PROXY_PORT"
  STORE_DIRECT="s3://S3RVER:S3RVER@us-east-1/$bucket?endpoint=http://127.0.0.1:$S3PORT"
}
# proxy_count KEY: one of the proxy's counters (GET /counts).
proxy_count() { curl -s "http://127.0.0.1:$CTL_PORT/counts" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# A free loopback TCP port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# fake_clock CLOCK_FILE: sets FAKE (a prefix for any program) and FAKE_HORIZON
# (for $HORIZON: an ASan build needs its runtime loaded first) to run a
# command on a wall clock that libfaketime (Debian package faketime) reads
# from CLOCK_FILE ("+1h", "-1h", "+3660d", "2030-01-01 00:00:00" frozen),
# at most once a second; the monotonic clock stays real. The file starts at
# "+0". Fails (a failed check) when libfaketime is not installed.
fake_clock() {
  local lib asan
  lib=$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null | head -1)
  [ -n "$lib" ] || { fail "libfaketime is not installed (Debian package faketime)"; return 1; }
  asan=$(ldd "$HORIZON" | awk '/libasan/ {print $3}')
  echo "+0" >"$1"
  local settings=("FAKETIME_TIMESTAMP_FILE=$1" FAKETIME_CACHE_DURATION=1 FAKETIME_DONT_FAKE_MONOTONIC=1)
  FAKE=(env "LD_PRELOAD=$lib" "${settings[@]}")
  FAKE_HORIZON=(env "LD_PRELOAD=${asan:+$asan:}$lib" "${settings[@]}")
}

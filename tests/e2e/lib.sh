# Shared helpers for the end-to-end tests: a tiny assertion library and a
# Writer started on free loopback ports in a temporary data directory.
# Every test prints "N passed, N failed" and exits non-zero on any failure.

set -u
HORIZON=${HORIZON:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/horizon}
PASSED=0
FAILED=0
TMP=$(mktemp -d /tmp/eh-e2e.XXXXXX)
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

# A free loopback TCP port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

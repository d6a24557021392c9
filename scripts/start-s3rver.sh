#!/usr/bin/env bash
# Starts s3rver (npm "s3rver", a fake S3 server; key and secret S3RVER) in
# the background for the store tests, waits until it answers, and prints its
# pid on stdout. The log goes to DIR.log.
#
#   scripts/start-s3rver.sh DIR PORT BUCKET [OWNER_PID]
#
# DIR holds the buckets (created if missing), PORT is on 127.0.0.1, BUCKET is
# created at start. With OWNER_PID, a small watchdog stops s3rver once that
# process is gone (so a crashed test leaves nothing running).
# Needs node and `npm ci` in the repository root (package.json pins s3rver).
set -euo pipefail

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
  echo "usage: $0 DIR PORT BUCKET [OWNER_PID]" >&2
  exit 64
fi
dir=$1 port=$2 bucket=$3 owner=${4:-}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
s3rver="$root/node_modules/.bin/s3rver"

if ! command -v node >/dev/null 2>&1; then
  echo "start-s3rver: node is not installed: run scripts/install-deps.sh, then 'npm ci' in $root" >&2
  exit 3
fi
if [ ! -e "$s3rver" ]; then
  echo "start-s3rver: s3rver is not installed: run 'npm ci' in $root" >&2
  exit 3
fi

mkdir -p "$dir"
log="${dir%/}.log"
cd "$root"
NODE_OPTIONS=--openssl-legacy-provider nohup node "$s3rver" -d "$dir" -a 127.0.0.1 -p "$port" \
  --configure-bucket "$bucket" </dev/null >"$log" 2>&1 &
pid=$!

if [ -n "$owner" ]; then
  # Detached watchdog: stop s3rver when the owner exits.
  (
    while kill -0 "$owner" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 1; done
    kill "$pid" 2>/dev/null || true
  ) </dev/null >/dev/null 2>&1 &
  disown
fi

# Ready when the bucket answers (at most ~20 s).
for _ in $(seq 1 200); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "start-s3rver: s3rver exited during start; its log ($log):" >&2
    cat "$log" >&2
    exit 1
  fi
  if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/$bucket" 2>/dev/null; then
    disown "$pid" 2>/dev/null || true
    echo "$pid"
    exit 0
  fi
  sleep 0.1
done
echo "start-s3rver: s3rver did not answer on 127.0.0.1:$port within 20 s; its log ($log):" >&2
cat "$log" >&2
kill "$pid" 2>/dev/null || true
exit 1

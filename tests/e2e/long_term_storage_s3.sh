#!/usr/bin/env bash
# long_term_storage.sh with the Writer's store on S3 (s3rver from npm, a real
# S3-compatible HTTP server; our client signs with SigV4).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/eh-s3rver.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pid=$("$ROOT/scripts/start-s3rver.sh" "$dir/buckets" "$port" horizon-e2e $$) || { echo "s3rver did not start"; echo "0 passed, 1 failed"; exit 1; }
bash "$ROOT/tests/e2e/long_term_storage.sh" "s3://S3RVER:S3RVER@us-east-1/horizon-e2e?endpoint=http://127.0.0.1:$port" "$dir/buckets"
rc=$?
kill "$pid" 2>/dev/null
rm -rf "$dir"
exit $rc

#!/usr/bin/env bash
# long_term_storage.sh with the Writer's store on OpenStack Swift through its
# S3 API (s3api + tempauth from Debian's packages; unlike s3rver it verifies
# every SigV4 signature and payload hash). Swift keeps objects under hashed
# file names, so the key layout is checked with a listing through Swift's own
# API, and the plaintext check greps the device directory (object data and
# the account/container databases).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/eh-swift.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start=$(date +%s.%N)
pid=$("$ROOT/scripts/start-swift.sh" "$dir/swift" "$port" horizon-e2e $$) || {
  echo "Swift did not start"; echo "0 passed, 1 failed"; rm -rf "$dir"; exit 1; }
echo "Swift up on 127.0.0.1:$port in $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s"
list="/usr/bin/python3 '$ROOT/scripts/swift_local.py' list http://127.0.0.1:$port test:tester 'Sw1ft/s3cret+k3y' horizon-e2e"
bash "$ROOT/tests/e2e/long_term_storage.sh" \
  "s3://test%3Atester:Sw1ft%2Fs3cret+k3y@us-east-1/horizon-e2e?endpoint=http://127.0.0.1:$port" "$dir/swift/srv" "$list"
rc=$?
# The supervisor stops the four servers and exits once they are gone (then
# it is a zombie until init reaps it).
kill "$pid" 2>/dev/null
for _ in $(seq 1 100); do
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || break
  [ -z "$state" ] || [ "$state" = Z ] && break
  sleep 0.05
done
rm -rf "$dir"
exit $rc

#!/usr/bin/env bash
# One Swift (scripts/start-swift.sh) for a whole ctest run: the store_test
# cases run one process each, and starting Swift takes seconds, so ctest
# starts it once as a fixture and the cases find it through
# HORIZON_TEST_SWIFT=STATE (src/store/CMakeLists.txt).
#
#   scripts/swift-fixture.sh start STATE   # STATE/port on success, STATE/error on failure
#   scripts/swift-fixture.sh stop STATE
#
# start always exits 0 once it has written one of the two files: a failure
# is reported by every Swift case (with the start's output) rather than by
# ctest not running any store case. The servers belong to ctest (this
# script's parent): they stop when it exits, even without `stop`.
set -uo pipefail

if [ $# -ne 2 ] || { [ "$1" != start ] && [ "$1" != stop ]; }; then
  echo "usage: $0 start|stop STATE" >&2
  exit 64
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state=$2

stop() {
  if [ -f "$state/pid" ]; then
    local pid st
    pid=$(cat "$state/pid")
    kill "$pid" 2>/dev/null
    # The supervisor exits once its servers are gone; then it is a zombie
    # until whoever adopted it reaps it.
    for _ in $(seq 1 100); do
      st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || break
      [ -z "$st" ] || [ "$st" = Z ] && break
      sleep 0.05
    done
  fi
  if [ -f "$state/dir" ]; then rm -rf "$(cat "$state/dir")"; fi
  rm -rf "$state"
}

if [ "$1" = stop ]; then
  stop
  echo "Swift stopped"
  exit 0
fi

stop
mkdir -p "$state"
owner=$PPID
begin=$(date +%s%N)
output=
for attempt in 1 2 3; do
  dir=$(mktemp -d "${TMPDIR:-/tmp}/eh-swift-fixture.XXXXXX")
  echo "$dir" >"$state/dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if output=$(bash "$root/scripts/start-swift.sh" "$dir/swift" "$port" horizon-test "$owner" 2>&1); then
    echo "${output##*$'\n'}" >"$state/pid"
    echo "$dir/swift" >"$state/swift-dir"
    echo "$port" >"$state/port.tmp" && mv "$state/port.tmp" "$state/port"
    echo "Swift up on 127.0.0.1:$port in $(( ($(date +%s%N) - begin) / 1000000 )) ms (attempt $attempt)"
    exit 0
  fi
  rm -rf "$dir"
  [[ "$output" == *install-deps.sh* ]] && break  # not installed: retrying will not help
done
printf '%s\n' "$output" >"$state/error"
echo "Swift did not start; every Swift case will fail with:"
printf '%s\n' "$output"
exit 0

#!/usr/bin/env bash
# RELIABILITY A10: the A1 run (kill -9 under appends, the oracle of section 4)
# and the A4 run (the same with a power loss after every kill: lazyfs.py
# forgets everything not synced) with the data directory on each file system
# the row names, each fresh on a loop device: ext4 (data=ordered), ext4
# data=writeback, xfs, btrfs. Root (mount, losetup); xfsprogs and
# btrfs-progs. One line per run, then "N passed, N failed".
#
# Usage: filesystems_a10.sh [A1_CYCLES [A4_CYCLES [MIN_SECONDS]]]
# Each run has at least its cycles and lasts at least MIN_SECONDS (so that
# chunks seal on btrfs too, where fsync is slow). Defaults 20, 10 and 10 s:
# the CI smoke; the periodic tier is 1000 and 200 cycles per file system.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
A1_CYCLES=${1:-20}
A4_CYCLES=${2:-10}
MIN_SECONDS=${3:-10}
PASSED=0 FAILED=0
for fs in ext4 ext4-writeback xfs btrfs; do
  for run in "A1 --cycles $A1_CYCLES" "A4 --cycles $A4_CYCLES --lazyfs"; do
    row=${run%% *}
    # shellcheck disable=SC2086 # the run's flags
    out=$(python3 "$HERE/kill9_a1.py" --fs "$fs" --min-seconds "$MIN_SECONDS" ${run#* } 2>&1)
    rc=$?
    summary=$(printf '%s\n' "$out" | awk -F': ' '
      /^acked ops/ { split($0, a, ", "); acked = a[2] }
      /^(lost|phantom|duplicate|reorder|torn|inconsistent_offset|batch_atomicity): / { bad += $2 }
      /^seals: / { seals = $0 }
      /^total time/ { t = $2 }
      END { printf "%s; anomalies %d; %s; %s", acked, bad, seals, t }')
    if [ $rc -eq 0 ]; then
      PASSED=$((PASSED + 1))
      echo "$fs $row: ok ($summary)"
    else
      FAILED=$((FAILED + 1))
      echo "FAIL: $fs $row ($summary):" >&2
      printf '%s\n' "$out" | grep -E "FAIL|^  " | head -20 >&2
    fi
  done
done
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

#!/usr/bin/env bash
# README command (a): install what is missing, build, and start the Writer on
# the embedded default (no configuration needed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release >/dev/null
if build/horizon writer --help >/dev/null 2>&1 && ! build/horizon writer --help 2>&1 | grep -q "not implemented"; then
  exec build/horizon writer "$@"
fi
# Until the Writer lands (issue: Writer server), show what the binary offers.
build/horizon --help

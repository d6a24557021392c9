#!/usr/bin/env bash
# build.sh [PRESET...]: configure (once) and build the given CMake presets
# (default: release). Uses ccache with paths relative to the checkout, so a
# fresh clone in another folder reuses the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1 CCACHE_COMPILERCHECK=content
presets=("$@")
((${#presets[@]})) || presets=(release)
for p in "${presets[@]}"; do
  dir=$(case $p in release) echo build ;; *) echo "build-$p" ;; esac)
  [ -f "$dir/build.ninja" ] || cmake --preset "$p" >/dev/null
  echo "build: $p" >&2
  # -j2: the machine has 2 cores and ~1 GB per heavy translation unit.
  cmake --build --preset "$p" -- -j2
done

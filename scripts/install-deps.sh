#!/usr/bin/env bash
# Installs every Debian 12 package Event Horizon needs to build and test.
# Idempotent: when everything is present it only runs dpkg-query (about 0.1 s).
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config ccache clang libclang-rt-14-dev llvm
  # libraries (Boost 1.81: never libboost-all-dev / libboost-dev, they are 1.74)
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libcurl4-openssl-dev libzstd-dev libxxhash-dev libsqlite3-dev
  libcli11-dev libspdlog-dev libfmt-dev
  # test and benchmark frameworks
  libgtest-dev libgmock-dev libbenchmark-dev
  # independent peers used by the test suite
  curl openssl strace prometheus python3 nodejs
  # systemd-analyze verify checks the units of contrib/systemd
  systemd
  # libfiu's POSIX preload (fiu-run): injected file I/O errors, RELIABILITY A8
  # (libfiu-dev: the header of tests/e2e/fs_faults.c, points libfiu lacks);
  # libfaketime: wall-clock jumps, RELIABILITY D1; fusepy: tests/e2e/lazyfs.py
  # (power loss under the real binary, RELIABILITY A4)
  fiu-utils libfiu-dev faketime python3-fusepy
  # file systems the crash tests run on besides ext4 (loop devices), RELIABILITY A10
  xfsprogs btrfs-progs
  # OpenStack Swift with s3api (in python3-swift) for the object-store tests
  swift-proxy swift-account swift-container swift-object
)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# npm ships with NodeSource's nodejs; Debian's nodejs needs the npm package.
if ! command -v npm >/dev/null 2>&1; then
  $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
echo "install-deps: all ${#packages[@]} packages present" >&2

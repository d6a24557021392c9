#!/usr/bin/env bash
# Starts OpenStack Swift (Debian 12's swift-proxy, -account, -container and
# -object) with the s3api middleware and tempauth in the background for the
# store tests, waits until the S3 endpoint answers, creates BUCKET, and
# prints a pid on stdout: that of a small supervisor that stops all four
# servers when it gets SIGTERM (or when one of them dies).
#
#   scripts/start-swift.sh DIR PORT BUCKET [OWNER_PID]
#
# DIR (created; must be empty or missing) gets everything: etc/ (swift.conf,
# the server configs and rings), srv/d1/ (the one "device"; object files end
# up under srv/d1/objects/), logs/ and cache/. PORT is the S3 endpoint on
# 127.0.0.1; the account, container and object servers take free ports.
# Credentials: access key test:tester (in an s3:// URL: test%3Atester),
# secret Sw1ft/s3cret+k3y (in a URL: Sw1ft%2Fs3cret+k3y), region us-east-1. With OWNER_PID the supervisor also stops
# everything once that process is gone (so a crashed test leaves nothing
# running). Needs the Swift packages: scripts/install-deps.sh installs them.
set -euo pipefail

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
  echo "usage: $0 DIR PORT BUCKET [OWNER_PID]" >&2
  exit 64
fi
dir=$1 port=$2 bucket=$3 owner=${4:-}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
helper="$root/scripts/swift_local.py"
py=/usr/bin/python3  # Debian's python3-swift lives in the system interpreter

if [ ! -x "$py" ] || ! "$py" -c 'import swift.proxy.server, swift.obj.server, swift.common.middleware.s3api' \
  2>/dev/null; then
  echo "start-swift: OpenStack Swift is not installed (swift-proxy swift-object swift-container swift-account):" \
    "run scripts/install-deps.sh" >&2
  exit 3
fi
if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
  echo "start-swift: $dir is not empty" >&2
  exit 64
fi

etc="$dir/etc" devices="$dir/srv" logs="$dir/logs"
mkdir -p "$etc" "$devices/d1" "$logs" "$dir/cache"
dir=$(cd "$dir" && pwd) etc="$dir/etc" devices="$dir/srv" logs="$dir/logs"

# The object server keeps metadata in user xattrs (ext4, xfs and tmpfs have
# them; some overlay or network filesystems do not).
if ! "$py" -c 'import sys, xattr; xattr.setxattr(sys.argv[1], "user.swift.probe", b"x")' "$devices/d1" 2>"$logs/xattr.err"; then
  echo "start-swift: $devices does not support user xattrs, which Swift needs; use a DIR on ext4, xfs or tmpfs:" >&2
  cat "$logs/xattr.err" >&2
  exit 1
fi

read -r account_port container_port object_port < <("$py" -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

user=$(id -un)
hash=$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
cat >"$etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_prefix = eh-$hash
swift_hash_path_suffix = eh-$hash

[storage-policy:0]
name = Policy-0
default = yes
EOF

# What every server shares: loopback, one process (workers = 0), no
# mount check, no fallocate, everything under DIR.
common() { # PORT
  cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $1
# A taken port fails the start at once (Swift retries for 30 s by default).
bind_timeout = 2
workers = 0
user = $user
swift_dir = $etc
devices = $devices
mount_check = false
disable_fallocate = true
recon_cache_path = $dir/cache
log_level = INFO
EOF
}

for kind in account container object; do
  case $kind in
    account) p=$account_port ;;
    container) p=$container_port ;;
    object) p=$object_port ;;
  esac
  {
    common "$p"
    cat <<EOF

[pipeline:main]
pipeline = healthcheck $kind-server

[app:$kind-server]
use = egg:swift#$kind

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  } >"$etc/$kind-server.conf"
done

{
  common "$port"
  cat <<EOF

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = Sw1ft/s3cret+k3y .admin

# tempauth needs a memcache client; swift_local.py keeps it in-process.
[filter:cache]
paste.filter_factory = swift_local:filter_factory

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
EOF
} >"$etc/proxy-server.conf"

if ! "$py" "$helper" rings "$etc" d1 "$account_port" "$container_port" "$object_port" >"$logs/rings.log" 2>&1; then
  echo "start-swift: building the rings failed:" >&2
  cat "$logs/rings.log" >&2
  exit 1
fi

show_logs() {
  for f in "$logs"/*.log; do
    echo "--- $f" >&2
    tail -n 40 "$f" >&2
  done
}

# The supervisor: starts the four servers, stops them all on SIGTERM, when
# one dies, or when the owner is gone; exits once they are gone.
(
  pids=() sleeper=
  stop() {
    kill "${pids[@]}" $sleeper 2>/dev/null || true
    wait 2>/dev/null || true
    exit 0
  }
  trap stop TERM INT HUP
  for server in account container object proxy; do
    "$py" "$helper" serve "$etc" "$etc/$server-server.conf" "$server-server" </dev/null >"$logs/$server.log" 2>&1 &
    pids+=($!)
  done
  while :; do
    for p in "${pids[@]}"; do
      kill -0 "$p" 2>/dev/null || { echo "server $p exited" >>"$logs/supervisor.log"; stop; }
    done
    if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then stop; fi
    sleep 1 &
    sleeper=$!
    wait $sleeper || true
  done
) </dev/null >>"$logs/supervisor.log" 2>&1 &
pid=$!

fail() {
  echo "start-swift: $1; the logs under $logs:" >&2
  show_logs
  kill "$pid" 2>/dev/null || true
  exit 1
}

# Ready when all four servers answer /healthcheck (at most ~30 s).
ready=0
for _ in $(seq 1 300); do
  kill -0 "$pid" 2>/dev/null || fail "a server exited during start"
  ready=1
  for p in "$account_port" "$container_port" "$object_port" "$port"; do
    if ! curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$p/healthcheck" 2>/dev/null; then
      ready=0
      break
    fi
  done
  [ $ready = 1 ] && break
  sleep 0.1
done
[ $ready = 1 ] || fail "the servers did not answer on 127.0.0.1 within 30 s"

if ! "$py" "$helper" put-bucket "http://127.0.0.1:$port" us-east-1 test:tester "Sw1ft/s3cret+k3y" "$bucket" \
  >"$logs/bucket.log" 2>&1; then
  fail "creating the bucket $bucket failed"
fi
disown "$pid" 2>/dev/null || true
echo "$pid"

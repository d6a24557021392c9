#!/usr/bin/env bash
# The systemd units of contrib/systemd (docs/operations.md): systemd-analyze
# verify accepts them without a single remark (an unknown or misspelt key is
# only a warning to systemd, and a failure here), and the command lines they
# run, as systemd would expand them, start the real binary, which stops on
# the unit's KillSignal with status 0 within its TimeoutStopSec. No systemd
# runs in CI (it is not PID 1), so the expansion of ${VAR}, %i and %C and the
# environment are done here the way systemd.exec(5) and systemd.unit(5)
# describe them.
source "$(dirname "$0")/lib.sh"
UNITS=$(cd "$(dirname "$0")/../../contrib/systemd" && pwd)

# unit_key UNIT KEY: the value of the last KEY= line.
unit_key() { sed -n "s/^$2=//p" "$UNITS/$1" | tail -1; }
# run_unit UNIT LOG [extra args...]: starts the unit's ExecStart (after the
# caller's substitutions in EXEC) with the unit's UMask; sets UNIT_PID.
run_unit() {
  local log=$2
  shift 2
  local -a words
  read -r -a words <<<"$EXEC"
  (umask "$(unit_key "$UNIT" UMask)" && exec "${words[@]}" "$@") >"$log" 2>&1 &
  UNIT_PID=$!
}
# wait_log LOG PATTERN WHAT
wait_log() {
  for _ in $(seq 1 200); do grep -q "$2" "$1" && return 0; kill -0 "$UNIT_PID" 2>/dev/null || break; sleep 0.05; done
  fail "$3: [$2] not in its log: $(tail -5 "$1")"
  return 1
}

# --- 1. systemd-analyze verify ----------------------------------------------
mkdir -p "$TMP/units"
for u in "$UNITS"/*.service; do
  sed "s|/usr/local/bin/horizon|$HORIZON|g" "$u" >"$TMP/units/$(basename "$u")"
done
out=$(cd "$TMP/units" && systemd-analyze verify ./horizon-writer.service ./horizon-pusher@app.service 2>&1); rc=$?
check "1: systemd-analyze verify exits 0 ($out)" 0 "$rc"
check "1: systemd-analyze verify has no remark" "" "$out"
for u in horizon-writer.service horizon-pusher@.service; do
  check "1: $u restarts the process when it fails (the Writer's fail-stop exits 74)" 1 \
    "$(grep -cE '^Restart=(on-failure|always)$' "$UNITS/$u")"
done

# --- 2. the Writer's command line -------------------------------------------
UNIT=horizon-writer.service
data="$TMP/state/event-horizon"
EXEC=$(unit_key $UNIT ExecStart)
EXEC=${EXEC//\/var\/lib\/event-horizon/$data}
EXEC=${EXEC//\/usr\/local\/bin\/horizon/$HORIZON}
check "2: StateDirectory is the data directory of ExecStart" "event-horizon" "$(unit_key $UNIT StateDirectory)"
mkdir -p "$TMP/state" && mkdir -m "$(unit_key $UNIT StateDirectoryMode)" "$data"
# Type=notify: a service manager's socket gets READY=1 once the API answers.
check "2: the Writer's unit waits for its readiness" notify "$(unit_key $UNIT Type)"
python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print('listening', flush=True)
while True:
    print(s.recv(4096).decode().replace(chr(10), ' '), flush=True)" "$TMP/notify.sock" >"$TMP/notify.out" &
MANAGER=$!
for _ in $(seq 1 50); do grep -q listening "$TMP/notify.out" 2>/dev/null && break; sleep 0.05; done
# On free loopback ports (the unit's defaults, 9092 and up, may be taken here).
NOTIFY_SOCKET=$TMP/notify.sock run_unit $UNIT "$TMP/writer-unit.log" --api 127.0.0.1:0 --pubsub 127.0.0.1:0 \
  --metrics 127.0.0.1:0
WRITER_UNIT_PID=$UNIT_PID
for _ in $(seq 1 200); do grep -q READY=1 "$TMP/notify.out" && break; sleep 0.05; done
api_at=$(sed -n 's/.*ready: api https:\/\/\([^ ]*\) .*/\1/p' "$TMP/writer-unit.log" | tail -1)
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$data/ca.pem" "https://$api_at/health")
contains "2: the service manager was told READY=1" "READY=1 STATUS=ready: api https://" "$(cat "$TMP/notify.out")"
check "2: at READY=1 the API answers" 200 "$code"
if wait_log "$TMP/writer-unit.log" "ready: api" "2: the Writer starts"; then
  pass
  out=$(HORIZON_DATA=$data "$HORIZON" stream-create /svc 2>&1); rc=$?
  check "2: a stream on that Writer ($out)" 0 "$rc"
  check "2: client.env is private" 600 "$(stat -c %a "$data/client.env")"
  check "2: the data directory is private" 700 "$(stat -c %a "$data")"
  client_env=$(cat "$data/client.env")

  # --- 3. a Pusher instance's command line, beside that Writer --------------
  UNIT=horizon-pusher@.service
  proxy_port=$(free_port)
  app_port=$(free_port)
  {
    echo "$client_env"
    echo "PUSH_ENDPOINT=http://127.0.0.1:$app_port/_eventhorizon_push"
    echo "PUSH_PROXY=127.0.0.1:$proxy_port"
  } >"$TMP/pusher-app.env"
  EXEC=$(unit_key $UNIT ExecStart)
  EXEC=${EXEC//\/usr\/local\/bin\/horizon/$HORIZON}
  cache=$(unit_key $UNIT Environment)
  cache=${cache#XDG_CACHE_HOME=}
  cache=${cache//%C/$TMP/cache}
  cache=${cache//%i/app}
  check "3: the cache is the unit's CacheDirectory" "$TMP/cache/$(unit_key $UNIT CacheDirectory | sed 's/%i/app/')" "$cache"
  mkdir -p "$cache"
  (
    set -a
    source "$TMP/pusher-app.env"
    set +a
    set +u  # systemd expands an unset variable to nothing
    EXEC=$(eval "echo \"$EXEC\"")  # ${PUSH_ENDPOINT} ${PUSH_PROXY}, as systemd expands them
    export XDG_CACHE_HOME=$cache HOME=/nonexistent
    run_unit $UNIT "$TMP/pusher-unit.log"
    echo "$UNIT_PID" >"$TMP/pusher.pid"
    wait "$UNIT_PID"
    echo $? >"$TMP/pusher.rc"
  ) &
  PUSHER_WAITER=$!
  for _ in $(seq 1 50); do [ -s "$TMP/pusher.pid" ] && break; sleep 0.05; done
  UNIT_PID=$(cat "$TMP/pusher.pid")
  if wait_log "$TMP/pusher-unit.log" "writer proxy on http://127.0.0.1:$proxy_port" "3: the Pusher starts"; then
    pass
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary '{"Stream":"/svc","Lines":["via proxy"]}' \
      "http://127.0.0.1:$proxy_port/writer/append")
    check "3: an append through the Pusher's writer proxy" 201 "$code"
  fi
  # A refused Pusher (an endpoint libcurl cannot use) exits with the unit's
  # RestartPreventExitStatus.
  (
    set -a
    source "$TMP/pusher-app.env"
    set +a
    PUSH_ENDPOINT='https://[::1/x'
    EXEC=$(eval "echo \"$EXEC\"")
    run_unit $UNIT "$TMP/pusher-refused.log"
    wait "$UNIT_PID"
    echo $? >"$TMP/pusher-refused.rc"
  )
  check "3: a refused Pusher exits with the unit's RestartPreventExitStatus ($(tail -1 "$TMP/pusher-refused.log"))" \
    "$(unit_key $UNIT RestartPreventExitStatus)" "$(cat "$TMP/pusher-refused.rc")"
  limit=$(unit_key $UNIT TimeoutStopSec)
  kill -"$(unit_key $UNIT KillSignal | sed 's/^SIG//')" "$UNIT_PID"
  for _ in $(seq 1 $((limit * 10))); do [ -s "$TMP/pusher.rc" ] && break; sleep 0.1; done
  check "3: the Pusher exits 0 on KillSignal within TimeoutStopSec ($(tail -2 "$TMP/pusher-unit.log"))" 0 \
    "$(cat "$TMP/pusher.rc" 2>/dev/null || echo 'still running')"
  kill -KILL "$UNIT_PID" 2>/dev/null
  wait "$PUSHER_WAITER" 2>/dev/null
fi
UNIT=horizon-writer.service
# --- 4. exit statuses the unit restarts, and the one it does not ------------
# A start that may succeed later (the API port is taken: by the running
# Writer) exits with a status Restart=on-failure restarts; a refused start
# (a flag) with the unit's RestartPreventExitStatus.
EXEC=$(unit_key $UNIT ExecStart)
EXEC=${EXEC//\/var\/lib\/event-horizon/$TMP/state/second}
EXEC=${EXEC//\/usr\/local\/bin\/horizon/$HORIZON}
run_unit $UNIT "$TMP/busy.log" --api "$(sed -n 's/.*ready: api https:\/\/\([^ ]*\) .*/\1/p' "$TMP/writer-unit.log" | tail -1)" \
  --pubsub 127.0.0.1:0 --metrics 127.0.0.1:0
wait "$UNIT_PID"; rc=$?
check "4: a port in use exits 1, which the unit restarts ($(tail -1 "$TMP/busy.log"))" 1 "$rc"
run_unit $UNIT "$TMP/refused.log" --sync-pacing 0.5 --api 127.0.0.1:0 --pubsub 127.0.0.1:0 --metrics 127.0.0.1:0
wait "$UNIT_PID"; rc=$?
check "4: a refused start exits with the unit's RestartPreventExitStatus ($(tail -1 "$TMP/refused.log"))" \
  "$(unit_key $UNIT RestartPreventExitStatus)" "$rc"

[ "$(unit_key $UNIT KillSignal)" = SIGTERM ] || fail "2: the Writer's KillSignal is SIGTERM"
sigterm_wait "$WRITER_UNIT_PID" "$(unit_key $UNIT TimeoutStopSec)" "2: the Writer"
check "2: the Writer exits 0 on SIGTERM ($(tail -2 "$TMP/writer-unit.log"))" 0 "$STOP_RC"
contains "2: the service manager was told STOPPING=1" "STOPPING=1" "$(cat "$TMP/notify.out")"
kill "$MANAGER" 2>/dev/null; wait "$MANAGER" 2>/dev/null
grep -q "clean shutdown complete" "$TMP/writer-unit.log" && pass || fail "2: no clean shutdown in the log"
token=$(sed -n 's/^HORIZON_TOKEN=//p' "$data/client.env" 2>/dev/null)
[ -n "$token" ] && not_contains "2: no token in the log" "$token" "$(cat "$TMP/writer-unit.log")"
finish

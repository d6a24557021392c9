#!/usr/bin/env bash
# push_bench.sh: Pusher delivery into an application (issue 7, "Performance").
#
#   bench/push_bench.sh [--rate R] [--seconds S] [--warmup W] [--conns C]
#                       [--lines N] [--chunk-size BYTES] [--dir DIR]
#
#   --rate R        appends/s of the latency run (default 1000)
#   --seconds S     length of the latency run (default 10)
#   --warmup W      seconds at the same rate before it, not counted (default 1)
#   --conns C       keep-alive HTTPS connections of the load generator (default 8)
#   --lines N       lines of the catch-up runs (default 200000, ~100 bytes each)
#   --chunk-size B  the catch-up Writer's --chunk-size (default 1048576)
#   --dir DIR       parent of the temporary directory (default /tmp; BENCH_DIR)
#   BENCH_KEEP=1    keep the temp dir (logs, per-line timings) for inspection
#   HORIZON=PATH, SQLITE_APP=PATH   the binaries (default build/horizon,
#                   build/examples/sqlite_app; waited for if a rebuild removed them)
#
# 1. Latency, append -> applied in the app, with pub/sub: a Writer (default
#    flags), /users subscribed to /_sub/app, examples' sqlite_app (pushlib +
#    SQLite adapter, synchronous=FULL) and `horizon pusher --proxy off`.
#    A Python asyncio load generator sends one line per POST /writer/append
#    over C keep-alive HTTPS connections (CA from the data dir), open loop at
#    R appends/s for W + S seconds; the first W seconds (ids w<N>) warm the
#    Pusher's connections up (each of its 5 workers opens its HTTPS
#    connection to the Writer and its HTTP connection to the app on its
#    first use) and are reported apart; the S seconds after are measured:
#    {"type":"UserCreated","id":"u<N>","name":"<send time, ns>"}. For every
#    line it records the send time and the time of its 201. Two observers, in
#    their own processes (CLOCK_MONOTONIC is shared), record when the line is
#    applied:
#      - committed: a separate SQLite connection (WAL) polls the app's
#        `events` table every 1 ms; the time is taken before the SELECT that
#        first sees the row (the row was committed before that snapshot);
#      - stdout: sqlite_app prints a line per UserCreated (inside the push
#        transaction, before its COMMIT); a reader timestamps each read()
#        of its stdout pipe.
#    Reported: 201 -> committed (the target), 201 -> stdout, send -> 201.
# 2. Catch-up from sealed chunks: a Writer with --chunk-size B; N lines of
#    100 bytes appended to /bulk (stream-appendfromfile), then wait until the
#    shipper has shipped every sealed chunk (horizon_ship_backlog_chunks 0),
#    append one end-marker line (so N + 1 lines are timed) and wait until a
#    SubscriptionActivity line names the end. Then, with an empty
#    reader cache (XDG_CACHE_HOME in the temp dir), start the app, then the
#    Pusher, and time from the Pusher's start until the app has applied the
#    N lines:
#      (a) bench/null_app.py: Python, handler does nothing, offsets in memory;
#          its own busy time is reported so its ceiling can be told apart;
#      (b) sqlite_app: one `events` row per line (type "Bulk": no users row),
#          end seen by polling max(seq) every 5 ms.
#    The last, unsealed chunk (< B bytes) is read live from the Writer.
# Targets (issue 7): latency p50 <= 5 ms, p99 <= 25 ms at 1,000 appends/s;
# catch-up >= 200,000 lines/s (null app), >= 50,000 lines/s (SQLite).
# Everything listens on 127.0.0.1; every process started here and the temp
# dir are removed on exit (trap); every wait is bounded.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HORIZON=${HORIZON:-$ROOT/build/horizon}
SQLITE_APP=${SQLITE_APP:-$ROOT/build/examples/sqlite_app}
NULL_APP=$ROOT/bench/null_app.py
RATE=1000
SECS=10
WARM=1
CONNS=8
LINES=200000
CHUNK=1048576
LINE_BYTES=100
PARENT=${BENCH_DIR:-/tmp}
while (($#)); do
  case $1 in
    --rate) RATE=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --warmup) WARM=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --lines) LINES=$2; shift 2 ;;
    --chunk-size) CHUNK=$2; shift 2 ;;
    --dir) PARENT=$2; shift 2 ;;
    -h | --help) sed -n '2,54p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "push_bench: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
for v in RATE SECS CONNS LINES CHUNK; do
  [[ ${!v} =~ ^[0-9]+$ ]] && ((${!v} >= 1)) || { echo "push_bench: $v must be a positive integer" >&2; exit 2; }
done
[[ $WARM =~ ^[0-9]+$ ]] || { echo "push_bench: WARM must be an integer >= 0" >&2; exit 2; }
command -v python3 >/dev/null && command -v curl >/dev/null || { echo "push_bench: needs python3 and curl" >&2; exit 1; }

# Another engineer may be rebuilding: wait (bounded) for the binaries.
for _ in $(seq 1 300); do [ -x "$HORIZON" ] && [ -x "$SQLITE_APP" ] && break; sleep 1; done
[ -x "$HORIZON" ] || { echo "push_bench: $HORIZON not found: build first" >&2; exit 1; }
[ -x "$SQLITE_APP" ] || { echo "push_bench: $SQLITE_APP not found: build first" >&2; exit 1; }

# --- temp dir, processes, cleanup
mkdir -p "$PARENT"
TMP=$(mktemp -d "$PARENT/eh-push-bench.XXXXXX")
export XDG_CACHE_HOME=$TMP/cache # the Pusher's reader cache: private, emptied before each catch-up run
PIDS=()
WRITER_PID=""
# stop_pid PID...: SIGTERM, up to 5 s, then SIGKILL; only processes started here.
stop_pid() {
  local p
  for p in "$@"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
  for p in "$@"; do
    [ -n "$p" ] || continue
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
cleanup() {
  trap - EXIT INT TERM
  stop_pid "${PIDS[@]}" "$WRITER_PID"
  if [ -n "${BENCH_KEEP:-}" ]; then echo "push_bench: kept $TMP (BENCH_KEEP)" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LOGS=()
die() {
  echo "push_bench: $*" >&2
  local f
  for f in "${LOGS[@]}"; do [ -s "$f" ] && { echo "--- $f (tail)" >&2; tail -20 "$f" >&2; }; done
  exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ns() { date +%s%N; }
# wait_for SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds.
wait_for() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# start_writer DATA_DIR [flags...] -> WRITER_PID API METRICS TOKEN CA
start_writer() {
  local data=$1 log=$1.writer.log
  shift
  : >"$log"
  LOGS+=("$log")
  "$HORIZON" writer --data "$data" --api 127.0.0.1:0 --pubsub 127.0.0.1:0 --metrics 127.0.0.1:0 "$@" >>"$log" 2>&1 &
  WRITER_PID=$!
  wait_for 20 grep -qs "ready: api" "$log" || die "writer not ready"
  API=$(sed -n 's/.*ready: api https:\/\/\([^ ]*\) .*/\1/p' "$log" | tail -1)
  METRICS=$(sed -n 's/.*metrics http:\/\/\([^ ]*\)\/metrics.*/\1/p' "$log" | tail -1)
  TOKEN=$(sed -n 's/^HORIZON_TOKEN=//p' "$data/client.env")
  CA=$data/ca.pem
  [[ $API == 127.0.0.1:* && $METRICS == 127.0.0.1:* ]] || die "writer is not on loopback: api $API metrics $METRICS"
}
stop_writer() { stop_pid "$WRITER_PID"; WRITER_PID=""; }
hz() { HORIZON_DATA=$DATA timeout 60 "$HORIZON" "$@"; }
metric() { curl -sS --max-time 5 "http://$METRICS/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# start_pusher APP_URL LOG -> PUSHER_PID
start_pusher() {
  LOGS+=("$2")
  HORIZON_DATA=$DATA "$HORIZON" pusher --endpoint "$1" --proxy off >"$2" 2>&1 &
  PUSHER_PID=$!
  PIDS+=("$PUSHER_PID")
}

# CPU accounting (what limited a run): a process's user+sys ticks, the machine's busy/total ticks.
HZ_TICKS=$(getconf CLK_TCK)
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
machine_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }
pct() { awk -v a="$1" -v b="$2" -v s="$3" -v hz="$HZ_TICKS" 'BEGIN { printf "%.0f%%", 100 * (b - a) / hz / s }'; }

# --- helpers in Python (written to the temp dir)
cat >"$TMP/loadgen.py" <<'PY'
# loadgen.py HOST:PORT TOKEN CA STREAM RATE WARMUP SECONDS CONNS OUT
# Open loop: line i is due at t0 + i/RATE; an idle connection takes it. The
# first RATE*WARMUP lines are w<i>, the next RATE*SECONDS u<i>.
# OUT: "id t_due t_send t_201 status" per append (CLOCK_MONOTONIC ns).
import asyncio, json, ssl, sys, time
api, token, ca, stream, rate, warm, secs, nconn, out = sys.argv[1:10]
host, port = api.rsplit(":", 1)
rate, warm, secs, nconn = int(rate), int(warm), int(secs), int(nconn)
W, N = rate * warm, rate * secs
HEAD = (f"POST /writer/append HTTP/1.1\r\nHost: {api}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n")
recs = []

async def append(r, w, name):
    t_send = time.monotonic_ns()
    line = json.dumps({"type": "UserCreated", "id": name, "name": str(t_send)}, separators=(",", ":"))
    body = json.dumps({"Stream": stream, "Lines": [line]}, separators=(",", ":")).encode()
    w.write((HEAD % len(body)).encode() + body)
    hdr = await r.readuntil(b"\r\n\r\n")
    status = int(hdr[9:12])
    length = 0
    for h in hdr.split(b"\r\n")[1:]:
        if h.lower().startswith(b"content-length:"):
            length = int(h.split(b":", 1)[1])
    await r.readexactly(length)
    return t_send, time.monotonic_ns(), status

async def main():
    ctx = ssl.create_default_context(cafile=ca)
    conns = [await asyncio.open_connection(host, int(port), ssl=ctx, server_hostname=host) for _ in range(nconn)]
    # One append per connection (its TLS session is then warm), delivered before the schedule starts.
    for k, (r, w) in enumerate(conns):
        t_send, t_201, status = await append(r, w, f"c{k}")
        recs.append((f"c{k}", t_send, t_send, t_201, status))
    await asyncio.sleep(0.5)
    q = asyncio.Queue()

    async def worker(r, w):
        while True:
            item = await q.get()
            if item is None:
                return
            i, due = item
            name = f"w{i}" if i < W else f"u{i - W}"
            t_send, t_201, status = await append(r, w, name)
            recs.append((name, due, t_send, t_201, status))

    tasks = [asyncio.create_task(worker(r, w)) for r, w in conns]
    t0 = time.monotonic_ns() + 1_000_000
    step = 1e9 / rate
    for i in range(W + N):
        due = t0 + int(i * step)
        delay = due - time.monotonic_ns()
        if delay > 0:
            await asyncio.sleep(delay / 1e9)
        q.put_nowait((i, due))
    for _ in tasks:
        q.put_nowait(None)
    await asyncio.gather(*tasks)
    for r, w in conns:
        w.close()
    with open(out, "w") as f:
        for rec in recs:
            f.write("%s %d %d %d %d\n" % rec)

asyncio.run(main())
PY

cat >"$TMP/stamp.py" <<'PY'
# stamp.py OUT < pipe: every stdout line of the app, prefixed with the
# CLOCK_MONOTONIC ns of the read() that returned it.
import os, sys, time
out = open(sys.argv[1], "w")
buf = b""
while True:
    data = os.read(0, 1 << 16)
    t = time.monotonic_ns()
    if not data:
        break
    buf += data
    *lines, buf = buf.split(b"\n")
    for line in lines:
        out.write("%d %s\n" % (t, line.decode(errors="replace")))
    out.flush()
PY

cat >"$TMP/poll_db.py" <<'PY'
# poll_db.py DB EXPECT SECONDS OUT: a separate reader connection polls the
# app's events table every 1 ms until EXPECT rows were seen (or SECONDS
# passed). OUT: "t content" per row, t = CLOCK_MONOTONIC ns taken just
# before the SELECT whose snapshot first contained the row.
import sqlite3, sys, time
db, expect, secs, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
con = sqlite3.connect(db, isolation_level=None)
con.execute("PRAGMA busy_timeout=1000")
deadline = time.monotonic() + secs
last, seen = 0, []
while len(seen) < expect and time.monotonic() < deadline:
    t = time.monotonic_ns()
    rows = con.execute("SELECT seq, content FROM events WHERE seq > ? ORDER BY seq", (last,)).fetchall()
    for seq, content in rows:
        seen.append((t, content))
        last = seq
    time.sleep(0.001)
with open(out, "w") as f:
    for t, c in seen:
        f.write("%d %s\n" % (t, c))
PY

cat >"$TMP/analyze_lat.py" <<'PY'
# analyze_lat.py LOADGEN STDOUT DB: percentiles of the latency run; prints
# shell assignments (LAT_*) for the table.
import json, sys
recs = {}
for line in open(sys.argv[1]):
    name, due, send, t201, status = line.split()
    recs[name] = (int(due), int(send), int(t201), int(status))
out_t, db_t = {}, {}
for line in open(sys.argv[2]):
    parts = line.split()
    if len(parts) >= 4 and parts[2] == "UserCreated":  # "<t> /users UserCreated u5 <name>"
        out_t.setdefault(parts[3], int(parts[0]))
for line in open(sys.argv[3]):
    t, content = line.rstrip("\n").split(" ", 1)
    try:
        out = json.loads(content)
    except ValueError:
        continue
    db_t.setdefault(out.get("id"), int(t))
ids = [n for n in recs if n.startswith("u")]
ok = [n for n in ids if recs[n][3] == 201]
warm = [n for n in recs if n.startswith("w") and recs[n][3] == 201]

def pcts(v):
    v = sorted(v)
    if not v:
        return "n/a", "n/a", "n/a", 0
    pick = lambda q: v[min(len(v) - 1, max(0, int(round(q * len(v) + 0.5)) - 1))]
    return "%.2f" % (pick(0.5) / 1e6), "%.2f" % (pick(0.99) / 1e6), "%.2f" % (v[-1] / 1e6), len(v)

def emit(key, vals):
    p50, p99, mx, n = pcts(vals)
    print(f"LAT_{key}_P50={p50} LAT_{key}_P99={p99} LAT_{key}_MAX={mx} LAT_{key}_N={n}")

emit("COMMIT", [db_t[n] - recs[n][2] for n in ok if n in db_t])
emit("STDOUT", [out_t[n] - recs[n][2] for n in ok if n in out_t])
emit("APPEND", [recs[n][2] - recs[n][1] for n in ok])
emit("SENDCOMMIT", [db_t[n] - recs[n][1] for n in ok if n in db_t])
emit("LATE", [recs[n][1] - recs[n][0] for n in ids])
emit("WARM", [db_t[n] - recs[n][2] for n in warm if n in db_t])
sends = sorted(recs[n][1] for n in ids)
span = (sends[-1] - sends[0]) / 1e9 if len(sends) > 1 else 0
print(f"LAT_SENT={len(ids)} LAT_OK={len(ok)} LAT_RATE={len(ids) / span if span else 0:.0f}"
      f" LAT_MISSING_DB={sum(1 for n in ok if n not in db_t)} LAT_MISSING_OUT={sum(1 for n in ok if n not in out_t)}")
PY

cat >"$TMP/wait_rows.py" <<'PY'
# wait_rows.py DB N SECONDS: polls max(seq) of the events table every 5 ms;
# prints "FIRST_NS=<t> DONE_NS=<t>" (time.time_ns: first row seen, N rows seen).
import sqlite3, sys, time
db, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
con = sqlite3.connect(db, isolation_level=None)
con.execute("PRAGMA busy_timeout=1000")
deadline = time.monotonic() + secs
first = done = 0
while time.monotonic() < deadline:
    m = con.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
    if m > 0 and not first:
        first = time.time_ns()
    if m >= n:
        done = time.time_ns()
        break
    time.sleep(0.005)
print(f"FIRST_NS={first} DONE_NS={done}")
PY

cat >"$TMP/null_summary.py" <<'PY'
# null_summary.py STATS_JSON PUSHER_START_NS: shell assignments (NULL_*) from null_app.py's /stats.
import json, sys
s = json.load(open(sys.argv[1]))
t0 = int(sys.argv[2])
n, span = s["lines"], (s["last_ns"] - s["first_ns"]) / 1e9
print("NULL_LPS=%.0f NULL_APP_LPS=%.0f NULL_REQS=%d NULL_BAD=%d NULL_CEIL=%.0f NULL_PARSE_CEIL=%.0f NULL_BUSY=%.0f NULL_SECS=%.2f"
      " NULL_END=%s NULL_PUSH_MS=%.2f NULL_APP_PUSH_MS=%.2f" % (
          n / ((s["last_ns"] - t0) / 1e9), n / span, s["requests"], s["bad_requests"],
          s["lines_total"] / (s["handle_ns"] / 1e9), s["lines_total"] / (s["parse_ns"] / 1e9),
          100 * s["post_ns"] / 1e9 / span, (s["last_ns"] - t0) / 1e9, s["offsets"].get("/bulk", "?"),
          1e3 * span / s["requests"], s["post_ns"] / 1e6 / s["requests"]))
PY

# --- configuration
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
echo "push_bench: Pusher delivery (issue 7): latency with pub/sub, catch-up from sealed chunks"
echo "machine: $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/ { print $2 " GiB" }') RAM, kernel $(uname -r)"
echo "disk:    $(df -hT "$TMP" | awk 'NR == 2 { print $1 " " $2 ", mounted on " $7 }') (temp dir $TMP)"
echo "load:    $(loadavg) at start"
echo "horizon: $HORIZON ($(stat -c '%y' "$HORIZON" | cut -d. -f1)); sqlite_app: $SQLITE_APP ($(stat -c '%y' "$SQLITE_APP" | cut -d. -f1))"
echo "python:  $(python3 --version 2>&1), SQLite $(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)') (observers, load generator, null app)"
echo "latency: $RATE appends/s for $SECS s after a $WARM s warm-up at the same rate, 1 line per append, $CONNS keep-alive"
echo "         HTTPS connections (asyncio, open loop),"
echo "         Writer defaults (fdatasync before 201), /users -> /_sub/app, sqlite_app (synchronous=FULL), Pusher --proxy off;"
echo "         applied = row visible to a separate WAL reader polling every 1 ms; also the app's stdout line (before COMMIT)"
echo "catch-up: $LINES lines of $LINE_BYTES bytes on /bulk, Writer --chunk-size $CHUNK, all sealed chunks shipped to the"
echo "         file store first, empty reader cache; time from the Pusher's start to the last line applied"
echo

# === 1. latency
DATA=$TMP/lat
start_writer "$DATA"
hz stream-create /_sub/app >/dev/null
hz stream-create /users >/dev/null
hz stream-subscribe /users /_sub/app >/dev/null
APP_PORT=$(free_port)
mkfifo "$TMP/app.fifo"
python3 "$TMP/stamp.py" "$TMP/lat-stdout.txt" <"$TMP/app.fifo" &
PIDS+=($!)
"$SQLITE_APP" --db "$TMP/lat-app.db" --port "$APP_PORT" --subscription /_sub/app >"$TMP/app.fifo" 2>"$TMP/lat-app.err" &
APP_PID=$!
PIDS+=("$APP_PID")
LOGS+=("$TMP/lat-app.err" "$TMP/lat-stdout.txt")
wait_for 20 grep -qs "serving pushes" "$TMP/lat-stdout.txt" || die "sqlite_app not ready"
start_pusher "http://127.0.0.1:$APP_PORT/_eventhorizon_push" "$TMP/lat-pusher.log"
wait_for 20 grep -qs "pushing subscription" "$TMP/lat-pusher.log" || die "pusher did not learn the subscription"
grep -q "pub/sub disabled" "$TMP/lat-pusher.log" && die "the Pusher has no pub/sub connection"
N=$((RATE * (WARM + SECS)))
python3 "$TMP/poll_db.py" "$TMP/lat-app.db" $((N + CONNS)) $((WARM + SECS + 60)) "$TMP/lat-db.txt" &
POLL_PID=$!
PIDS+=("$POLL_PID")
read -r M0B M0T <<<"$(machine_ticks)"
W0=$(proc_ticks "$WRITER_PID"); A0=$(proc_ticks "$APP_PID"); P0=$(proc_ticks "$PUSHER_PID")
T0=$(now_ns)
# In the background + wait: a signal to this script then runs the trap at once.
timeout $((WARM + SECS + 60)) python3 "$TMP/loadgen.py" "$API" "$TOKEN" "$CA" /users "$RATE" "$WARM" "$SECS" "$CONNS" "$TMP/lat-load.txt" &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
wait "$LOAD_PID" || die "load generator failed"
T1=$(now_ns)
W1=$(proc_ticks "$WRITER_PID"); A1=$(proc_ticks "$APP_PID"); P1=$(proc_ticks "$PUSHER_PID")
read -r M1B M1T <<<"$(machine_ticks)"
wait "$POLL_PID" || die "db poller failed"
sleep 0.2
python3 "$TMP/analyze_lat.py" "$TMP/lat-load.txt" "$TMP/lat-stdout.txt" "$TMP/lat-db.txt" >"$TMP/lat-summary.sh" ||
  die "latency analysis failed"
source "$TMP/lat-summary.sh"
LAT_WALL=$(awk -v a="$T0" -v b="$T1" 'BEGIN { print (b - a) / 1e9 }')
LAT_CPU="writer $(pct "$W0" "$W1" "$LAT_WALL"), sqlite_app $(pct "$A0" "$A1" "$LAT_WALL"), pusher $(pct "$P0" "$P1" "$LAT_WALL") of a core; machine $(awk -v a="$M0B" -v b="$M1B" -v c="$M0T" -v d="$M1T" 'BEGIN { printf "%.0f%%", 100 * (b - a) / (d - c) }') busy (incl. the Python load generator and observers)"
stop_pid "$PUSHER_PID" "$APP_PID"
stop_writer

# === 2. catch-up
DATA=$TMP/catchup
start_writer "$DATA" --chunk-size "$CHUNK" --activity-interval 0.5
hz stream-create /_sub/app >/dev/null
hz stream-create /bulk >/dev/null
hz stream-subscribe /bulk /_sub/app >/dev/null
python3 - "$LINES" "$LINE_BYTES" "$TMP/bulk.txt" <<'PY'
import sys
n, size, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(out, "w") as f:
    for i in range(n):
        head = '{"type":"Bulk","i":%d,"pad":"' % i
        f.write(head + "x" * (size - len(head) - 2) + '"}\n')
PY
A_T0=$(now_ns)
hz stream-appendfromfile /bulk "$TMP/bulk.txt" >/dev/null || die "stream-appendfromfile failed"
A_T1=$(now_ns)
APPEND_LPS=$(awk -v n="$LINES" -v a="$A_T0" -v b="$A_T1" 'BEGIN { printf "%.0f", n / ((b - a) / 1e9) }')
backlog_zero() { metric horizon_ship_backlog_chunks | awk 'NR == 1 && $1 + 0 == 0 { ok = 1 } END { exit !ok }'; }
S_T0=$(now_ns)
wait_for 180 backlog_zero || die "the shipper did not ship every sealed chunk within 180 s"
SHIP_S=$(awk -v a="$S_T0" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
OBJECTS=$(find "$DATA/store" -type f 2>/dev/null | wc -l)
END_CURSOR=$(hz stream-append /bulk '{"type":"Bulk","i":-1,"pad":"end"}' 2>/dev/null | tail -1 || true)
LINES_TOTAL=$((LINES + 1)) # the end marker line above is applied too
# A SubscriptionActivity round (every 0.5 s) must name /bulk's end before the Pusher starts.
sleep 1.5

# catchup_run NAME: app started by the caller (APP_PID, APP_URL); sets RUN_* values.
catchup_run() {
  local name=$1 t0 a0 w0 m0b m0t
  read -r m0b m0t <<<"$(machine_ticks)"
  a0=$(proc_ticks "$APP_PID"); w0=$(proc_ticks "$WRITER_PID")
  t0=$(now_ns)
  start_pusher "$APP_URL" "$TMP/$name-pusher.log"
  RUN_T0=$t0
  "$WAIT_DONE" || { RUN_OK=0; return 0; }
  local t1 a1 w1 p1 m1b m1t
  t1=$(now_ns)
  a1=$(proc_ticks "$APP_PID"); w1=$(proc_ticks "$WRITER_PID"); p1=$(proc_ticks "$PUSHER_PID")
  read -r m1b m1t <<<"$(machine_ticks)"
  # CPU seconds (the processes are idle once the last line is applied, so
  # sampling a little after the end does not matter); machine busy over t0..t1.
  RUN_CPU=$(awk -v p="$p1" -v a0="$a0" -v a1="$a1" -v w0="$w0" -v w1="$w1" -v hz="$HZ_TICKS" \
    -v b0="$m0b" -v b1="$m1b" -v c0="$m0t" -v c1="$m1t" \
    'BEGIN { printf "pusher %.2f s, app %.2f s, writer %.2f s; machine %.0f%% busy", p / hz, (a1 - a0) / hz, (w1 - w0) / hz, 100 * (b1 - b0) / (c1 - c0) }')
  RUN_CACHED=$(find "$XDG_CACHE_HOME" -type f -name '*.raw' 2>/dev/null | wc -l)
  RUN_OK=1
  stop_pid "$PUSHER_PID"
}

# (a) null app
rm -rf "$XDG_CACHE_HOME"
APP_PORT=$(free_port)
APP_URL="http://127.0.0.1:$APP_PORT/_eventhorizon_push"
python3 "$NULL_APP" "$APP_PORT" /_sub/app >"$TMP/null.out" 2>"$TMP/null.err" &
APP_PID=$!
PIDS+=("$APP_PID")
LOGS+=("$TMP/null.err")
wait_for 20 grep -qs ready "$TMP/null.out" || die "null app not ready"
null_stats() { curl -sS --max-time 5 "http://127.0.0.1:$APP_PORT/stats"; }
null_done() {
  local deadline=$(($(date +%s) + 300))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    # (the end time is the app's own; this poll only has to be cheap)
    [ "$(null_stats | sed -n 's/.*"lines":\([0-9]*\).*/\1/p')" -ge "$LINES_TOTAL" ] 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
WAIT_DONE=null_done
catchup_run null
[ "$RUN_OK" = 1 ] || die "null app: not every line applied within 300 s"
NULL_CPU=$RUN_CPU
NULL_CACHED=$RUN_CACHED
null_stats >"$TMP/null-stats.json" || die "null app: no /stats"
python3 "$TMP/null_summary.py" "$TMP/null-stats.json" "$RUN_T0" >"$TMP/null-summary.sh" || die "null app: bad /stats"
source "$TMP/null-summary.sh"
stop_pid "$APP_PID"

# (b) sqlite_app
rm -rf "$XDG_CACHE_HOME"
APP_PORT=$(free_port)
APP_URL="http://127.0.0.1:$APP_PORT/_eventhorizon_push"
"$SQLITE_APP" --db "$TMP/bulk-app.db" --port "$APP_PORT" --subscription /_sub/app >"$TMP/sqlite.out" 2>"$TMP/sqlite.err" &
APP_PID=$!
PIDS+=("$APP_PID")
LOGS+=("$TMP/sqlite.err")
wait_for 20 grep -qs "serving pushes" "$TMP/sqlite.out" || die "sqlite_app not ready"
python3 "$TMP/wait_rows.py" "$TMP/bulk-app.db" "$LINES_TOTAL" 300 >"$TMP/rows.out" &
ROWS_PID=$!
PIDS+=("$ROWS_PID")
sqlite_done() { wait "$ROWS_PID"; grep -q 'DONE_NS=[1-9]' "$TMP/rows.out"; }
WAIT_DONE=sqlite_done
catchup_run sqlite
[ "$RUN_OK" = 1 ] || die "sqlite_app: not every line applied within 300 s"
SQL_CPU=$RUN_CPU
SQL_CACHED=$RUN_CACHED
eval "$(cat "$TMP/rows.out")"
SQL_LPS=$(awk -v n="$LINES_TOTAL" -v a="$RUN_T0" -v b="$DONE_NS" 'BEGIN { printf "%.0f", n / ((b - a) / 1e9) }')
SQL_APP_LPS=$(awk -v n="$LINES_TOTAL" -v a="$FIRST_NS" -v b="$DONE_NS" 'BEGIN { printf "%.0f", n / ((b - a) / 1e9) }')
SQL_SECS=$(awk -v a="$RUN_T0" -v b="$DONE_NS" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
stop_pid "$APP_PID"
SQL_CHECK=$(python3 - "$TMP/bulk-app.db" "$TMP/bulk.txt" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
got = [r[0] for r in db.execute("SELECT content FROM events WHERE stream='/bulk' ORDER BY seq")]
want = open(sys.argv[2]).read().split("\n")[:-1]
print("exact" if got[:len(want)] == want and len(got) == len(want) + 1 else f"MISMATCH ({len(got)} rows)")
PY
)
stop_writer

# --- report
met() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { if (v == "n/a") print "n/a"; else if (op == "le") print (v + 0 <= t ? "yes" : "NO"); else print (v + 0 >= t ? "yes" : "NO") }'; }
echo "load:    $(loadavg) at end"
echo
printf '%-52s %26s %18s %5s\n' measure result target met
printf '%-52s %26s %18s %5s\n' "latency 201 -> row committed in app, p50" "$LAT_COMMIT_P50 ms" "<= 5 ms" "$(met "$LAT_COMMIT_P50" 5 le)"
printf '%-52s %26s %18s %5s\n' "latency 201 -> row committed in app, p99" "$LAT_COMMIT_P99 ms" "<= 25 ms" "$(met "$LAT_COMMIT_P99" 25 le)"
printf '%-52s %26s %18s %5s\n' "latency 201 -> row committed in app, max" "$LAT_COMMIT_MAX ms" "" ""
printf '%-52s %26s %18s %5s\n' "latency 201 -> app stdout (pre-COMMIT) p50/p99/max" "$LAT_STDOUT_P50 / $LAT_STDOUT_P99 / $LAT_STDOUT_MAX ms" "" ""
printf '%-52s %26s %18s %5s\n' "append send -> 201, p50/p99/max" "$LAT_APPEND_P50 / $LAT_APPEND_P99 / $LAT_APPEND_MAX ms" "" ""
printf '%-52s %26s %18s %5s\n' "send -> row committed, p50/p99/max" "$LAT_SENDCOMMIT_P50 / $LAT_SENDCOMMIT_P99 / $LAT_SENDCOMMIT_MAX ms" "" ""
printf '%-52s %26s %18s %5s\n' "catch-up into null app (Python), Pusher start->end" "$NULL_LPS lines/s" ">= 200000 lines/s" "$(met "$NULL_LPS" 200000 ge)"
printf '%-52s %26s %18s %5s\n' "catch-up into sqlite_app, Pusher start->end" "$SQL_LPS lines/s" ">= 50000 lines/s" "$(met "$SQL_LPS" 50000 ge)"
echo
echo "checks and notes:"
echo "  latency: $LAT_SENT appends sent ($LAT_OK x 201) at $LAT_RATE/s; $LAT_COMMIT_N seen committed by the poller (missing $LAT_MISSING_DB),"
echo "    $LAT_STDOUT_N on the app's stdout (missing $LAT_MISSING_OUT); send lateness vs the open-loop schedule p50/p99/max $LAT_LATE_P50 / $LAT_LATE_P99 / $LAT_LATE_MAX ms"
echo "  latency: warm-up ($WARM s, $LAT_WARM_N lines, not in the table) 201 -> committed p50/p99/max $LAT_WARM_P50 / $LAT_WARM_P99 / $LAT_WARM_MAX ms"
echo "  latency: CPU during the run: $LAT_CPU"
echo "  catch-up: $((LINES + 1)) lines appended at $APPEND_LPS lines/s (stream-appendfromfile, 1000 per request);"
echo "    shipped in $SHIP_S s after the last append; $OBJECTS objects in the file store; end cursor $END_CURSOR"
echo "  null app: $NULL_SECS s, $NULL_REQS requests ($NULL_BAD rejected), app-side rate (first line -> last) $NULL_APP_LPS lines/s;"
echo "    its own ceiling on these bodies: $NULL_CEIL lines/s (body read + json.loads + protocol), json.loads alone $NULL_PARSE_CEIL lines/s;"
echo "    busy $NULL_BUSY% of the time between its first and last line (a push every $NULL_PUSH_MS ms, $NULL_APP_PUSH_MS ms of it in the app);"
echo "    final /bulk position $NULL_END"
echo "    CPU during the $NULL_SECS s: $NULL_CPU; $NULL_CACHED chunks fetched from the store into the reader cache"
echo "  sqlite_app: $SQL_SECS s, app-side rate (first row committed -> last) $SQL_APP_LPS lines/s; events table vs appended lines: $SQL_CHECK"
echo "    CPU during the $SQL_SECS s: $SQL_CPU; $SQL_CACHED chunks fetched from the store into the reader cache"

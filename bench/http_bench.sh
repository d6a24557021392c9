#!/usr/bin/env bash
# http_bench.sh: durable append throughput and latency of the Writer over HTTPS
# (issue 4, "Performance"), against Redis 7 Streams with appendfsync always
# measured in the same run on the same disk.
#
#   bench/http_bench.sh [--seconds S] [--repeat N] [--dir DIR]
#
#   BENCH_SECONDS=S   seconds per configuration (default 10; --seconds wins)
#   BENCH_REPEAT=N    rounds per configuration, Event Horizon and Redis
#                     alternating, one row each; with N > 1 a table of the
#                     medians follows (default 1; --repeat wins)
#   BENCH_DIR=DIR     parent of the temporary data directories (default /tmp)
#   HORIZON=PATH      the horizon binary (default build/horizon)
#   WRITER_ARGS=...   extra flags for the Writer (e.g. "--commit-on thread")
#   REDIS_TLS=1       Redis over TLS (like-for-like with the Writer's HTTPS)
#   REDIS_TLS=both    Redis both ways in every round: plaintext in the main
#                     columns, over TLS in two more (ratio EH/R-TLS)
#   BENCH_ONLY="CxL ..." only these configurations (e.g. "1x1 16x100")
#
# For {1, 16, 64} connections x {1, 10, 100} lines of 120 bytes per request:
#   Event Horizon: a fresh Writer (default flags: every append is fdatasync'ed,
#     group commit, before its 201), driven by wrk over HTTPS with keep-alive,
#     2 wrk threads (1 for 1 connection), S seconds, latency from wrk --latency.
#   Redis: a fresh private redis-server (appendonly yes, appendfsync always,
#     no RDB snapshots) driven by redis-benchmark: XADD of one 120-byte field,
#     -c connections, -P lines-per-request as the pipeline depth, N requests
#     sized from a short probe so the run lasts about S seconds.
# Everything listens on 127.0.0.1 only; every process and temp dir is removed
# on exit; each tool call is wrapped in `timeout`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HORIZON=${HORIZON:-$ROOT/build/horizon}
SECONDS_PER=${BENCH_SECONDS:-10}
REPEAT=${BENCH_REPEAT:-1}
PARENT=${BENCH_DIR:-/tmp}
while (($#)); do
  case $1 in
    --seconds) SECONDS_PER=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --dir) PARENT=$2; shift 2 ;;
    -h | --help) sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "http_bench: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
if ! [[ $SECONDS_PER =~ ^[0-9]+$ ]] || ((SECONDS_PER < 1)); then
  echo "http_bench: seconds must be a positive integer" >&2
  exit 2
fi
case ${REDIS_TLS:-0} in
  0 | 1 | both) ;;
  *) echo "http_bench: REDIS_TLS must be 0, 1 or both" >&2; exit 2 ;;
esac
if ! [[ $REPEAT =~ ^[0-9]+$ ]] || ((REPEAT < 1 || REPEAT > 20)); then
  echo "http_bench: --repeat must be an integer from 1 to 20" >&2
  exit 2
fi

# median NUMBER... -> the median (the mean of the middle two for an even count)
median() {
  printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

CONNS=(1 16 64)
BATCHES=(1 10 100)
LINE_BYTES=120

# --- tools (not in scripts/install-deps.sh on purpose: this is not part of CI)
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null && command -v redis-cli >/dev/null ||
  need+=(redis-server redis-tools)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
  echo "http_bench: installing ${need[*]}" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
for _ in $(seq 1 100); do [ -x "$HORIZON" ] && break; sleep 0.1; done # tolerate a concurrent rebuild
[ -x "$HORIZON" ] || { echo "http_bench: $HORIZON not found: build first (scripts/build.sh)" >&2; exit 1; }

# --- temp dir, processes, cleanup
mkdir -p "$PARENT"
TMP=$(mktemp -d "$PARENT/eh-http-bench.XXXXXX")
WRITER_PID=""
REDIS_PID=""
REDIS_PORT=""
stop_writer() {
  if [ -n "$WRITER_PID" ] && kill -0 "$WRITER_PID" 2>/dev/null; then
    kill -TERM "$WRITER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$WRITER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$WRITER_PID" 2>/dev/null || true
    wait "$WRITER_PID" 2>/dev/null || true
  fi
  WRITER_PID=""
}
stop_redis() {
  if [ -n "$REDIS_PID" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
    redis-cli "${REDIS_CLIENT_TLS[@]}" -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || kill -TERM "$REDIS_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  REDIS_PID=""
}
cleanup() {
  trap - EXIT INT TERM
  stop_writer
  stop_redis
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "http_bench: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A 120-byte line, plain ASCII (nothing to escape in JSON or for the shell).
LINE=$(printf 'ts=2024-05-01T12:00:00.000Z type=order_created id=000000000042 payload=%s' "$(printf 'x%.0s' $(seq 1 200))")
LINE=${LINE:0:$LINE_BYTES}
((${#LINE} == LINE_BYTES)) || die "line is ${#LINE} bytes"

# --- Event Horizon
start_writer() {
  local data=$TMP/eh-data log=$TMP/writer.log
  rm -rf "$data"
  : >"$log"
  # shellcheck disable=SC2086 # WRITER_ARGS is a list of flags
  "$HORIZON" writer --data "$data" --api 127.0.0.1:0 --pubsub 127.0.0.1:0 --metrics 127.0.0.1:0 ${WRITER_ARGS:-} \
    >>"$log" 2>&1 &
  WRITER_PID=$!
  for _ in $(seq 1 300); do
    grep -q "ready: api" "$log" && break
    kill -0 "$WRITER_PID" 2>/dev/null || { cat "$log" >&2; die "writer exited"; }
    sleep 0.05
  done
  grep -q "ready: api" "$log" || { cat "$log" >&2; die "writer not ready after 15 s"; }
  API=$(sed -n 's/.*ready: api https:\/\/\([^ ]*\) .*/\1/p' "$log" | tail -1)
  METRICS=$(sed -n 's/.*metrics http:\/\/\([^ ]*\)\/metrics.*/\1/p' "$log" | tail -1)
  TOKEN=$(sed -n 's/^HORIZON_TOKEN=//p' "$data/client.env")
  CA=$data/ca.pem
  [[ $API == 127.0.0.1:* ]] || die "writer API is not on loopback: $API"
  local code
  code=$(curl -sS -o "$TMP/create.out" -w '%{http_code}' --max-time 10 --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary '{"Name":"/bench"}' "https://$API/writer/create_stream")
  [ "$code" = 201 ] || die "create_stream answered $code: $(cat "$TMP/create.out")"
}

# writer_counts: "lines syncs" (horizon_appended_lines_total, horizon_wal_syncs) from the metrics endpoint.
writer_counts() {
  curl -sS --max-time 10 "http://$METRICS/metrics" |
    awk '$1 == "horizon_appended_lines_total" { l = $2 } $1 == "horizon_wal_syncs" { s = $2 } END { printf "%d %d\n", l, s }'
}

# append_buckets: "le count" lines of horizon_append_latency_seconds (parsed
# request -> durable acknowledgement, measured inside the Writer).
append_buckets() {
  curl -sS --max-time 10 "http://$METRICS/metrics" |
    sed -n 's/^horizon_append_latency_seconds_bucket{le="\([^"]*\)"} \(.*\)$/\1 \2/p'
}
# server_quantile BEFORE AFTER Q: quantile in ms of the buckets' difference,
# interpolated linearly inside the bucket (as Prometheus' histogram_quantile).
server_quantile() {
  join <(sort "$1") <(sort "$2") | awk -v q="$3" '
    { le[NR] = ($1 == "+Inf") ? 1e9 : $1 + 0; c[NR] = $3 - $2 }
    END {
      n = NR
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (le[j] < le[i]) { t = le[i]; le[i] = le[j]; le[j] = t; t = c[i]; c[i] = c[j]; c[j] = t }
      total = c[n]; if (total <= 0) { print "n/a"; exit }
      rank = q * total; prev_le = 0; prev_c = 0
      for (i = 1; i <= n; i++) {
        if (c[i] >= rank) {
          if (le[i] == 1e9) { printf ">%.2f\n", prev_le * 1000; exit }
          printf "%.2f\n", 1000 * (prev_le + (le[i] - prev_le) * (rank - prev_c) / (c[i] - prev_c)); exit
        }
        prev_le = le[i]; prev_c = c[i]
      }
    }'
}

# CPU accounting, to tell what limited a run: a process's user+sys ticks, and
# the machine's busy/total ticks.
TICKS=$(getconf CLK_TCK)
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
machine_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }
# cpu_note PROC_T0 PROC_T1 BUSY0 TOTAL0 BUSY1 TOTAL1 SECONDS -> "server N% of a core, machine M% busy"
cpu_note() {
  awk -v p0="$1" -v p1="$2" -v b0="$3" -v t0="$4" -v b1="$5" -v t1="$6" -v s="$7" -v hz="$TICKS" \
    'BEGIN { printf "server %.0f%% of a core, machine %.0f%% busy", 100 * (p1 - p0) / hz / s, 100 * (b1 - b0) / (t1 - t0) }'
}

# body N: the JSON request body with N copies of LINE.
body() {
  local n=$1 i out='{"Stream":"/bench","Lines":['
  for ((i = 0; i < n; i++)); do
    ((i)) && out+=,
    out+="\"$LINE\""
  done
  printf '%s]}' "$out"
}

# run_wrk CONNS LINES -> sets EH_RPS EH_LPS EH_P50 EH_P99 EH_NON2XX EH_ERRS EH_CHECK
run_wrk() {
  local c=$1 n=$2 threads=2 lua=$TMP/append.lua out=$TMP/wrk.out
  ((c < threads)) && threads=$c
  body "$n" >"$TMP/body.json"
  # A sample request through curl first: it must be a 201 or the run is meaningless.
  local code
  code=$(curl -sS -o "$TMP/sample.out" -w '%{http_code}' --max-time 10 --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary "@$TMP/body.json" "https://$API/writer/append")
  [ "$code" = 201 ] || die "sample append answered $code: $(cat "$TMP/sample.out")"
  cat >"$lua" <<EOF
local f = assert(io.open("$TMP/body.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["Content-Type"] = "application/json"
-- Machine-readable summary; wrk --latency prints the human one above it.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("EHBENCH requests=%d duration_us=%d non2xx=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
EOF
  local lines0 syncs0 lines1 syncs1 cpu0 cpu1 m0 m1 t_start t_end
  read -r lines0 syncs0 <<<"$(writer_counts)"
  append_buckets >"$TMP/buckets0"
  cpu0=$(proc_ticks "$WRITER_PID")
  m0=$(machine_ticks)
  t_start=$(date +%s.%N)
  timeout $((SECONDS_PER + 60)) wrk -t "$threads" -c "$c" -d "${SECONDS_PER}s" --timeout 10s --latency -s "$lua" \
    "https://$API/writer/append" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
  t_end=$(date +%s.%N)
  cpu1=$(proc_ticks "$WRITER_PID")
  m1=$(machine_ticks)
  read -r lines1 syncs1 <<<"$(writer_counts)"
  append_buckets >"$TMP/buckets1"
  EH_SRV_P99=$(server_quantile "$TMP/buckets0" "$TMP/buckets1" 0.99)
  cat "$out" >>"$TMP/wrk-all.out"
  local line
  line=$(grep '^EHBENCH ' "$out") || { cat "$out" >&2; die "no wrk summary"; }
  local requests duration_us non2xx errors p50_us p99_us
  read -r requests duration_us non2xx errors p50_us p99_us < <(awk '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    print v["requests"], v["duration_us"], v["non2xx"], v["errors"], v["p50_us"], v["p99_us"] }' <<<"$line")
  local ok=$((requests - non2xx))
  EH_RPS=$(awk -v r="$ok" -v d="$duration_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
  EH_LPS=$(awk -v r="$ok" -v n="$n" -v d="$duration_us" 'BEGIN { printf "%.0f", r * n / (d / 1e6) }')
  EH_P50=$(awk -v u="$p50_us" 'BEGIN { printf "%.2f", u / 1000 }')
  EH_P99=$(awk -v u="$p99_us" 'BEGIN { printf "%.2f", u / 1000 }')
  EH_NON2XX=$non2xx
  EH_ERRS=$errors
  # Cross-check with the Writer's own count: lines it made durable during the run
  # (wrk stops counting at the deadline; requests still in flight then land too).
  local wall
  wall=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { print b - a }')
  EH_CHECK=$(awk -v a="$lines1" -v b="$lines0" -v r="$ok" -v n="$n" -v s1="$syncs1" -v s0="$syncs0" -v w="$wall" \
    'BEGIN { if (r == 0) printf "n/a"; else printf "writer lines/wrk lines %.3f", (a - b) / (r * n);
             if (s1 > s0) printf ", %.0f syncs/s, %.1f lines/sync", (s1 - s0) / w, (a - b) / (s1 - s0) }')
  EH_CPU=$(cpu_note "$cpu0" "$cpu1" "${m0% *}" "${m0#* }" "${m1% *}" "${m1#* }" "$wall")
}

# --- Redis
REDIS_CLIENT_TLS=()
REDIS_USE_TLS=0
# redis_mode plain|tls: how the next start_redis listens and the clients connect.
redis_mode() {
  if [ "$1" = tls ]; then
    REDIS_USE_TLS=1
    REDIS_CLIENT_TLS=(--tls --insecure)
  else
    REDIS_USE_TLS=0
    REDIS_CLIENT_TLS=()
  fi
}
# The clients skip certificate checks: a throwaway self-signed certificate.
[ "${REDIS_TLS:-0}" = 1 ] && redis_mode tls
start_redis() {
  local dir=$TMP/redis-data
  rm -rf "$dir"
  mkdir -p "$dir"
  REDIS_PORT=$(free_port)
  local listen=(--port "$REDIS_PORT")
  if [ "$REDIS_USE_TLS" = 1 ]; then
    [ -f "$TMP/redis-key.pem" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$TMP/redis-key.pem" -out "$TMP/redis-cert.pem" -days 2 -subj /CN=127.0.0.1 2>/dev/null ||
      die "openssl could not make Redis's TLS certificate"
    listen=(--port 0 --tls-port "$REDIS_PORT" --tls-cert-file "$TMP/redis-cert.pem" --tls-key-file
      "$TMP/redis-key.pem" --tls-ca-cert-file "$TMP/redis-cert.pem" --tls-auth-clients no)
  fi
  redis-server --bind 127.0.0.1 "${listen[@]}" --protected-mode yes --daemonize no \
    --appendonly yes --appendfsync always --save "" --dir "$dir" --logfile "$TMP/redis.log" &
  REDIS_PID=$!
  for _ in $(seq 1 200); do
    [ "$(redis-cli "${REDIS_CLIENT_TLS[@]}" -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
    kill -0 "$REDIS_PID" 2>/dev/null || { cat "$TMP/redis.log" >&2; die "redis-server exited"; }
    sleep 0.05
  done
  local fsync aof
  fsync=$(redis-cli "${REDIS_CLIENT_TLS[@]}" -h 127.0.0.1 -p "$REDIS_PORT" config get appendfsync | tail -1)
  aof=$(redis-cli "${REDIS_CLIENT_TLS[@]}" -h 127.0.0.1 -p "$REDIS_PORT" config get appendonly | tail -1)
  if [ "$fsync" != always ] || [ "$aof" != yes ]; then die "redis is not durable: appendonly=$aof appendfsync=$fsync"; fi
  REDIS_FSYNC_CHECKED="appendonly=$aof appendfsync=$fsync"
}

# redis_bench CONNS PIPELINE REQUESTS -> prints "rps p50 p99" (ms)
redis_bench() {
  local c=$1 p=$2 n=$3 csv
  csv=$(timeout $((SECONDS_PER * 4 + 60)) redis-benchmark "${REDIS_CLIENT_TLS[@]}" -h 127.0.0.1 -p "$REDIS_PORT" -c "$c" -n "$n" -P "$p" --csv \
    XADD s '*' f "$LINE" 2>"$TMP/rb.err") || { cat "$TMP/rb.err" >&2; die "redis-benchmark failed"; }
  # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  tail -1 <<<"$csv" | tr -d '"' | awk -F, '{ print $2, $5, $7 }'
}

# run_redis CONNS PIPELINE -> sets R_RPS R_P50 R_P99 R_N R_LEN
run_redis() {
  local c=$1 p=$2 probe rate n cpu0 cpu1 m0 m1 t_start t_end
  start_redis
  # Probe: about 100 pipelines per connection, then size N for SECONDS_PER seconds.
  probe=$((c * p * 100))
  ((probe < 2000)) && probe=2000
  rate=$(redis_bench "$c" "$p" "$probe" | awk '{ print $1 }')
  n=$(awk -v r="$rate" -v s="$SECONDS_PER" -v q=$((c * p)) 'BEGIN { n = int(r * s / q) * q; if (n < q) n = q; print n }')
  redis-cli "${REDIS_CLIENT_TLS[@]}" -h 127.0.0.1 -p "$REDIS_PORT" del s >/dev/null
  local res
  cpu0=$(proc_ticks "$REDIS_PID")
  m0=$(machine_ticks)
  t_start=$(date +%s.%N)
  res=$(redis_bench "$c" "$p" "$n")
  t_end=$(date +%s.%N)
  cpu1=$(proc_ticks "$REDIS_PID")
  m1=$(machine_ticks)
  R_WALL=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.1f", b - a }')
  R_CPU=$(cpu_note "$cpu0" "$cpu1" "${m0% *}" "${m0#* }" "${m1% *}" "${m1#* }" "$R_WALL")
  read -r R_RPS R_P50 R_P99 <<<"$res"
  R_RPS=${R_RPS%.*}
  R_N=$n
  R_LEN=$(redis-cli "${REDIS_CLIENT_TLS[@]}" -h 127.0.0.1 -p "$REDIS_PORT" xlen s)
  [ "$R_LEN" -ge "$n" ] || die "redis stream holds $R_LEN entries after $n XADDs"
  stop_redis
}

# --- report
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
echo "http_bench: Writer appends over HTTPS vs Redis Streams (appendfsync always), $SECONDS_PER s per configuration, $REPEAT round(s)"
echo "machine: $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/ { print $2 " GiB" }') RAM, kernel $(uname -r)"
echo "disk:    $(df -hT "$TMP" | awk 'NR == 2 { print $1 " " $2 ", " $3 " total, " $5 " free, mounted on " $7 }') (data dirs under $TMP)"
echo "load:    $(loadavg) at start"
echo "writer:  horizon writer (default flags)${WRITER_ARGS:+ $WRITER_ARGS}"
echo "horizon: $HORIZON ($(stat -c '%y' "$HORIZON" | cut -d. -f1))"
echo "redis:   $(redis-server --version)$(case ${REDIS_TLS:-0} in 1) echo ", over TLS (REDIS_TLS=1)" ;; both) echo ", plaintext and over TLS in every round (REDIS_TLS=both)" ;; esac)"
echo "wrk:     $(wrk -v 2>&1 | head -1)"
echo "request: ${LINE_BYTES}-byte lines; EH body {\"Stream\":\"/bench\",\"Lines\":[...]} over HTTPS keep-alive, wrk threads = min(2, connections);"
echo "         Redis: XADD s * f <${LINE_BYTES} B> per line, pipeline depth = lines per request, redis-benchmark (1 thread)"
echo

BOTH=0
[ "${REDIS_TLS:-0}" = both ] && BOTH=1
printf '%-6s %-6s %14s %12s %9s %9s %9s %14s %9s %9s %9s' conns lines "EH lines/s" "EH req/s" "EH p50ms" "EH p99ms" \
  "srv p99ms" "Redis ev/s" "R p50ms" "R p99ms" "EH/Redis"
((BOTH)) && printf ' %14s %10s' "R-TLS ev/s" "EH/R-TLS"
echo
declare -a NOTES=() MEDIANS=()
for c in "${CONNS[@]}"; do
  for n in "${BATCHES[@]}"; do
    if [ -n "${BENCH_ONLY:-}" ] && ! [[ " $BENCH_ONLY " == *" ${c}x${n} "* ]]; then continue; fi
    eh_rounds=() redis_rounds=() tls_rounds=()
    for ((round = 1; round <= REPEAT; round++)); do
      start_writer
      run_wrk "$c" "$n"
      stop_writer
      if ((BOTH)); then
        redis_mode tls
        run_redis "$c" "$n"
        RT_RPS=$R_RPS
        tls_rounds+=("$RT_RPS")
        NOTES+=("c=$c lines=$n: Redis over TLS: N=$R_N XADDs in $R_WALL s, XLEN=$R_LEN; $R_CPU")
        redis_mode plain
      fi
      run_redis "$c" "$n"
      ratio=$(awk -v a="$EH_LPS" -v b="$R_RPS" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
      printf '%-6d %-6d %14d %12d %9s %9s %9s %14d %9s %9s %9s' "$c" "$n" "$EH_LPS" "$EH_RPS" "$EH_P50" "$EH_P99" \
        "$EH_SRV_P99" "$R_RPS" "$R_P50" "$R_P99" "$ratio"
      ((BOTH)) && printf ' %14d %10s' "$RT_RPS" \
        "$(awk -v a="$EH_LPS" -v b="$RT_RPS" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
      echo
      eh_rounds+=("$EH_LPS")
      redis_rounds+=("$R_RPS")
      if ((EH_NON2XX || EH_ERRS)); then NOTES+=("c=$c lines=$n: wrk saw $EH_NON2XX non-2xx responses and $EH_ERRS socket errors"); fi
      NOTES+=("c=$c lines=$n: EH: $EH_CHECK; $EH_CPU")
      NOTES+=("c=$c lines=$n: Redis: N=$R_N XADDs in $R_WALL s, XLEN=$R_LEN; $R_CPU")
    done
    if ((REPEAT > 1)); then
      eh_med=$(median "${eh_rounds[@]}")
      redis_med=$(median "${redis_rounds[@]}")
      MEDIANS+=("$(printf '%-6d %-6d %14d %14d %9s   EH %s; Redis %s' "$c" "$n" "$eh_med" "$redis_med" \
        "$(awk -v a="$eh_med" -v b="$redis_med" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')" \
        "${eh_rounds[*]}" "${redis_rounds[*]}")")
      if ((BOTH)); then
        tls_med=$(median "${tls_rounds[@]}")
        MEDIANS+=("$(printf '%-6s %-6s %14s %14d %9s   Redis over TLS %s' "" "" "" "$tls_med" \
          "$(awk -v a="$eh_med" -v b="$tls_med" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')" \
          "${tls_rounds[*]}")")
      fi
    fi
  done
done
if ((REPEAT > 1)); then
  echo
  echo "medians of $REPEAT alternating rounds (EH lines/s, Redis events/s):"
  printf '%-6s %-6s %14s %14s %9s   %s\n' conns lines "EH lines/s" "Redis ev/s" "EH/Redis" "rounds"
  for m in "${MEDIANS[@]}"; do echo "$m"; done
fi
echo
echo "EH p50/p99: wrk --latency, which (wrk 4) adds coordinated-omission samples for responses slower than"
echo "  2 x (run time / requests per connection): one stall counts many times, most at 1 connection."
echo "srv p99: the Writer's own horizon_append_latency_seconds (parsed request -> durable ack, no TLS/HTTP),"
echo "  interpolated in its buckets (0.25, 0.5, 1, 2.5, 5, 10, 25 ms ...)."
echo "R p50/p99: redis-benchmark's, per command."
echo "redis durability checked on every start: $REDIS_FSYNC_CHECKED (CONFIG GET)"
echo "load:    $(loadavg) at end"
echo "checks:"
for note in "${NOTES[@]}"; do echo "  $note"; done

#!/usr/bin/env bash
# RELIABILITY D1: the Writer's wall clock jumps (libfaketime, Debian package
# faketime; the monotonic clock stays real) while a client on the real clock
# appends: +1 h, -1 h, +10 years and a week, frozen for 2 s, back. No append may fail or
# stall (every timer -- timeouts, group commit, pacing, activity -- runs on
# the monotonic clock), acknowledged offsets only grow, a keep-alive
# connection left idle across a jump still serves, and the Writer stops
# cleanly. At +10 years and a week its internal CA has expired: it says so
# (a warning) and renews nothing.
#
# Then certificate renewal, with clients on the Writer's fake clock: 60 days
# before the server certificate's end the running Writer renews it (logged,
# horizon_tls_certificate_expiry_timestamp_seconds moves), and 10 days after
# the old certificate's end new TLS clients still verify the Writer. When
# the clock comes back, the renewed certificate is "not yet valid" for
# everyone else: the Writer renews it again by itself and real-clock
# clients verify it.
source "$(dirname "$0")/lib.sh"
trap 'stop_writer; rm -rf "$TMP"' EXIT
HERE=$(cd "$(dirname "$0")" && pwd)

CLOCK="$TMP/clock"  # the Writer's offset
fake_clock "$CLOCK" || { finish; exit 1; }
jump() { echo "$1" >"$CLOCK"; sleep 1.6; }  # past libfaketime's cache, and a few activity rounds

DATA="$TMP/data"
WRITER_PREFIX="${FAKE_HORIZON[*]}" start_writer "$DATA" --activity-interval 0.2 || { fail "writer start"; finish; exit 1; }
api POST /writer/create_stream '{"Name":"/clock"}'; check "create" 201 "$STATUS"
server_expiry() { metric 'horizon_tls_certificate_expiry_timestamp_seconds{certificate="server"}'; }
expiry0=$(server_expiry)
ca_expiry=$(metric 'horizon_tls_certificate_expiry_timestamp_seconds{certificate="ca"}')
check "server certificate end as a metric" 1 "$([ "${expiry0:-0}" -gt "$(date +%s)" ] && echo 1 || echo 0)"
check "the CA outlives the server certificate" 1 "$([ "${ca_expiry:-0}" -gt "${expiry0:-0}" ] && echo 1 || echo 0)"

# --- the wall clock jumps under a real-clock appender
python3 "$HERE/clock_appender.py" "$DATA" "$API" /clock "$TMP/stop" >"$TMP/appender.json" 2>&1 &
APPENDER=$!
sleep 1
jump "+1h"
jump "-1h"
idle_result=$(python3 -c "
import sys, time
sys.path.insert(0, '$HERE')
from writer_api_client import Api
api = Api('$DATA'); host, port = '$API'.rsplit(':', 1)
conn = api.connect((host, int(port)), 5)
s1, _ = api.post(conn, '/writer/append', {'Stream': '/clock', 'Lines': ['before the jump']})
open('$CLOCK', 'w').write('+3660d\n')
time.sleep(2.5)  # idle across the jump (the idle timeout is 10 s on the monotonic clock)
s2, _ = api.post(conn, '/writer/append', {'Stream': '/clock', 'Lines': ['after the jump, same connection']})
print(s1, s2)
")
check "a keep-alive connection idle across +10 years still serves" "201 201" "$idle_result"
sleep 0.5
contains "at +10 years and a week the expired CA is a warning" "the internal CA expired on" "$(grep 'internal CA' "$TMP/writer.log")"
not_contains "nothing renewed with an expired CA" "renewed the server certificate" "$(cat "$TMP/writer.log")"
jump "$(date -u -d '+1 min' '+%Y-%m-%d %H:%M:%S')"  # frozen: the Writer's wall clock stands still
jump "+0"
touch "$TMP/stop"
wait "$APPENDER"
result=$(cat "$TMP/appender.json")
echo "appender: $result"
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$1'])" "$result"; }
check "appender errors across the jumps" 0 "$(field errors)"
check "offsets only grew" True "$(field offsets_grew)"
check "appends went on" 1 "$([ "$(field appends)" -gt 100 ] && echo 1 || echo 0)"
check "no append stalled (slowest < 1 s)" 1 "$(python3 -c "print(1 if $(field slowest_s) < 1.0 else 0)")"
check "the engine is not failed" 0 "$(metric horizon_engine_failed)"

# --- renewal while running, clients on the Writer's clock
fake_curl() { "${FAKE[@]}" curl -sS --cacert "$DATA/ca.pem" -H "Authorization: Bearer $TOKEN" "$@"; }
days_left=$(( (expiry0 - $(date +%s)) / 86400 ))
jump "+$((days_left - 60))d"
for _ in $(seq 1 50); do grep -q "renewed the server certificate" "$TMP/writer.log" && break; sleep 0.1; done
renewed=$(grep "renewed the server certificate" "$TMP/writer.log")
contains "renewed 60 days ahead" "it expires on" "$renewed"
contains "new connections present it" "new connections present it" "$renewed"
expiry1=$(server_expiry)
check "the metric follows the renewal" 1 "$([ "${expiry1:-0}" -gt "$((expiry0 + 1000 * 86400))" ] && echo 1 || echo 0)"
check "renewed once" 1 "$(grep -c "renewed the server certificate" "$TMP/writer.log")"
jump "+$((days_left + 10))d"
out=$(fake_curl -w ' %{http_code}' --data-binary '{"Stream":"/clock","Lines":["after the old certificate expired"]}' \
  "https://$API/writer/append" 2>&1)
contains "a client on the Writer's clock verifies it after the old end" " 201" "$out"
served=$("${FAKE[@]}" openssl s_client -connect "$API" -CAfile "$DATA/ca.pem" -verify_return_error </dev/null 2>&1 |
  grep -E "Verify return code")
contains "openssl s_client verifies the renewed certificate" "Verify return code: 0 (ok)" "$served"
check "renewed pair on disk" "$(openssl x509 -in "$DATA/tls/server.pem" -noout -fingerprint -sha256)" \
  "$(echo | "${FAKE[@]}" openssl s_client -connect "$API" 2>/dev/null | openssl x509 -noout -fingerprint -sha256)"
# The clock comes back: the Writer heals its certificate by itself.
jump "+0"
for _ in $(seq 1 50); do [ "$(grep -c "renewed the server certificate" "$TMP/writer.log")" -ge 2 ] && break; sleep 0.1; done
contains "renewed again when the clock came back" "certificate is not yet valid" \
  "$(grep "renewed the server certificate" "$TMP/writer.log" | tail -1)"
out=$(curl -sS --cacert "$DATA/ca.pem" -H "Authorization: Bearer $TOKEN" -w ' %{http_code}' \
  --data-binary '{"Stream":"/clock","Lines":["real clock again"]}' "https://$API/writer/append" 2>&1)
contains "a real-clock client verifies the Writer again" " 201" "$out"
not_contains "no key in the log" "PRIVATE KEY" "$(cat "$TMP/writer.log")"
not_contains "no token in the log" "$TOKEN" "$(cat "$TMP/writer.log")"
stop_writer
check "clean stop on the fake clock" 0 "$LAST_EXIT"

finish

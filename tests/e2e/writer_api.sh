#!/usr/bin/env bash
# End-to-end: the real `horizon writer` binary, real TLS, curl as the
# independent client. Every row of SPEC §5 with its error paths, the limits
# (RELIABILITY E1-E5, E7, E8), metrics through promtool, the CLI, graceful
# shutdown, restart without re-bootstrap, and secrets kept out of logs/store.
source "$(dirname "$0")/lib.sh"

DATA=$TMP/data
start_writer "$DATA" --activity-interval 1 || { fail "writer did not start"; finish; exit 1; }

# --- bootstrap files
check "client.env mode" "600" "$(stat -c %a "$DATA/client.env")"
check "ca key mode" "600" "$(stat -c %a "$DATA/tls/ca-key.pem")"
check "token is 128-bit hex" "32" "${#TOKEN}"
contains "discovery has the CA" "BEGIN CERTIFICATE" "$(cat "$DATA/store/_horizon/discovery.json")"
openssl verify -CAfile "$CA" -verify_hostname localhost "$DATA/tls/server.pem" >/dev/null 2>&1 && pass || fail "server cert does not verify for localhost"
openssl verify -CAfile "$CA" -verify_ip 127.0.0.1 "$DATA/tls/server.pem" >/dev/null 2>&1 && pass || fail "server cert does not verify for 127.0.0.1"

# --- health (no token needed)
out=$(curl -sS --cacert "$CA" -w ' %{http_code}' "https://$API/health")
check "health" '{"status":"ok"} 200' "$out"

# --- create_stream
api POST /writer/create_stream '{"Name":"/tenants"}'
check "create 201" "201" "$STATUS"; check "create body" '{"Name":"/tenants"}' "$BODY"
api POST /writer/create_stream '{"Name":"/tenants/acme"}'; check "create child" "201" "$STATUS"
api POST /writer/create_stream '{"Name":"/tenants"}'
check "create exists 409" "409" "$STATUS"; contains "exists code" '"error":"stream_exists"' "$BODY"
api POST /writer/create_stream '{"Name":"/nope/x"}'
check "parent missing 404" "404" "$STATUS"; contains "parent code" '"error":"parent_not_found"' "$BODY"
for bad in '../x' '/a/../b' '/a b' '/a:b' '/%2e%2e%2f' '/' '/a//b' ''; do
  api POST /writer/create_stream "{\"Name\":\"$bad\"}"
  if [ "$bad" == "/" ]; then check "root exists" "409" "$STATUS"; continue; fi
  check "bad name [$bad]" "400" "$STATUS"
done
api POST /writer/create_stream '{"Name":"/x"} trailing'; check "trailing garbage 400" "400" "$STATUS"
api POST /writer/create_stream '{"Nmae":"/x"}'; check "unknown field 400" "400" "$STATUS"
api POST /writer/create_stream '{"Name":7}'; contains "wrong type" 'must be a string' "$BODY"

# --- auth (E7)
out=$(curl -sS --cacert "$CA" -D - -o /dev/null -X POST --data '{"Name":"/z"}' "https://$API/writer/create_stream")
contains "no token 401" " 401" "$out"; contains "WWW-Authenticate" "WWW-Authenticate: Bearer" "$out"
out=$(curl -sS --cacert "$CA" -w '%{http_code}' -o /dev/null -H "Authorization: Bearer ${TOKEN}x" -X POST --data '{"Name":"/z"}' "https://$API/writer/create_stream")
check "wrong token 401" "401" "$out"
out=$(curl -sS --cacert "$CA" -w '%{http_code}' -o /dev/null -H "Authorization: Bearer $TOKEN" -H "Authorization: Bearer $TOKEN" -X POST --data '{"Name":"/z"}' "https://$API/writer/create_stream")
check "two Authorization headers 401" "401" "$out"
out=$(curl -sS --cacert "$CA" -w '%{http_code}' -o /dev/null -X POST --data '{"Name":"/z"}' "https://$API/writer/create_stream?token=$TOKEN")
check "token in query 401" "401" "$out"
out=$(curl -sS --cacert "$CA" -w '%{http_code}' -o /dev/null -H "Authorization: Basic $TOKEN" -X POST --data '{"Name":"/z"}' "https://$API/writer/create_stream")
check "basic auth 401" "401" "$out"

# --- append
api POST /writer/append '{"Stream":"/tenants/acme","Lines":["{\"type\":\"UserCreated\"}","l2"]}'
check "append 201" "201" "$STATUS"; contains "append offset" '{"Offset":"/tenants/acme:0:' "$BODY"
END=$(echo "$BODY" | sed 's/.*"Offset":"\([^"]*\)".*/\1/')
api POST /writer/append "{\"Stream\":\"/tenants/acme\",\"Lines\":[\"l3\"],\"After\":\"$END\"}"
check "append After ok" "201" "$STATUS"
api POST /writer/append "{\"Stream\":\"/tenants/acme\",\"Lines\":[\"l4\"],\"After\":\"$END\"}"
check "append After conflict 409" "409" "$STATUS"; contains "conflict has Offset" '"Offset":"/tenants/acme:0:' "$BODY"
api POST /writer/append '{"Stream":"/nope","Lines":["x"]}'; check "append unknown 404" "404" "$STATUS"
api POST /writer/append '{"Stream":"/tenants/acme","Lines":["ok","a\nb"]}'
check "newline 400" "400" "$STATUS"; contains "names index" "line 1 contains a newline" "$BODY"
api POST /writer/append '{"Stream":"/tenants/acme","Lines":["a\rb"]}'; check "CR 400" "400" "$STATUS"
api POST /writer/append '{"Stream":"/tenants/acme","Lines":["a\u0000b"]}'; check "NUL 400" "400" "$STATUS"
printf '{"Stream":"/tenants/acme","Lines":["\xc0\xaf"]}' >"$TMP/bad-utf8.json"
api POST /writer/append "@$TMP/bad-utf8.json"; check "invalid UTF-8 400" "400" "$STATUS"
api POST /writer/append '{"Stream":"/tenants/acme","Lines":[]}'; check "empty append 201" "201" "$STATUS"

# --- limits (E2)
python3 -c 'import json; print(json.dumps({"Stream":"/tenants/acme","Lines":["x"]*10000}))' >"$TMP/10000.json"
python3 -c 'import json; print(json.dumps({"Stream":"/tenants/acme","Lines":["x"]*10001}))' >"$TMP/10001.json"
api POST /writer/append "@$TMP/10000.json"; check "10000 lines ok" "201" "$STATUS"
api POST /writer/append "@$TMP/10001.json"; check "10001 lines 413" "413" "$STATUS"
python3 -c 'import json; print(json.dumps({"Stream":"/tenants/acme","Lines":["y"*(1024*1024)]}))' >"$TMP/1mib.json"
python3 -c 'import json; print(json.dumps({"Stream":"/tenants/acme","Lines":["y"*(1024*1024+1)]}))' >"$TMP/1mib1.json"
api POST /writer/append "@$TMP/1mib.json"; check "1 MiB line ok" "201" "$STATUS"
api POST /writer/append "@$TMP/1mib1.json"; check "1 MiB + 1 line 413" "413" "$STATUS"
head -c $((16 * 1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$TMP/big.body"
api POST /writer/append "@$TMP/big.body"; check "body > 16 MiB 413" "413" "$STATUS"
# A declared 1 GiB body is refused before any of it is sent.
start_ns=$(date +%s%N)
out=$(curl -sS --cacert "$CA" -w '%{http_code}' -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Length: 1073741824' -H 'Expect:' -X POST --max-time 5 --data-binary 'x' "https://$API/writer/append" 2>/dev/null)
elapsed_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
check "1 GiB declared 413" "413" "$out"
[ "$elapsed_ms" -lt 2000 ] && pass || fail "413 took ${elapsed_ms} ms"
big_header=$(head -c 17000 /dev/zero | tr '\0' 'h')
out=$(curl -sS --cacert "$CA" -w '%{http_code}' -o /dev/null -H "X-Big: $big_header" "https://$API/health")
check "headers > 16 KiB 431" "431" "$out"

# --- subscribe / unsubscribe
api POST /writer/subscribe '{"Stream":"/tenants/acme","SubscriptionId":"/_sub/billing"}'
check "subscribe missing sub 404" "404" "$STATUS"; contains "sub code" "subscription_not_found" "$BODY"
api POST /writer/create_stream '{"Name":"/_sub/billing"}'; check "create sub stream" "201" "$STATUS"
api POST /writer/subscribe '{"Stream":"/tenants/acme","SubscriptionId":"/_sub/billing"}'; check "subscribe 200" "200" "$STATUS"
api POST /writer/subscribe '{"Stream":"/tenants/acme","SubscriptionId":"/_sub/billing"}'; check "subscribe idempotent" "200" "$STATUS"
api POST /writer/subscribe '{"Stream":"/tenants/acme","SubscriptionId":"/tenants"}'; check "not a subscription 400" "400" "$STATUS"
api POST /writer/subscribe '{"Stream":"/_sub/billing","SubscriptionId":"/_sub/billing"}'; check "loop 400" "400" "$STATUS"
api POST /writer/subscribe '{"Stream":"/nope","SubscriptionId":"/_sub/billing"}'; check "subscribe unknown stream 404" "404" "$STATUS"
api POST /writer/unsubscribe '{"Stream":"/tenants/acme","SubscriptionId":"/_sub/billing"}'; check "unsubscribe 200" "200" "$STATUS"
api POST /writer/unsubscribe '{"Stream":"/tenants/acme","SubscriptionId":"/_sub/billing"}'; check "unsubscribe idempotent" "200" "$STATUS"

# --- subscription activity appears within one interval (1 s here)
api POST /writer/create_stream '{"Name":"/_sub/act"}'
api POST /writer/subscribe '{"Stream":"/tenants/acme","SubscriptionId":"/_sub/act"}'
api POST /writer/append '{"Stream":"/tenants/acme","Lines":["watched"]}'
WATCHED=$(echo "$BODY" | sed 's/.*"Offset":"\([^"]*\)".*/\1/')
seen=""
for _ in $(seq 1 15); do
  api POST /writer/liveread '{"Cursor":"/_sub/act:0:0","MaxLinesToRead":100}'
  if [[ "$BODY" == *"/SubscriptionActivity {\"activity\":[\"$WATCHED\"]"* ]]; then seen=yes; break; fi
  sleep 0.1
done
check "activity line with the newest cursor within 1.5 s" "yes" "$seen"
# pub/sub: the Writer publishes sub:<subscription> <cursor> after each append (SPEC §6)
HORIZON_DATA=$DATA "$HORIZON" pubsub-subscribe sub:/_sub/act >"$TMP/notify.txt" 2>"$TMP/notify.err" &
PSUB=$!
for _ in $(seq 1 50); do grep -q connected "$TMP/notify.err" && break; sleep 0.1; done
sleep 0.2
api POST /writer/append '{"Stream":"/tenants/acme","Lines":["notified"]}'
NOTIFIED=$(echo "$BODY" | sed 's/.*"Offset":"\([^"]*\)".*/\1/')
for _ in $(seq 1 50); do grep -q "$NOTIFIED" "$TMP/notify.txt" && break; sleep 0.1; done
check "NOTIFY with the cursor after the append" "sub:/_sub/act $NOTIFIED" "$(tail -1 "$TMP/notify.txt")"
kill $PSUB; wait $PSUB 2>/dev/null
api POST /writer/unsubscribe '{"Stream":"/tenants/acme","SubscriptionId":"/_sub/act"}'

# --- liveread
api POST /writer/liveread '{"Cursor":"/tenants/acme:0:0","MaxLinesToRead":3}'
check "liveread 200" "200" "$STATUS"
contains "liveread Created" "/Created {\"subscription_ids\":[]" "$BODY"
contains "liveread line" ' {"type":"UserCreated"}' "$BODY"
api POST /writer/liveread '{"Cursor":"/tenants/acme:7:0","MaxLinesToRead":3}'; check "liveread chunk not held 404" "404" "$STATUS"
api POST /writer/liveread '{"Cursor":"/tenants/acme:0:999999999","MaxLinesToRead":3}'; check "liveread beyond end 400" "400" "$STATUS"
api POST /writer/liveread '{"Cursor":"/tenants/acme:0:1","MaxLinesToRead":3}'; check "liveread mid-line 400" "400" "$STATUS"
api POST /writer/liveread '{"Cursor":"/tenants/acme:-1:-1","MaxLinesToRead":3}'; check "liveread -1 400" "400" "$STATUS"
api POST /writer/liveread '{"Cursor":"/tenants/acme:0:0","MaxLinesToRead":0}'; check "liveread 0 lines 400" "400" "$STATUS"

# --- bad cursors (E6)
for c in '/tenants/acme:0:18446744073709551616' '/tenants/acme:0x10:0' '/tenants/acme: 1:0' '/tenants/acme:1e3:0' \
         '/tenants/acme:+1:0' '/tenants/acme:01:0' '/tenants/acme:0:0:' '/tenants/acme:0' 'tenants/acme:0:0'; do
  api POST /writer/liveread "{\"Cursor\":\"$c\",\"MaxLinesToRead\":3}"
  check "bad cursor [$c] 400" "400" "$STATUS"; contains "bad cursor [$c] code" "invalid_cursor" "$BODY"
done
api POST /writer/append '{"Stream":"/tenants/acme","Lines":["x"],"After":"/tenants:0:0"}'
check "After of another stream 400" "400" "$STATUS"

# --- routing
api GET /writer/append ''; check "wrong method 405" "405" "$STATUS"
api POST /writer/nothing '{}'; check "unknown endpoint 404" "404" "$STATUS"

# --- TLS (E8)
# The client offers the old version for real (@SECLEVEL=0) and the server
# answers with the protocol_version alert.
for old_tls in -tls1_1 -tls1; do
  out=$(openssl s_client -connect "$API" "$old_tls" -cipher 'DEFAULT:@SECLEVEL=0' </dev/null 2>&1)
  contains "$old_tls refused by the server" "alert protocol version" "$out"
  not_contains "$old_tls accepted" "Cipher is ECDHE" "$out"
done
echo | openssl s_client -connect "$API" -tls1_2 -CAfile "$CA" -verify_return_error >/dev/null 2>&1 && pass || fail "TLS 1.2 refused"
echo | openssl s_client -connect "$API" -tls1_3 -CAfile "$CA" -verify_return_error >/dev/null 2>&1 && pass || fail "TLS 1.3 refused"
# Weak suites refused (a client offering only them gets no handshake), an
# AEAD suite accepted; renegotiation refused on the API and pub/sub ports.
# (s_client's output, not its exit status: that also depends on how the
# server ends the connection after the handshake.)
for weak in 'DES-CBC3-SHA:@SECLEVEL=0' 'RC4-SHA:@SECLEVEL=0' 'NULL-SHA256:@SECLEVEL=0' 'aNULL:@SECLEVEL=0' \
            'ECDHE-ECDSA-AES128-SHA' 'ECDHE-ECDSA-AES256-SHA384'; do
  out=$(openssl s_client -connect "$API" -tls1_2 -cipher "$weak" -CAfile "$CA" </dev/null 2>&1)
  not_contains "TLS 1.2 suite $weak accepted" "New, TLSv1.2, Cipher is" "$out"
done
out=$(openssl s_client -connect "$API" -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256 -CAfile "$CA" </dev/null 2>&1)
contains "ECDHE-ECDSA-AES128-GCM-SHA256 accepted" "New, TLSv1.2, Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" "$out"
contains "ECDHE-ECDSA-AES128-GCM-SHA256 verifies" "Verify return code: 0 (ok)" "$out"
PUBSUB=$(sed -n 's/.*ready: api .* pubsub \([^ ,]*\),.*/\1/p' "$TMP/writer.log" | tail -1)
for port_addr in "$API" "$PUBSUB"; do
  out=$( (printf 'R\n'; sleep 1) | timeout 10 openssl s_client -connect "$port_addr" -tls1_2 -CAfile "$CA" 2>&1)
  contains "renegotiation attempted on $port_addr" "RENEGOTIATING" "$out"
  contains "renegotiation refused on $port_addr" "no renegotiation" "$out"
done
curl -sS -o /dev/null "https://$API/health" 2>/dev/null && fail "untrusted CA accepted by curl" || pass
out=$(curl -sS -o /dev/null -w '%{http_code}' "http://$API/health" 2>/dev/null); [ "$out" != "200" ] && pass || fail "plain HTTP served on the API port"

# --- metrics through promtool
curl -sS "http://$METRICS/metrics" >"$TMP/metrics.txt"
contains "metrics append ops" "horizon_append_ops_total" "$(cat "$TMP/metrics.txt")"
contains "metrics lines" "horizon_appended_lines_total 10006" "$(cat "$TMP/metrics.txt")"
contains "metrics latency" "horizon_append_latency_seconds_bucket" "$(cat "$TMP/metrics.txt")"
# unknown paths share one series: a client cannot grow the metrics with paths
contains "metrics unknown endpoint" 'horizon_http_requests_total{endpoint="other",code="404"}' "$(cat "$TMP/metrics.txt")"
not_contains "metrics no path label" '/writer/nothing' "$(cat "$TMP/metrics.txt")"
contains "metrics append 201" 'horizon_http_requests_total{endpoint="/writer/append",code="201"}' "$(cat "$TMP/metrics.txt")"
contains "metrics checkpoint duration" "horizon_checkpoint_duration_seconds_count" "$(cat "$TMP/metrics.txt")"
contains "metrics paced syncs" "horizon_wal_paced_syncs " "$(cat "$TMP/metrics.txt")"
chunk_mem=$(sed -n 's/^horizon_chunk_memory_bytes \([0-9]*\)$/\1/p' "$TMP/metrics.txt")
[ "${chunk_mem:-0}" -gt 1000000 ] && pass || fail "chunk memory metric: ${chunk_mem:-missing} (10,006 lines since the last checkpoint)"
lint=$(promtool check metrics <"$TMP/metrics.txt" 2>&1); rc=$?
check "promtool exit" "0" "$rc"; check "promtool output" "" "$lint"

# --- malformed and ambiguous HTTP (E1), the URL and header limits at N-1/N/N+1
# and 1,000 oversized requests against the Writer's memory (E2): raw bytes over
# verified TLS; each gets its status and JSON error and the connection closes
if python3 "$(dirname "$0")/http_e1.py" "$DATA" "$API" "$WRITER_PID" >"$TMP/http_e1.txt" 2>&1; then
  pass
else
  fail "E1: $(grep -v '^ok' "$TMP/http_e1.txt")"
fi
# ... each counted by its code (none of them reached an endpoint)
curl -sS "http://$METRICS/metrics" >"$TMP/metrics-e1.txt"
for code in bad_request length_required uri_too_long headers_too_large body_too_large not_implemented \
            http_version_not_supported; do
  n=$(sed -n "s/^horizon_http_rejected_requests_total{code=\"$code\"} \([0-9]*\)$/\1/p" "$TMP/metrics-e1.txt")
  [ "${n:-0}" -gt 0 ] && pass || fail "no rejected request counted for $code"
done
lint=$(promtool check metrics <"$TMP/metrics-e1.txt" 2>&1); check "promtool after E1" "" "$lint"

# --- CLI against the same Writer (configuration from the data dir's client.env)
export HORIZON_DATA=$DATA
out=$("$HORIZON" stream-create /cli 2>&1); check "cli create" "created /cli" "$out"
out=$("$HORIZON" stream-append /cli hello 2>&1); contains "cli append prints cursor" "/cli:0:" "$out"
seq 1 2500 | sed 's/^/event-/' >"$TMP/import.txt"
out=$("$HORIZON" stream-appendfromfile /cli "$TMP/import.txt" 2>&1); contains "cli import summary" "appended 2500 lines to /cli" "$out"
out=$("$HORIZON" stream-liveread /cli:0:0 3 2>&1); contains "cli liveread" " hello" "$out"
out=$("$HORIZON" stream-create /nope/x 2>&1); rc=$?
[ $rc -ne 0 ] && pass || fail "cli error exit status"; contains "cli error one line" "parent stream /nope does not exist" "$out"
out=$(HORIZON_TOKEN=wrong "$HORIZON" stream-append /cli x 2>&1); rc=$?
[ $rc -ne 0 ] && pass || fail "cli wrong token exit"; contains "cli wrong token" "HTTP 401" "$out"
out=$("$HORIZON" stream-append 'bad name' x 2>&1); rc=$?; [ $rc -ne 0 ] && pass || fail "cli bad name"
# stream-append --after: optimistic concurrency (an event-sourced command
# appends only if nobody appended since it read the stream).
"$HORIZON" stream-create /occ >/dev/null
first=$("$HORIZON" stream-append /occ first 2>&1) || fail "cli occ: first append: $first"
second=$("$HORIZON" stream-append --after "$first" /occ second 2>&1); rc=$?
check "cli --after at the end appends ($second)" 0 "$rc"
out=$("$HORIZON" stream-append --after "$first" /occ third 2>&1); rc=$?
check "cli --after behind the end exits 3" 3 "$rc"
check "cli --after behind the end: the message" "horizon stream-append: /occ ends at $second, not at $first; nothing appended" "$out"
out=$("$HORIZON" stream-append --after /cli:0:0 /occ x 2>&1); rc=$?
check "cli --after of another stream exits 1" 1 "$rc"
contains "cli --after of another stream: the message" "--after names /cli, not /occ" "$out"
out=$("$HORIZON" stream-append --after /occ:zero /occ x 2>&1); rc=$?
check "cli --after that does not parse exits 1" 1 "$rc"
contains "cli --after that does not parse: the message" "--after: " "$out"
out=$("$HORIZON" reader-read /occ:0:0 10 2>&1)
check "cli --after: only the appends whose --after held" "first second" "$(printf '%s\n' "$out" | grep -v '^/' | xargs)"
# A Writer that does not verify against the store's CA (a man in the middle,
# a store of another Writer): refused, and the one line says why.
mkdir -p "$TMP/mitm/store/_horizon"  # the test's own files (the E5 check below skips mitm/)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -subj /CN=other -days 2 \
  -out "$TMP/mitm/other-ca.pem" 2>/dev/null
python3 -c "
import hashlib, json, ssl, sys
d = json.load(open(sys.argv[1])); d['ca_pem'] = open(sys.argv[2]).read()
d['ca_sha256'] = hashlib.sha256(ssl.PEM_cert_to_DER_cert(d['ca_pem'])).hexdigest()
json.dump(d, open(sys.argv[3], 'w'))" "$DATA/store/_horizon/discovery.json" "$TMP/mitm/other-ca.pem" \
  "$TMP/mitm/store/_horizon/discovery.json"
out=$(HORIZON_DATA="" STORE="file://$TMP/mitm/store" HORIZON_TOKEN=$TOKEN "$HORIZON" stream-append /cli x 2>&1); rc=$?
[ $rc -ne 0 ] && pass || fail "cli accepted a Writer its CA does not sign"
check "cli certificate refusal is one line" 1 "$(printf '%s\n' "$out" | wc -l)"
contains "cli says why the certificate was refused" "SSL certificate problem: unable to get local issuer certificate" "$out"
not_contains "no token in the refusal" "$TOKEN" "$out"
# A damaged discovery record: refused in one line naming the field
# (docs/format/discovery.md), nothing sent anywhere.
printf '{"writer_id":"0123456789abcdef","api":9092}\n' >"$TMP/mitm/store/_horizon/discovery.json"
out=$(HORIZON_DATA="" STORE="file://$TMP/mitm/store" HORIZON_TOKEN=$TOKEN "$HORIZON" stream-append /cli x 2>&1); rc=$?
[ $rc -ne 0 ] && pass || fail "cli accepted a damaged discovery record"
check "damaged discovery refusal is one line" 1 "$(printf '%s\n' "$out" | wc -l)"
contains "cli names the damaged field" 'discovery record: "api" is not a string' "$out"
# A Pusher exits 1 on it, to be restarted: the Writer's next start mends its record.
out=$(HORIZON_DATA="" STORE="file://$TMP/mitm/store" HORIZON_TOKEN=$TOKEN timeout 10 "$HORIZON" pusher \
  --endpoint http://127.0.0.1:9/push --proxy off 2>&1); rc=$?
check "pusher on a damaged discovery record exits 1 (restart)" 1 "$rc"
contains "pusher names the damaged field" 'discovery record: "api" is not a string' "$out"
# A Pusher's --endpoint that libcurl cannot use is refused at start, never retried.
for endpoint in notaurl ftp://x/y 'https://[::1/x' 'http://a b/push'; do
  out=$(timeout 10 "$HORIZON" pusher --endpoint "$endpoint" --proxy off 2>&1); rc=$?
  check "pusher --endpoint $endpoint exits 78 (refused) at once" 78 "$rc"
  contains "pusher --endpoint $endpoint: the message" "--endpoint \"$endpoint\" must be an http:// or https:// URL: " "$out"
done
for sub in writer stream-create stream-append stream-appendfromfile stream-liveread stream-subscribe ca-rotate; do
  "$HORIZON" "$sub" --help >/dev/null 2>&1 && pass || fail "$sub --help"
done
unset HORIZON_DATA

# --- a second Writer on the same data directory is refused
out=$("$HORIZON" writer --data "$DATA" --api 127.0.0.1:0 --metrics 127.0.0.1:0 2>&1); rc=$?
check "second writer exit (1: the lock may be released soon)" "1" "$rc"; contains "second writer message" "in use by another Writer" "$out"

# --- --io-threads: at least 2 (checked before anything starts)
out=$("$HORIZON" writer --data "$TMP/iot" --io-threads 1 --api 127.0.0.1:0 --metrics 127.0.0.1:0 2>&1); rc=$?
[ $rc -ne 0 ] && pass || fail "--io-threads 1 accepted"; contains "--io-threads 1 message" "--io-threads" "$out"
[ ! -e "$TMP/iot" ] && pass || fail "--io-threads 1 created the data directory"
# --- --sync-pacing: 0 (off) or 1..10 (checked before anything starts)
for bad in 0.5 11 -1; do
  out=$("$HORIZON" writer --data "$TMP/pace" --sync-pacing "$bad" --api 127.0.0.1:0 --metrics 127.0.0.1:0 2>&1); rc=$?
  [ $rc -ne 0 ] && pass || fail "--sync-pacing $bad accepted"
  contains "--sync-pacing $bad message" "--sync-pacing" "$out"
  [ ! -e "$TMP/pace" ] && pass || fail "--sync-pacing $bad created the data directory"
done
out=$("$HORIZON" writer --data "$TMP/ckpt" --checkpoint-bytes 65535 --api 127.0.0.1:0 --metrics 127.0.0.1:0 2>&1); rc=$?
check "--checkpoint-bytes 65535 exit (78: refused)" "78" "$rc"; contains "--checkpoint-bytes message" "below the minimum of 65536" "$out"
[ ! -e "$TMP/ckpt" ] && pass || fail "--checkpoint-bytes 65535 created the data directory"
out=$("$HORIZON" writer --data "$TMP/badapi" --api nonsense --metrics 127.0.0.1:0 2>&1); rc=$?
check "bad --api exit (78: refused)" "78" "$rc"; contains "bad --api message" "is not host:port" "$out"
[ ! -e "$TMP/badapi" ] && pass || fail "bad --api created the data directory"

# --- graceful shutdown and restart without re-bootstrap
env_before=$(md5sum <"$DATA/client.env")
stop_writer; check "SIGTERM exit 0" "0" "$LAST_EXIT"
contains "clean shutdown logged" "clean shutdown complete" "$(cat "$TMP/writer.log")"
start_writer "$DATA" --io-threads 3 || fail "restart"
check "3 API I/O threads" "api-0 api-1 api-2" "$(cat /proc/"$WRITER_PID"/task/*/comm | grep '^api-' | sort | xargs)"
check "client.env unchanged" "$env_before" "$(md5sum <"$DATA/client.env")"
api POST /writer/liveread '{"Cursor":"/cli:0:0","MaxLinesToRead":10000}'
check "data survives restart" "2502" "$(printf '%s' "$BODY" | grep -c '')"

# --- another data directory on the same store is refused, nothing written
out=$("$HORIZON" writer --data "$TMP/other" --store "file://$DATA/store" --api 127.0.0.1:0 --metrics 127.0.0.1:0 2>&1); rc=$?
check "foreign store exit (78: refused, not to be restarted)" "78" "$rc"
contains "foreign store message" "already belongs to Writer" "$out"
# chunks without a discovery record (another Writer's, its record removed): no bootstrap on them
mkdir -p "$TMP/orphans/chunks/s/orders" && printf 'x' >"$TMP/orphans/chunks/s/orders/~00000000000000000000.ehc"
out=$("$HORIZON" writer --data "$TMP/other" --store "file://$TMP/orphans" --api 127.0.0.1:0 --metrics 127.0.0.1:0 2>&1); rc=$?
check "orphan chunks exit (78: refused)" "78" "$rc"
contains "orphan chunks message" "holds chunks (chunks/s/orders/~00000000000000000000.ehc) but no discovery record" "$out"
check "orphan chunks kept" "x" "$(cat "$TMP/orphans/chunks/s/orders/~00000000000000000000.ehc")"
out=$("$HORIZON" writer --data "$TMP/other" --sync-pacing 0.5 --api 127.0.0.1:0 --metrics 127.0.0.1:0 2>&1); rc=$?
check "a refused flag exits 78" "78" "$rc"; contains "a refused flag: the message" "--sync-pacing 0.5 must be" "$out"
[ ! -e "$TMP/other/client.env" ] && pass || fail "refused bootstrap wrote client.env"

# --- path traversal (E5): names never became paths; nothing outside the data directory
find "$TMP" -mindepth 1 -maxdepth 1 -newer "$TMP/10000.json" ! -name data ! -name other ! -name orphans ! -name mitm ! -name xdg-cache ! -name '*.txt' ! -name '*.json' \
  ! -name '*.body' ! -name '*.err' ! -name writer.log | grep . && fail "files created outside the data directory" || pass
check "data dir top level" "ca.pem chunks client.env identity.json LOCK snapshot store tls wal" \
  "$(ls "$DATA" | sort -f | tr '\n' ' ' | sed 's/ $//')"

# --- slowloris (E9, RELIABILITY's 1,000): 1,000 idle connections do not stop a legitimate client,
# and the server closes them after its header timeout (10 s)
python3 - "$API" <<'PY' &
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
socks = []
for _ in range(1000):
    s = socket.create_connection((host, int(port)))
    s.send(b"\x16\x03\x01")  # the first bytes of a TLS ClientHello, then nothing
    socks.append(s)
time.sleep(13)
closed = 0
for s in socks:
    s.settimeout(0.1)
    try:
        if s.recv(1) == b"":
            closed += 1
    except (ConnectionResetError, BrokenPipeError):
        closed += 1
    except socket.timeout:
        pass
print(f"slowloris: {closed}/1000 idle connections closed by the server")
sys.exit(0 if closed == 1000 else 1)
PY
SLOW=$!
sleep 1
for i in 1 2 3 4 5; do
  api POST /writer/append '{"Stream":"/tenants/acme","Lines":["during-slowloris"]}'
  check "legit append during slowloris" "201" "$STATUS"
done
wait $SLOW && pass || fail "idle connections not closed within the header timeout"

# --- secrets stay out of logs and the store
KEY=$(sed -n 's/^HORIZON_KEY=//p' "$DATA/client.env")
not_contains "token in log" "$TOKEN" "$(cat "$TMP/writer.log")"
not_contains "key in log" "$KEY" "$(cat "$TMP/writer.log")"
grep -rq -e "$TOKEN" -e "$KEY" -e "PRIVATE KEY" "$DATA/store" && fail "secret found in the store" || pass

# --- a storage failure (RELIABILITY A7 on the real syscall: strace makes
# fdatasyncs of the WAL segment fail with EIO): the batch gets a 503
# storage_failed, the failure is logged once, the Writer stops itself within
# a second (fail-stop, exit status 74) and a restart recovers.
stop_writer
start_writer "$TMP/eio" || fail "eio bootstrap"
api POST /writer/create_stream '{"Name":"/a7"}'; check "a7 stream" "201" "$STATUS"
stop_writer
# eio_writer WHEN: the Writer under strace, the WHEN-th fdatasync of the
# current segment (and every later one) failing with EIO
eio_writer() {
  local seg
  seg=$(ls "$TMP/eio/wal" | grep '\.log$' | tail -1)  # the current segment (not recycled.next)
  printf '#!/bin/sh\nexec strace -f -qq -o "%s" --seccomp-bpf -P "%s" -e trace=fdatasync -e inject=fdatasync:error=EIO:when=%s+ "%s" "$@"\n' \
    "$TMP/strace.txt" "$TMP/eio/wal/$seg" "$1" "$HORIZON" >"$TMP/horizon-eio"
  chmod +x "$TMP/horizon-eio"
  HORIZON="$TMP/horizon-eio" start_writer "$TMP/eio"
}
# exited_within SECONDS: the Writer (started by start_writer) has exited
# within SECONDS of now; sets LAST_EXIT to its status
exited_within() {
  local until
  until=$(($(date +%s%N) + ${1%.*}000000000 + 10#${1#*.}00000000))
  while kill -0 "$WRITER_PID" 2>/dev/null && [ "$(date +%s%N)" -lt "$until" ]; do sleep 0.02; done
  if kill -0 "$WRITER_PID" 2>/dev/null; then
    kill -KILL "$WRITER_PID" 2>/dev/null; wait "$WRITER_PID" 2>/dev/null; WRITER_PID=""; return 1
  fi
  wait "$WRITER_PID"; LAST_EXIT=$?; WRITER_PID=""
}
eio_writer 1 || fail "eio restart under strace"
api POST /writer/create_stream '{"Name":"/e1"}'
check "create after EIO 503" "503" "$STATUS"; contains "create after EIO body" '"error":"storage_failed"' "$BODY"
exited_within 1.0 && pass || fail "the Writer did not stop within 1 s of the storage failure"
check "fail-stop exit status" "74" "$LAST_EXIT"
contains "EIO injected" "EIO (Input/output error) (INJECTED)" "$(cat "$TMP/strace.txt")"
check "storage failure logged once" "1" \
  "$(grep -c 'error \[writer\] storage failed, writes are refused until restart: fdatasync wal/.*Input/output error' "$TMP/writer.log")"
contains "fail-stop logged" "stopping after the storage failure (fail-stop, exit status 74)" "$(cat "$TMP/writer.log")"
# Appends, one line per request, until the 4th and later syncs fail: every
# acknowledged line is there after the restart, in order; at most the one
# answered with the 503 (indeterminate) follows them.
eio_writer 4 || fail "eio restart under strace (when=4)"
acked=0
for i in $(seq 1 30); do
  api POST /writer/append "{\"Stream\":\"/a7\",\"Lines\":[\"line-$i\"]}"
  [ "$STATUS" = "201" ] || break
  acked=$i
done
check "append after EIO 503" "503" "$STATUS"
[ "$acked" -ge 1 ] && pass || fail "no append acknowledged before the injected EIO"
exited_within 1.0 && pass || fail "the Writer did not stop within 1 s of the failed append sync"
check "fail-stop exit status (append)" "74" "$LAST_EXIT"
start_writer "$TMP/eio" || fail "restart after the storage failure"
api GET /health ''; check "health after restart" "200" "$STATUS"
api POST /writer/liveread '{"Cursor":"/a7:0:0","MaxLinesToRead":100}'; check "a7 read 200" "200" "$STATUS"
got=$(printf '%s' "$BODY" | grep -o 'line-[0-9]*' | tr '\n' ' ')
want=$(for i in $(seq 1 "$acked"); do printf 'line-%s ' "$i"; done)
maybe=$(for i in $(seq 1 $((acked + 1))); do printf 'line-%s ' "$i"; done)
if [ "$got" = "$want" ] || [ "$got" = "$maybe" ]; then pass; else fail "after the restart: [$got], acknowledged [$want]"; fi
api POST /writer/create_stream '{"Name":"/e2"}'; check "create after restart" "201" "$STATUS"
stop_writer

finish

#!/usr/bin/env bash
# Rotating the Writer's internal CA with the real binary (docs/format/
# data-dir.md, "Rotating the internal CA"): refused while the Writer runs;
# after `prepare` clients that read the discovery record trust both CAs and
# a client holding only the old ca.pem still connects; after `finish` the new
# CA signs the API's and pub/sub's certificate, the CLI (discovery) keeps
# working, a client holding only the old CA is refused, and every
# acknowledged line is still there.
source "$(dirname "$0")/lib.sh"
trap 'stop_writer; rm -rf "$TMP"' EXIT

DATA="$TMP/data"
export HORIZON_DATA=$DATA  # the CLI's configuration: client.env, then the store's discovery record
start_writer "$DATA" || { fail "writer start"; finish; exit 1; }
PUBSUB=$(sed -n 's/.*ready: api .* pubsub \([^ ,]*\),.*/\1/p' "$TMP/writer.log" | tail -1)
out=$("$HORIZON" stream-create /rot 2>&1); check "create" "created /rot" "$out"
"$HORIZON" stream-append /rot before >/dev/null 2>&1 && pass || fail "append before the rotation"
cp "$DATA/ca.pem" "$TMP/old-ca.pem"
ca_end0=$(metric 'horizon_tls_certificate_expiry_timestamp_seconds{certificate="ca"}')

out=$("$HORIZON" ca-rotate prepare --data "$DATA" 2>&1); rc=$?
check "prepare refused while the Writer runs" 1 "$([ $rc -ne 0 ] && echo 1 || echo 0)"
contains "prepare says why" "stop the Writer first" "$out"
[ ! -e "$DATA/tls/ca-next.pem" ] && pass || fail "a refused prepare wrote a successor"
"$HORIZON" ca-rotate finish --data "$TMP/nowhere" >/dev/null 2>&1 && fail "finish on a non-data directory" || pass
[ ! -e "$TMP/nowhere" ] && pass || fail "ca-rotate created a directory"

# --- prepare: the successor is trusted, the old CA still signs
stop_writer
out=$("$HORIZON" ca-rotate finish --data "$DATA" 2>&1) && fail "finish before prepare" || pass
contains "finish before prepare says what to run" "ca-rotate prepare" "$out"
sleep 1.1  # the successor's end (second precision) then differs from the current CA's: the metric must move
out=$("$HORIZON" ca-rotate prepare --data "$DATA" 2>&1); rc=$?
check "prepare" 0 "$rc"; contains "prepare summary" "prepared the successor" "$out"
check "bundle in ca.pem" 2 "$(grep -c 'BEGIN CERTIFICATE' "$DATA/ca.pem")"
start_writer "$DATA" || { fail "writer start after prepare"; finish; exit 1; }
check "discovery carries both CAs" 2 "$(grep -o 'BEGIN CERTIFICATE' "$DATA/store/_horizon/discovery.json" | wc -l)"
"$HORIZON" stream-append /rot prepared >/dev/null 2>&1 && pass || fail "CLI append after prepare"
out=$(curl -sS --cacert "$TMP/old-ca.pem" -w '%{http_code}' -o /dev/null "https://$API/health" 2>&1)
check "a client with only the old CA still connects" 200 "$out"

# --- finish: the new CA signs
stop_writer
out=$("$HORIZON" ca-rotate finish --data "$DATA" 2>&1); rc=$?
check "finish" 0 "$rc"; contains "finish summary" "the internal CA is now" "$out"
start_writer "$DATA" || { fail "writer start after finish"; finish; exit 1; }
not_contains "no renewal needed at start" "renewed the server certificate" "$(cat "$TMP/writer.log")"
"$HORIZON" stream-append /rot finished >/dev/null 2>&1 && pass || fail "CLI append after finish"
out=$(curl -sS --cacert "$TMP/old-ca.pem" -o /dev/null "https://$API/health" 2>&1); rc=$?
check "a client with only the old CA is refused" 1 "$([ $rc -ne 0 ] && echo 1 || echo 0)"
contains "refused for the issuer" "unable to get local issuer certificate" "$out"
out=$(curl -sS --cacert "$DATA/ca.pem" -w '%{http_code}' -o /dev/null "https://$API/health" 2>&1)
check "a client with the new ca.pem connects" 200 "$out"
csplit -s -z -f "$TMP/trusted-" "$DATA/ca.pem" '/BEGIN CERTIFICATE/' '{*}'
openssl verify -CAfile "$TMP/trusted-00" -verify_ip 127.0.0.1 "$DATA/tls/server.pem" >/dev/null 2>&1 && pass ||
  fail "server certificate does not verify against the new CA alone"
PUBSUB=$(sed -n 's/.*ready: api .* pubsub \([^ ,]*\),.*/\1/p' "$TMP/writer.log" | tail -1)
# The verification result itself, not s_client's exit status: the pub/sub
# server may close at once on a client that sends no AUTH, and s_client then
# exits 1 after a handshake that verified.
out=$(openssl s_client -connect "$PUBSUB" -CAfile "$TMP/trusted-00" </dev/null 2>&1)
contains "pub/sub presents the new CA's certificate ($PUBSUB)" "Verify return code: 0 (ok)" "$out"
out=$(openssl s_client -connect "$PUBSUB" -CAfile "$TMP/old-ca.pem" </dev/null 2>&1)
contains "pub/sub with the old CA alone: no issuer" "verify error:num=20:unable to get local issuer certificate" "$out"
not_contains "pub/sub does not verify with the old CA alone" "Verify return code: 0 (ok)" "$out"
ca_end1=$(metric 'horizon_tls_certificate_expiry_timestamp_seconds{certificate="ca"}')
check "the CA end metric moved" 1 "$([ "${ca_end1:-0}" -gt "${ca_end0:-0}" ] && echo 1 || echo 0)"
check "the CA end metric is the new CA's" "$(date -d "$(openssl x509 -enddate -noout -in "$TMP/trusted-00" | cut -d= -f2)" +%s)" \
  "$ca_end1"
lines=$("$HORIZON" stream-liveread /rot:0:0 100 2>&1 | grep -c -e ' before$' -e ' prepared$' -e ' finished$')
check "every acknowledged line is there" 3 "$lines"
not_contains "no key in the log" "PRIVATE KEY" "$(cat "$TMP/writer.log")"
grep -rq "PRIVATE KEY" "$DATA/store" && fail "a private key in the store" || pass

finish

#!/usr/bin/env bash
# The newcomer path: exactly what README.md tells a new user. Start the
# Writer with README command (a) and no configuration (a fresh HOME), then
# run every command of the README's "the CLI finds everything by itself"
# block, as written, and check what they print.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export HOME=$TMP/home
mkdir -p "$HOME"
unset STORE HORIZON_TOKEN HORIZON_KEY HORIZON_DATA

first_command=$(sed -n '/^```sh$/,/^```$/p' "$ROOT/README.md" | sed -n '2p' | sed 's/ *#.*//')
check "README command (a)" "scripts/start-writer.sh" "$first_command"
(cd "$ROOT" && exec $first_command) >"$TMP/writer.log" 2>&1 &
WRITER_PID=$!
for _ in $(seq 1 600); do
  grep -q "ready: api" "$TMP/writer.log" && break
  kill -0 "$WRITER_PID" 2>/dev/null || break
  sleep 0.1
done
contains "writer ready on defaults" "ready: api https://127.0.0.1:9092" "$(cat "$TMP/writer.log")"
check "default data dir" "600" "$(stat -c %a "$HOME/.local/share/event-horizon/client.env" 2>/dev/null)"

# The README's usage block, line by line, run from the checkout.
mapfile -t commands < <(sed -n '/the CLI finds everything by itself/,/^```$/p' "$ROOT/README.md" | sed -n '/^```sh$/,/^```$/p' | sed '1d;$d')
check "README usage block has 4 commands" "4" "${#commands[@]}"
outputs=()
for cmd in "${commands[@]}"; do
  out=$(cd "$ROOT" && eval "$cmd" 2>&1); rc=$?
  check "exit status of: $cmd" "0" "$rc"
  outputs+=("$out")
done
check "stream-create output" "created /tenants" "${outputs[0]}"
contains "stream-append prints the cursor" "/tenants:0:" "${outputs[1]}"
contains "stream-liveread shows the Created line" "/Created {\"subscription_ids\":[]" "${outputs[2]}"
contains "stream-liveread shows the event" ' {"type":"TenantCreated","id":"acme"}' "${outputs[2]}"
check "health" '{"status":"ok"}' "${outputs[3]}"

finish

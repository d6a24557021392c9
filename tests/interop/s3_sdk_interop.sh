#!/usr/bin/env bash
# Interop with the AWS SDK for JavaScript v3 (@aws-sdk/client-s3, pinned in
# package.json) on a real s3rver (issue 6, "Interop"):
#   (a) our client (store_tool, the s3:// ObjectStore) puts objects; the SDK
#       lists them and fetches them byte-identical;
#   (b) the SDK puts objects; store_tool lists and gets them byte-identical.
# The objects (sdk_interop.mjs writes them): a key with - _ . ~, a key with
# every printable ASCII punctuation character, binary bytes with NULs, an
# empty object and 3 MiB of pseudo-random bytes.
#
#   STORE_TOOL=build/tests/interop/store_tool tests/interop/s3_sdk_interop.sh
#
# Prints the counts and ends with "N passed, N failed"; exits non-zero on any
# failure. Fails (never skips) without node or node_modules: run `npm ci`.
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
STORE_TOOL=${STORE_TOOL:-$root/build/tests/interop/store_tool}
BUCKET=interop
PASSED=0
FAILED=0
S3RVER_PID=""
TMP=$(mktemp -d /tmp/eh-interop.XXXXXX)

pass() { PASSED=$((PASSED + 1)); }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*" >&2; }

finish() {
  if [ -n "$S3RVER_PID" ]; then kill "$S3RVER_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
trap 'finish; exit $?' EXIT
trap 'fail "interrupted"; exit 130' INT TERM

# Counts the PASS/FAIL lines of a node step; a crash without FAIL lines is
# one failure.
node_step() {
  local out="$TMP/node.out" rc p f
  node "$here/sdk_interop.mjs" "$@" >"$out" 2>"$TMP/node.err"
  rc=$?
  p=$(grep -c '^PASS ' "$out")
  f=$(grep -c '^FAIL ' "$out")
  grep '^FAIL ' "$out" | sed 's/^FAIL /FAIL: /' >&2
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    fail "node sdk_interop.mjs $1 exited $rc: $(head -c 2000 "$TMP/node.err")"
  fi
  STEP_PASSED=$p
  STEP_FAILED=$f
}

# ---- prerequisites: fail, never skip ----
if ! command -v node >/dev/null 2>&1; then
  fail "node is not installed: run scripts/install-deps.sh, then 'npm ci' in $root"
  exit 1
fi
if [ ! -e "$root/node_modules/@aws-sdk/client-s3/package.json" ] || [ ! -e "$root/node_modules/.bin/s3rver" ]; then
  fail "node_modules lacks @aws-sdk/client-s3 or s3rver: run 'npm ci' in $root"
  exit 1
fi
if [ ! -x "$STORE_TOOL" ]; then
  fail "store_tool not found at $STORE_TOOL: build it (cmake --build build --target store_tool)"
  exit 1
fi
echo "node $(node --version), @aws-sdk/client-s3 $(node -p "require('$root/node_modules/@aws-sdk/client-s3/package.json').version"), s3rver $(node -p "require('$root/node_modules/s3rver/package.json').version")"

# ---- s3rver on a free port (retried: the port can be taken in between) ----
for attempt in 1 2 3; do
  PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  if S3RVER_PID=$(bash "$root/scripts/start-s3rver.sh" "$TMP/s3rver-$attempt" "$PORT" "$BUCKET" $$ 2>"$TMP/start.err"); then
    break
  fi
  S3RVER_PID=""
done
if [ -z "$S3RVER_PID" ]; then
  fail "s3rver did not start: $(cat "$TMP/start.err")"
  exit 1
fi
ENDPOINT="http://127.0.0.1:$PORT"
export STORE="s3://S3RVER:S3RVER@us-east-1/$BUCKET?endpoint=$ENDPOINT"
echo "s3rver pid $S3RVER_PID on $ENDPOINT, bucket $BUCKET"

# ---- fixtures ----
if ! node "$here/sdk_interop.mjs" fixtures "$TMP/fixtures" >"$TMP/manifest" 2>"$TMP/node.err"; then
  fail "writing the fixtures failed: $(cat "$TMP/node.err")"
  exit 1
fi
COUNT=$(wc -l <"$TMP/manifest")

# The "KEY SIZE MD5" lines store_tool list must print for PREFIX, in
# bytewise key order.
expected_listing() {
  local prefix=$1 key file
  while IFS=$'\t' read -r key file; do
    echo "$prefix$key $(stat -c %s "$file") $(md5sum <"$file" | cut -d' ' -f1)"
  done <"$TMP/manifest" | LC_ALL=C sort
}

# ---- (a) our client writes, the SDK lists and fetches ----
a_passed=$PASSED a_failed=$FAILED
while IFS=$'\t' read -r key file; do
  if err=$("$STORE_TOOL" put "ours/$key" "$file" 2>&1); then pass; else fail "store_tool put ours/$key: $err"; fi
done <"$TMP/manifest"
if listing=$("$STORE_TOOL" list ours/ 2>&1); then
  if [ "$listing" == "$(expected_listing ours/)" ]; then pass; else
    fail "store_tool list ours/ after our puts: got [$listing], want [$(expected_listing ours/)]"
  fi
else
  fail "store_tool list ours/: $listing"
fi
node_step check "$ENDPOINT" "$BUCKET" ours/ "$TMP/manifest"
echo "(a) our client -> SDK: $COUNT objects; SDK checks $STEP_PASSED passed, $STEP_FAILED failed;" \
  "all checks $((PASSED - a_passed)) passed, $((FAILED - a_failed)) failed"

# ---- (b) the SDK writes, our client lists and fetches ----
b_passed=$PASSED b_failed=$FAILED
node_step write "$ENDPOINT" "$BUCKET" sdk/ "$TMP/manifest"
if listing=$("$STORE_TOOL" list sdk/ 2>&1); then
  if [ "$listing" == "$(expected_listing sdk/)" ]; then pass; else
    fail "store_tool list sdk/ after SDK puts: got [$listing], want [$(expected_listing sdk/)]"
  fi
else
  fail "store_tool list sdk/: $listing"
fi
got_ok=0
while IFS=$'\t' read -r key file; do
  if "$STORE_TOOL" get "sdk/$key" >"$TMP/got" 2>"$TMP/get.err"; then
    if cmp -s "$file" "$TMP/got"; then pass; got_ok=$((got_ok + 1)); else
      fail "store_tool get sdk/$key differs: $(stat -c %s "$TMP/got") bytes, want $(stat -c %s "$file")"
    fi
  else
    fail "store_tool get sdk/$key: $(cat "$TMP/get.err")"
  fi
done <"$TMP/manifest"
echo "(b) SDK -> our client: $COUNT objects; $got_ok of $COUNT fetched byte-identical;" \
  "all checks $((PASSED - b_passed)) passed, $((FAILED - b_failed)) failed"

# ---- both ways on one key: the SDK reads our overwrite of its object ----
key=$(head -1 "$TMP/manifest" | cut -f1)
printf 'overwritten by store_tool\n' >"$TMP/over"
if err=$("$STORE_TOOL" put "sdk/$key" "$TMP/over" 2>&1); then pass; else fail "store_tool put over sdk/$key: $err"; fi
# Only this key is checked: the prefix is its full name, the manifest key "".
printf '\t%s\n' "$TMP/over" >"$TMP/manifest.over"
node_step check "$ENDPOINT" "$BUCKET" "sdk/$key" "$TMP/manifest.over"
echo "(c) overwrite of an SDK object by our client, read by the SDK: $STEP_PASSED passed, $STEP_FAILED failed"

#!/usr/bin/env python3
"""Load and oracle for tests/e2e/shipping_faults.sh (RELIABILITY B1/B2).

  shipping_load.py load --data DIR --api HOST:PORT --streams /s0,/s1 --phase-file F --ops OUT
      Client threads append batches of unique lines `c<client>-<seq>-<hex>`
      to random streams over the HTTPS API (keep-alive connections), paced,
      and log every op as ok(offset), fail (definite 4xx) or info (timeout,
      connection error, 5xx: indeterminate). The phase file names the phase
      each op is tagged with; "idle" pauses the clients, "stop" ends the
      load: then one padding line of --chunk-size bytes is appended to every
      stream, so that every acknowledged line lies in a sealed chunk, and
      the ops are written to OUT as JSON Lines.

  shipping_load.py check --ops OUT --read /s0=READ.jsonl ... --bucket-dir DIR
      The oracle (RELIABILITY section 4) over `horizon reader-read --json`
      output of every stream: lost, duplicate, phantom, reorder,
      inconsistent offset; every sealed chunk read and present in the bucket;
      append latency per phase. Prints a report and KEY=VALUE lines (on
      stdout, prefixed "result ") for the shell script.

Python 3 standard library only.
"""

import argparse
import http.client
import json
import math
import os
import random
import re
import ssl
import sys
import threading
import time

from writer_api_client import Api

OK, FAIL, INFO = "ok", "fail", "info"
REQUEST_TIMEOUT = 10.0


def percentile(values, p):
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100.0 * len(s)) - 1))]


def parse_cursor(text):
    parts = str(text).split(":", 3)
    if len(parts) < 3:
        return None
    try:
        return parts[0], int(parts[1]), int(parts[2])
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# load


class Phase:
    def __init__(self, path):
        self.path = path
        self.value = "baseline"
        self.lock = threading.Lock()

    def poll(self):
        try:
            with open(self.path) as f:
                v = f.read().strip()
        except OSError:
            return
        if v:
            with self.lock:
                self.value = v

    def get(self):
        with self.lock:
            return self.value


def append_op(api, addr, conn, op):
    """Sends op; sets its status/offset/latency (of the request, without a
    connection setup). Returns the connection to keep using (None after an
    error)."""
    t0 = time.monotonic()
    try:
        if conn is None:
            conn = api.connect(addr, REQUEST_TIMEOUT)
            t0 = time.monotonic()
        status, body = api.post(conn, "/writer/append", {"Stream": op["stream"], "Lines": op["lines"]})
    except (OSError, ssl.SSLError, http.client.HTTPException) as e:
        op["status"], op["note"] = INFO, type(e).__name__
        op["latency_ms"] = (time.monotonic() - t0) * 1000
        if conn is not None:
            conn.close()
        return None
    op["latency_ms"] = (time.monotonic() - t0) * 1000
    if 200 <= status < 300:
        try:
            off = json.loads(body)["Offset"]
        except (ValueError, KeyError, TypeError):
            off = None
        if parse_cursor(off) is None:
            op["status"], op["note"] = INFO, f"bad-ack HTTP {status} {body[:200]!r}"
        else:
            op["status"], op["offset"] = OK, off
    elif 400 <= status < 500:
        op["status"], op["note"] = FAIL, f"HTTP {status} {body[:200]!r}"
    else:
        op["status"], op["note"] = INFO, f"HTTP {status} {body[:200]!r}"
    return conn if conn.sock is not None else None


def client_loop(cid, api, addr, streams, phase, seed, pace, ops, errors):
    rng = random.Random(f"{seed}/client/{cid}")
    conn = None
    seq = 0
    try:
        while True:
            p = phase.get()
            if p == "stop":
                break
            if p == "idle":
                if conn is not None:
                    conn.close()
                    conn = None
                time.sleep(0.05)
                continue
            lines = []
            for _ in range(rng.randint(1, 3)):
                seq += 1
                n = rng.randint(40, 120)
                lines.append(f"c{cid}-{seq}-{rng.getrandbits(4 * n):0{n}x}")
            op = {"client": cid, "seq": len(ops), "stream": rng.choice(streams), "lines": lines, "phase": p,
                  "status": None, "offset": None, "note": "", "latency_ms": None, "t": round(time.time(), 3)}
            ops.append(op)
            conn = append_op(api, addr, conn, op)
            if op["status"] == INFO:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.5 * pace, 1.5 * pace))
    except BaseException as e:  # a harness bug: reported
        errors.append(f"client {cid}: {e!r}")
    if conn is not None:
        conn.close()


def cmd_load(args):
    api = Api(args.data)
    host, port = args.api.rsplit(":", 1)
    addr = (host, int(port))
    streams = args.streams.split(",")
    phase = Phase(args.phase_file)
    phase.poll()
    per_client = [[] for _ in range(args.clients)]
    errors = []
    threads = [threading.Thread(target=client_loop, daemon=True,
                                args=(c, api, addr, streams, phase, args.seed, args.pace, per_client[c], errors))
               for c in range(args.clients)]
    for t in threads:
        t.start()
    while phase.get() != "stop":
        time.sleep(0.05)
        phase.poll()
    for t in threads:
        t.join(timeout=REQUEST_TIMEOUT * 3)
    ops = [o for c in per_client for o in c]
    # Padding: one line of chunk-size bytes per stream seals the chunk that
    # holds the last acknowledged lines (rotation happens once a chunk
    # reaches the threshold).
    rng = random.Random(f"{args.seed}/pad")
    conn = None
    for s in streams:
        text = f"pad-{s}-{rng.getrandbits(64):016x}-" + "p" * args.chunk_size
        op = {"client": -1, "seq": 0, "stream": s, "lines": [text], "phase": "pad", "status": None, "offset": None,
              "note": "", "latency_ms": None}
        for _ in range(5):  # nothing is faulty on the API side: retry only a connection hiccup
            conn = append_op(api, addr, conn, op)
            if op["status"] != INFO:
                break
            time.sleep(0.2)
        ops.append(op)
    if conn is not None:
        conn.close()
    with open(args.ops, "w") as f:
        for o in ops:
            f.write(json.dumps(o) + "\n")
    by = {}
    for o in ops:
        by[o["status"]] = by.get(o["status"], 0) + 1
    print(f"load: {len(ops)} ops {by}; harness errors: {errors}", flush=True)
    return 1 if errors or any(o["status"] is None for o in ops) else 0


# ---------------------------------------------------------------------------
# check

# s3rver keeps an object KEY as the file KEY._S3rver_object.
CHUNK_OBJECT_RE = re.compile(r"^~(\d{20})\.ehc\._S3rver_object$")


def cmd_check(args):
    ops = [json.loads(line) for line in open(args.ops)]
    reads = {}
    for spec in args.read:
        stream, path = spec.split("=", 1)
        recs = []
        with open(path) as f:
            for line in f:
                if line.strip():
                    recs.append(json.loads(line))
        reads[stream] = recs
    results = {}
    examples = []

    def bad(kind, text):
        results[kind] = results.get(kind, 0) + 1
        if len(examples) < 20:
            examples.append(f"{kind}: {text}")

    for k in ("lost", "duplicate", "phantom", "reorder", "inconsistent_offset", "unread_chunks",
              "missing_objects", "extra_objects"):
        results[k] = 0

    sent = {}
    for op in ops:
        for ln in op["lines"]:
            sent[ln] = op
    seen = {}  # line -> [(stream, index, PtrAfter)]
    sealed = {}
    for stream, recs in reads.items():
        rotations = 0
        for i, r in enumerate(recs):
            if r.get("MetaType"):
                if r["MetaType"] == "Rotated":
                    rotations += 1
                continue
            seen.setdefault(r["Content"], []).append((stream, i, r["PtrAfter"]))
        sealed[stream] = rotations
        # The read must end right after a Rotated line: the next chunk is the
        # live one (not in the store while the Writer is down).
        last = recs[-1] if recs else None
        if last is None or last.get("MetaType") != "Rotated":
            bad("unread_chunks", f"{stream}: the read does not end with a Rotated line: {str(last)[:200]}")
    for ln, where in seen.items():
        op = sent.get(ln)
        if op is None:
            bad("phantom", f"line never sent: {ln[:60]!r} at {where[:3]}")
            continue
        if op["status"] == FAIL:
            bad("phantom", f"line of a failed op read: {ln[:60]!r}")
        if any(w[0] != op["stream"] for w in where):
            bad("phantom", f"line read in another stream: {ln[:60]!r} {where[:3]}")
        if len(where) > 1:
            bad("duplicate", f"line read {len(where)} times: {ln[:60]!r}")
    first_pos = {}
    acked_lines = 0
    for op in ops:
        pos = [next((w for w in seen.get(ln, []) if w[0] == op["stream"]), None) for ln in op["lines"]]
        if op["status"] == OK:
            acked_lines += len(op["lines"])
            missing = sum(1 for p in pos if p is None)
            if missing:
                bad("lost", f"{missing} of {len(op['lines'])} acked lines missing: client {op['client']} "
                            f"op {op['seq']} {op['stream']} offset {op['offset']}")
                results["lost"] += missing - 1  # one count per line
                continue
            idx = [p[1] for p in pos]
            if idx != list(range(idx[0], idx[0] + len(idx))):
                bad("reorder", f"batch not contiguous at {idx}: client {op['client']} op {op['seq']}")
            if parse_cursor(pos[-1][2]) != parse_cursor(op["offset"]):
                bad("inconsistent_offset", f"acked {op['offset']}, read PtrAfter {pos[-1][2]}")
            first_pos[(op["client"], op["seq"])] = idx[0]
    last_by = {}
    for op in ops:
        key = (op["client"], op["seq"])
        if op["status"] != OK or key not in first_pos or op["client"] < 0:
            continue
        k = (op["client"], op["stream"])
        if k in last_by and first_pos[key] <= first_pos[last_by[k]]:
            bad("reorder", f"client {op['client']} op {op['seq']} read before an earlier ack on {op['stream']}")
        last_by[k] = key
    info_ops = [o for o in ops if o["status"] == INFO]
    info_present = sum(1 for o in info_ops if o["lines"][0] in seen)

    # Every sealed chunk is in the bucket, and nothing else is.
    objects = {}
    if args.bucket_dir:
        for stream in reads:
            d = os.path.join(args.bucket_dir, "chunks", "s", stream.strip("/"))
            found = set()
            if os.path.isdir(d):
                for name in os.listdir(d):
                    m = CHUNK_OBJECT_RE.search(name)
                    if m:
                        found.add(int(m.group(1)))
            objects[stream] = found
            want = set(range(sealed[stream]))
            for c in sorted(want - found):
                bad("missing_objects", f"{stream} chunk {c} not in the bucket")
            for c in sorted(found - want):
                bad("extra_objects", f"{stream} chunk {c} in the bucket but not read as sealed")

    # Latency per phase (acked appends only).
    lat = {}
    for op in ops:
        if op["status"] == OK and op["client"] >= 0:
            lat.setdefault(op["phase"], []).append(op["latency_ms"])
    print(f"ops: {len(ops)} (ok {sum(1 for o in ops if o['status'] == OK)}, info {len(info_ops)} "
          f"[{info_present} present after recovery], fail {sum(1 for o in ops if o['status'] == FAIL)}); "
          f"acked lines {acked_lines}; lines read {len(seen)}")
    print("sealed chunks read per stream: " + ", ".join(f"{s} {n}" for s, n in sealed.items()) +
          f" (total {sum(sealed.values())}); objects in the bucket: {sum(len(v) for v in objects.values())}")
    # No faults: before the faults and after the recovery (pooled, so that
    # the machine's background load at both ends is in the baseline).
    lat["no-faults"] = lat.get("baseline", []) + lat.get("after", [])
    for ph in ("baseline", "after", "no-faults", "faults", "outage", "recovery"):
        v = lat.get(ph, [])
        print(f"append latency {ph}: n={len(v)} p50={percentile(v, 50):.2f} ms p99={percentile(v, 99):.2f} ms "
              f"max={max(v, default=0):.2f} ms")
    b99 = percentile(lat["no-faults"], 99)
    f99 = percentile(lat.get("faults", []), 99)
    o99 = percentile(lat.get("outage", []), 99)
    for e in examples:
        print("  " + e, file=sys.stderr)
    out = dict(results)
    out.update({"acked_lines": acked_lines, "info_ops": len(info_ops), "sealed_total": sum(sealed.values()),
                "objects_total": sum(len(v) for v in objects.values()),
                "baseline_n": len(lat["no-faults"]), "faults_n": len(lat.get("faults", [])),
                "outage_n": len(lat.get("outage", [])),
                "p99_baseline_ms": f"{b99:.2f}", "p99_faults_ms": f"{f99:.2f}", "p99_outage_ms": f"{o99:.2f}",
                "p99_ratio_faults": f"{(f99 / b99) if b99 else 0:.2f}",
                "p99_ratio_outage": f"{(o99 / b99) if b99 else 0:.2f}"})
    for k, v in out.items():
        print(f"result {k}={v}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ld = sub.add_parser("load")
    ld.add_argument("--data", required=True)
    ld.add_argument("--api", required=True)
    ld.add_argument("--streams", required=True)
    ld.add_argument("--phase-file", required=True)
    ld.add_argument("--ops", required=True)
    ld.add_argument("--clients", type=int, default=4)
    ld.add_argument("--seed", type=int, default=1)
    ld.add_argument("--pace", type=float, default=0.04, help="mean seconds between one client's appends")
    ld.add_argument("--chunk-size", type=int, required=True)
    ck = sub.add_parser("check")
    ck.add_argument("--ops", required=True)
    ck.add_argument("--read", action="append", default=[], help="STREAM=FILE of reader-read --json output")
    ck.add_argument("--bucket-dir", default="")
    args = ap.parse_args()
    return cmd_load(args) if args.cmd == "load" else cmd_check(args)


if __name__ == "__main__":
    sys.exit(main())

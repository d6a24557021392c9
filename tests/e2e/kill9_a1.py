#!/usr/bin/env python3
"""RELIABILITY row A1 (CI tier): kill -9 the Writer at random times under
concurrent appends, restart it on the same data directory, and check every
operation against the oracle (RELIABILITY section 4).

8 client threads append batches of 1-5 unique lines `c<client>-<seq>-<rand>`
to 16 streams with 64 KiB chunks and a checkpoint every 64 KiB of WAL
(rotations and checkpoints happen constantly); each op is
logged as ok(offset), fail (definite 4xx) or info (timeout, connection
error, 5xx: indeterminate, never retried). After the last cycle every stream
is read from <stream>:0:0 through all its chunks and checked: lost, phantom,
duplicate, batch atomicity, inconsistent offset, reorder, torn/partial lines;
the read is repeated (same process, then after one more kill -9) and must
agree, and some stream must have rotated.

With --lazyfs (RELIABILITY row A4) the data directory (and the file store
inside it) lives on tests/e2e/lazyfs.py, a FUSE pass-through that forgets
everything not fsync'ed -- file bytes, and names in directories not synced
-- after every kill -9, as a power loss would. Needs root and /dev/fuse.

With --fiu-probability P (RELIABILITY row A8) the Writer runs under libfiu's
POSIX preload (set up as fiu-run -x does; Debian package fiu-utils) and
tests/e2e/fs_faults.c (the calls libfiu does not wrap): each open (openat,
openat2, open), pread, pwrite, ftruncate, fsync, fdatasync, rename,
removal and mkdir fails with probability P (an errno the call may return:
EIO, EINTR, ENOSPC, EMFILE, EINVAL, ...) and reads and writes come back
short with probability 5P. A Writer then stops by itself (fail-stop, exit
74) or refuses to start (exit 1) and is restarted; none may die by a signal,
and the oracle is the same. The final reads run without faults.

Python 3.11 standard library only. Prints "N passed, N failed" (one per
check kind) and exits non-zero on any failure. The binary is $HORIZON, or
<script dir>/../../build/horizon.
"""

import argparse
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from writer_api_client import Api

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_HORIZON = os.path.normpath(os.path.join(SCRIPT_DIR, "..", "..", "build", "horizon"))

NUM_CLIENTS = 8
NUM_STREAMS = 16
CHUNK_SIZE = 65536
CHECKPOINT_BYTES = 65536  # the minimum: kills land inside background checkpoints too
START_TIMEOUT = 30.0  # a Writer that is not ready within this is a failure
REQUEST_TIMEOUT = 5.0  # socket timeout of every client request
READY_RE = re.compile(rb"ready: api https://([0-9.]+):(\d+) ")
ENGINE_RE = re.compile(rb"storage engine ready: (\d+) streams, (\d+) commits replayed, WAL tail cut (\d+) bytes")
LOG_LEVEL_RE = re.compile(r"^\S+ (\w+) \[")
LINE_RE = re.compile(r"^c(\d+)-(\d+)-([0-9a-f]+)$")
META_RE = re.compile(rb"^/([A-Za-z]{1,64}) (\{.*\})$")

OK, FAIL, INFO = "ok", "fail", "info"


class StartError(Exception):
    pass


def parse_cursor(text):
    """'<stream>:<chunk>:<offset>[:<server>]' -> (stream, chunk, offset) or None."""
    parts = text.split(":", 3)
    if len(parts) < 3:
        return None
    try:
        return parts[0], int(parts[1]), int(parts[2])
    except ValueError:
        return None


def percentile(values, p):
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100.0 * len(s)) - 1))]


# ---------------------------------------------------------------------------
# The Writer process


# RELIABILITY A8: file I/O calls that fail (enabled as fiu-run -x does).
# libfiu's POSIX preload wraps pread/pwrite/ftruncate/fsync/fdatasync and the
# plain open/rename/unlink (the Writer's secret files); tests/e2e/fs_faults.c
# (built as fs_faults.so) adds the calls it lacks and the engine uses for every
# open, rename, removal and new directory: openat, the openat2 system call,
# renameat, unlinkat, mkdirat, mkdir. A failed call returns -1 with an errno
# the call may return (EIO, EINTR, ENOSPC, EMFILE, ...); a "reduce" point
# makes a short read/write.
FIU_POINTS = ["posix/io/rw/pwrite", "posix/io/rw/pread", "posix/io/rw/ftruncate", "posix/io/sync/fsync",
              "posix/io/sync/fdatasync", "posix/io/oc/open", "posix/io/dir/rename", "posix/io/dir/unlink"]
FS_FAULTS_POINTS = ["posix/io/oc/openat", "posix/io/oc/openat2", "posix/io/dir/renameat", "posix/io/dir/unlinkat",
                    "posix/io/dir/mkdirat", "posix/io/dir/mkdir"]
FIU_REDUCE_POINTS = ["posix/io/rw/pwrite/reduce", "posix/io/rw/pread/reduce"]
FIU_LIB_DIR = "/usr/lib/fiu"
DEFAULT_FS_FAULTS = os.path.normpath(os.path.join(SCRIPT_DIR, "..", "..", "build", "tests", "libfs_faults.so"))


def fiu_env(binary, fs_faults, injection_log, probability, reduce_probability):
    """The environment fiu-run -x would set (FIU_ENABLE: one command per
    line) plus fs_faults.so, with an ASan build's runtime preloaded first
    (ASan requires it) and libfiu's own small leak suppressed. fs_faults.so
    appends one line per failure it injects to `injection_log`."""
    commands = [f"enable_random name={p},probability={probability}" for p in FIU_POINTS + FS_FAULTS_POINTS]
    commands += [f"enable_random name={p},probability={reduce_probability}" for p in FIU_REDUCE_POINTS]
    preload = [os.path.join(FIU_LIB_DIR, "fiu_run_preload.so"), os.path.join(FIU_LIB_DIR, "fiu_posix_preload.so"),
               fs_faults]
    env = {"FIU_ENABLE": "\n".join(commands), "FIU_CTRL_FIFO": "", "EH_FS_FAULTS_LOG": injection_log}
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    asan = re.search(r"(\S*libasan\.so\S*) => (\S+)", ldd)
    if asan:
        preload.insert(0, asan.group(2))
        env["LSAN_OPTIONS"] = ":".join(x for x in (os.environ.get("LSAN_OPTIONS", ""),
                                                   f"suppressions={os.path.join(SCRIPT_DIR, 'lsan-fiu.supp')}") if x)
    env["LD_PRELOAD"] = " ".join(preload)
    return env


def injected_by_fs_faults(path):
    """{call: {errno name: count}} from fs_faults.so's log."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                call, _, err = line.strip().partition(" ")
                out.setdefault(call, {})
                out[call][err] = out[call].get(err, 0) + 1
    except FileNotFoundError:
        pass
    return out


class Writer:
    """The Writer under test: started, killed, stopped, its log followed.
    `args` replaces the flags after --data (the default: this test's API,
    pub/sub and metrics on free ports, 64 KiB chunks, frequent checkpoints)."""

    def __init__(self, binary, data, log_path, fault_env=None, power_loss=None, args=None):
        self.binary = binary
        self.data = data
        self.log_path = log_path
        self.args = args if args is not None else [
            "--api", "127.0.0.1:0", "--pubsub", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
            "--chunk-size", str(CHUNK_SIZE), "--checkpoint-bytes", str(CHECKPOINT_BYTES)]
        self.fault_env = fault_env or {}  # e.g. libfiu's: started under injected I/O faults
        self.power_loss = power_loss  # --lazyfs: forgets what was not synced, after each kill
        self.power_losses = 0
        self.exits = {}  # exit status -> count, of Writers that exited by themselves
        self.proc = None
        self.addr = None  # (host, port) while a ready Writer runs, else None
        self.starts = 0
        self.engine_lines = []  # (streams, commits replayed, WAL tail bytes cut) per start
        self.last_log_offset = 0

    def start(self, faults=True):
        """Starts the Writer and waits (bounded) until it logs `ready: api`.
        Returns the time from spawn to ready, in seconds. Under injected
        faults a start that fails with an exit status (a clean refusal) is
        retried, up to 50 in a row; a start killed by a signal is not."""
        for attempt in range(50):
            try:
                return self.start_once(faults)
            except StartError as e:
                rc = self.proc.returncode if self.proc is not None and self.proc.poll() is not None else None
                if not (faults and self.fault_env) or rc is None or rc < 0:
                    raise
                self.exits[rc] = self.exits.get(rc, 0) + 1
                self.proc = None
        raise StartError("50 starts in a row failed under injected faults")

    def exited_by_itself(self):
        """The exit status if the Writer ended on its own (e.g. fail-stop), else None."""
        if self.proc is None or self.proc.poll() is None:
            return None
        rc = self.proc.returncode
        self.exits[rc] = self.exits.get(rc, 0) + 1
        self.proc = None
        self.addr = None
        return rc

    def start_once(self, faults):
        self.last_log_offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        argv = [self.binary, "writer", "--data", self.data] + self.args
        env = dict(os.environ, **self.fault_env) if faults and self.fault_env else None
        t0 = time.monotonic()
        deadline = t0 + START_TIMEOUT
        while True:  # the binary may be missing for a moment while it is rebuilt
            try:
                with open(self.log_path, "ab") as logf:
                    self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                                 close_fds=True, env=env)
                break
            except OSError as e:  # ENOENT, ETXTBSY, EACCES
                if time.monotonic() > deadline:
                    raise StartError(f"cannot run {self.binary}: {e}")
                time.sleep(0.1)
        self.starts += 1
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(self.last_log_offset)
                text = f.read()
            m = READY_RE.search(text)
            if m:
                elapsed = time.monotonic() - t0
                e = ENGINE_RE.search(text)
                if e:
                    self.engine_lines.append(tuple(int(x) for x in e.groups()))
                self.addr = (m.group(1).decode(), int(m.group(2)))
                return elapsed
            if self.proc.poll() is not None:
                raise StartError(f"the Writer exited with status {self.proc.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise StartError(f"the Writer was not ready within {START_TIMEOUT:.0f} s")
            time.sleep(0.005)

    def kill9(self):
        """kill -9 (if it still runs); then, under --lazyfs, the power loss."""
        self.addr = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                raise StartError(f"the Writer (pid {self.proc.pid}) did not exit within 10 s of SIGKILL")
            self.proc = None
        if self.power_loss is not None:
            self.power_loss()
            self.power_losses += 1

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stops the Writer with `sig` (bounded), SIGKILL as the fallback; returns the exit status."""
        self.addr = None
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(sig)
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                rc = "killed after SIGTERM timeout"
        self.proc = None
        return rc

    def log_since_start(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.last_log_offset)
                return f.read().decode(errors="replace")
        except OSError as e:
            return f"(cannot read the log: {e})"


# ---------------------------------------------------------------------------
# Clients


class Op:
    __slots__ = ("client", "seq", "stream", "lines", "status", "offset", "note", "cycle")

    def __init__(self, client, seq, stream, lines, cycle):
        self.client = client
        self.seq = seq  # per client; acks of one client are in seq order
        self.stream = stream
        self.lines = lines
        self.status = None
        self.offset = None  # (stream, chunk, offset) for ok ops
        self.note = ""
        self.cycle = cycle

    def __repr__(self):
        return (f"op c{self.client}#{self.seq} cycle {self.cycle} {self.stream} {self.status} "
                f"offset {self.offset} lines {self.lines} {self.note}")


class Client(threading.Thread):
    def __init__(self, cid, api, writer, streams, seed, stop, state):
        super().__init__(name=f"client-{cid}", daemon=True)
        self.cid = cid
        self.api = api
        self.writer = writer
        self.streams = streams
        self.rng = random.Random(f"{seed}/client/{cid}")
        self.stop = stop
        self.state = state  # shared dict: "cycle"
        self.ops = []
        self.line_seq = 0
        self.connect_errors = 0
        self.error = None

    def backoff(self):
        time.sleep(self.rng.uniform(0.005, 0.03))

    def run(self):
        try:
            self.loop()
        except BaseException as e:  # a bug in the harness: reported by main
            self.error = repr(e)

    def loop(self):
        conn, conn_addr = None, None
        while not self.stop.is_set():
            addr = self.writer.addr
            if addr is None:
                time.sleep(0.005)
                continue
            if conn is None or conn.sock is None or conn_addr != addr:
                if conn is not None:
                    conn.close()
                conn = None
                try:
                    conn = self.api.connect(addr, REQUEST_TIMEOUT)
                    conn_addr = addr
                except (OSError, ssl.SSLError, http.client.HTTPException):
                    self.connect_errors += 1  # nothing was sent: no op to record
                    conn = None
                    self.backoff()
                    continue
            stream = self.rng.choice(self.streams)
            lines = []
            for _ in range(self.rng.randint(1, 5)):
                self.line_seq += 1
                # 20 to 220 bytes a line, about 120 on average: events of
                # the size the benchmarks use, so chunks fill and seal often.
                rand = "%0*x" % (n := self.rng.randint(8, 208), self.rng.getrandbits(4 * n))
                lines.append(f"c{self.cid}-{self.line_seq}-{rand}")
            op = Op(self.cid, len(self.ops), stream, lines, self.state["cycle"])
            self.ops.append(op)
            try:
                status, body = self.api.post(conn, "/writer/append", {"Stream": stream, "Lines": lines})
            except (OSError, ssl.SSLError, http.client.HTTPException) as e:
                op.status, op.note = INFO, type(e).__name__
                conn.close()
                conn = None
                self.backoff()
                continue
            if 200 <= status < 300:
                try:
                    off = parse_cursor(json.loads(body)["Offset"])
                except (ValueError, KeyError, TypeError):
                    off = None
                if off is None:
                    op.status, op.note = INFO, f"HTTP {status} without a valid Offset: {body[:200]!r}"
                    op.note = "bad-ack " + op.note
                else:
                    op.status, op.offset = OK, off
            elif 400 <= status < 500:
                op.status, op.note = FAIL, f"HTTP {status} {body[:200]!r}"
            else:
                op.status, op.note = INFO, f"HTTP {status} {body[:200]!r}"
        if conn is not None:
            conn.close()


# ---------------------------------------------------------------------------
# Reading every stream


class StreamRead:
    def __init__(self, name):
        self.name = name
        self.records = []  # (chunk, start, end, kind, text) with kind " " (application) or "/" (meta)
        self.chunks = []  # raw bytes per chunk, for comparing reads
        self.torn = []  # descriptions of malformed lines / structure
        self.errors = []  # read errors (HTTP)
        self.rotations = 0


class StoreReader:
    """Sealed chunks the Writer no longer holds (the shipper moved them to
    the store), read with `horizon reader-read --json` with the raw lines
    rebuilt exactly (regular: ' ' + content; meta: '/' + type + ' ' + JSON).
    One reader-read per stream and read pass, not one per chunk: the first
    miss reads the stream from there to its end, and every complete chunk
    after the requested one (up to and including its Rotated line) is kept
    for the later misses of the same pass. Objects in the store never
    change, so a new pass (a new StoreReader) reads them afresh."""

    def __init__(self, binary, data):
        self.binary = binary
        self.data = data
        self.chunks = {}  # (stream, chunk) -> the whole chunk's raw bytes

    def read(self, cursor):
        c = parse_cursor(cursor)
        if c is None:
            return None, f"bad cursor {cursor!r}".encode()
        stream, chunk, offset = c
        whole = self.chunks.get((stream, chunk))
        if whole is not None and offset <= len(whole):
            return 200, whole[offset:]
        proc = subprocess.run([self.binary, "reader-read", cursor, "1000000", "--json"], capture_output=True,
                              env=dict(os.environ, HORIZON_DATA=self.data), timeout=120)
        if proc.returncode != 0 and not proc.stdout:
            return None, proc.stderr
        first = None  # the requested chunk, from `offset`
        at, out = chunk, bytearray()
        for line in proc.stdout.decode().splitlines():
            rec = json.loads(line)
            if rec["MetaType"]:
                out += ("/" + rec["MetaType"] + " " + rec["Content"] + "\n").encode()
            else:
                out += (" " + rec["Content"] + "\n").encode()
            if rec["MetaType"] == "Rotated":
                if first is None:
                    first = bytes(out)
                else:
                    self.chunks[(stream, at)] = bytes(out)
                at, out = at + 1, bytearray()
        if first is None:  # the requested chunk has no Rotated yet: all there is
            if proc.returncode != 0:
                return None, proc.stderr
            first = bytes(out)
        return 200, first


def read_stream(api, conn_box, addr, name, max_requests=200000, store_reader=None):
    """Reads `name` from <name>:0:0 through every chunk, from the Writer or,
    for shipped chunks, from the store. conn_box holds a reusable
    connection (replaced on connection errors)."""
    out = StreamRead(name)

    def liveread(cursor):
        status, body = liveread_writer(cursor)
        if status == 404 and b"chunk_not_found" in body and store_reader is not None:
            return store_reader.read(cursor)
        return status, body

    def liveread_writer(cursor):
        for attempt in range(3):
            try:
                if conn_box[0] is None or conn_box[0].sock is None:
                    conn_box[0] = api.connect(addr, timeout=15)
                return api.post(conn_box[0], "/writer/liveread", {"Cursor": cursor, "MaxLinesToRead": 10000})
            except (OSError, ssl.SSLError, http.client.HTTPException) as e:
                if conn_box[0] is not None:
                    conn_box[0].close()
                conn_box[0] = None
                err = e
                time.sleep(0.05)
        return None, repr(err).encode()

    chunk, offset, requests = 0, 0, 0
    chunk_bytes = bytearray()
    while requests < max_requests:
        requests += 1
        status, body = liveread(f"{name}:{chunk}:{offset}")
        if status != 200:
            out.errors.append(f"liveread {name}:{chunk}:{offset}: {status} {body[:300]!r}")
            break
        if not body:
            out.chunks.append((chunk, bytes(chunk_bytes)))
            break
        chunk_bytes += body
        if not body.endswith(b"\n"):
            out.torn.append(f"{name}:{chunk}:{offset}: body does not end with a newline: {body[-80:]!r}")
        rotated_next = None
        pos = offset
        for raw in body.split(b"\n")[:-1] if body.endswith(b"\n") else body.split(b"\n"):
            start, end = pos, pos + len(raw) + 1
            pos = end
            where = f"{name}:{chunk}:{start}"
            if rotated_next is not None:
                out.torn.append(f"{where}: line after Rotated in the same chunk: {raw[:80]!r}")
            if start == 0 and not raw.startswith(b"/Created "):
                out.torn.append(f"{where}: chunk does not begin with a Created line: {raw[:80]!r}")
            if raw.startswith(b" "):
                try:
                    text = raw[1:].decode("utf-8")
                except UnicodeDecodeError:
                    out.torn.append(f"{where}: invalid UTF-8: {raw[:80]!r}")
                    continue
                out.records.append((chunk, start, end, " ", text))
            elif raw.startswith(b"/"):
                m = META_RE.match(raw)
                obj = None
                if m:
                    try:
                        obj = json.loads(m.group(2))
                    except ValueError:
                        obj = None
                if not isinstance(obj, dict):
                    out.torn.append(f"{where}: malformed meta line: {raw[:120]!r}")
                    continue
                mtype = m.group(1).decode()
                out.records.append((chunk, start, end, "/", mtype))
                if mtype == "Rotated":
                    nxt = parse_cursor(str(obj.get("next", "")))
                    if nxt != (name, chunk + 1, 0):
                        out.torn.append(f"{where}: Rotated points to {obj.get('next')!r}, "
                                        f"expected {name}:{chunk + 1}:0")
                    rotated_next = end
            else:
                out.torn.append(f"{where}: line is neither application nor meta: {raw[:80]!r}")
        if rotated_next is not None:
            # The Rotated line must be the last line of its chunk.
            status, body = liveread(f"{name}:{chunk}:{rotated_next}")
            if status != 200 or body:
                out.torn.append(f"{name}:{chunk}:{rotated_next}: data after Rotated: {status} {body[:120]!r}")
            out.chunks.append((chunk, bytes(chunk_bytes)))
            out.rotations += 1
            chunk, offset, chunk_bytes = chunk + 1, 0, bytearray()
        else:
            offset = pos
    else:
        out.errors.append(f"{name}: more than {max_requests} reads")
    return out


def read_all(api, addr, streams, binary, data):
    conn_box = [None]
    store_reader = StoreReader(binary, data)
    try:
        return {s: read_stream(api, conn_box, addr, s, store_reader=store_reader) for s in streams}
    finally:
        if conn_box[0] is not None:
            conn_box[0].close()


# ---------------------------------------------------------------------------
# The oracle


def check(ops, reads, streams):
    """Returns {kind: [example descriptions]} for every anomaly kind, plus stats."""
    anomalies = {k: [] for k in ("lost", "phantom", "duplicate", "batch_atomicity", "inconsistent_offset",
                                 "reorder", "torn")}
    counts = {k: 0 for k in anomalies}

    def add(kind, n, text):
        counts[kind] += n
        if len(anomalies[kind]) < 20:
            anomalies[kind].append(text)

    sent = {}  # line -> op
    for op in ops:
        for ln in op.lines:
            sent[ln] = op
    # Where each application line was read: line -> [(stream, record index)]
    seen = {}
    for s in streams:
        r = reads[s]
        for t in r.torn:
            add("torn", 1, t)
        for i, rec in enumerate(r.records):
            if rec[3] != " ":
                continue
            seen.setdefault(rec[4], []).append((s, i))
    for ln, where in seen.items():
        op = sent.get(ln)
        if op is None:
            add("phantom", len(where), f"line never sent: {ln!r} at {where}")
            continue
        if op.status == FAIL:
            add("phantom", len(where), f"line of a failed op read at {where}: {op!r}")
        wrong = [w for w in where if w[0] != op.stream]
        if wrong:
            add("phantom", len(wrong), f"line read in another stream {wrong}: {op!r}")
        if len(where) > 1:
            add("duplicate", len(where) - 1, f"line read {len(where)} times at {where}: {op!r}")
    # Per op: lost, atomicity, offset.
    first_pos = {}  # op -> index of its first line in its stream
    for op in ops:
        recs = reads[op.stream].records
        pos = [next((i for (s, i) in seen.get(ln, []) if s == op.stream), None) for ln in op.lines]
        present = [p for p in pos if p is not None]
        if op.status == OK and len(present) < len(op.lines):
            add("lost", len(op.lines) - len(present),
                f"{len(op.lines) - len(present)} of {len(op.lines)} acked lines missing: {op!r}")
        if present and len(present) < len(op.lines):
            add("batch_atomicity", 1, f"partial batch, {len(present)} of {len(op.lines)} lines present "
                                      f"at {pos}: {op!r}")
            continue
        if not present:
            continue
        if pos != list(range(pos[0], pos[0] + len(pos))):
            add("batch_atomicity", 1, f"batch not contiguous/in order at record indexes {pos}: {op!r}")
            continue
        first_pos[op] = pos[0]
        if op.status == OK:
            last = recs[pos[-1]]
            got = (op.stream, last[0], last[2])
            if got != op.offset:
                add("inconsistent_offset", 1, f"acked {op.offset}, read cursor after last line {got}: {op!r}")
    # Reorder: per client and stream, acked ops in ack order.
    last_by = {}
    for op in ops:
        if op.status != OK or op not in first_pos:
            continue
        key = (op.client, op.stream)
        prev = last_by.get(key)
        if prev is not None and first_pos[op] <= first_pos[prev]:
            add("reorder", 1, f"{op!r} read at {first_pos[op]} before earlier ack {prev!r} at {first_pos[prev]}")
        last_by[key] = op
    # An ack with a broken Offset is an inconsistent offset too.
    for op in ops:
        if op.status == INFO and op.note.startswith("bad-ack"):
            add("inconsistent_offset", 1, f"2xx without a valid Offset: {op!r}")
    return counts, anomalies


def compare_reads(a, b, streams):
    diffs = []
    for s in streams:
        if a[s].errors or b[s].errors:
            diffs.extend(a[s].errors + b[s].errors)
        elif a[s].chunks != b[s].chunks:
            ca = [(c, len(x)) for c, x in a[s].chunks]
            cb = [(c, len(x)) for c, x in b[s].chunks]
            diffs.append(f"{s}: reads differ: chunks/sizes {ca} vs {cb}")
    return diffs


# ---------------------------------------------------------------------------


def summarize_log(path):
    levels, notable = {}, []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = LOG_LEVEL_RE.match(line)
                lvl = m.group(1) if m else "unparsed"
                levels[lvl] = levels.get(lvl, 0) + 1
                if lvl not in ("info", "debug", "trace"):
                    notable.append(line.rstrip("\n"))
    except OSError:
        pass
    return levels, notable


# RELIABILITY A10: file systems on a loop device (mkfs arguments, mount options).
FILE_SYSTEMS = {
    "tmp": None,
    "ext4": (["mkfs.ext4", "-q", "-m", "0"], "data=ordered"),
    "ext4-writeback": (["mkfs.ext4", "-q", "-m", "0"], "data=writeback"),
    "xfs": (["mkfs.xfs", "-q", "-f"], "defaults"),
    "btrfs": (["mkfs.btrfs", "-q", "-f"], "defaults"),
}
LOOP_FS_BYTES = 1 << 30  # sparse; xfs wants at least 300 MB


def mount_loop_fs(kind, tmp, size=LOOP_FS_BYTES):
    """A fresh file system of `kind` (`size` bytes, sparse) on a loop device,
    mounted at <tmp>/fs; its path."""
    mkfs, options = FILE_SYSTEMS[kind]
    image, fs = os.path.join(tmp, f"{kind}.img"), os.path.join(tmp, "fs")
    os.makedirs(fs, exist_ok=True)
    with open(image, "wb") as f:
        f.truncate(size)
    for argv in (mkfs + [image], ["mount", "-o", f"loop,{options}", image, fs]):
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return fs


def shipped_chunks(data):
    """The chunk objects in the default file store (<data>/store)."""
    return sum(1 for _, _, files in os.walk(os.path.join(data, "store", "chunks")) for f in files
               if f.endswith(".ehc"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=100, help="kill -9 cycles (default 100)")
    ap.add_argument("--min-seconds", type=float, default=0.0,
                    help="go on with cycles (beyond --cycles) until this many seconds of cycles have passed")
    ap.add_argument("--lazyfs", action="store_true",
                    help="RELIABILITY A4: the data directory on lazyfs.py (FUSE, root), which forgets everything "
                         "not synced after every kill -9 (a power loss)")
    ap.add_argument("--fs", choices=sorted(FILE_SYSTEMS), default="tmp",
                    help="RELIABILITY A10: the data directory (and the lazyfs backing directory) on a fresh "
                         "file system of this kind on a loop device (root; default: the temp directory as is)")
    ap.add_argument("--min-seals", type=int, default=0,
                    help="fail unless at least this many chunks were sealed and as many shipped to the store "
                         "(RELIABILITY A1 asks for 1,000 a run)")
    ap.add_argument("--seed", type=int, default=20240601, help="seed of the random choices")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (data dir + log)")
    ap.add_argument("--fiu-probability", type=float, default=0.0,
                    help="RELIABILITY A8: run the Writer under fiu-run (+ fs_faults.so, $FS_FAULTS), each file "
                         "open, read, write, truncate, sync, rename, removal and mkdir failing with this "
                         "probability (and reads/writes cut short at 5 times it, at most 0.5); "
                         "the final reads run without faults (default 0: off)")
    args = ap.parse_args()

    binary = os.environ.get("HORIZON") or DEFAULT_HORIZON
    fs_faults = os.environ.get("FS_FAULTS") or DEFAULT_FS_FAULTS
    if args.fiu_probability and not os.path.isfile(fs_faults):
        print(f"kill9_a1: {fs_faults} is missing (build the fs_faults target, or set FS_FAULTS)", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="eh-kill9-")
    os.environ["XDG_CACHE_HOME"] = os.path.join(tmp, "xdg-cache")  # the readers' cache: not ~/.cache
    injection_log = os.path.join(tmp, "fs-faults.log")
    fault_env = {}
    if args.fiu_probability:
        fault_env = fiu_env(binary, fs_faults, injection_log,
                            args.fiu_probability, min(0.5, 5 * args.fiu_probability))
    print(f"kill9_a1: seed {args.seed}, cycles {args.cycles} (at least {args.min_seconds:.0f} s), binary {binary}"
          + (f", injected I/O faults: {fault_env}" if fault_env else ""), flush=True)
    rng = random.Random(args.seed)
    t_begin = time.monotonic()

    # SIGTERM (ctest timeout) runs the finally blocks too.
    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)

    base, loop_fs = tmp, None
    if args.fs != "tmp":
        try:
            base = loop_fs = mount_loop_fs(args.fs, tmp)
        except (OSError, RuntimeError) as e:
            print(f"FAIL: cannot make and mount a {args.fs} file system (root, losetup and mkfs are needed): {e}",
                  file=sys.stderr)
            shutil.rmtree(tmp, ignore_errors=True)
            print("0 passed, 1 failed")
            return 1
        print(f"kill9_a1: data directory on {args.fs} ({' '.join(FILE_SYSTEMS[args.fs][0])}, mounted "
              f"{FILE_SYSTEMS[args.fs][1]}) on a loop device", flush=True)
    data = os.path.join(base, "data")
    log_path = os.path.join(tmp, "writer.log")
    lazyfs, mnt, power_loss = None, None, None
    if args.lazyfs:
        # RELIABILITY A4: the data directory on lazyfs.py (FUSE); after every
        # kill -9 everything not synced is forgotten, as in a power loss.
        backing, mnt = os.path.join(base, "backing"), os.path.join(tmp, "mnt")
        os.mkdir(backing)
        os.mkdir(mnt)
        with open(os.path.join(tmp, "lazyfs.log"), "ab") as lf:
            lazyfs = subprocess.Popen(["/usr/bin/python3", os.path.join(SCRIPT_DIR, "lazyfs.py"), backing, mnt],
                                      stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
        for _ in range(200):
            if os.path.ismount(mnt) or lazyfs.poll() is not None:
                break
            time.sleep(0.05)
        if not os.path.ismount(mnt):
            print(f"FAIL: lazyfs did not mount (root, /dev/fuse and python3-fusepy are needed): "
                  f"{open(os.path.join(tmp, 'lazyfs.log'), errors='replace').read()[-2000:]}", file=sys.stderr)
            lazyfs.kill()
            if loop_fs is not None:
                subprocess.run(["umount", loop_fs])
            shutil.rmtree(tmp, ignore_errors=True)
            print("0 passed, 1 failed")
            return 1
        data = os.path.join(mnt, "data")
        power_loss = lambda: os.utime(os.path.join(mnt, ".lazyfs-drop"))  # noqa: E731
    writer = Writer(binary, data, log_path, fault_env, power_loss)
    stop = threading.Event()
    clients = []
    restart_times = []
    cycles_done = 0
    failed_checks, passed_checks = [], []
    ok_exit = False
    try:
        writer.start(faults=False)  # the set-up runs without injected faults
        api = Api(data)
        streams = [f"/s{i}" for i in range(NUM_STREAMS)]
        conn = api.connect(writer.addr, REQUEST_TIMEOUT)
        for s in streams:
            status, body = api.post(conn, "/writer/create_stream", {"Name": s})
            if status != 201:
                raise RuntimeError(f"create_stream {s}: {status} {body!r}")
        conn.close()
        if fault_env:
            writer.kill9()
            writer.start()

        state = {"cycle": 0}
        clients = [Client(c, api, writer, streams, args.seed, stop, state) for c in range(NUM_CLIENTS)]
        for c in clients:
            c.start()
        restart_error = None
        t_cycles = time.monotonic()
        cycle = -1
        # At least --cycles cycles, and cycles until --min-seconds have passed
        # and (up to twice --cycles) until --min-seals chunks were shipped:
        # the seals a cycle brings depend on the machine's speed, and the row
        # asks for the count, not for a speed.
        def more_cycles():
            done = cycle + 1
            if done < args.cycles or time.monotonic() - t_cycles < args.min_seconds:
                return True
            return bool(args.min_seals) and done < 2 * args.cycles and shipped_chunks(writer.data) < args.min_seals

        while more_cycles():
            cycle += 1
            time.sleep(rng.uniform(0.05, 0.6))
            writer.exited_by_itself()  # under injected faults: a fail-stop
            writer.kill9()
            state["cycle"] = cycle + 1
            try:
                restart_times.append(writer.start())
            except StartError as e:
                restart_error = f"cycle {cycle + 1}: {e}"
                print(f"FAIL: restart in {restart_error}; the Writer's log since the start:", file=sys.stderr)
                print(writer.log_since_start(), file=sys.stderr)
                writer.kill9()
                break
            cycles_done += 1
            if (cycle + 1) % 25 == 0:
                acked = sum(1 for c in clients for o in c.ops if o.status == OK)
                print(f"  cycle {cycle + 1} (at least {args.cycles}): {acked} ops acked so far, "
                      f"{time.monotonic() - t_begin:.1f} s", flush=True)
        stop.set()
        for c in clients:
            c.join(timeout=REQUEST_TIMEOUT * 3)
        stuck = [c.name for c in clients if c.is_alive()]
        if stuck:
            raise RuntimeError(f"clients did not stop: {stuck}")
        harness_errors = [f"{c.name}: {c.error}" for c in clients if c.error]
        if harness_errors:
            raise RuntimeError(f"client thread crashed: {harness_errors}")

        # Final restart and reads: read twice on the same process, then once
        # more after another kill -9 and restart: every read must agree.
        ops = [o for c in clients for o in c.ops]
        unfinished = [o for o in ops if o.status is None]
        if unfinished:
            raise RuntimeError(f"{len(unfinished)} ops without an outcome, e.g. {unfinished[0]!r}")
        if restart_error is None:
            writer.exited_by_itself()
            writer.kill9()
            try:
                restart_times.append(writer.start(faults=False))
            except StartError as e:
                restart_error = f"final restart: {e}"
                print(f"FAIL: {restart_error}; the Writer's log since the start:", file=sys.stderr)
                print(writer.log_since_start(), file=sys.stderr)
        reads_diffs = []
        counts, anomalies = {}, {}
        rotations = max_chunk = 0
        if restart_error is None:
            read1 = read_all(api, writer.addr, streams, binary, data)
            read2 = read_all(api, writer.addr, streams, binary, data)
            writer.kill9()
            try:
                writer.start(faults=False)
            except StartError as e:
                restart_error = f"restart before the third read: {e}"
                print(f"FAIL: {restart_error}; the Writer's log:", file=sys.stderr)
                print(writer.log_since_start(), file=sys.stderr)
            if restart_error is None:
                read3 = read_all(api, writer.addr, streams, binary, data)
                reads_diffs = compare_reads(read1, read2, streams) + compare_reads(read1, read3, streams)
            counts, anomalies = check(ops, read1, streams)
            rotations = sum(r.rotations for r in read1.values())
            max_chunk = max((c for r in read1.values() for c, _ in r.chunks), default=0)
        stop_status = writer.stop()

        # Summary
        n_ok = sum(1 for o in ops if o.status == OK)
        n_ok_lines = sum(len(o.lines) for o in ops if o.status == OK)
        n_info = sum(1 for o in ops if o.status == INFO)
        n_fail = sum(1 for o in ops if o.status == FAIL)
        info_kinds = {}
        for o in ops:
            if o.status == INFO:
                k = o.note.split(" ")[0] if not o.note.startswith("HTTP") else " ".join(o.note.split(" ")[:2])
                info_kinds[k] = info_kinds.get(k, 0) + 1
        info_present = 0
        if counts:
            read_lines = {rec[4] for r in read1.values() for rec in r.records if rec[3] == " "}
            info_present = sum(1 for o in ops if o.status == INFO and o.lines[0] in read_lines)
        replayed = [e[1] for e in writer.engine_lines]
        torn_tails = [e[2] for e in writer.engine_lines if e[2] > 0]
        levels, notable = summarize_log(log_path)
        elapsed = time.monotonic() - t_begin

        print(f"seed: {args.seed}")
        print(f"cycles: {cycles_done} (at least {args.cycles}, for at least {args.min_seconds:.0f} s; "
              f"Writer starts: {writer.starts})")
        print(f"acked ops: {n_ok}, acked lines: {n_ok_lines}, info ops: {n_info} "
              f"({info_present} of them present after recovery; {info_kinds}), fail ops: {n_fail}")
        print(f"client connect errors (nothing sent): {sum(c.connect_errors for c in clients)}")
        print(f"rotations seen: {rotations} (highest chunk {max_chunk})")
        # Ships: the chunk objects in the default file store (<data>/store).
        shipped = shipped_chunks(writer.data)
        print(f"seals: {rotations}, chunks shipped to the store: {shipped}"
              + (f" (at least {args.min_seals} of each asked)" if args.min_seals else ""))
        # Every checkpoint starts the next WAL segment, across restarts too.
        segments = [int(n[:-4]) for n in os.listdir(os.path.join(writer.data, "wal"))
                    if n.endswith(".log") and n[:-4].isdigit()]
        highest_segment = max(segments, default=0)
        print(f"checkpoints: highest WAL segment {highest_segment}")
        if restart_times:
            print(f"restart time: p50 {percentile(restart_times, 50) * 1000:.0f} ms, "
                  f"p99 {percentile(restart_times, 99) * 1000:.0f} ms, max {max(restart_times) * 1000:.0f} ms "
                  f"(start {restart_times.index(max(restart_times)) + 1} of {len(restart_times)})")
        if replayed:
            print(f"recovery: commits replayed per start p50 {percentile(replayed, 50)}, max {max(replayed)}; "
                  f"starts with a WAL tail cut (torn or stale) {len(torn_tails)} (max {max(torn_tails, default=0)} bytes)")
        print(f"writer log lines by level: {levels}; graceful stop exit status: {stop_status}")
        crashes = {rc: n for rc, n in writer.exits.items() if rc < 0}
        if fault_env:
            print(f"Writers that exited by themselves under injected faults, by exit status: "
                  f"{dict(sorted(writer.exits.items()))} (74: fail-stop after a storage failure; "
                  f"negative: killed by a signal, a crash)")
            injected = injected_by_fs_faults(injection_log)
            print(f"failures injected by fs_faults.so (opens, renames, removals, directories), by call and errno: "
                  f"{dict(sorted(injected.items()))}")
        for line in notable[:10]:
            print(f"  log: {line}")
        for kind in ("lost", "phantom", "duplicate", "batch_atomicity", "inconsistent_offset", "reorder", "torn"):
            print(f"{kind}: {counts.get(kind, 'not checked')}")
            for text in anomalies.get(kind, [])[:10]:
                print(f"  {kind}: {text}", file=sys.stderr)
        print(f"reads disagree: {len(reads_diffs) if restart_error is None else 'not checked'}")
        for d in reads_diffs[:10]:
            print(f"  reads: {d}", file=sys.stderr)
        print(f"total time: {elapsed:.1f} s")

        results = [("restarts", restart_error is None and cycles_done >= args.cycles)]
        for kind in ("lost", "phantom", "duplicate", "batch_atomicity", "inconsistent_offset", "reorder", "torn"):
            results.append((kind, kind in counts and counts[kind] == 0))
        results.append(("reads_agree", restart_error is None and not reads_diffs))
        results.append(("rotations", max_chunk >= 1))
        if args.min_seals:
            results.append(("seals", rotations >= args.min_seals))
            results.append(("ships", shipped >= args.min_seals))
        results.append(("checkpoints", highest_segment >= 10))
        results.append(("no_crash", not crashes))
        if lazyfs is not None:
            print(f"power losses (lazyfs drops of everything not synced): {writer.power_losses}")
            results.append(("power_losses", writer.power_losses >= args.cycles))
        if fault_env:
            # The faults happened: Writers stopped on storage failures, or refused to start.
            results.append(("faults_injected", sum(n for rc, n in writer.exits.items() if rc > 0) >= 5))
            # Opens failed too (the points libfiu lacks reached the Writer).
            results.append(("open_faults_injected", sum(sum(injected.get(c, {}).values())
                                                         for c in ("openat", "openat2")) >= 1))
        for name, good in results:
            (passed_checks if good else failed_checks).append(name)
        for name in failed_checks:
            print(f"FAIL: {name}", file=sys.stderr)
        ok_exit = not failed_checks
    except BaseException as e:
        failed_checks.append("harness")
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        if writer.starts:
            print("the Writer's log since its last start:", file=sys.stderr)
            print(writer.log_since_start()[-4000:], file=sys.stderr)
    finally:
        stop.set()
        try:
            writer.kill9()
        except BaseException:
            if writer.proc is not None:
                writer.proc.kill()
        for c in clients:
            c.join(timeout=REQUEST_TIMEOUT * 2)
        if lazyfs is not None:
            subprocess.run(["umount", mnt])
            lazyfs.terminate()
            try:
                lazyfs.wait(timeout=10)
            except subprocess.TimeoutExpired:
                lazyfs.kill()
        if loop_fs is not None:
            subprocess.run(["umount", loop_fs])
        if args.keep or (not ok_exit and os.environ.get("KILL9_KEEP_ON_FAILURE")):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"{len(passed_checks)} passed, {len(failed_checks)} failed", flush=True)
    return 0 if ok_exit else 1


if __name__ == "__main__":
    sys.exit(main())

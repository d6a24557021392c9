#!/usr/bin/env python3
"""RELIABILITY row A9 on a real full file system: the Writer's data directory
on a 64 MiB tmpfs (or, with --fs ext4, a 64 MiB ext4 on a loop device),
filled to the last byte by a ballast file, 20 times.

Each cycle: the ballast takes every free byte; appends go on until the
Writer answers 503 disk_full (it must, and nothing else: no other error, no
crash, no fail-stop); live reads still answer 200; in every other cycle the
Writer is restarted while the disk is full (SIGTERM, then kill -9 in the
next such cycle) and must start; then the ballast goes and the next append
must succeed without a restart (the time until it does is the resume time).
At the end every stream is read back (live chunks from the Writer, shipped
ones from the store, which is outside the tmpfs) and every acknowledged line
must be there exactly once, in order, with no line that was never sent.

Needs to mount a tmpfs: as root directly, otherwise inside a user and mount
namespace (unshare -Urm, re-executing itself). The ext4 variant needs root
(losetup and mkfs.ext4; e2fsprogs). Prints the figures and
"N passed, N failed"; exits non-zero on any failure. The binary is $HORIZON,
or <script dir>/../../build/horizon.
"""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SCRIPT_DIR)
from kill9_a1 import StartError, Writer, mount_loop_fs, read_all  # noqa: E402
from writer_api_client import Api  # noqa: E402

CYCLES = 20
FS_BYTES = 64 * 1024 * 1024
STREAMS = ["/full/a", "/full/b"]
LINE = "x" * 900  # plus a unique prefix: about 1 KB per line


def fill(directory, name):
    """Writes a ballast file until the file system is full; its size."""
    path = os.path.join(directory, name)
    block = b"\0" * (1 << 20)
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):  # down to the last byte
            while True:
                try:
                    n = os.write(fd, block[:size])
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
                written += n
                if n < size:
                    break
        os.fsync(fd)
    finally:
        os.close(fd)
    return written


def main():
    kind = "tmpfs"
    if sys.argv[1:] == ["--fs", "ext4"]:
        kind = "ext4"
    elif sys.argv[1:]:
        print("usage: disk_full.py [--fs ext4]", file=sys.stderr)
        return 2
    if kind == "ext4" and os.geteuid() != 0:
        print("FAIL: the ext4 variant mounts a loop device: run it as root", file=sys.stderr)
        return 1
    if os.geteuid() != 0 and not os.environ.get("EH_DISK_FULL_NS"):
        # A private mount namespace where this user may mount a tmpfs.
        os.execvp("unshare", ["unshare", "--user", "--map-root-user", "--mount", "env", "EH_DISK_FULL_NS=1",
                              sys.executable] + sys.argv)
    binary = os.environ.get("HORIZON") or os.path.normpath(os.path.join(SCRIPT_DIR, "..", "..", "build", "horizon"))
    tmp = tempfile.mkdtemp(prefix="eh-diskfull-")
    os.environ["XDG_CACHE_HOME"] = os.path.join(tmp, "xdg-cache")  # the readers' cache: not ~/.cache
    fs = os.path.join(tmp, "fs")
    os.mkdir(fs)
    mounted = False
    writer = None
    passed, failed = [], []

    def check(name, good, detail=""):
        (passed if good else failed).append(name)
        if not good:
            print(f"FAIL: {name}{': ' + detail if detail else ''}", file=sys.stderr)

    try:
        if kind == "tmpfs":
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_BYTES},mode=0700", "tmpfs", fs], check=True)
        else:  # no blocks reserved for root (mkfs -m 0): the Writer runs as root here
            mount_loop_fs("ext4", tmp, FS_BYTES)
        mounted = True
        data = os.path.join(fs, "data")
        store_dir = os.path.join(tmp, "store")
        writer = Writer(binary, data, os.path.join(tmp, "writer.log"),
                        args=["--store", "file://" + store_dir, "--api", "127.0.0.1:0", "--pubsub", "127.0.0.1:0",
                              "--metrics", "127.0.0.1:0", "--chunk-size", str(1 << 20),
                              "--checkpoint-bytes", str(8 << 20), "--ship-backoff-max", "1"])
        writer.start()
        addr = writer.addr
        api = Api(data)
        conn = api.connect(addr, 10)
        for s in ["/full"] + STREAMS:
            status, body = api.post(conn, "/writer/create_stream", {"Name": s})
            if status != 201:
                raise RuntimeError(f"create_stream {s}: {status} {body!r}")

        acked = {s: [] for s in STREAMS}  # acknowledged lines per stream, in order
        unknown = []  # lines whose append got no definite answer (may or may not be stored)
        seq = 0
        other_errors, restarts_full, restarts_ok, resumes = [], 0, 0, []
        full_cycles = 0  # cycles whose appends reached 503 disk_full
        fill_sizes = []
        last_chunk = {s: 0 for s in STREAMS}  # the chunk of each stream's last acknowledged append

        def append(conn, stream, n):
            nonlocal seq
            lines = []
            for _ in range(n):
                seq += 1
                lines.append(f"{seq:08d} {LINE}")
            try:
                status, body = api.post(conn, "/writer/append", {"Stream": stream, "Lines": lines})
            except OSError as e:
                unknown.extend(lines)
                return None, repr(e).encode(), lines
            if status == 201:
                acked[stream].extend(lines)
                last_chunk[stream] = int(json.loads(body)["Offset"].split(":")[1])
            elif status >= 500:
                unknown.extend(lines)  # 503 disk_full stores nothing, but a 5xx is indeterminate in general
            return status, body, lines

        for cycle in range(CYCLES):
            fill_sizes.append(fill(fs, f"ballast-{cycle}"))
            # Appends until the Writer says disk_full (the WAL may hold a
            # little reserved space ahead of its records). A Writer that
            # needs no new blocks never says it: recycled WAL segments and
            # chunks shipped out of the directory can absorb appends on a
            # full disk for as long as checkpoints and shipping keep pace
            # (under ASan they did, once in 20 cycles). Both are right; only
            # an answer other than 201 or 503 disk_full is wrong.
            saw_full = False
            for i in range(5000):
                if conn.sock is None:
                    conn = api.connect(writer.addr, 10)
                status, body, _ = append(conn, STREAMS[i % 2], 20)
                if status == 503 and b'"disk_full"' in body:
                    saw_full = True
                    break
                if status != 201:
                    other_errors.append(f"cycle {cycle}: {status} {body[:200]!r}")
                    break
            full_cycles += 1 if saw_full else 0
            # Reads go on while full.
            if conn.sock is None:
                conn = api.connect(writer.addr, 10)
            # From the chunk of the last acknowledged append on: that chunk
            # may have been sealed since (a later append rotated it) and
            # shipped, and then it is 404 chunk_not_found by design (readers
            # go to the store); a sealed chunk always has a successor, the
            # stream's live chunk.
            chunk = last_chunk[STREAMS[0]]
            for _ in range(4):
                status, body = api.post(conn, "/writer/liveread",
                                        {"Cursor": f"{STREAMS[0]}:{chunk}:0", "MaxLinesToRead": 10})
                if status != 404 or b'"chunk_not_found"' not in body:
                    break
                chunk += 1
            check(f"cycle {cycle}: live read while full", status == 200, f"{status} {body[:200]!r}")
            check(f"cycle {cycle}: the Writer runs (no fail-stop on ENOSPC)", writer.running())
            if cycle % 2 == 1:  # restart while full: SIGTERM, then kill -9 the next time
                restarts_full += 1
                conn.close()
                sig = signal.SIGTERM if cycle % 4 == 1 else signal.SIGKILL
                rc = writer.stop(sig, timeout=30)
                if sig == signal.SIGTERM:  # a clean stop: its last checkpoint found no space, nothing failed
                    check(f"cycle {cycle}: SIGTERM while full exits 0", rc == 0, f"exit status {rc}")
                try:
                    writer.start()
                    restarts_ok += 1
                except StartError as e:
                    check(f"cycle {cycle}: restart while full", False, str(e))
                    break
                conn = api.connect(writer.addr, 10)
            # Space returns: appends succeed again without a restart.
            os.unlink(os.path.join(fs, f"ballast-{cycle}"))
            t0 = time.monotonic()
            resumed = None
            while time.monotonic() - t0 < 10:
                if conn.sock is None:
                    conn = api.connect(writer.addr, 10)
                status, body, _ = append(conn, STREAMS[cycle % 2], 1)
                if status == 201:
                    resumed = time.monotonic() - t0
                    break
                time.sleep(0.01)
            check(f"cycle {cycle}: appends resume after space returns", resumed is not None)
            if resumed is not None:
                resumes.append(resumed)
        conn.close()

        # Everything acknowledged is there exactly once, in order; nothing foreign.
        reads = read_all(api, writer.addr, STREAMS, binary, data)
        for s in STREAMS:
            r = reads[s]
            check(f"{s}: read without errors", not r.errors, "; ".join(r.errors[:3]))
            check(f"{s}: no torn or malformed line", not r.torn, "; ".join(r.torn[:3]))
            got = [rec[4] for rec in r.records if rec[3] == " "]
            got_set = set(got)
            lost = [ln for ln in acked[s] if ln not in got_set]
            check(f"{s}: acknowledged lines lost", not lost, f"{len(lost)}, e.g. {lost[:1]}")
            check(f"{s}: duplicates", len(got) == len(got_set), f"{len(got) - len(got_set)}")
            acked_set, unknown_set = set(acked[s]), set(unknown)
            foreign = [ln for ln in got if ln not in acked_set and ln not in unknown_set]
            check(f"{s}: lines never sent or from a definite failure", not foreign, f"{len(foreign)}")
            in_order = [ln for ln in got if ln in acked_set]
            check(f"{s}: acknowledged lines in order", in_order == acked[s])
        check("no error other than disk_full while full", not other_errors, "; ".join(other_errors[:3]))
        # The full-disk path was taken in most cycles (20 of 20 in release runs).
        check("cycles that reached 503 disk_full", full_cycles >= CYCLES // 2, f"{full_cycles} of {CYCLES}")
        check("restarts while full", restarts_ok == restarts_full, f"{restarts_ok}/{restarts_full}")
        rc = writer.stop(signal.SIGTERM, timeout=30)
        check("graceful stop exit status", rc == 0, str(rc))
        log = open(os.path.join(tmp, "writer.log"), errors="replace").read()
        check("no fail-stop in the log", "fail-stop" not in log)
        print(f"{kind}: cycles: {CYCLES}; ballast per cycle {min(fill_sizes) >> 10}-{max(fill_sizes) >> 10} KiB; "
              f"acked lines: {sum(len(v) for v in acked.values())}; cycles that reached disk_full: "
              f"{full_cycles}; "
              f"restarts while full: {restarts_ok}/{restarts_full}; resume after free: "
              f"max {max(resumes, default=0) * 1000:.0f} ms, median "
              f"{sorted(resumes)[len(resumes) // 2] * 1000 if resumes else 0:.0f} ms")
        warnings = sorted({re.sub(r"\d+", "N", ln.split("] ", 1)[-1])[:140]
                           for ln in log.splitlines() if " warning " in ln or " error " in ln})
        for w in warnings[:12]:
            print(f"  log: {w}")
    except BaseException as e:  # noqa: BLE001 -- the harness itself failed
        failed.append("harness")
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        log_path = os.path.join(tmp, "writer.log")
        if os.path.exists(log_path):
            print(open(log_path, errors="replace").read()[-3000:], file=sys.stderr)
    finally:
        if writer is not None and writer.proc is not None:
            writer.proc.kill()
            writer.proc.wait()
        if mounted:
            subprocess.run(["umount", fs])
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(passed)} passed, {len(failed)} failed")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Appends numbered lines at a steady pace and watches them arrive in the
application's SQLite database (pusher_clock_jumps.sh).

Usage: pusher_clock_load.py DATA_DIR HOST:PORT STREAM APP_DB STOP_FILE
Runs on the real clock (time.monotonic). One line `tick-<n>` every 50 ms
until STOP_FILE exists, then waits up to 30 s for the application to have
applied every acknowledged line. The watcher polls the application's table
`applied(stream, seq, content)` every 50 ms and notes when each line first
appears. Prints one JSON line: appended, append errors, applied count,
exactly_once_in_order, and the largest and median delay from an append's
acknowledgement to the line being seen applied (seconds).
"""
import json
import os
import sqlite3
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from writer_api_client import Api  # noqa: E402


def main():
    data, addr, stream, app_db, stop_file = sys.argv[1:6]
    host, port = addr.rsplit(":", 1)
    api = Api(data)
    acked = {}  # content -> monotonic time of the acknowledgement
    seen = {}  # content -> monotonic time first seen applied
    errors = []
    done = threading.Event()
    lock = threading.Lock()

    def watch():
        db = None
        while True:
            try:
                if db is None:
                    db = sqlite3.connect(f"file:{app_db}?mode=ro", uri=True, timeout=1)
                rows = db.execute("select content from applied where stream=? order by seq", (stream,)).fetchall()
            except sqlite3.Error:
                rows = None
                db = None
            now = time.monotonic()
            if rows is not None:
                with lock:
                    for (content,) in rows:
                        seen.setdefault(content, now)
                    complete = done.is_set() and all(c in seen for c in acked)
                if complete:
                    return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    conn = None
    n = 0
    next_at = time.monotonic()
    while not os.path.exists(stop_file):
        content = f"tick-{n}"
        n += 1
        try:
            if conn is None:
                conn = api.connect((host, int(port)), 5)
            status, body = api.post(conn, "/writer/append", {"Stream": stream, "Lines": [content]})
            if status == 201:
                with lock:
                    acked[content] = time.monotonic()
            else:
                errors.append(f"HTTP {status} {body[:200]!r}")
                conn = None
        except Exception as e:  # noqa: BLE001 -- every failure is reported
            errors.append(f"{type(e).__name__}: {e}")
            conn = None
        next_at += 0.05
        time.sleep(max(0.0, next_at - time.monotonic()))
    done.set()
    watcher.join(timeout=30)

    with lock:
        db = sqlite3.connect(f"file:{app_db}?mode=ro", uri=True, timeout=5)
        applied = [r[0] for r in db.execute("select content from applied where stream=? order by seq", (stream,))]
        expected = [f"tick-{i}" for i in range(n) if f"tick-{i}" in acked]
        # Lines whose append was not acknowledged (an error) may or may not be
        # there; every acknowledged one must be, once, in append order.
        applied_acked = [c for c in applied if c in acked]
        delays = [seen[c] - acked[c] for c in acked if c in seen]
    print(json.dumps({
        "appended": len(acked),
        "append_errors": len(errors),
        "first_errors": errors[:5],
        "applied": len(applied),
        "exactly_once_in_order": applied_acked == expected and len(applied) == len(set(applied)),
        "max_delay_s": round(max(delays, default=0.0), 3),
        "median_delay_s": round(statistics.median(delays) if delays else 0.0, 3),
    }))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Appends to one stream of a Writer until STOP_FILE exists (clock_jumps.sh).

Usage: clock_appender.py DATA_DIR HOST:PORT STREAM STOP_FILE
The client runs on the real clock; it verifies the Writer's certificate
against DATA_DIR/ca.pem. Keep-alive connections, a new one every 50 appends.
Prints one JSON line: appends, errors (with the first few), the slowest
append in seconds, and whether the acknowledged offsets only grew.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from writer_api_client import Api  # noqa: E402


def main():
    data, addr, stream, stop_file = sys.argv[1:5]
    host, port = addr.rsplit(":", 1)
    api = Api(data)
    appends, errors, slowest, grew = 0, [], 0.0, True
    last = None
    conn = None
    while not os.path.exists(stop_file):
        try:
            if conn is None or appends % 50 == 0:
                if conn is not None:
                    conn.close()
                conn = api.connect((host, int(port)), 5)
            t0 = time.monotonic()
            status, body = api.post(conn, "/writer/append", {"Stream": stream, "Lines": [f"line-{appends}"]})
            slowest = max(slowest, time.monotonic() - t0)
            if status != 201:
                errors.append(f"HTTP {status} {body[:200]!r}")
                conn = None
            else:
                offset = json.loads(body)["Offset"]
                chunk, off = (int(x) for x in offset.split(":")[1:3])  # <stream>:<chunk>:<offset>[:<server>]
                if last is not None and (chunk, off) <= last:
                    grew = False
                last = (chunk, off)
            appends += 1
        except Exception as e:  # noqa: BLE001 -- every failure is reported
            errors.append(f"{type(e).__name__}: {e}")
            conn = None
            appends += 1
            time.sleep(0.05)
    print(json.dumps({"appends": appends, "errors": len(errors), "first_errors": errors[:5],
                      "slowest_s": round(slowest, 3), "offsets_grew": grew}))


if __name__ == "__main__":
    main()

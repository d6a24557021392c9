#!/usr/bin/env python3
"""Many streams and a connection flood against a Writer with a low open-file
limit (RELIABILITY E10; tests/e2e/fd_limits.sh). One keep-alive HTTPS
connection does all the work; Python 3 standard library only.

  many_streams.py DATA API create N          /m and /m/0 .. /m/N-1
  many_streams.py DATA API append N ROUND    one line to each stream
  many_streams.py DATA API verify N ROUNDS   each stream holds its ROUNDS lines, in order
  many_streams.py DATA API flood N ROUND     opens N plain TCP connections (no TLS, never
                                             a byte) and holds them while it appends ROUND

DATA is the Writer's data directory (client.env, ca.pem), API its host:port.
Prints one summary line; exits 1 on any unexpected answer."""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from writer_api_client import Api  # noqa: E402


def line(i, r):
    return f"s{i}-r{r}-" + "p" * 100


def main():
    data, api_addr, cmd, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    host, port = api_addr.rsplit(":", 1)
    addr = (host, int(port))
    api = Api(data)
    conn = api.connect(addr, 30)
    bad = []

    def post(path, obj, want):
        nonlocal conn
        if conn.sock is None:
            conn = api.connect(addr, 30)
        status, body = api.post(conn, path, obj)
        if status != want and len(bad) < 5:
            bad.append(f"{path} {obj.get('Stream', obj.get('Name', obj.get('Cursor')))}: {status} {body[:200]!r}")
        return status, body

    if cmd == "create":
        post("/writer/create_stream", {"Name": "/m"}, 201)
        for i in range(n):
            post("/writer/create_stream", {"Name": f"/m/{i}"}, 201)
        print(f"created {n} streams, {len(bad)} unexpected answers")
    elif cmd in ("append", "flood"):
        r = int(sys.argv[5])
        held = []
        if cmd == "flood":
            count = int(sys.argv[6])
            for _ in range(count):
                try:
                    held.append(socket.create_connection(addr, timeout=10))
                except OSError as e:
                    bad.append(f"flood connection {len(held)}: {e}")
                    break
        for i in range(n):
            post("/writer/append", {"Stream": f"/m/{i}", "Lines": [line(i, r)]}, 201)
        for s in held:
            s.close()
        print(f"appended round {r} to {n} streams{f' with {len(held)} idle connections held' if held else ''},"
              f" {len(bad)} unexpected answers")
    elif cmd == "verify":
        rounds = int(sys.argv[5])
        for i in range(n):
            status, body = post("/writer/liveread", {"Cursor": f"/m/{i}:0:0", "MaxLinesToRead": 1000}, 200)
            if status != 200:
                continue
            text = body.decode()
            at = 0
            for r in range(rounds):
                want = line(i, r)
                found = text.find(want, at)
                if found < 0 and len(bad) < 5:
                    bad.append(f"/m/{i}: round {r} missing or out of order")
                    break
                at = found + len(want)
            if text.count("-r") != rounds and len(bad) < 5:
                bad.append(f"/m/{i}: {text.count('-r')} lines, expected {rounds}")
        print(f"verified {n} streams x {rounds} rounds, {len(bad)} unexpected")
    else:
        sys.exit(f"unknown command {cmd}")
    for b in bad:
        print("  " + b, file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

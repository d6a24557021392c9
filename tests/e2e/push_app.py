#!/usr/bin/env python3
"""A reference application for the push protocol (SPEC §8), written
independently of pushlib in Python + SQLite (synchronous=FULL): it checks
FromOffset and stores the new offset in the same transaction as its effects,
and implements the BehindCursors rule for its subscription stream.

Usage: push_app.py DB PORT SUBSCRIPTION
Applied lines go to table applied(stream, seq, content, ptr_after)."""
import http.server
import json
import sqlite3
import sys
import threading


def parse_cursor(text):
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise ValueError("bad cursor " + text)
    return parts[0], int(parts[1]), int(parts[2])


def before(a, b):
    return (a[1], a[2]) < (b[1], b[2])


class App:
    def __init__(self, path, subscription):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS offsets(stream TEXT PRIMARY KEY, cursor TEXT NOT NULL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS applied(stream TEXT, seq INTEGER, content TEXT, ptr_after TEXT,"
                        " PRIMARY KEY(stream, seq))")
        self.subscription = subscription
        self.lock = threading.Lock()

    def offset(self, stream):
        row = self.db.execute("SELECT cursor FROM offsets WHERE stream=?", (stream,)).fetchone()
        return row[0] if row else stream + ":0:0:?"

    def handle(self, req):
        answer = {"Code": "success", "AcceptedOffset": "", "CorrectSubscriptionId": "", "BehindCursors": []}
        if req["SubscriptionId"] != self.subscription:
            answer.update(Code="incorrect_subscription_id", CorrectSubscriptionId=self.subscription)
            return answer
        push = req["Push"]
        stream, chunk, off = parse_cursor(push["FromOffset"])
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                stored = self.offset(stream)
                s = parse_cursor(stored)
                if (chunk, off) != (s[1], s[2]):
                    self.db.execute("ROLLBACK")
                    answer.update(Code="incorrect_base_offset", AcceptedOffset=stored)
                    return answer
                accepted = stored
                stopped = False
                behind = {}
                seq = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM applied WHERE stream=?", (stream,)).fetchone()[0]
                for line in push["Lines"]:
                    if stream == self.subscription and line["MetaType"] == "SubscriptionActivity":
                        hit = False
                        for c in line["MetaPayload"]["activity"]:
                            cs = parse_cursor(c)
                            mine = self.offset(cs[0])
                            if before(parse_cursor(mine), cs):
                                behind[cs[0]] = mine
                                hit = True
                        if hit:
                            stopped = True
                    if stopped:
                        continue
                    if line["MetaType"] == "":
                        seq += 1
                        self.db.execute("INSERT INTO applied VALUES(?,?,?,?)", (stream, seq, line["Content"], line["PtrAfter"]))
                    accepted = line["PtrAfter"]
                self.db.execute("INSERT OR REPLACE INTO offsets VALUES(?,?)", (stream, accepted))
                self.db.execute("COMMIT")
            except Exception:
                self.db.execute("ROLLBACK")
                raise
        answer.update(AcceptedOffset=accepted, BehindCursors=list(behind.values()))
        return answer


def main():
    path, port, subscription = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    app = App(path, subscription)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                out = json.dumps(app.handle(json.loads(body))).encode()
                self.send_response(200)
            except Exception as e:  # noqa: BLE001 - report, the Pusher retries
                out = json.dumps({"error": "internal", "message": str(e)}).encode()
                self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

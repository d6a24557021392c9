#!/usr/bin/env python3
"""A reference application for the push protocol (SPEC §8), written
independently of pushlib in Python + SQLite (synchronous=FULL): it checks
FromOffset and stores the new offset in the same transaction as its effects,
and implements the BehindCursors rule for its subscription stream.

Usage: push_app.py DB PORT SUBSCRIPTION [WRITER_PROXY_PORT]
Applied lines go to table applied(stream, seq, content, ptr_after).
With WRITER_PROXY_PORT the app is an "all-subscriber": for every
ChildStreamCreated line it applies, it subscribes the child stream to its
own subscription through the Pusher's writer proxy (inside the transaction:
if that fails, the push fails and is retried; subscribe is idempotent)."""
import http.client
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
    def __init__(self, path, subscription, proxy_port=None):
        self.proxy_port = proxy_port
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS offsets(stream TEXT PRIMARY KEY, cursor TEXT NOT NULL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS applied(stream TEXT, seq INTEGER, content TEXT, ptr_after TEXT,"
                        " PRIMARY KEY(stream, seq))")
        self.subscription = subscription
        self.lock = threading.Lock()

    def subscribe(self, stream):
        conn = http.client.HTTPConnection("127.0.0.1", self.proxy_port, timeout=10)
        body = json.dumps({"Stream": stream, "SubscriptionId": self.subscription})
        conn.request("POST", "/writer/subscribe", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        if resp.status != 200:
            raise RuntimeError(f"subscribe {stream}: HTTP {resp.status}")

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
                    if line["MetaType"] == "ChildStreamCreated" and self.proxy_port:
                        child = line["MetaPayload"]["name"]
                        if child != "/_sub" and not child.startswith("/_sub/"):  # subscriptions can't be subscribed
                            self.subscribe(child)
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
    app = App(path, subscription, int(sys.argv[4]) if len(sys.argv) > 4 else None)

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

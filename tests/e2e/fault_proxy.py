#!/usr/bin/env python3
"""A fault-injecting HTTP proxy between the Pusher and an application
(RELIABILITY C3/C4): with probability FAULT per request it drops the
connection, delays, answers 503, forwards the request twice (duplicate
delivery), or forwards it and then drops the reply (reply lost after the
application committed). Prints fault counts to stderr on SIGTERM.

Usage: fault_proxy.py LISTEN_PORT TARGET_PORT FAULT_PROBABILITY SEED"""
import http.client
import http.server
import random
import signal
import sys
import threading
import time

listen, target, probability, seed = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
lock = threading.Lock()
counts = {"forwarded": 0, "drop": 0, "delay": 0, "http503": 0, "duplicate": 0, "lost_reply": 0}
KINDS = ["drop", "delay", "http503", "duplicate", "lost_reply"]
deck = []  # the kinds of the next faults: every kind once per round, in random order


def next_fault():
    """The kind of the next fault. Dealt from shuffled rounds of all kinds, so
    that any 5 faults in a row cover every kind (drawn independently, a run
    of 17 faults missed one about 1 time in 9)."""
    if not deck:
        deck.extend(KINDS)
        rng.shuffle(deck)
    return deck.pop()


def forward(body, path):
    conn = http.client.HTTPConnection("127.0.0.1", target, timeout=30)
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            fault = next_fault() if rng.random() < probability else None
            counts[fault or "forwarded"] += 1
        if fault == "drop":
            self.close_connection = True
            return
        if fault == "http503":
            try:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                self.close_connection = True
            return
        if fault == "delay":
            time.sleep(rng.uniform(0.05, 0.4))
        try:
            status, data = forward(body, self.path)
            if fault == "duplicate":
                status, data = forward(body, self.path)
        except OSError:
            self.close_connection = True
            return
        if fault == "lost_reply":
            self.close_connection = True
            return
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the Pusher was killed meanwhile
            self.close_connection = True


def report(*_):
    print("faults: " + " ".join(f"{k}={v}" for k, v in counts.items()), file=sys.stderr, flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, report)
server = http.server.ThreadingHTTPServer(("127.0.0.1", listen), Handler)
print("ready", flush=True)
server.serve_forever()

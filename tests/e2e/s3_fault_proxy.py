#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of an S3 server (s3rver) for the
shipping tests (RELIABILITY B1/B2). Python 3 standard library only.

It forwards every request to the target unchanged (Host and the SigV4
headers included, so signatures still verify) and, depending on the mode set
through its control port, injects faults:

  pass      forward everything
  faults    the scripted faults first (each taken by the first request it
            applies to), then with probability P a fault chosen at random
            (seeded) among those that apply to the request:
              http500            500 InternalError (S3 XML error body)
              slowdown503        503 SlowDown (S3 XML error body)
              timeout            forwarded, then no answer until the client
                                 gives up (its stall timeout); at most
                                 --max-timeouts of them (each costs ~30 s)
              reset_mid_put      PUT: connection reset after N < Content-Length
                                 bytes of the body (nothing forwarded)
              reset_before_reply forwarded, then reset instead of the answer
              put_wrong_etag     PUT: a shortened, altered body is stored
                                 (Content-MD5 dropped) and the server's 200
                                 with that object's ETag is answered
              get_short          GET: half the object, original ETag,
                                 consistent Content-Length
              get_altered        GET: one byte flipped, ETag recomputed to
                                 match (only the chunk's AEAD can tell)
              mp_create, mp_part, mp_complete
                                 500 on CreateMultipartUpload, UploadPart,
                                 CompleteMultipartUpload (only if the client
                                 ever uses multipart; ours does single PUTs)
  outage503 every request answered 503 ServiceUnavailable
  hang      every request is read and then never answered nor forwarded
            (a server that stopped answering) until the client gives up
  refuse    the listening socket is closed (connection refused); requests on
            kept-alive connections are reset
A slow window (/slow/SECONDS[/RATE], in faults mode) trickles request and
answer bodies at RATE bytes/s (default --rate, 1024) and injects nothing
else.

Control (plain HTTP on --control-port): GET /mode/<pass|faults|outage503|hang|refuse>,
GET /slow/<seconds>[/<bytes per second>], GET /counts (JSON). On SIGTERM or SIGINT it prints the
counts to stderr ("s3_fault_proxy counts: k=v ...") and writes them as JSON
to --counts-file, then exits.

Usage: s3_fault_proxy.py --listen PORT --target PORT --control-port PORT
                         [--seed N] [--probability P] [--max-timeouts N]
                         [--rate BYTES_PER_S] [--counts-file FILE] [--script K1,K2,...]
"""

import argparse
import hashlib
import http.client
import http.server
import json
import random
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

SCRIPT = ["http500", "slowdown503", "reset_mid_put", "put_wrong_etag", "get_short", "reset_before_reply",
          "get_altered", "timeout", "mp_create", "mp_part", "mp_complete"]
KINDS = SCRIPT + ["slow", "outage503", "outage_reset"]
TIMEOUT_HOLD_MAX = 120.0  # a client that never gives up is released after this


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.rng = random.Random(args.seed)
        self.mode = "pass"
        self.script = args.script.split(",") if args.script else list(SCRIPT)
        self.slow_until = 0.0
        self.slow_rate = args.rate
        self.counts = {k: 0 for k in KINDS}
        self.counts.update({"requests": 0, "forwarded": 0, "multipart_requests": 0, "refused_windows": 0,
                            "refused_seconds": 0.0, "hang": 0, "hanging": 0})
        self.by_method = {}
        self.timeout_held = []  # seconds each timeout fault held its client
        self.holding = 0  # timeout faults holding their client now
        self.slow_bytes = 0
        self.refuse_since = None
        self.request_no = 0

    def snapshot(self):
        with self.lock:
            out = dict(self.counts)
            if self.refuse_since is not None:
                out["refused_seconds"] += time.monotonic() - self.refuse_since
            out["refused_seconds"] = round(out["refused_seconds"], 1)
            out["by_method"] = dict(self.by_method)
            out["timeout_held_seconds"] = [round(x, 1) for x in self.timeout_held]
            out["slow_bytes"] = self.slow_bytes
            out["mode"] = self.mode
            out["script_left"] = list(self.script)
            # Every scripted fault that can apply (multipart ones only if the
            # client used multipart) was injected and no timeout hold is on.
            out["script_done"] = self.holding == 0 and not [
                k for k in self.script if not (k.startswith("mp_") and self.counts["multipart_requests"] == 0)
                and not (k == "timeout" and self.counts["timeout"] >= self.args.max_timeouts)]
            return out


def multipart_step(method, query):
    if method == "POST" and "uploads" in query:
        return "mp_create"
    if method == "PUT" and "uploadId" in query and "partNumber" in query:
        return "mp_part"
    if method == "POST" and "uploadId" in query:
        return "mp_complete"
    return None


def applicable(kind, method, query, has_range, length):
    step = multipart_step(method, query)
    if kind.startswith("mp_"):
        return step == kind
    if kind in ("reset_mid_put", "put_wrong_etag"):
        return method == "PUT" and step is None and length >= 2
    if kind in ("get_short", "get_altered"):
        return method == "GET" and not has_range and "list-type" not in query and step is None
    return True


def s3_error(code, message, resource, request_no):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message><Resource>{resource}</Resource>"
            f"<RequestId>s3-fault-proxy-{request_no}</RequestId></Error>").encode()


class ClientGone(Exception):
    pass


class Conn:
    """A client connection with an explicit buffer, so that the proxy knows
    exactly how many body bytes it consumed."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self, n=65536):
        data = self.sock.recv(n)
        if not data:
            raise ClientGone()
        self.buf += data

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise ClientGone()
            self.fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head.decode("latin-1")

    def read_exact(self, n, rate=None, state=None):
        out = bytearray()
        while len(out) < n:
            if not self.buf:
                self.fill(256 if rate else 65536)
            take = min(n - len(out), len(self.buf), 256 if rate else n)
            out += self.buf[:take]
            self.buf = self.buf[take:]
            if rate:
                with state.lock:
                    state.slow_bytes += take
                time.sleep(take / rate)
        return bytes(out)

    def send(self, data, rate=None, state=None):
        if not rate:
            self.sock.sendall(data)
            return
        for i in range(0, len(data), 256):
            piece = data[i:i + 256]
            self.sock.sendall(piece)
            with state.lock:
                state.slow_bytes += len(piece)
            time.sleep(len(piece) / rate)

    def reset(self):
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.sock.close()


def forward(target, method, path, headers, body):
    c = http.client.HTTPConnection("127.0.0.1", target, timeout=60)
    try:
        c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers:
            if k.lower() in ("connection", "keep-alive", "expect", "transfer-encoding", "content-length",
                             "proxy-connection"):
                continue
            c.putheader(k, v)
        if body or method in ("PUT", "POST"):
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body if body else None)
        r = c.getresponse()
        data = r.read()
        return r.status, r.reason, r.getheaders(), data
    finally:
        c.close()


def response_bytes(status, reason, headers, body, method):
    lines = [f"HTTP/1.1 {status} {reason}"]
    length = None
    for k, v in headers:
        lk = k.lower()
        if lk in ("connection", "keep-alive", "transfer-encoding"):
            continue
        if lk == "content-length":
            length = v
            continue
        lines.append(f"{k}: {v}")
    if method == "HEAD":
        lines.append(f"Content-Length: {length if length is not None else len(body)}")
        body = b""
    else:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), body


def replace_header(headers, name, value):
    out = [(k, v) for k, v in headers if k.lower() != name.lower()]
    if value is not None:
        out.append((name, value))
    return out


def hold_until_client_gives_up(sock, limit):
    """Waits until the client closes the connection (it timed out) or
    `limit` seconds pass; returns the seconds held."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        r, _, _ = select.select([sock], [], [], 0.5)
        if r:
            try:
                if not sock.recv(4096):
                    break
            except OSError:
                break
    return time.monotonic() - t0


def choose_fault(state, method, query, has_range, length):
    """Under state.lock: (the fault for this request or None, whether it
    came from the script)."""
    if state.mode != "faults" or time.monotonic() < state.slow_until:
        return None, False
    for i, kind in enumerate(state.script):
        if kind == "timeout" and state.counts["timeout"] >= state.args.max_timeouts:
            continue
        if applicable(kind, method, query, has_range, length):
            return state.script.pop(i), True
    if state.rng.random() >= state.args.probability:
        return None, False
    kinds = [k for k in SCRIPT if applicable(k, method, query, has_range, length)
             and not (k == "timeout" and state.counts["timeout"] >= state.args.max_timeouts)]
    return (state.rng.choice(kinds) if kinds else None), False


def handle(sock, state):
    conn = Conn(sock)
    target = state.args.target
    try:
        while True:
            head = conn.read_head()
            lines = head.split("\r\n")
            try:
                method, path, _version = lines[0].split(" ", 2)
            except ValueError:
                conn.reset()
                return
            headers = []
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers.append((k.strip(), v.strip()))
            hmap = {k.lower(): v for k, v in headers}
            if hmap.get("transfer-encoding", "").lower() == "chunked":
                conn.reset()  # our client always sends Content-Length
                return
            length = int(hmap.get("content-length", "0") or 0)
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query, keep_blank_values=True))
            has_range = "range" in hmap
            with state.lock:
                state.request_no += 1
                no = state.request_no
                state.counts["requests"] += 1
                state.by_method[method] = state.by_method.get(method, 0) + 1
                if multipart_step(method, query):
                    state.counts["multipart_requests"] += 1
                mode = state.mode
                slow = mode == "faults" and time.monotonic() < state.slow_until
                rate = state.slow_rate
                fault, scripted = choose_fault(state, method, query, has_range, length)
                if fault and fault not in ("get_short", "get_altered"):  # those: once applied
                    state.counts[fault] += 1
                if slow:
                    state.counts["slow"] += 1
                if mode == "outage503":
                    state.counts["outage503"] += 1
                if mode == "refuse":
                    state.counts["outage_reset"] += 1
                if mode == "hang":
                    state.counts["hang"] += 1
                    state.counts["hanging"] += 1
            if mode == "refuse":
                conn.reset()
                return
            if fault == "reset_mid_put" and length >= 2:
                cut = random.Random(no).randint(1, length - 1)
                conn.read_exact(cut)
                conn.reset()
                return
            body = conn.read_exact(length, rate if slow else None, state)
            if mode == "hang":
                hold_until_client_gives_up(sock, TIMEOUT_HOLD_MAX)
                with state.lock:
                    state.counts["hanging"] -= 1
                conn.reset()
                return
            resource = urllib.parse.urlsplit(path).path
            if mode == "outage503" or fault in ("http500", "slowdown503", "mp_create", "mp_part", "mp_complete"):
                if mode == "outage503":
                    status, reason, code, msg = 503, "Service Unavailable", "ServiceUnavailable", \
                        "The service is unavailable (s3_fault_proxy outage)."
                elif fault == "slowdown503":
                    status, reason, code, msg = 503, "Slow Down", "SlowDown", "Please reduce your request rate."
                else:
                    status, reason, code, msg = 500, "Internal Server Error", "InternalError", \
                        "We encountered an internal error. Please try again."
                err = s3_error(code, msg, resource, no)
                head_b, body_b = response_bytes(status, reason, [("Content-Type", "application/xml")], err, method)
                conn.send(head_b + body_b)
                continue
            if fault == "put_wrong_etag":
                half = body[:max(1, len(body) // 2)]
                body = bytes([half[0] ^ 0xFF]) + half[1:]
                headers = replace_header(headers, "Content-MD5", None)
            try:
                status, reason, rheaders, data = forward(target, method, path, headers, body)
            except (OSError, http.client.HTTPException):
                conn.reset()
                return
            with state.lock:
                state.counts["forwarded"] += 1
            if fault == "timeout":
                with state.lock:
                    state.holding += 1
                held = hold_until_client_gives_up(sock, TIMEOUT_HOLD_MAX)
                with state.lock:
                    state.holding -= 1
                    state.timeout_held.append(held)
                conn.reset()
                return
            if fault == "reset_before_reply":
                conn.reset()
                return
            if fault in ("get_short", "get_altered"):
                applied = status == 200 and len(data) >= 2
                with state.lock:
                    if applied:
                        state.counts[fault] += 1
                    elif scripted:
                        state.script.insert(0, fault)  # for the next GET of an object
                if not applied:
                    fault = None
            if fault in ("get_short", "get_altered"):
                if fault == "get_short":
                    data = data[:len(data) // 2]
                else:
                    pos = random.Random(no).randrange(len(data))
                    data = data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1:]
                    rheaders = replace_header(rheaders, "ETag", '"' + hashlib.md5(data).hexdigest() + '"')
            head_b, body_b = response_bytes(status, reason, rheaders, data, method)
            if slow:
                conn.send(head_b)
                conn.send(body_b, rate, state)
            else:
                conn.send(head_b + body_b)
            if hmap.get("connection", "").lower() == "close":
                conn.sock.close()
                return
    except (ClientGone, OSError):
        try:
            sock.close()
        except OSError:
            pass


class Listener:
    def __init__(self, state, port):
        self.state = state
        self.port = port
        self.sock = None
        self.lock = threading.Lock()
        self.open()

    def open(self):
        with self.lock:
            if self.sock is not None:
                return
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", self.port))
            s.listen(64)
            s.settimeout(0.2)
            self.sock = s

    def close(self):
        with self.lock:
            if self.sock is not None:
                self.sock.close()
                self.sock = None

    def serve(self):
        while True:
            with self.lock:
                s = self.sock
            if s is None:
                time.sleep(0.05)
                continue
            try:
                client, _ = s.accept()
            except socket.timeout:
                continue
            except OSError:
                continue  # closed meanwhile (refuse mode)
            client.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=handle, args=(client, self.state), daemon=True).start()


def set_mode(state, listener, mode):
    with state.lock:
        old = state.mode
        state.mode = mode
        now = time.monotonic()
        if mode == "refuse" and old != "refuse":
            state.counts["refused_windows"] += 1
            state.refuse_since = now
        if old == "refuse" and mode != "refuse" and state.refuse_since is not None:
            state.counts["refused_seconds"] += now - state.refuse_since
            state.refuse_since = None
    if mode == "refuse":
        listener.close()
    else:
        listener.open()


def control_server(state, listener, port):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, code, obj):
            data = (json.dumps(obj) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            parts = self.path.strip("/").split("/")
            if parts[0] == "mode" and len(parts) == 2 and parts[1] in ("pass", "faults", "outage503", "hang", "refuse"):
                set_mode(state, listener, parts[1])
                return self.reply(200, {"mode": parts[1]})
            if parts[0] == "slow" and len(parts) in (2, 3):
                rate = float(parts[2]) if len(parts) == 3 else state.args.rate
                with state.lock:
                    state.slow_until = time.monotonic() + float(parts[1])
                    state.slow_rate = rate
                return self.reply(200, {"slow_seconds": float(parts[1]), "rate": rate})
            if parts[0] == "counts":
                return self.reply(200, state.snapshot())
            return self.reply(404, {"error": "unknown control path " + self.path})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--control-port", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--probability", type=float, default=0.3)
    ap.add_argument("--max-timeouts", type=int, default=1)
    ap.add_argument("--rate", type=float, default=1024.0)
    ap.add_argument("--counts-file", default="")
    ap.add_argument("--script", default="", help="comma-separated scripted faults (default: every kind once)")
    args = ap.parse_args()
    state = State(args)
    listener = Listener(state, args.listen)

    def report(*_):
        snap = state.snapshot()
        flat = " ".join(f"{k}={v}" for k, v in snap.items() if not isinstance(v, (dict, list)))
        print(f"s3_fault_proxy counts: {flat} by_method={snap['by_method']} "
              f"timeout_held_seconds={snap['timeout_held_seconds']}", file=sys.stderr, flush=True)
        if args.counts_file:
            with open(args.counts_file, "w") as f:
                json.dump(snap, f)
        sys.exit(0)

    signal.signal(signal.SIGTERM, report)
    signal.signal(signal.SIGINT, report)
    control_server(state, listener, args.control_port)
    threading.Thread(target=listener.serve, daemon=True).start()
    print("ready", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()

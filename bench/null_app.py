#!/usr/bin/env python3
"""null_app.py: a minimal push endpoint (docs/protocol/push.md) whose handler
does nothing, for bench/push_bench.sh. Offsets live in memory only (a restart
starts from nothing), but the protocol is implemented in full: subscription id
check, FromOffset check (offset queries included), the BehindCursors rule on
the subscription stream, AcceptedOffset = PtrAfter of the last applied line,
400 on a malformed push (PtrAfter of another stream, not strictly increasing).

Usage: null_app.py PORT SUBSCRIPTION

  POST /_eventhorizon_push   the push endpoint (HTTP/1.1 keep-alive)
  GET  /stats                JSON counters: requests, lines (regular lines
                             applied), lines_total (all applied lines),
                             first_ns/last_ns (time.time_ns() when the first
                             push with lines arrived / the last line was
                             applied), parse_ns (json.loads of the bodies),
                             handle_ns (body read + parse + protocol),
                             post_ns (the same + writing the reply), per-
                             stream positions.

The *_ns sums are there to tell whether this Python process is the
bottleneck: lines / handle_ns is its own ceiling for the pushed bodies.
Prints "ready" on stdout once it listens on 127.0.0.1:PORT."""
import http.server
import json
import sys
import threading
import time

_DUMPS = json.JSONEncoder(separators=(",", ":")).encode
_LOADS = json.loads


class BadRequest(Exception):
    def __init__(self, message, code="bad_request"):
        super().__init__(message)
        self.code = code


def parse_cursor(text):
    """'<stream>:<chunk>:<offset>[:<hint>]' -> (stream, chunk, offset); -1:-1 is an offset query."""
    if not isinstance(text, str):
        raise BadRequest("cursor is not a string")
    parts = text.split(":", 3)
    if len(parts) < 3 or not parts[0].startswith("/"):
        raise BadRequest("bad cursor " + text, "invalid_cursor")
    try:
        return parts[0], int(parts[1]), int(parts[2])
    except ValueError:
        raise BadRequest("bad cursor " + text, "invalid_cursor") from None


class NullApp:
    def __init__(self, subscription):
        self.subscription = subscription
        self.offsets = {}  # stream -> cursor text (as received)
        self.lock = threading.Lock()
        self.stats = dict(requests=0, lines=0, lines_total=0, first_ns=0, last_ns=0, parse_ns=0, handle_ns=0,
                          post_ns=0, bad_requests=0)

    def stored(self, stream):
        return self.offsets.get(stream, stream + ":0:0:?")

    def handle(self, body):
        t0 = time.perf_counter_ns()
        try:
            req = _LOADS(body)
        except ValueError as e:
            raise BadRequest("not JSON: " + str(e)) from None
        t1 = time.perf_counter_ns()
        if not isinstance(req, dict) or not isinstance(req.get("SubscriptionId"), str):
            raise BadRequest("SubscriptionId missing")
        push = req.get("Push")
        if not isinstance(push, dict):
            raise BadRequest("Push missing")
        stream, chunk, off = parse_cursor(push.get("FromOffset"))
        lines = push.get("Lines") or []
        if not isinstance(lines, list):
            raise BadRequest("Lines is not a list")
        # Validation before anything is applied: PtrAfter of this stream, strictly increasing.
        prefix = stream + ":"
        prev = (chunk, off)
        for i, line in enumerate(lines):
            if not isinstance(line, dict) or not isinstance(line.get("Content"), str):
                raise BadRequest(f"line {i}: not an object with a Content string")
            p = line.get("PtrAfter")
            if not isinstance(p, str) or not p.startswith(prefix):
                raise BadRequest(f"line {i}: PtrAfter is not a cursor of {stream}", "invalid_cursor")
            c = p[len(prefix):].split(":", 2)
            try:
                pos = (int(c[0]), int(c[1]))
            except (ValueError, IndexError):
                raise BadRequest(f"line {i}: bad PtrAfter {p}", "invalid_cursor") from None
            if pos <= prev:
                raise BadRequest(f"line {i}: PtrAfter {p} is not after {lines[i - 1]['PtrAfter'] if i else push['FromOffset']}",
                                 "invalid_cursor")
            prev = pos
        answer = {"Code": "success", "AcceptedOffset": "", "CorrectSubscriptionId": "", "BehindCursors": []}
        if req["SubscriptionId"] != self.subscription:
            answer.update(Code="incorrect_subscription_id", CorrectSubscriptionId=self.subscription)
            return answer, t1 - t0, 0, 0
        with self.lock:
            stored = self.stored(stream)
            s = parse_cursor(stored)
            if (chunk, off) != (s[1], s[2]):  # an offset query (-1:-1) never matches
                answer.update(Code="incorrect_base_offset", AcceptedOffset=stored)
                return answer, t1 - t0, 0, 0
            accepted = stored
            applied = regular = 0
            if stream == self.subscription:
                stopped = False
                behind = {}
                for line in lines:
                    if line.get("MetaType") == "SubscriptionActivity":
                        payload = line.get("MetaPayload")
                        if not isinstance(payload, dict) or not isinstance(payload.get("activity"), list):
                            raise BadRequest("SubscriptionActivity without an activity array")
                        for text in payload["activity"]:
                            cs = parse_cursor(text)
                            mine = self.stored(cs[0])
                            m = parse_cursor(mine)
                            if (m[1], m[2]) < (cs[1], cs[2]):
                                behind.setdefault(cs[0], mine)
                                stopped = True
                    if stopped:
                        continue
                    applied += 1
                    if not line.get("MetaType"):
                        regular += 1
                    accepted = line["PtrAfter"]
                answer["BehindCursors"] = list(behind.values())
            elif lines:
                # The handler does nothing: every line is applied.
                applied = len(lines)
                regular = sum(1 for line in lines if not line.get("MetaType"))
                accepted = lines[-1]["PtrAfter"]
            self.offsets[stream] = accepted
            answer["AcceptedOffset"] = accepted
            return answer, t1 - t0, applied, regular


def main():
    port, subscription = int(sys.argv[1]), sys.argv[2]
    app = NullApp(subscription)
    st = app.stats

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def reply(self, status, payload):
            # Status line, headers and body in ONE write: http.server's own
            # send_response/end_headers + write would send two segments, and
            # Nagle + the client's delayed ACK then stall every reply ~40 ms.
            out = _DUMPS(payload).encode()
            self.wfile.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
                status, self.responses[status][0].encode(), len(out), out))

        def do_GET(self):
            if self.path != "/stats":
                return self.reply(404, {"error": "endpoint_not_found", "message": "GET /stats"})
            with app.lock:
                out = dict(st, offsets=dict(app.offsets))
            self.reply(200, out)

        def do_POST(self):
            t0 = time.perf_counter_ns()
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            arrived = time.time_ns()
            try:
                answer, parse_ns, applied, regular = app.handle(body)
                status = 200
            except BadRequest as e:
                answer, parse_ns, applied, regular = {"error": e.code, "message": str(e)}, 0, 0, 0
                status = 400
            t1 = time.perf_counter_ns()
            with app.lock:
                st["requests"] += 1
                st["parse_ns"] += parse_ns
                st["handle_ns"] += t1 - t0
                st["bad_requests"] += status == 400
                if applied:
                    if st["first_ns"] == 0:
                        st["first_ns"] = arrived
                    st["lines_total"] += applied
                    st["lines"] += regular
                    st["last_ns"] = time.time_ns()
            self.reply(status, answer)
            with app.lock:
                st["post_ns"] += time.perf_counter_ns() - t0

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

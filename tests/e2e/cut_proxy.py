#!/usr/bin/env python3
"""A TCP proxy in front of the Writer's API (TLS passes through it untouched)
that loses requests and answers on purpose: after a client has sent a
request of at least 4 KiB (an append body; a TLS handshake is smaller), with
probability `lose_request` it closes the connection before forwarding it,
and with probability `lose_answer` it forwards it and closes the connection
when the Writer's answer arrives, instead of passing the answer on: the
append was applied and the client cannot know.

Its settings are read from a JSON file at every decision, so a test changes
them (and the Writer's port after a restart) while it runs:
{"target": 9092, "lose_request": 0.1, "lose_answer": 0.1}.
Prints "ready" when listening, and its counts as JSON on SIGTERM.

Usage: cut_proxy.py LISTEN_PORT SETTINGS_FILE SEED"""
import json
import random
import signal
import socket
import sys
import threading

listen, settings_file, seed = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
lock = threading.Lock()
counts = {"connections": 0, "requests": 0, "lost_requests": 0, "lost_answers": 0}
BIG = 4096


def settings():
    with open(settings_file) as f:
        return json.load(f)


def decide(name):
    with lock:
        return rng.random() < float(settings().get(name, 0))


def count(name):
    with lock:
        counts[name] += 1


def close(*socks):
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def serve(client):
    try:
        server = socket.create_connection(("127.0.0.1", int(settings()["target"])), timeout=5)
        server.settimeout(None)
    except OSError:
        client.close()
        return
    count("connections")
    state = {"sent": 0, "lose_answer": False}

    def upstream():  # client -> Writer
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                with lock:
                    state["sent"] += len(data)
                    big = state["sent"] >= BIG
                if big and not state.get("decided"):
                    state["decided"] = True
                    count("requests")
                    if decide("lose_request"):
                        count("lost_requests")
                        close(client, server)
                        return
                    state["lose_answer"] = decide("lose_answer")
                server.sendall(data)
        except OSError:
            pass
        close(client, server)

    t = threading.Thread(target=upstream, daemon=True)
    t.start()
    try:
        while True:
            data = server.recv(65536)
            if not data:
                break
            if state["lose_answer"]:
                count("lost_answers")
                break
            with lock:
                state["sent"] = 0
                state["decided"] = False
            client.sendall(data)
    except OSError:
        pass
    close(client, server)


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", listen))
    s.listen(128)

    def stop(*_):
        with lock:
            print(json.dumps(counts), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


main()

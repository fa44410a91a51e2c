#!/usr/bin/env python3
"""Live stream benchmark: starts espy, connects N WebSocket clients to
/v1/stream (1, 100, 1000 by default), POSTs one point at a time, and measures
POST-to-message latency (p50/p99 over every client and point), fan-out
messages per second in a burst, and server memory per connection (RSS).

    bench/stream_bench.py --bin build/espy [--clients 1,100,1000] [--posts 200]

One Python thread reads every client socket with selectors, so at 1,000
clients part of the latency is this reader's; numbers are an upper bound.
"""

import argparse
import json
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "stream"))
from wsclient import WsClient  # noqa: E402


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Reader:
    """Reads whole WebSocket messages from many clients in one thread."""

    def __init__(self, clients):
        self.sel = selectors.DefaultSelector()
        for c in clients:
            c.sock.setblocking(False)
            self.sel.register(c.sock, selectors.EVENT_READ, c)

    def pump(self, on_message, until, timeout=30):
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            for key, _ in self.sel.select(timeout=0.5):
                c = key.data
                try:
                    c.buf += c.sock.recv(1 << 20)
                except BlockingIOError:
                    continue
                while True:
                    msg = parse_frame(c)
                    if msg is None:
                        break
                    on_message(c, msg)


def parse_frame(c):
    b = c.buf
    if len(b) < 2:
        return None
    n = b[1] & 0x7F
    off = 2
    if n == 126:
        if len(b) < 4:
            return None
        n = int.from_bytes(b[2:4], "big")
        off = 4
    elif n == 127:
        if len(b) < 10:
            return None
        n = int.from_bytes(b[2:10], "big")
        off = 10
    if len(b) < off + n:
        return None
    payload = b[off:off + n]
    c.buf = b[off + n:]
    c.parts = getattr(c, "parts", b"") + payload
    if not b[0] & 0x80:  # a fragment: wait for the final one
        return parse_frame(c)
    msg, c.parts = c.parts, b""
    return msg


def post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/metrics", data=body,
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()


def run(bin_path, n_clients, posts):
    d = tempfile.TemporaryDirectory()
    port = free_port()
    proc = subprocess.Popen([bin_path, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir",
                             d.name, "--fsync", "never"], stderr=subprocess.DEVNULL)
    try:
        for _ in range(400):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").read()
                break
            except OSError:
                time.sleep(0.05)
        rss0 = rss_kib(proc.pid)
        clients = [WsClient(port, "/v1/stream?name=bench") for _ in range(n_clients)]
        for c in clients:
            c.recv_json()  # {"subscribed": ...}
        rss1 = rss_kib(proc.pid)
        reader = Reader(clients)

        latencies = []
        for i in range(posts):
            got = [0]
            t0 = time.perf_counter()
            post(port, json.dumps({"name": "bench", "value": i, "ts": 1.7e9 + i}).encode())

            def on_msg(c, payload, t0=t0, got=got):
                latencies.append((time.perf_counter() - t0) * 1000)
                got[0] += 1

            reader.pump(on_msg, lambda got=got: got[0] >= n_clients)

        # Fan-out burst: 20 POSTs of 500 points each, as fast as they go.
        burst_posts, per = 20, 500
        expected = burst_posts * per * n_clients
        received = [0]
        dropped = [0]

        def count(c, payload):
            if payload.startswith(b'{"dropped"'):
                dropped[0] += json.loads(payload)["dropped"]
            received[0] += payload.count(b'"name"')

        bodies = [json.dumps([{"name": "bench", "value": j, "ts": 1.6e9 + b * per + j}
                              for j in range(per)]).encode() for b in range(burst_posts)]

        def writer():
            for body in bodies:
                post(port, body)

        t0 = time.perf_counter()
        w = threading.Thread(target=writer)
        w.start()
        reader.pump(count, lambda: received[0] + dropped[0] >= expected, timeout=120)
        secs = time.perf_counter() - t0
        w.join()
        latencies.sort()
        return {
            "clients": n_clients,
            "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
            "fanout_points_per_s": received[0] / secs,
            "delivered": f"{received[0]}/{expected} (dropped {dropped[0]})",
            "rss_per_conn_kib": (rss1 - rss0) / n_clients,
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        d.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/espy")
    ap.add_argument("--clients", default="1,100,1000")
    ap.add_argument("--posts", type=int, default=200)
    args = ap.parse_args()
    print(f"{'clients':>8} {'p50 ms':>8} {'p99 ms':>8} {'fan-out pts/s':>14} {'RSS/conn KiB':>13}  delivered")
    for n in map(int, args.clients.split(",")):
        r = run(args.bin, n, args.posts)
        print(f"{r['clients']:>8} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r['fanout_points_per_s']:>14,.0f} {r['rss_per_conn_kib']:>13.1f}  {r['delivered']}")


if __name__ == "__main__":
    main()

"""End-to-end tests of GET /v1/stream: the real binary on loopback, driven by
POST /v1/metrics and a small WebSocket client (wsclient.py).

tests/e2e/espy_server.py starts the server ($ESPY_BIN, which CTest passes).
"""

import os
import resource
import signal
import sys
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from wsclient import Closed, HandshakeError, WsClient

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from espy_server import EspyServer, wait_until  # noqa: E402

T0 = 1_700_000_000  # epoch seconds of the test points


class Server(EspyServer):
    """EspyServer with this file's shorthands."""

    def post(self, points):
        status, body = self.post_metrics(points)
        assert status == 202, (status, body)

    def ws(self, path="/v1/stream", **kw):
        return WsClient(self.port, path, **kw)


def point(name, ts, value, **labels):
    return {"name": name, "value": value, "ts": ts, **labels}


def recv_points(client, n, timeout=20):
    """Reads messages until n points arrived; returns (points, others)."""
    points, others = [], []
    deadline = time.monotonic() + timeout
    while len(points) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"got {len(points)} of {n} points; other messages: {others}")
        msg = client.recv_json()
        if isinstance(msg, list):
            points.extend(msg)
        else:
            others.append(msg)
    return points, others


def expect_message(client, key):
    while True:
        msg = client.recv_json()
        if isinstance(msg, dict) and key in msg:
            return msg


class StreamTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.cleanup()

    def test_filters_by_name_labels_and_selector(self):
        s = self.server
        by_name = s.ws("/v1/stream?name=f_cpu")
        by_label = s.ws("/v1/stream?name=f_cpu&host=b")
        by_match = s.ws('/v1/stream?match=' + urllib.parse.quote('{__name__=~"f_.*",host=~"web.*"}'))
        by_message = s.ws()
        by_message.send_json({"subscribe": {"name": "f_mem", "labels": {"dc": "eu"}}, "id": 7})
        for c in (by_name, by_label, by_match):
            self.assertEqual(expect_message(c, "subscribed")["subscribed"], "url")
        self.assertEqual(expect_message(by_message, "subscribed")["subscribed"], 7)

        s.post([
            point("f_cpu", T0, 1, host="a"),
            point("f_cpu", T0, 2, host="b"),
            point("f_cpu", T0, 3, host="web1"),
            point("f_mem", T0, 4, host="web2", dc="eu"),
            point("f_mem", T0, 5, host="x", dc="us"),
            point("other", T0, 6, host="web3"),
        ])
        # A marker every client matches closes each expectation.
        s.post([point("f_cpu", T0 + 1, 99, host="b", dc="eu"),
                point("f_mem", T0 + 1, 99, host="web9", dc="eu")])

        def values(c, n):
            pts, _ = recv_points(c, n)
            return sorted(p["value"] for p in pts)

        self.assertEqual(values(by_name, 4), [1, 2, 3, 99])
        self.assertEqual(values(by_label, 2), [2, 99])
        self.assertEqual(values(by_match, 3), [3, 4, 99])
        self.assertEqual(values(by_message, 2), [4, 99])
        # The same shape as GET /v1/metrics: labels as keys, ts in ISO UTC.
        by_message.send_json({"unsubscribe": 7})
        self.assertEqual(expect_message(by_message, "unsubscribed")["unsubscribed"], 7)
        for c in (by_name, by_label, by_match, by_message):
            c.close()

    def test_point_shape_matches_json_api(self):
        c = self.server.ws("/v1/stream?name=shape")
        expect_message(c, "subscribed")
        self.server.post([point("shape", "2024-01-02T03:04:05.678Z", 1.5, host="a")])
        (p,), _ = recv_points(c, 1)
        self.assertEqual(p, {"name": "shape", "value": 1.5, "ts": "2024-01-02T03:04:05.678Z",
                             "host": "a"})
        c.close()

    def test_keeps_order_per_series(self):
        c = self.server.ws("/v1/stream?name=ord")
        expect_message(c, "subscribed")
        n = 300
        for i in range(n):
            self.server.post([point("ord", T0 + i, i, s="a"), point("ord", T0 + i, -i, s="b")])
        pts, _ = recv_points(c, 2 * n)
        for series, sign in (("a", 1), ("b", -1)):
            got = [p["value"] for p in pts if p["s"] == series]
            self.assertEqual(got, [sign * i for i in range(n)], series)
        c.close()

    def test_slow_client_drops_while_fast_client_misses_nothing(self):
        s = self.server
        slow = s.ws("/v1/stream?name=load", rcvbuf=4096)
        expect_message(slow, "subscribed")
        fast = s.ws("/v1/stream?name=load")
        expect_message(fast, "subscribed")
        dropped_before = s.metric("espy_stream_dropped_points_total")

        received = []
        done = threading.Event()

        def reader():
            try:
                while not done.is_set():
                    msg = fast.recv_json()
                    if isinstance(msg, list):
                        received.extend(p["value"] for p in msg)
                    else:
                        received.append(("control", msg))
            except (Closed, OSError, ConnectionError):
                pass

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        batches, per_batch = 40, 2500
        pad = "x" * 60  # fills the slow client's socket buffers sooner
        for b in range(batches):
            s.post([point("load", T0 + b * per_batch + i, b * per_batch + i, pad=pad)
                    for i in range(per_batch)])
            deadline = time.monotonic() + 20
            while len(received) < (b + 1) * per_batch and time.monotonic() < deadline:
                time.sleep(0.005)
        total = batches * per_batch
        self.assertEqual(received, list(range(total)), "the fast client missed or reordered points")
        done.set()

        # The slow client now reads: it was told what it lost (or, if it stayed
        # stuck past the hub's timeout, was cut off with 1013).
        got, dropped = 0, 0
        try:
            while got + dropped < total:
                msg = slow.recv_json()
                if isinstance(msg, list):
                    got += len(msg)
                elif "dropped" in msg:
                    dropped += msg["dropped"]
        except Closed as e:
            self.assertEqual(e.code, 1013)
        self.assertGreater(dropped, 0)
        self.assertGreater(s.metric("espy_stream_dropped_points_total"), dropped_before)
        fast.close()
        slow.close()

    def test_resume_has_no_gap_and_no_duplicate(self):
        s = self.server
        c = s.ws("/v1/stream?name=res")
        expect_message(c, "subscribed")
        s.post([point("res", T0 + i, i) for i in range(10)])
        pts, _ = recv_points(c, 10)
        last_ts = pts[-1]["ts"]
        c.close()
        s.post([point("res", T0 + i, i) for i in range(10, 20)])  # missed while away

        c = s.ws("/v1/stream")
        c.send_json({"subscribe": {"name": "res", "since": last_ts}, "id": "r"})
        sub = expect_message(c, "subscribed")
        self.assertEqual(sub["backfilled"], 10)
        s.post([point("res", T0 + i, i) for i in range(20, 25)])  # live again
        pts, _ = recv_points(c, 15)
        self.assertEqual([p["value"] for p in pts], list(range(10, 25)))
        c.close()

        # The same through the URL.
        c = s.ws("/v1/stream?name=res&since=" + urllib.parse.quote(pts[-3]["ts"]))
        got, _ = recv_points(c, 2)
        self.assertEqual([p["value"] for p in got], [23, 24])
        c.close()

    def test_resume_while_writes_race(self):
        s = self.server
        stop = threading.Event()
        written = []

        def writer():
            i = 0
            while not stop.is_set() and i < 3000:
                s.post([point("race", T0 + i, i)])
                written.append(i)
                i += 1

        t = threading.Thread(target=writer)
        t.start()
        while len(written) < 50:
            time.sleep(0.01)
        c = s.ws(f"/v1/stream?name=race&since={T0 - 1}")
        at_connect = len(written)
        while len(written) < at_connect + 100 and t.is_alive():
            time.sleep(0.005)  # polls a condition: more writes after the resume began
        stop.set()
        t.join()
        n = len(written)
        pts, _ = recv_points(c, n)
        self.assertEqual([p["value"] for p in pts], list(range(n)))
        c.close()

    def test_refuses_bad_requests(self):
        s = self.server
        with self.assertRaises(HandshakeError) as e:
            s.ws("/v1/stream?match=" + urllib.parse.quote("cpu{"))
        self.assertEqual(e.exception.status, 400)
        self.assertIn("match", e.exception.body)
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{s.port}/v1/stream")
        self.assertEqual(e.exception.code, 426)

        c = s.ws()
        c.send_json({"subscribe": {"labels": {"host": ""}}, "id": 1})
        self.assertIn("needs a value", expect_message(c, "error")["error"])
        c.send_json({"subscribe": {"match": '{host=~".*"}'}, "id": 2})
        self.assertIn("empty", expect_message(c, "error")["error"])
        c.send_json({"unsubscribe": "nope"})
        self.assertIn("no subscription", expect_message(c, "error")["error"])
        c.send_binary(b"\x00")
        with self.assertRaises(Closed) as e:
            c.recv_json()
        self.assertEqual(e.exception.code, 1003)
        c.close()

        c = s.ws()
        c.send_text("not json")
        with self.assertRaises(Closed) as e:
            c.recv_json()
        self.assertEqual(e.exception.code, 1008)
        c.close()

    def test_connection_limit(self):
        s = self.server
        open_now = int(s.metric("espy_stream_connections"))
        clients = []
        try:
            for _ in range(1000 - open_now):
                clients.append(s.ws("/v1/stream", timeout=30))
            with self.assertRaises(HandshakeError) as e:
                s.ws()
            self.assertEqual(e.exception.status, 503)
            self.assertIn("connections", e.exception.body)
            self.assertGreaterEqual(s.metric("espy_stream_rejected_connections_total"), 1)
        finally:
            for c in clients:
                c.close()
        wait_until("the closed streams to be counted out",
                   lambda: s.metric("espy_stream_connections") <= open_now, timeout=10)
        c = s.ws()  # a slot is free again
        c.close()


class ShutdownTest(unittest.TestCase):
    def test_server_shutdown_closes_streams_with_going_away(self):
        server = Server()
        try:
            c = server.ws("/v1/stream?name=bye")
            expect_message(c, "subscribed")
            server.signal(signal.SIGTERM)
            with self.assertRaises(Closed) as e:
                while True:
                    c.recv_json()
            self.assertEqual(e.exception.code, 1001)
            self.assertEqual(server.wait(timeout=30), 0)
            c.sock.close()
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)

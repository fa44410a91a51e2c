"""End-to-end tests of the HTTP server's limits and connection handling: body and header size
limits, Expect: 100-continue, idle and I/O timeouts, graceful shutdown and readiness. Raw sockets
where http.client would hide what is on the wire."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from espy_server import EspyTestCase, wait_until  # noqa: E402

SOCKET_TIMEOUT = 30.0  # generous: a wait for the server to act, not a measured duration
SHUTTING_DOWN = re.compile(r'msg="shutting down"')


class RawConnection:
    """A plain TCP connection for writing requests byte by byte and reading raw responses."""

    def __init__(self, server, timeout=SOCKET_TIMEOUT):
        self.sock = socket.create_connection((server.host, server.port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def read_response(self):
        """One response: (status, lower-cased headers, body). EOFError if the server closed the
        connection first."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def wait_closed(self):
        """True once the server closes the connection (EOF or reset); False if it stays open
        for the whole socket timeout. Any bytes before EOF are kept in buf."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


def post_head(length, extra=""):
    return (f"POST /v1/metrics HTTP/1.1\r\nHost: espy\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n")


def padded_batch(name, size):
    """A JSON array of one point, padded with spaces to exactly `size` bytes."""
    body = json.dumps([{"name": name, "value": 1, "ts": 1}]).encode()
    assert len(body) <= size
    return body[:-1] + b" " * (size - len(body)) + b"]"


class BodyLimitTest(EspyTestCase):
    LIMIT = 64 * 1024

    def setUp(self):
        self.srv = self.server("--max-body-size", "64KiB")

    def raw(self):
        conn = RawConnection(self.srv)
        self.addCleanup(conn.close)
        return conn

    def test_body_at_the_limit_is_accepted(self):
        self.assertEqual(self.srv.post_metrics(padded_batch("at_limit", self.LIMIT)),
                         (202, {"accepted": 1}))

    def test_declared_length_over_the_limit_is_413_before_the_body(self):
        conn = self.raw()
        conn.send(post_head(self.LIMIT + 1))
        status, headers, body = conn.read_response()
        self.assertEqual(status, 413)
        self.assertIn(str(self.LIMIT), json.loads(body)["error"])
        self.assertEqual(headers.get("connection", "").lower(), "close")
        self.assertTrue(conn.wait_closed())

    def test_body_over_the_limit_sent_whole_is_413_and_stores_nothing(self):
        status, err = self.srv.post_metrics(padded_batch("over_limit", self.LIMIT + 1))
        self.assertEqual(status, 413)
        self.assertIn("larger than", err["error"])
        self.assertEqual(self.srv.query(name="over_limit"), [])

    def test_413_is_counted_under_its_route(self):
        self.assertEqual(self.srv.post_metrics(padded_batch("counted", self.LIMIT + 1))[0], 413)
        # Counted just after the response is written: wait for it.
        wait_until("the 413 counted under /v1/metrics",
                   lambda: self.srv.metric("espy_http_requests_total", route="/v1/metrics",
                                           code="413") == 1)
        self.assertEqual(self.srv.metric("espy_http_requests_total", route="unmatched",
                                         code="413"), 0)

    def test_chunked_body_over_the_limit_is_413(self):
        conn = self.raw()
        body = padded_batch("chunked_over", self.LIMIT + 4096)
        conn.send("POST /v1/metrics HTTP/1.1\r\nHost: espy\r\nContent-Type: application/json\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n")
        try:
            for i in range(0, len(body), 8192):
                chunk = body[i:i + 8192]
                conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the whole body is sent
        status, _, _ = conn.read_response()
        self.assertEqual(status, 413)
        self.assertEqual(self.srv.query(name="chunked_over"), [])

    def test_chunked_body_under_the_limit_is_accepted(self):
        conn = self.raw()
        body = padded_batch("chunked_ok", 20_000)
        conn.send("POST /v1/metrics HTTP/1.1\r\nHost: espy\r\nContent-Type: application/json\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(body), 4096):
            chunk = body[i:i + 4096]
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
        status, _, body = conn.read_response()
        self.assertEqual((status, json.loads(body)), (202, {"accepted": 1}))

    def test_expect_100_continue_over_the_limit_gets_413_not_100(self):
        conn = self.raw()
        conn.send(post_head(self.LIMIT + 1, "Expect: 100-continue\r\n"))
        status, _, _ = conn.read_response()
        self.assertEqual(status, 413)


class HeaderLimitTest(EspyTestCase):
    def setUp(self):
        self.srv = self.server()

    def test_huge_headers_are_431(self):
        status, headers, body = self.srv.request("GET", "/healthz", headers={"X-Big": "a" * 20000})
        self.assertEqual(status, 431)
        self.assertIn("headers larger than", json.loads(body)["error"])

    def test_many_headers_adding_up_over_16kib_are_431(self):
        hdrs = {f"X-H{i}": "b" * 100 for i in range(200)}
        status, _, _ = self.srv.request("GET", "/healthz", headers=hdrs)
        self.assertEqual(status, 431)

    def test_headers_under_16kib_are_fine(self):
        status, _, _ = self.srv.request("GET", "/healthz", headers={"X-Big": "a" * 12000})
        self.assertEqual(status, 200)

    def test_huge_request_target_is_431(self):
        status, _, _ = self.srv.request("GET", "/v1/metrics?name=" + "x" * 20000)
        self.assertEqual(status, 431)


class ExpectContinueTest(EspyTestCase):
    def setUp(self):
        self.srv = self.server()

    def test_raw_expect_100_continue_upload(self):
        conn = RawConnection(self.srv)
        self.addCleanup(conn.close)
        body = json.dumps([{"name": "expect_raw", "value": i, "ts": i} for i in range(100)])
        conn.send(post_head(len(body), "Expect: 100-continue\r\n"))
        # The interim response comes before we send a byte of the body.
        status, _, interim = conn.read_response()
        self.assertEqual((status, interim), (100, b""))
        conn.send(body)
        status, _, resp = conn.read_response()
        self.assertEqual((status, json.loads(resp)), (202, {"accepted": 100}))
        self.assertEqual(len(self.srv.query(name="expect_raw")), 100)

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl_big_upload_uses_100_continue(self):
        tmp = self.tmpdir()
        path = os.path.join(tmp, "big.json")
        points = [{"name": "expect_curl", "value": i, "ts": i, "pad": "p" * 40}
                  for i in range(20000)]
        with open(path, "w") as f:
            json.dump(points, f)
        self.assertGreater(os.path.getsize(path), 1 << 20)  # curl's own threshold for Expect
        result = subprocess.run(
            ["curl", "-sS", "-v", "--fail-with-body", "-H", "Content-Type: application/json",
             "-H", "Expect: 100-continue", "--expect100-timeout", "30",
             "--data-binary", f"@{path}", self.srv.url("/v1/metrics")],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertIn("HTTP/1.1 100 Continue", result.stderr)
        self.assertEqual(json.loads(result.stdout), {"accepted": 20000})
        pts, _ = self.srv.query_all(name="expect_curl")
        self.assertEqual(len(pts), 20000)


class SeriesAndQueryLimitTest(EspyTestCase):
    def test_series_limit_refuses_the_batch_that_would_pass_it(self):
        server = self.server("--max-series", "2")
        status, _ = server.post_metrics([{"name": "a", "value": 1}, {"name": "b", "value": 1}])
        self.assertEqual(status, 202)
        status, body = server.post_metrics([{"name": "a", "value": 2}, {"name": "c", "value": 1}])
        self.assertEqual(status, 429)
        self.assertIn("series limit max_series=2 reached", body["error"])
        self.assertEqual([p["value"] for p in server.query(name="a")], [1])
        self.assertEqual(server.query(name="c"), [])

    def test_query_sample_limit_fails_the_query_not_the_server(self):
        server = self.server("--query-max-samples", "10")
        points = [{"name": "m", "host": str(i), "value": i} for i in range(20)]
        self.assertEqual(server.post_metrics(points)[0], 202)
        status, _, body = server.request("GET", "/api/v1/query?query=m")
        self.assertEqual(status, 422, body)
        self.assertIn("query processing would load too many samples", json.loads(body)["error"])
        status, _, _ = server.request("GET", "/api/v1/query?query=count(m)")
        self.assertEqual(status, 422)
        status, _, body = server.request("GET", "/api/v1/query?query=m{host=%221%22}")
        self.assertEqual(status, 200, body)


class TimeoutTest(EspyTestCase):
    def raw(self, server):
        conn = RawConnection(server)
        self.addCleanup(conn.close)
        return conn

    def test_idle_keep_alive_connection_is_closed_after_idle_timeout(self):
        srv = self.server("--idle-timeout", "1s")
        conn = self.raw(srv)
        conn.send("GET /healthz HTTP/1.1\r\nHost: espy\r\n\r\n")
        status, headers, _ = conn.read_response()
        self.assertEqual(status, 200)
        self.assertNotEqual(headers.get("connection", "").lower(), "close")
        self.assertTrue(conn.wait_closed(), "idle connection still open")
        self.assertEqual(conn.buf, b"")

    def test_connection_that_never_sends_is_closed_after_idle_timeout(self):
        srv = self.server("--idle-timeout", "1s")
        conn = self.raw(srv)
        self.assertTrue(conn.wait_closed(), "silent connection still open")

    def test_keep_alive_connection_stays_open_within_idle_timeout(self):
        # The opposite case, so the two tests above cannot pass by closing everything.
        srv = self.server("--idle-timeout", "1h")
        conn = RawConnection(srv, timeout=2)
        self.addCleanup(conn.close)
        conn.send("GET /healthz HTTP/1.1\r\nHost: espy\r\n\r\n")
        self.assertEqual(conn.read_response()[0], 200)
        self.assertFalse(conn.wait_closed(), "closed although not idle for long")
        conn.sock.settimeout(SOCKET_TIMEOUT)
        conn.send("GET /healthz HTTP/1.1\r\nHost: espy\r\n\r\n")
        self.assertEqual(conn.read_response()[0], 200)

    def test_slow_client_with_half_a_body_is_closed_after_io_timeout(self):
        srv = self.server("--io-timeout", "1s", "--idle-timeout", "1h")
        conn = self.raw(srv)
        conn.send(post_head(100) + '[{"name":"slow",')
        self.assertTrue(conn.wait_closed(), "half-sent request still open")
        self.assertEqual(srv.query(name="slow"), [])

    def test_slow_client_with_half_the_headers_is_closed_after_io_timeout(self):
        srv = self.server("--io-timeout", "1s", "--idle-timeout", "1h")
        conn = RawConnection(srv, timeout=5)  # 5x the io timeout
        self.addCleanup(conn.close)
        conn.send("POST /v1/metrics HTTP/1.1\r\nHost: espy\r\nContent-Le")
        self.assertTrue(conn.wait_closed(), "half-sent headers still open after 5s")


class ShutdownTest(EspyTestCase):
    def start_request(self, srv, head):
        """Sends `head` (a request's headers, which must ask for 100-continue) and waits for the
        interim 100: from then on the server has read the headers and waits for the body, so
        the request is in flight."""
        conn = RawConnection(srv)
        self.addCleanup(conn.close)
        conn.send(head)
        self.assertEqual(conn.read_response()[0], 100)
        return conn

    def sigterm_and_wait_for_shutdown(self, srv):
        """SIGTERM, then waits until shutdown has begun: until an idle keep-alive connection is
        closed, which the server does after clearing readiness and deciding to stop."""
        idle = RawConnection(srv)
        self.addCleanup(idle.close)
        idle.send("GET /healthz HTTP/1.1\r\nHost: espy\r\n\r\n")
        self.assertEqual(idle.read_response()[0], 200)
        srv.signal(signal.SIGTERM)
        self.assertTrue(idle.wait_closed(), "idle connection not closed on SIGTERM")
        self.assertIsNotNone(srv.stderr.wait_for(SHUTTING_DOWN, SOCKET_TIMEOUT))

    def test_sigterm_exits_0_and_closes_idle_connections(self):
        srv = self.server()
        conn = RawConnection(srv)
        self.addCleanup(conn.close)
        conn.send("GET /healthz HTTP/1.1\r\nHost: espy\r\n\r\n")
        self.assertEqual(conn.read_response()[0], 200)
        srv.stop()  # asserts exit code 0
        self.assertTrue(conn.wait_closed())
        self.assertIn("msg=stopped", srv.log_text())

    def test_sigint_exits_0(self):
        srv = self.server()
        srv.signal(signal.SIGINT)
        srv.wait(expect_code=0)
        self.assertRegex(srv.log_text(), r'msg="shutting down" signal=SIGINT')

    def test_readyz_turns_503_while_shutting_down(self):
        for path in ("/readyz", "/-/ready"):  # Kubernetes' customary path and Prometheus'
            with self.subTest(path):
                srv = self.server()
                # A request whose body is still to come when SIGTERM arrives.
                conn = self.start_request(srv, f"GET {path} HTTP/1.1\r\nHost: espy\r\n"
                                          "Content-Length: 4\r\nExpect: 100-continue\r\n\r\n")
                self.sigterm_and_wait_for_shutdown(srv)
                conn.send("abcd")
                status, headers, body = conn.read_response()
                self.assertEqual(status, 503)
                self.assertIn("shutting down", json.loads(body)["error"])
                self.assertEqual(headers.get("connection", "").lower(), "close")
                self.assertTrue(conn.wait_closed())
                srv.wait(expect_code=0)

    # Guards a fixed bug: while a POST waited for its WAL commit nothing kept the io_context
    # running, so after SIGTERM the HTTP threads could return, the reply was never sent, and
    # shutdown waited out its 10 s grace period before dropping the connection.
    def test_post_in_flight_when_sigterm_arrives_is_answered(self):
        srv = self.server()
        body = json.dumps({"name": "inflight", "value": 1, "ts": 1})
        conn = self.start_request(srv, post_head(len(body), "Expect: 100-continue\r\n"))
        self.sigterm_and_wait_for_shutdown(srv)
        conn.send(body)
        try:
            status, headers, resp = conn.read_response()
        except (EOFError, ConnectionResetError):
            srv.wait(expect_code=0)
            self.fail("the in-flight request got no answer; server log:\n" + srv.log_text())
        self.assertEqual((status, json.loads(resp)), (202, {"accepted": 1}))
        self.assertEqual(headers.get("connection", "").lower(), "close")
        srv.wait(expect_code=0)
        self.assertNotIn("grace period over", srv.log_text())
        srv.start()
        self.assertEqual(len(srv.query(name="inflight")), 1)

    def test_get_in_flight_when_sigterm_arrives_is_answered(self):
        srv = self.server()
        self.assertEqual(srv.post_metrics({"name": "g", "value": 7, "ts": 1})[0], 202)
        conn = self.start_request(srv, "GET /v1/metrics?name=g HTTP/1.1\r\nHost: espy\r\n"
                                       "Content-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        self.sigterm_and_wait_for_shutdown(srv)
        conn.send("{}")
        status, _, body = conn.read_response()
        self.assertEqual((status, [p["value"] for p in json.loads(body)]), (200, [7]))
        srv.wait(expect_code=0)

    def test_no_new_connections_after_shutdown(self):
        srv = self.server()
        host, port = srv.host, srv.port
        srv.stop()
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((host, port), timeout=SOCKET_TIMEOUT).close()


if __name__ == "__main__":
    unittest.main()

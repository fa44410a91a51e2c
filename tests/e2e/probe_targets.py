"""ProbeTargets: local servers for probe and collector tests, started on free loopback ports.

    with ProbeTargets() as t:
        t.url("/ok")            # http://127.0.0.1:PORT/ok
        t.tls_url("/ok")        # https with a self-signed certificate (made by `openssl req`)
        t.tcp_address           # host:port of a line server: "PING" -> "PONG"
        t.count("/ok")          # requests received on that path so far
        t.wait_for_count("/ok", 3, timeout=10)

Paths (same on HTTP and HTTPS):
    /ok          200 "<h1>Welcome to Espy</h1>"
    /500         500 "internal error"
    /slow?ms=N   200 after N ms
    /close       closes the connection without answering
    /changing    200, body "state: green" then "state: red", alternating per request
    /redirect    302 to /ok
    /price       JSON, crypto-price shape: {"bitcoin": {"usd": ..., "eur": ...}, ...}
    /quotes      JSON, stock-quote shape: {"quotes": [{"symbol": "AAPL", "price": ...}, ...]}
    /json?body=  200 with the given body as application/json (collector error cases)
    /auth        200 JSON {"value": 1} if the Authorization header is "Bearer s3cret", else 401

The certificate's notAfter is `cert_days` days from now (default 30). Standard library only, plus
the openssl command for the certificate.
"""

import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse

PRICES = {"bitcoin": {"usd": 64000.5, "eur": 59000}, "ethereum": {"usd": 3000, "eur": "2800.5"}}
QUOTES = {"quotes": [{"symbol": "AAPL", "price": 189.25, "volume": 1200},
                     {"symbol": "MSFT", "price": "410.5", "volume": 900}]}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body, content_type="text/html", headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        targets = self.server.targets
        n = targets._hit(url.path)
        if url.path == "/ok":
            self._send(200, "<h1>Welcome to Espy</h1>")
        elif url.path == "/500":
            self._send(500, "internal error")
        elif url.path == "/slow":
            time.sleep(int(query.get("ms", ["1000"])[0]) / 1000)
            self._send(200, "slow but fine")
        elif url.path == "/close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif url.path == "/changing":
            self._send(200, "state: green" if n % 2 == 1 else "state: red")
        elif url.path == "/redirect":
            self._send(302, "", headers=[("Location", "/ok")])
        elif url.path == "/price":
            self._send(200, json.dumps(PRICES), "application/json")
        elif url.path == "/quotes":
            self._send(200, json.dumps(QUOTES), "application/json")
        elif url.path == "/json":
            self._send(200, query.get("body", [""])[0], "application/json")
        elif url.path == "/auth":
            if self.headers.get("Authorization") == "Bearer s3cret":
                self._send(200, '{"value": 1}', "application/json")
            else:
                self._send(401, '{"error": "unauthorized"}', "application/json")
        else:
            self._send(404, "not found")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        # A probe that timed out hangs up on /slow: expected, not worth a traceback.
        pass


class ProbeTargets:
    def __init__(self, cert_days=30):
        self._lock = threading.Lock()
        self._counts = {}
        self._cond = threading.Condition(self._lock)
        self._dir = tempfile.mkdtemp(prefix="espy-targets-")
        self.cert_path = os.path.join(self._dir, "cert.pem")
        key = os.path.join(self._dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", self.cert_path, "-days", str(cert_days), "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, capture_output=True)
        self._http = _Server(("127.0.0.1", 0), _Handler)
        self._http.targets = self
        self._tls = _Server(("127.0.0.1", 0), _Handler)
        self._tls.targets = self
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_path, key)
        self._tls.socket = ctx.wrap_socket(self._tls.socket, server_side=True)
        self._tcp = socket.socket()
        self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._tcp.bind(("127.0.0.1", 0))
        self._tcp.listen(128)
        self._threads = [threading.Thread(target=s.serve_forever, daemon=True)
                         for s in (self._http, self._tls)]
        self._threads.append(threading.Thread(target=self._serve_tcp, daemon=True))
        for t in self._threads:
            t.start()

    def _serve_tcp(self):
        while True:
            try:
                conn, _ = self._tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._line_client, args=(conn,), daemon=True).start()

    def _line_client(self, conn):
        self._hit("tcp")
        with conn:
            data = b""
            try:
                while b"\n" not in data:
                    chunk = conn.recv(1024)
                    if not chunk:
                        return
                    data += chunk
                conn.sendall(b"PONG\r\n" if data.strip() == b"PING" else b"ERR\r\n")
            except OSError:
                pass

    def _hit(self, path):
        with self._cond:
            self._counts[path] = self._counts.get(path, 0) + 1
            self._cond.notify_all()
            return self._counts[path]

    def count(self, path):
        with self._lock:
            return self._counts.get(path, 0)

    def wait_for_count(self, path, n, timeout=20):
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._counts.get(path, 0) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{path}: {self._counts.get(path, 0)} requests after "
                                         f"{timeout}s, want {n}")
                self._cond.wait(left)

    def url(self, path):
        return f"http://127.0.0.1:{self._http.server_address[1]}{path}"

    def tls_url(self, path):
        return f"https://127.0.0.1:{self._tls.server_address[1]}{path}"

    @property
    def tcp_address(self):
        return f"127.0.0.1:{self._tcp.getsockname()[1]}"

    def close(self):
        for s in (self._http, self._tls):
            s.shutdown()
            s.server_close()
        self._tcp.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

"""EspyServer: starts the real `espy` binary on a free loopback port and talks to it over HTTP.

Shared by the end-to-end tests in this folder. Standard library only.

    with EspyServer() as server:          # or: server = self.server() in an EspyTestCase
        status, headers, body = server.request("GET", "/healthz")
        server.post_metrics({"name": "cpu", "value": 1})
        server.restart()                   # SIGTERM, then start again on the same data dir

The binary comes from $ESPY_BIN (CTest sets it), else build/espy at the repository root. Each
server gets its own temporary data dir unless one is given; processes and temporary dirs are
always cleaned up, also when a test fails (EspyTestCase registers the cleanups, and an atexit hook
kills anything still running). The server's stderr is read by a thread into `log_lines`; start()
waits for its `msg=listening address=HOST:PORT` line, or the same in JSON (never sleeps).

Not thread-safe as an object (start/stop/kill from one thread); request() and the other HTTP
helpers open their own connection per call and may be used from many threads at once.
"""

import atexit
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START_TIMEOUT = 30.0  # seconds for the listening line to appear
STOP_TIMEOUT = 30.0  # seconds for a SIGTERM'd server to exit
HTTP_TIMEOUT = 60.0  # seconds for one request
README_ADDRESS = "127.0.0.1:5000"  # the address README examples use

# The listening line in either --log-format: logfmt or JSON.
_LISTENING = re.compile(r'(?:msg=listening address=|"msg":"listening","address":")([^\s"]+):(\d+)')
_live = set()  # processes not yet reaped, killed at exit as a last resort


def wait_until(what, fn, timeout=30.0, interval=0.05):
    """Polls fn() until it returns a truthy value (returned) or `timeout` seconds pass
    (AssertionError naming `what` and the last value): waiting on a condition, never on a clock."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {last!r}")


def free_port():
    """A TCP port free at the time of the call (for clients that cannot be given port 0)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PeerProcess:
    """Another program a test runs beside Espy (prometheus, collectd): its output goes to
    `log_path`, and it is stopped (SIGTERM, SIGKILL after 30 s) when the test ends."""

    def __init__(self, test, argv, log_path):
        self.log = open(log_path, "wb")
        test.addCleanup(self.log.close)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        test.addCleanup(self.stop)  # cleanups run last-in first: stopped before the log closes

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self, n=3000):
        """The last `n` characters of its output, for a failure message."""
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")[-n:]


def espy_bin():
    """The espy binary under test."""
    path = os.environ.get("ESPY_BIN") or os.path.join(REPO_ROOT, "build", "espy")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"espy binary {path!r} not found or not executable; set ESPY_BIN")
    return path


def clean_env(extra=None):
    """The environment for a child espy: ours without ESPY_* (so the caller's shell cannot change
    a test's settings), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESPY_")}
    env.update(extra or {})
    return env


@atexit.register
def _kill_leftovers():
    for proc in list(_live):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class StderrReader:
    """Reads a child's stderr on a thread into `lines`; wait_for() blocks on a condition until a
    line matches or the stream ends. Thread-safe."""

    def __init__(self, stream):
        self.lines = []
        self.eof = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream):
        for raw in iter(stream.readline, b""):
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        stream.close()
        with self._cond:
            self.eof = True
            self._cond.notify_all()

    def wait_for(self, pattern, timeout):
        """The first match of `pattern` (a compiled regex) in any line, or None when stderr
        closed or `timeout` seconds passed without one."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    m = pattern.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                remaining = deadline - time.monotonic()
                if self.eof or remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def join(self, timeout=10):
        self._thread.join(timeout)

    def text(self):
        with self._cond:
            return "\n".join(self.lines)


class ServerError(AssertionError):
    pass


class EspyServer:
    """One espy server process (restartable) on its own data dir."""

    def __init__(self, *args, data_dir=None, env=None, listen="127.0.0.1:0", data_dir_flag=True,
                 start=True):
        """`args`: extra `serve` flags. `data_dir`: reused as is (and never deleted); default
        data/ in a new temporary working dir removed by cleanup(). `env`: extra environment
        variables. `listen` None or `data_dir_flag` False leave out --listen or --data-dir (for
        tests that set them through the environment or a config file)."""
        self.args = list(args)
        self.data_dir_flag = data_dir_flag
        self.env = dict(env or {})
        self.listen = listen
        # The working directory of the process (so a relative or default data dir lands here),
        # and the default data dir's parent; removed by cleanup().
        self.workdir = self._tmp = tempfile.mkdtemp(prefix="espy-e2e-")
        self.data_dir = data_dir if data_dir is not None else os.path.join(self._tmp, "data")
        self.proc = None
        self.stderr = None
        self.host = None
        self.port = None
        self.logs = []  # stderr of earlier runs, for failure messages
        if start:
            try:
                self.start()
            except BaseException:
                self.cleanup()  # the caller never gets the object to clean up
                raise

    # --- lifecycle -------------------------------------------------------------------------

    def command(self):
        cmd = [espy_bin(), "serve"]
        if self.listen is not None:
            cmd += ["--listen", self.listen]
        if self.data_dir_flag:
            cmd += ["--data-dir", self.data_dir]
        return cmd + self.args

    def start(self):
        """Starts the server and waits until it listens. Raises ServerError with its stderr when
        it exits first or does not listen within START_TIMEOUT."""
        assert self.proc is None, "server already running"
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=clean_env(self.env), cwd=self.workdir)
        _live.add(self.proc)
        self.stderr = StderrReader(self.proc.stderr)
        m = self.stderr.wait_for(_LISTENING, START_TIMEOUT)
        if m is None:
            code = self._reap_after_failed_start()
            raise ServerError(f"espy did not start listening (exit code {code}); "
                              f"command {self.command()}; stderr:\n{self.log_text()}")
        self.host, self.port = m.group(1), int(m.group(2))
        return self

    def _reap_after_failed_start(self):
        proc = self.proc
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        self.stderr.join()
        _live.discard(proc)
        self.logs.append(self.stderr.text())
        self.proc = None
        return code

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT, expect_code=0):
        """SIGTERM, wait for exit, and check the exit code (ServerError if not `expect_code`)."""
        return self._end(signal.SIGTERM, timeout, expect_code)

    def kill(self):
        """SIGKILL (a crash): no exit code to check."""
        return self._end(signal.SIGKILL, STOP_TIMEOUT, None)

    def signal(self, sig):
        """Sends `sig` without waiting (see wait())."""
        self.proc.send_signal(sig)

    def wait(self, timeout=STOP_TIMEOUT, expect_code=0):
        """Waits for a signalled server to exit; checks the code as stop() does."""
        return self._end(None, timeout, expect_code)

    def _end(self, sig, timeout, expect_code):
        proc = self.proc
        assert proc is not None, "server not running"
        if sig is not None and proc.poll() is None:
            proc.send_signal(sig)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = None
        self.stderr.join()
        _live.discard(proc)
        self.logs.append(self.stderr.text())
        self.proc = None
        if expect_code is not None and code != expect_code:
            raise ServerError(f"espy exited with {code}, want {expect_code} "
                              f"(None: still running after {timeout}s, killed); "
                              f"stderr:\n{self.logs[-1]}")
        return code

    def restart(self):
        """Clean stop (exit code 0 checked), then start on the same data dir."""
        self.stop()
        return self.start()

    def cleanup(self):
        """Kills the process if still running and removes the temporary dir. Idempotent."""
        if self.proc is not None:
            self.kill()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def log_text(self):
        """All stderr seen so far, over every run."""
        current = [self.stderr.text()] if self.proc is not None else []
        return "\n--- restart ---\n".join(self.logs + current)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # --- HTTP ------------------------------------------------------------------------------

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def url(self, path="/"):
        return f"http://{self.address}{path}"

    def connection(self, timeout=HTTP_TIMEOUT):
        """A new http.client connection (keep-alive capable) to the server."""
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT):
        """One request on a new connection: (status, headers as a dict with lower-case names,
        body bytes)."""
        conn = self.connection(timeout)
        try:
            return send(conn, method, path, body, headers)
        finally:
            conn.close()

    def post_metrics(self, payload, content_type="application/json", timeout=HTTP_TIMEOUT):
        """POST /v1/metrics. `payload`: bytes/str as is, anything else as JSON. Returns
        (status, parsed JSON body or None)."""
        if isinstance(payload, str):
            payload = payload.encode()
        elif not isinstance(payload, bytes):
            payload = json.dumps(payload).encode()
        headers = {"Content-Type": content_type} if content_type else {}
        status, _, body = self.request("POST", "/v1/metrics", payload, headers, timeout)
        return status, parse_json(body)

    def get_metrics(self, params=None, timeout=HTTP_TIMEOUT):
        """GET /v1/metrics with `params` (dict or list of pairs). Returns (status, headers,
        parsed JSON body)."""
        path = "/v1/metrics"
        if params:
            path += "?" + urllib.parse.urlencode(params)
        status, headers, body = self.request("GET", path, timeout=timeout)
        return status, headers, parse_json(body)

    def query(self, **params):
        """GET /v1/metrics that must answer 200 in one page: the list of points."""
        status, headers, body = self.get_metrics(params)
        if status != 200:
            raise ServerError(f"GET /v1/metrics {params}: status {status}, body {body}")
        if "link" in headers:
            raise ServerError(f"GET /v1/metrics {params}: more than one page")
        return body

    def query_all(self, limit=None, **params):
        """Every point matching `params`, following Link headers: (points, pages)."""
        if limit is not None:
            params["limit"] = str(limit)
        path = "/v1/metrics" + ("?" + urllib.parse.urlencode(params) if params else "")
        points, pages = [], 0
        conn = self.connection()
        try:
            while path is not None:
                status, headers, body = send(conn, "GET", path)
                if status != 200:
                    raise ServerError(f"GET {path}: status {status}, body {body!r}")
                points.extend(json.loads(body))
                pages += 1
                path = next_link(headers)
        finally:
            conn.close()
        return points, pages

    def metrics_text(self):
        status, _, body = self.request("GET", "/metrics")
        if status != 200:
            raise ServerError(f"GET /metrics: status {status}")
        return body.decode()

    def metric(self, name, **labels):
        """One sample's value from /metrics (0.0 when the series is absent)."""
        return metric_value(self.metrics_text(), name, **labels)

    # --- README examples -------------------------------------------------------------------

    def run_shell(self, snippet, timeout=60, check=True):
        """Runs a shell snippet (e.g. a README example with curl) against this server, with
        127.0.0.1:5000 and localhost:5000 replaced by its real address. Returns the
        CompletedProcess (text mode); with `check`, raises ServerError on a non-zero exit."""
        return run_shell_example(snippet, self.address, timeout=timeout, check=check)


def run_shell_example(snippet, address, timeout=60, check=True, cwd=None):
    """Runs `snippet` with bash (errexit, pipefail) after replacing 127.0.0.1:5000 and
    localhost:5000 with `address` ("host:port"). For testing README examples:

        result = server.run_shell('curl -s 127.0.0.1:5000/v1/metrics?name=cpu')
        self.assertEqual(json.loads(result.stdout), [...])
    """
    script = snippet.replace(README_ADDRESS, address).replace("localhost:5000", address)
    result = subprocess.run(["bash", "-c", "set -eo pipefail\n" + script], capture_output=True,
                            text=True, timeout=timeout, cwd=cwd, env=clean_env())
    if check and result.returncode != 0:
        raise ServerError(f"shell snippet exited {result.returncode}:\n{script}\n"
                          f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def send(conn, method, path, body=None, headers=None):
    """One request on an existing connection: (status, lower-cased headers dict, body bytes)."""
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def parse_json(body):
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


_LINK_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')


def next_link(headers):
    """The path of a Link: <...>; rel="next" header, or None."""
    m = _LINK_NEXT.search(headers.get("link", ""))
    if not m:
        return None
    parts = urllib.parse.urlsplit(m.group(1))
    return parts.path + ("?" + parts.query if parts.query else "")


def metric_value(text, name, **labels):
    """The value of `name{labels}` in Prometheus text `text` (labels must match exactly)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if found == {k: str(v) for k, v in labels.items()}:
            return float(m.group(3))
    return 0.0


class EspyTestCase(unittest.TestCase):
    """A TestCase whose servers are always cleaned up, and whose failures show server logs."""

    def server(self, *args, **kwargs):
        """Starts an EspyServer (see its __init__) cleaned up after the test."""
        server = EspyServer(*args, start=False, **kwargs)
        self.addCleanup(server.cleanup)
        server.start()
        return server

    def tmpdir(self):
        path = tempfile.mkdtemp(prefix="espy-e2e-")
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def run_espy(self, *args, env=None, timeout=30):
        """Runs espy with `args` to completion (for CLI tests): CompletedProcess, text mode."""
        return subprocess.run([espy_bin(), *args], capture_output=True, text=True,
                              timeout=timeout, env=clean_env(env), stdin=subprocess.DEVNULL)

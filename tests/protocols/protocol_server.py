"""Espy for the protocol tests: the real binary on free loopback ports (HTTP and Graphite), plus
helpers to query it and to wait for samples. Standard library only.

    with Espy() as espy:
        espy.graphite_port             # TCP and UDP
        espy.request("POST", "/write?precision=s", b"cpu v=1 1700000000")
        rows = espy.wait_for_samples("cpu_v", count=1)

The binary comes from $ESPY_BIN (CTest sets it), else build/espy at the repository root. start()
waits for the server's `msg=listening` log line (never sleeps); wait_for_* poll the HTTP API until
a condition holds or a deadline passes. Not thread-safe.
"""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from espy_server import StderrReader as LogReader  # noqa: E402
from espy_server import espy_bin  # noqa: E402
from espy_server import wait_until as _wait_until  # noqa: E402

START_TIMEOUT = 30.0
DEADLINE = 60.0  # seconds for data sent by a real client to become visible
POLL_INTERVAL = 0.05

_HTTP_LISTENING = re.compile(r"msg=listening address=(\S+):(\d+)")
_GRAPHITE_LISTENING = re.compile(r'msg="graphite listening" address=(\S+):(\d+)')


def free_port():
    """A TCP port free at the time of the call (for clients that cannot be given port 0)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, fn, timeout=DEADLINE):
    """Polls fn() until it returns a truthy value (returned) or `timeout` passes (AssertionError
    naming `what` and the last value)."""
    return _wait_until(what, fn, timeout, POLL_INTERVAL)


class Espy:
    def __init__(self, graphite=True, extra_args=()):
        self.tmp = tempfile.mkdtemp(prefix="espy-protocols-")
        cmd = [espy_bin(), "serve", "--listen", "127.0.0.1:0", "--data-dir",
               os.path.join(self.tmp, "data"), "--fsync", "never"]
        if graphite:
            cmd += ["--graphite-listen", "127.0.0.1:0"]
        cmd += list(extra_args)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ESPY_")}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env, cwd=self.tmp)
        self.log = LogReader(self.proc.stderr)
        m = self.log.wait_for(_HTTP_LISTENING, START_TIMEOUT)
        if m is None:
            self.close()
            raise AssertionError(f"espy did not start; stderr:\n{self.log.text()}")
        self.port = int(m.group(2))
        self.graphite_port = None
        if graphite:
            g = self.log.wait_for(_GRAPHITE_LISTENING, 0)
            if g is None:
                self.close()
                raise AssertionError(f"no graphite listening line; stderr:\n{self.log.text()}")
            self.graphite_port = int(g.group(2))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """SIGTERM and wait; returns the exit code."""
        code = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
        else:
            code = self.proc.returncode
        self.log.join()
        self.proc.stderr.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return code

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, headers=None):
        """(status, headers dict, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def samples(self, name, **labels):
        """Every stored sample of metric `name` (label filters as keyword arguments), as the
        objects GET /v1/metrics returns. The labels go in a `match` selector, which is taken as
        written: callers poll before the series (and so its labels) exist, when a plain label
        filter would be refused as naming no label."""
        params = {"name": name}
        if labels:
            params["match"] = "{" + ",".join(f"{k}={json.dumps(str(v))}"
                                             for k, v in labels.items()) + "}"
        query = urllib.parse.urlencode(params)
        status, _, body = self.request("GET", "/v1/metrics?" + query)
        if status != 200:
            raise AssertionError(f"GET /v1/metrics?{query}: {status} {body[:300]!r}")
        return json.loads(body)

    def wait_for_samples(self, name, count=1, timeout=DEADLINE, **labels):
        return wait_until(f"{count} samples of {name} {labels}",
                          lambda: (lambda rows: rows if len(rows) >= count else None)(
                              self.samples(name, **labels)), timeout)

    def self_metric(self, line_prefix):
        """The value of the /metrics line starting with `line_prefix`, or None."""
        _, _, body = self.request("GET", "/metrics")
        for line in body.decode().splitlines():
            if line.startswith(line_prefix + " "):
                return float(line.split()[-1])
        return None

"""Espy for the protocol tests: tests/e2e/espy_server.py's EspyServer with a Graphite listener on
a free loopback port too, and helpers to query it and to wait for samples. Standard library only.

    with Espy() as espy:
        espy.graphite_port             # TCP and UDP
        espy.request("POST", "/write?precision=s", b"cpu v=1 1700000000")
        rows = espy.wait_for_samples("cpu_v", count=1)

Starting, stopping, the binary ($ESPY_BIN) and the log are EspyServer's; start() also waits for
the Graphite listener's log line (never sleeps); wait_for_* poll the HTTP API until a condition
holds or a deadline passes. Not thread-safe.
"""

import json
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from espy_server import EspyServer, PeerProcess, ServerError, free_port  # noqa: E402,F401
from espy_server import wait_until as _wait_until  # noqa: E402

DEADLINE = 60.0  # seconds for data sent by a real client to become visible
POLL_INTERVAL = 0.05

_GRAPHITE_LISTENING = re.compile(r'msg="graphite listening" address=(\S+):(\d+)')


def wait_until(what, fn, timeout=DEADLINE):
    """Polls fn() until it returns a truthy value (returned) or `timeout` passes (AssertionError
    naming `what` and the last value)."""
    return _wait_until(what, fn, timeout, POLL_INTERVAL)


class Espy(EspyServer):
    """An EspyServer without fsync (these tests are about the protocols), with Graphite unless
    `graphite` is False, and `extra_args` as further `serve` flags."""

    def __init__(self, graphite=True, extra_args=()):
        self.graphite = graphite
        self.graphite_port = None
        self._code = None
        args = ["--fsync", "never"]
        if graphite:
            args += ["--graphite-listen", "127.0.0.1:0"]
        super().__init__(*args, *extra_args)

    def start(self):
        super().start()
        if self.graphite:
            # Logged before the HTTP server's line, which start() waited for.
            g = self.stderr.wait_for(_GRAPHITE_LISTENING, 0)
            if g is None:
                self.kill()
                raise ServerError(f"no graphite listening line; stderr:\n{self.log_text()}")
            self.graphite_port = int(g.group(2))
        return self

    @property
    def log(self):
        """The running server's stderr (StderrReader: wait_for, text)."""
        return self.stderr

    def close(self):
        """SIGTERM, wait, and remove the data; returns the exit code. Idempotent."""
        if self.proc is not None:
            self._code = self.stop(expect_code=None)
        self.cleanup()
        return self._code

    def __exit__(self, *exc):
        self.close()

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

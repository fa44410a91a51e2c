"""Compatibility with prometheus-blackbox-exporter: the same checks, run by blackbox (its /probe
endpoint) and by Espy (`espy probe --once --json`, and the samples `espy serve` stores), must
report the same values under the same metric names, so blackbox dashboards and alerts work on
Espy's data unchanged.

Targets come from ProbeTargets (HTTP, self-signed HTTPS, a PING/PONG line server) plus a closed
port. Each case names a blackbox module (written to a temporary blackbox.yml) and the Espy probe
that means the same thing. Timings are not compared, only outcomes, codes, flags and the
certificate's expiry.

Skipped, with a message, when the exporter binary is absent ($BLACKBOX_EXPORTER or
/usr/bin/prometheus-blackbox-exporter; Debian package prometheus-blackbox-exporter).
Set COMPAT_VERBOSE=1 to print both sides of every case.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from espy_server import EspyServer, clean_env, espy_bin  # noqa: E402
from probe_targets import ProbeTargets  # noqa: E402

BLACKBOX = os.environ.get("BLACKBOX_EXPORTER") or "/usr/bin/prometheus-blackbox-exporter"
START_TIMEOUT = 30.0  # seconds for blackbox to answer, or for every served probe to report
CERT_SLACK = 5.0  # seconds the two cert expiry values may differ
VERBOSE = os.environ.get("COMPAT_VERBOSE") == "1"

# Blackbox modules. Blackbox appends "\n" to every `send`; Espy sends the bytes as written, so the
# Espy side of the PING case says "PING\n".
MODULES = """\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
  http_body_green_or_red:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_body_not_matches_regexp: ["state: (green|red)"]
  http_body_purple:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_body_not_matches_regexp: ["state: purple"]
  http_insecure:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      tls_config:
        insecure_skip_verify: true
  tcp_connect:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
  tcp_ping:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - send: "PING"
        - expect: "PONG"
  tcp_ping_wrong_reply:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - send: "PING"
        - expect: "NEVER"
  tcp_silent_timeout:
    prober: tcp
    timeout: 1s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: "PONG"
"""

# Compared for every HTTP case: value in both, or absent from both.
HTTP_METRICS = ["probe_success", "probe_http_status_code", "probe_http_ssl",
                "probe_failed_due_to_regex", "probe_http_redirects", "probe_http_version",
                "probe_http_content_length", "probe_http_uncompressed_body_length"]
TCP_METRICS = ["probe_success", "probe_failed_due_to_regex"]
# Present in both for every case (values are timings).
ALWAYS_PRESENT = ["probe_success", "probe_duration_seconds", "probe_dns_lookup_time_seconds"]
HTTP_PHASES = ["resolve", "connect", "tls", "processing", "transfer"]
# /changing answers "state: green" (12 bytes) and "state: red" (10) in turn, so each tool may see
# either: its lengths are not compared.
BODY_LENGTHS = ("probe_http_content_length", "probe_http_uncompressed_body_length")
# Blackbox metrics Espy does not write (yet). Any other name blackbox reports must be in Espy's
# samples too.
NOT_IMPLEMENTED = {"probe_ip_addr_hash", "probe_tls_version_info",
                   "probe_ssl_last_chain_info", "probe_ssl_last_chain_expiry_timestamp_seconds"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port():
    """A loopback port with nothing listening (bound for a moment, then released)."""
    return free_port()


def parse_text(text):
    """Prometheus text format -> {(name, ((label, value), ...)): float}."""
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)", line)
        if not m:
            raise AssertionError(f"unparsable exposition line {line!r}")
        labels = tuple(sorted(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                         m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def by_name(samples, name, **labels):
    """The value of `name` with exactly `labels`, or None."""
    return samples.get((name, tuple(sorted(labels.items()))))


class Blackbox:
    """prometheus-blackbox-exporter on a free loopback port, with MODULES."""

    def __init__(self, workdir):
        config = os.path.join(workdir, "blackbox.yml")
        with open(config, "w") as f:
            f.write(MODULES)
        self.port = free_port()
        self.log = open(os.path.join(workdir, "blackbox.log"), "w+")
        self.proc = subprocess.Popen(
            [BLACKBOX, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{self.port}"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"blackbox exited with {self.proc.returncode}: {self.logs()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/healthy",
                                            timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"blackbox did not answer within {START_TIMEOUT}s "
                                     f"on port {self.port}: {self.logs()}")
            time.sleep(0.05)  # polling interval, not a wait for something to happen

    def logs(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def probe(self, module, target):
        query = urllib.parse.urlencode({"module": module, "target": target})
        url = f"http://127.0.0.1:{self.port}/probe?{query}"
        with urllib.request.urlopen(url, timeout=30) as r:
            return parse_text(r.read().decode())

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class BlackboxCompatTest(unittest.TestCase):
    longMessage = False  # the messages below say everything; no repr of the report list

    @classmethod
    def setUpClass(cls):
        if not os.access(BLACKBOX, os.X_OK):
            raise unittest.SkipTest(
                f"prometheus-blackbox-exporter not found at {BLACKBOX} (apt-get install "
                "prometheus-blackbox-exporter, or set BLACKBOX_EXPORTER)")
        cls.tmp = tempfile.mkdtemp(prefix="espy-blackbox-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.targets = ProbeTargets()
        cls.addClassCleanup(cls.targets.close)
        cls.blackbox = Blackbox(cls.tmp)
        cls.addClassCleanup(cls.blackbox.close)
        t = cls.targets
        closed = closed_port()
        tcp = {"interval": "2s", "timeout": "1s"}
        # name -> (blackbox module, blackbox target, Espy probe fields[, metrics not compared])
        cls.cases = {
            "http_ok": ("http_2xx", t.url("/ok"), {"url": t.url("/ok")}),
            "http_500": ("http_2xx", t.url("/500"), {"url": t.url("/500")}),
            "http_close": ("http_2xx", t.url("/close"), {"url": t.url("/close")}),
            "http_redirect": ("http_2xx", t.url("/redirect"), {"url": t.url("/redirect")}),
            "http_regex_match": ("http_body_green_or_red", t.url("/changing"),
                                 {"url": t.url("/changing"),
                                  "body_must_match": ["state: (green|red)"]}, BODY_LENGTHS),
            "http_regex_fail": ("http_body_purple", t.url("/changing"),
                                {"url": t.url("/changing"), "body_must_match": ["state: purple"]},
                                BODY_LENGTHS),
            "tls_no_verify": ("http_insecure", t.tls_url("/ok"),
                              {"url": t.tls_url("/ok"), "tls_verify": False}),
            "tls_verify": ("http_2xx", t.tls_url("/ok"), {"url": t.tls_url("/ok")}),
            "http_closed_port": ("http_2xx", f"http://127.0.0.1:{closed}/",
                                 {"url": f"http://127.0.0.1:{closed}/"}),
            "tcp_closed_port": ("tcp_connect", f"127.0.0.1:{closed}",
                                {"tcp": f"127.0.0.1:{closed}", **tcp}),
            "tcp_connect": ("tcp_connect", t.tcp_address, {"tcp": t.tcp_address, **tcp}),
            "tcp_ping": ("tcp_ping", t.tcp_address,
                         {"tcp": t.tcp_address, "send": "PING\n", "expect": "PONG", **tcp}),
            "tcp_wrong_reply": ("tcp_ping_wrong_reply", t.tcp_address,
                                {"tcp": t.tcp_address, "send": "PING\n", "expect": "NEVER",
                                 **tcp}),
            "tcp_silent_timeout": ("tcp_silent_timeout", t.tcp_address,
                                   {"tcp": t.tcp_address, "expect": "PONG", **tcp}),
        }
        cls.config = os.path.join(cls.tmp, "espy.yaml")
        with open(cls.config, "w") as f:
            f.write(cls.config_text())
        cls.bb = {name: cls.blackbox.probe(module, target)
                  for name, (module, target, *_) in cls.cases.items()}

    @classmethod
    def config_text(cls):
        lines = ["probes:"]
        for name, (_, _, fields, *_) in cls.cases.items():
            lines.append(f"  - name: {name}")
            fields = {"interval": "2s", "timeout": "2s", **fields}
            for key, value in fields.items():
                lines.append(f"    {key}: {json.dumps(value)}")
        return "\n".join(lines) + "\n"

    def is_http(self, name):
        return "url" in self.cases[name][2]

    def explain(self, name, espy):
        """Both sides, for failure messages."""
        module, target = self.cases[name][:2]
        bb = sorted(f"{k[0]}{dict(k[1]) or ''}={v}" for k, v in self.bb[name].items())
        es = sorted(f"{k[0]}{dict(k[1]) or ''}={v}" for k, v in espy.items())
        return (f"\ncase {name}: blackbox module {module} target {target}\n  blackbox: "
                + "\n            ".join(bb) + "\n  espy:     " + "\n            ".join(es))

    # --- espy probe --once --json ------------------------------------------------------------

    def test_once_json_agrees_with_blackbox(self):
        r = subprocess.run([espy_bin(), "probe", "--once", "--json", "--config", self.config],
                           capture_output=True, text=True, timeout=60, env=clean_env(),
                           stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 1, f"some checks fail, so exit 1; stderr: {r.stderr}")
        results = {o["name"]: o for o in json.loads(r.stdout)}
        self.assertEqual(sorted(results), sorted(self.cases))
        for name, o in results.items():
            with self.subTest(name):
                bb = self.bb[name]
                self.assertEqual(o["success"], by_name(bb, "probe_success") == 1.0,
                                 f"{name}: {o}")
                if self.is_http(name):
                    self.assertEqual(o.get("http_status", 0),
                                     by_name(bb, "probe_http_status_code"), f"{name}: {o}")
                expiry = by_name(bb, "probe_ssl_earliest_cert_expiry")
                if expiry is None:
                    self.assertNotIn("cert_expiry", o, name)
                else:
                    self.assertAlmostEqual(o.get("cert_expiry", 0), expiry, delta=CERT_SLACK,
                                           msg=name)

    # --- espy serve: the stored samples ------------------------------------------------------

    def served(self):
        """Starts espy serve with every case, waits until each probe has stored a result, and
        returns {case: {(name, labels without probe/instance): value}} from /api/v1/query."""
        server = EspyServer("--config", self.config)
        self.addCleanup(server.cleanup)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            got = {}
            query = urllib.parse.urlencode({"query": '{__name__=~"probe_.*"}'})
            status, _, body = server.request("GET", f"/api/v1/query?{query}")
            self.assertEqual(status, 200, body)
            for s in json.loads(body)["data"]["result"]:
                labels = dict(s["metric"])
                name = labels.pop("__name__")
                probe = labels.pop("probe")
                self.assertEqual(labels.pop("instance"), self.target_label(probe), s)
                got.setdefault(probe, {})[(name, tuple(sorted(labels.items())))] = float(
                    s["value"][1])
            if sorted(got) == sorted(self.cases):
                return got
            if time.monotonic() > deadline:
                self.fail(f"after {START_TIMEOUT}s only {sorted(got)} reported; log:\n"
                          f"{server.log_text()}")
            time.sleep(0.1)  # polling interval

    def target_label(self, name):
        fields = self.cases[name][2]
        return fields.get("url") or fields.get("tcp")

    def differences(self, name, espy):
        """What `espy` (one case's stored samples) reports unlike blackbox: a list of
        "metric: espy X, blackbox Y" (None: absent)."""
        bb = self.bb[name]
        out = []
        for metric in ALWAYS_PRESENT:
            if by_name(espy, metric) is None or by_name(bb, metric) is None:
                out.append(f"{metric}: espy {by_name(espy, metric)}, blackbox "
                           f"{by_name(bb, metric)} (want both present)")
        if self.is_http(name):
            for phase in HTTP_PHASES:
                if by_name(espy, "probe_http_duration_seconds", phase=phase) is None:
                    out.append(f"probe_http_duration_seconds{{phase={phase}}}: absent from espy")
        varies = self.cases[name][3] if len(self.cases[name]) > 3 else ()
        for metric in HTTP_METRICS if self.is_http(name) else TCP_METRICS:
            if metric not in varies and by_name(espy, metric) != by_name(bb, metric):
                out.append(f"{metric}: espy {by_name(espy, metric)}, blackbox "
                           f"{by_name(bb, metric)}")
        e, b = (by_name(s, "probe_ssl_earliest_cert_expiry") for s in (espy, bb))
        if (e is None) != (b is None) or (e is not None and abs(e - b) > CERT_SLACK):
            out.append(f"probe_ssl_earliest_cert_expiry: espy {e}, blackbox {b}")
        compared = set(HTTP_METRICS + TCP_METRICS)
        names = {k[0] for k in espy}
        for metric in sorted({k[0] for k in bb} - names - NOT_IMPLEMENTED - compared):
            out.append(f"{metric}: absent from espy, blackbox reports it")
        return out

    def test_stored_samples_agree_with_blackbox(self):
        stored = self.served()
        report = []
        for name in self.cases:
            why = self.explain(name, stored[name])
            if VERBOSE:
                print(why)
            diffs = self.differences(name, stored[name])
            if diffs:
                module, target = self.cases[name][:2]
                report.append(f"{name} (blackbox module {module}, target {target}):\n    "
                              + "\n    ".join(diffs))
        self.assertFalse(report, "stored samples differ from blackbox's:\n" + "\n".join(report))

    def test_expected_outcomes(self):
        """Guards the comparison itself: the cases fail and succeed as designed on the blackbox
        side, so an agreement is never two tools failing the same way for an unplanned reason."""
        want_up = {"http_ok", "http_redirect", "http_regex_match", "tls_no_verify", "tcp_connect",
                   "tcp_ping"}
        for name, bb in self.bb.items():
            with self.subTest(name):
                self.assertEqual(by_name(bb, "probe_success"), 1.0 if name in want_up else 0.0,
                                 self.explain(name, {}) + "\n" + self.blackbox.logs())
        self.assertEqual(by_name(self.bb["http_redirect"], "probe_http_redirects"), 1.0)
        self.assertEqual(by_name(self.bb["http_regex_fail"], "probe_failed_due_to_regex"), 1.0)
        self.assertEqual(by_name(self.bb["tls_no_verify"], "probe_http_ssl"), 1.0)
        self.assertGreater(by_name(self.bb["tls_no_verify"], "probe_ssl_earliest_cert_expiry"),
                           time.time())


if __name__ == "__main__":
    unittest.main()

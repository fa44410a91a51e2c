"""Probes and collectors end to end: the real espy runs checks against local servers (plain,
self-signed TLS, slow, failing, closing, changing, JSON APIs) and every stored result is read back
with PromQL; reload, config errors and `espy probe --once` as a user runs them."""

import json
import os
import signal
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import espy_server  # noqa: E402
from espy_server import EspyTestCase  # noqa: E402
from probe_targets import ProbeTargets  # noqa: E402

WAIT = 30  # seconds for a condition to come true


def wait_until(fn, what, timeout=WAIT):
    """Polls fn() until it returns something truthy; fails with `what` after `timeout`."""
    return espy_server.wait_until(what, fn, timeout)


class ProbeTestCase(EspyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.targets = ProbeTargets(cert_days=30)

    @classmethod
    def tearDownClass(cls):
        cls.targets.close()

    def write_config(self, text):
        path = os.path.join(self.tmpdir(), "espy.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def promql(self, server, query):
        """The instant vector of `query` as {frozenset(labels without __name__): value}."""
        status, _, body = server.request(
            "GET", "/api/v1/query?" + urllib.parse.urlencode({"query": query}))
        self.assertEqual(status, 200, body)
        out = {}
        for s in json.loads(body)["data"]["result"]:
            labels = {k: v for k, v in s["metric"].items() if k != "__name__"}
            out[frozenset(labels.items())] = float(s["value"][1])
        return out

    def value(self, server, query):
        """The single value of `query`, waiting until it has one."""
        result = wait_until(lambda: self.promql(server, query), query)
        self.assertEqual(len(result), 1, f"{query}: {result}")
        return next(iter(result.values()))


class ProbeResultsTest(ProbeTestCase):
    """One server probing every kind of target; each test reads its metrics."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        t = cls.targets
        cls.config = f"""
probes:
  - name: ok
    url: {t.url('/ok')}
    interval: 1s
    body_must_match: [Welcome]
    labels: {{team: web}}
  - name: error500
    url: {t.url('/500')}
    interval: 1s
  - name: closes
    url: {t.url('/close')}
    interval: 1s
  - name: slow
    url: {t.url('/slow?ms=3000')}
    interval: 2s
    timeout: 500ms
  - name: changing
    url: {t.url('/changing')}
    interval: 1s
    body_must_match: [green]
  - name: redirect
    url: {t.url('/redirect')}
    interval: 1s
  - name: no-follow
    url: {t.url('/redirect')}
    interval: 1s
    follow_redirects: false
    valid_status_codes: [302]
  - name: tls
    url: {t.tls_url('/ok')}
    interval: 1s
    tls_verify: false
  - name: tls-strict
    url: {t.tls_url('/ok')}
    interval: 1s
  - name: refused
    url: http://127.0.0.1:1/
    interval: 1s
  - name: tcp
    tcp: {t.tcp_address}
    interval: 1s
    send: "PING\\n"
    expect: PONG
  - name: tcp-wrong
    tcp: {t.tcp_address}
    interval: 1s
    send: "HELLO\\n"
    expect: PONG
"""

    def setUp(self):
        if not hasattr(type(self), "srv"):
            type(self).srv = self.server("--config", self.write_config(self.config))
            # Kept for the whole class: stopped in tearDownClass.
            self._cleanups.clear()

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "srv"):
            cls.srv.cleanup()
        super().tearDownClass()

    def test_a_healthy_site_reports_every_blackbox_metric(self):
        s = self.srv
        self.assertEqual(self.value(s, 'probe_success{probe="ok"}'), 1)
        self.assertEqual(self.value(s, 'probe_http_status_code{probe="ok"}'), 200)
        self.assertEqual(self.value(s, 'probe_http_content_length{probe="ok"}'),
                         len("<h1>Welcome to Espy</h1>"))
        self.assertEqual(self.value(s, 'probe_failed_due_to_regex{probe="ok"}'), 0)
        self.assertEqual(self.value(s, 'probe_http_ssl{probe="ok"}'), 0)
        self.assertEqual(self.value(s, 'probe_http_version{probe="ok"}'), 1.1)
        total = self.value(s, 'probe_duration_seconds{probe="ok"}')
        self.assertGreater(total, 0)
        self.assertLess(total, 1)
        phases = self.promql(s, 'probe_http_duration_seconds{probe="ok"}')
        self.assertEqual({dict(k)["phase"] for k in phases},
                         {"resolve", "connect", "tls", "processing", "transfer"})
        labels = dict(next(iter(self.promql(s, 'probe_success{probe="ok"}'))))
        self.assertEqual(labels, {"probe": "ok", "instance": self.targets.url("/ok"),
                                  "team": "web"})
        self.assertEqual(self.promql(s, 'probe_error{probe="ok"}'), {})

    def test_a_500_is_down_with_its_status(self):
        s = self.srv
        self.assertEqual(self.value(s, 'probe_success{probe="error500"}'), 0)
        self.assertEqual(self.value(s, 'probe_http_status_code{probe="error500"}'), 500)
        self.assertEqual(self.value(s, 'probe_error{probe="error500",reason="status_code"}'), 1)

    def test_a_closed_connection_and_a_refused_port_are_down(self):
        s = self.srv
        self.assertEqual(self.value(s, 'probe_success{probe="closes"}'), 0)
        self.assertEqual(self.value(s, 'probe_error{probe="closes"}'), 1)
        self.assertIn(("reason", "connection_closed"),
                      next(iter(self.promql(s, 'probe_error{probe="closes"}'))))
        self.assertEqual(self.value(s, 'probe_http_status_code{probe="closes"}'), 0)
        self.assertEqual(self.value(s, 'probe_error{probe="refused",reason="connect"}'), 1)

    def test_a_slow_site_times_out_without_delaying_the_others(self):
        s = self.srv
        self.assertEqual(self.value(s, 'probe_error{probe="slow",reason="timeout"}'), 1)
        duration = self.value(s, 'probe_duration_seconds{probe="slow"}')
        self.assertGreaterEqual(duration, 0.45)
        self.assertLess(duration, 1.5)
        # While the slow target holds its requests for 3 s, the 1 s probes keep their pace.
        start = self.targets.count("/ok")
        self.targets.wait_for_count("/slow", self.targets.count("/slow") + 1)
        self.targets.wait_for_count("/ok", start + 3, timeout=6)

    def test_body_regex_follows_a_changing_page(self):
        s = self.srv
        # The page alternates between green and red: both outcomes get stored.
        wait_until(lambda: self.promql(
            s, 'max_over_time(probe_failed_due_to_regex{probe="changing"}[1m])') and
            self.value(s, 'max_over_time(probe_failed_due_to_regex{probe="changing"}[1m])') == 1
            and self.value(s, 'min_over_time(probe_success{probe="changing"}[1m])') == 0
            and self.value(s, 'max_over_time(probe_success{probe="changing"}[1m])') == 1,
            "both outcomes of the changing page")
        self.assertEqual(
            self.value(s, 'max_over_time(probe_error{probe="changing",reason="body_regex"}[1m])'), 1)

    def test_redirects_are_followed_unless_told_not_to(self):
        s = self.srv
        self.assertEqual(self.value(s, 'probe_success{probe="redirect"}'), 1)
        self.assertEqual(self.value(s, 'probe_http_status_code{probe="redirect"}'), 200)
        self.assertEqual(self.value(s, 'probe_http_redirects{probe="redirect"}'), 1)
        self.assertEqual(self.value(s, 'probe_success{probe="no-follow"}'), 1)
        self.assertEqual(self.value(s, 'probe_http_status_code{probe="no-follow"}'), 302)

    def test_tls_reports_the_certificate_expiry_and_verifies_when_asked(self):
        s = self.srv
        self.assertEqual(self.value(s, 'probe_success{probe="tls"}'), 1)
        self.assertEqual(self.value(s, 'probe_http_ssl{probe="tls"}'), 1)
        expiry = self.value(s, 'probe_ssl_earliest_cert_expiry{probe="tls"}')
        self.assertAlmostEqual(expiry, time.time() + 30 * 86400, delta=3600)
        self.assertGreater(self.value(s, 'probe_http_duration_seconds{probe="tls",phase="tls"}'), 0)
        self.assertEqual(self.value(s, 'probe_error{probe="tls-strict",reason="tls"}'), 1)

    def test_tcp_send_and_expect(self):
        s = self.srv
        self.assertEqual(self.value(s, 'probe_success{probe="tcp"}'), 1)
        self.assertEqual(self.value(s, 'probe_failed_due_to_regex{probe="tcp"}'), 0)
        self.assertEqual(self.value(s, 'probe_success{probe="tcp-wrong"}'), 0)
        self.assertEqual(self.value(s, 'probe_failed_due_to_regex{probe="tcp-wrong"}'), 1)
        self.assertEqual(self.value(s, 'probe_error{probe="tcp-wrong",reason="expect"}'), 1)

    def test_checks_run_on_their_interval(self):
        # 1 s interval: 4 more requests take about 4 s (with tolerance for a loaded machine).
        n = self.targets.count("/500")
        start = time.monotonic()
        self.targets.wait_for_count("/500", n + 4, timeout=15)
        elapsed = time.monotonic() - start
        self.assertGreater(elapsed, 2.5)
        self.assertLess(elapsed, 8)

    def test_metrics_count_checks(self):
        text = wait_until(lambda: (t := self.srv.metrics_text()) and
                          'espy_probe_checks_total{kind="probe",result="failure"}' in t and t,
                          "check counters")
        self.assertIn('espy_probe_checks_total{kind="probe",result="success"}', text)
        self.assertIn("espy_probe_in_flight", text)


class CollectorTest(ProbeTestCase):
    def test_crypto_and_stock_shapes_become_labelled_series(self):
        t = self.targets
        s = self.server("--config", self.write_config(f"""
collectors:
  - name: prices
    url: {t.url('/price')}
    interval: 1s
    metrics:
      - name: crypto_price
        path: $.*.*
        labels: {{coin: $1, currency: $2}}
  - name: quotes
    url: {t.url('/quotes')}
    interval: 1s
    labels: {{market: nasdaq}}
    metrics:
      - name: stock_price
        path: $.quotes[*]
        value: .price
        labels: {{symbol: .symbol}}
      - name: stock_volume
        path: $.quotes[*]
        value: .volume
        labels: {{symbol: .symbol}}
"""))
        prices = wait_until(lambda: len(r := self.promql(s, "crypto_price")) == 4 and r, "prices")
        self.assertEqual(prices[frozenset({("collector", "prices"), ("coin", "bitcoin"),
                                           ("currency", "usd")})], 64000.5)
        self.assertEqual(prices[frozenset({("collector", "prices"), ("coin", "ethereum"),
                                           ("currency", "eur")})], 2800.5)
        quotes = wait_until(lambda: len(r := self.promql(s, "stock_price")) == 2 and r, "quotes")
        self.assertEqual(quotes[frozenset({("collector", "quotes"), ("market", "nasdaq"),
                                           ("symbol", "MSFT")})], 410.5)
        self.assertEqual(self.value(s, 'stock_volume{symbol="AAPL"}'), 1200)
        self.assertEqual(self.value(s, 'collector_success{collector="quotes"}'), 1)

    def test_secrets_come_from_the_environment_and_are_never_logged(self):
        t = self.targets
        s = self.server("--config", self.write_config(f"""
collectors:
  - name: private
    url: {t.url('/auth')}
    interval: 1s
    headers: {{Authorization: "Bearer ${{API_TOKEN}}"}}
    metrics: [{{name: private_value, path: $.value}}]
"""), env={"API_TOKEN": "s3cret"})
        self.assertEqual(self.value(s, "private_value"), 1)
        s.stop()
        self.assertNotIn("s3cret", s.log_text())

    def test_failures_are_counted_by_reason_and_logged_once(self):
        t = self.targets
        bad_json = t.url("/json?" + urllib.parse.urlencode({"body": "not json"}))
        text = t.url("/json?" + urllib.parse.urlencode({"body": '{"v": "n/a"}'}))
        s = self.server("--config", self.write_config(f"""
collectors:
  - name: broken
    url: {bad_json}
    interval: 1s
    metrics: [{{name: x, path: $.v}}]
  - name: missing
    url: {t.url('/price')}
    interval: 1s
    metrics: [{{name: y, path: $.dogecoin.usd}}]
  - name: text
    url: {text}
    interval: 1s
    metrics: [{{name: z, path: $.v}}]
  - name: status
    url: {t.url('/500')}
    interval: 1s
    metrics: [{{name: w, path: $.v}}]
"""))
        for name, reason in [("broken", "json"), ("missing", "missing_field"),
                             ("text", "not_a_number"), ("status", "http_status")]:
            wait_until(lambda: self.promql(
                s, f'collector_errors_total{{collector="{name}",reason="{reason}"}} >= 3'),
                f"3 {reason} errors of {name}")
            self.assertEqual(self.value(s, f'collector_success{{collector="{name}"}}'), 0)
            self.assertGreaterEqual(
                s.metric("collector_errors_total", collector=name, reason=reason), 3)
        # The failures are counted before they are logged, and stderr is read
        # by another thread: wait for the lines rather than read them at once.
        wait_until(lambda: 'msg="collector failing" collector=broken' in s.log_text() and
                   'collector=missing reason=missing_field' in s.log_text(),
                   "the collectors' failure lines")
        log = s.log_text()
        self.assertEqual(log.count('msg="collector failing" collector=broken'), 1, log)
        self.assertIn('collector=missing reason=missing_field err="y: nothing at $.dogecoin.usd"',
                      log)


class ReloadTest(ProbeTestCase):
    def test_reload_swaps_checks_and_a_bad_file_keeps_the_running_ones(self):
        t = self.targets
        path = self.write_config(f"""
probes:
  - name: first
    url: {t.url('/ok')}
    interval: 1s
""")
        s = self.server("--config", path)
        self.assertEqual(self.value(s, 'probe_success{probe="first"}'), 1)
        with open(path, "w") as f:
            f.write("probes:\n  - name: first\n    url: nope\n")
        status, _, body = s.request("POST", "/-/reload")
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(body)["error"],
                         f"config file {path} line 3: probes[0] \"first\": url: want an http:// or "
                         "https:// URL with a host, got \"nope\"")
        n = t.count("/ok")
        t.wait_for_count("/ok", n + 2)  # still probing with the old configuration

        with open(path, "w") as f:
            f.write(f"probes:\n  - name: second\n    tcp: {t.tcp_address}\n    interval: 1s\n")
        status, _, body = s.request("POST", "/-/reload")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), {"status": "reloaded",
                                            "checks": "1 probes, 0 collectors"})
        self.assertEqual(self.value(s, 'probe_success{probe="second"}'), 1)
        # The removed probe's series end at once (staleness marker), not 5 minutes later.
        self.assertEqual(self.promql(s, 'probe_success{probe="first"}'), {})

        with open(path, "w") as f:
            f.write(f"probes:\n  - name: third\n    url: {t.url('/ok')}\n    interval: 1s\n")
        s.signal(signal.SIGHUP)
        self.assertEqual(self.value(s, 'probe_success{probe="third"}'), 1)
        # The log is read by a thread: wait for the line rather than assume it is in.
        wait_until(lambda: s.log_text().count("msg=reloaded") >= 2, "the SIGHUP reload's log line")
        self.assertNotIn("take effect at restart", s.log_text())

        # A server setting changed in the file is reported, not applied.
        with open(path, "a") as f:
            f.write("retention: 30d\n")
        status, _, body = s.request("POST", "/-/reload")
        self.assertEqual(status, 200, body)
        wait_until(lambda: "server settings in the file changed; they take effect at restart"
                   in s.log_text(), "the restart warning")


    def test_reload_without_a_config_file_is_refused_and_the_server_keeps_running(self):
        s = self.server()
        status, _, body = s.request("POST", "/-/reload")
        self.assertEqual(status, 422)
        self.assertEqual(json.loads(body)["error"],
                         "no config file to reload (start with --config FILE)")
        s.signal(signal.SIGHUP)
        wait_until(lambda: "nothing to reload: started without --config" in s.log_text(),
                   "the SIGHUP log line")
        self.assertEqual(s.request("GET", "/healthz")[0], 200)


class CommandLineTest(ProbeTestCase):
    def test_serve_refuses_a_bad_probe_section(self):
        path = self.write_config("probes:\n  - name: a\n    url: http://x/\n    timeout: 1y\n")
        r = self.run_espy("serve", "--config", path, "--listen", "127.0.0.1:0",
                          "--data-dir", self.tmpdir())
        self.assertEqual(r.returncode, 2, r.stderr)
        # The error is a logfmt value: its quotes are escaped.
        self.assertIn(f'err="config file {path} line 4: probes[0] \\"a\\": timeout: want at most '
                      'the interval', r.stderr)

    def test_check_config(self):
        good = self.write_config(f"""
listen: 127.0.0.1:5000
probes:
  - name: home
    url: {self.targets.url('/ok')}
collectors:
  - name: prices
    url: {self.targets.url('/price')}
    metrics: [{{name: btc, path: $.bitcoin.usd}}]
""")
        r = self.run_espy("check-config", good)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, f"{good}: ok (1 probes, 1 collectors)\n")
        for text, message in [
            ("probes:\n  - name: a\n    tcp: nohost\n", "line 3: probes[0] \"a\": tcp: want host:port"),
            ("probes:\n  - name: a\n    url: http://x/\n    typo: 1\n",
             "line 4: probes[0]: typo: unknown field"),
            ("listen: nowhere\n", "--listen: want host:port"),
            ("probes: [\n", "line 2:"),
        ]:
            r = self.run_espy("check-config", self.write_config(text))
            self.assertEqual(r.returncode, 1, text)
            self.assertIn(message, r.stderr)
        r = self.run_espy("check-config", "/nonexistent.yaml")
        self.assertEqual(r.returncode, 1)
        self.assertIn('cannot read file "/nonexistent.yaml"', r.stderr)

    def test_probe_once_prints_a_table_and_fails_if_any_target_is_down(self):
        t = self.targets
        r = self.run_espy("probe", "--once", t.url("/ok"), t.tcp_address)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["TARGET", "RESULT", "STATUS", "TIME", "CERT", "ERROR"])
        self.assertEqual(lines[1].split()[:3], [t.url("/ok"), "up", "200"])
        self.assertEqual(lines[2].split()[:3], [t.tcp_address, "up", "-"])

        r = self.run_espy("probe", "--once", t.url("/500"), t.url("/ok"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("DOWN    500", r.stdout)
        self.assertIn("status_code: status 500 is not 2xx", r.stdout)

    def test_probe_once_json_and_config_probes(self):
        t = self.targets
        path = self.write_config(f"""
probes:
  - name: secure
    url: {t.tls_url('/ok')}
    tls_verify: false
  - name: other
    url: {t.url('/500')}
""")
        r = self.run_espy("probe", "--once", "--json", "--config", path, "secure")
        self.assertEqual(r.returncode, 0, r.stderr)
        [result] = json.loads(r.stdout)
        self.assertEqual(result["name"], "secure")
        self.assertTrue(result["success"])
        self.assertEqual(result["http_status"], 200)
        self.assertAlmostEqual(result["cert_expiry"], time.time() + 30 * 86400, delta=3600)
        r = self.run_espy("probe", "--once", "--json", "--config", path)
        self.assertEqual(r.returncode, 1)
        self.assertEqual([x["success"] for x in json.loads(r.stdout)], [True, False])

    def test_probe_usage_errors(self):
        r = self.run_espy("probe", "--once", "example.com")
        self.assertEqual(r.returncode, 2)
        self.assertIn('target "example.com": want an http(s):// URL or host:port', r.stderr)
        r = self.run_espy("probe", self.targets.url("/ok"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("only --once is supported", r.stderr)
        r = self.run_espy("probe", "--once")
        self.assertEqual(r.returncode, 2)
        self.assertIn("nothing to check", r.stderr)


if __name__ == "__main__":
    unittest.main()

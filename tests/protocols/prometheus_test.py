"""Prometheus (Debian's /usr/bin/prometheus) scrapes a fixed metrics page served by Python's
http.server and remote-writes the samples to Espy; the test finds them through GET /v1/metrics."""

import http.server
import os
import shutil
import tempfile
import threading
import unittest

from protocol_server import Espy, PeerProcess, free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

METRICS_TEXT = b"""# HELP espytest_requests_total Requests.
# TYPE espytest_requests_total counter
espytest_requests_total{code="200",path="/a b"} 1027
espytest_requests_total{code="500",path="/"} 3
# TYPE espytest_temperature gauge
espytest_temperature -12.5
"""


class MetricsHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(METRICS_TEXT)))
        self.end_headers()
        self.wfile.write(METRICS_TEXT)

    def log_message(self, *args):
        pass


class PrometheusRemoteWriteTest(unittest.TestCase):
    def setUp(self):
        self.espy = Espy(graphite=False)
        self.addCleanup(self.espy.close)
        self.target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MetricsHandler)
        threading.Thread(target=self.target.serve_forever, daemon=True).start()
        self.addCleanup(self.target.server_close)
        self.addCleanup(self.target.shutdown)
        self.tmp = tempfile.mkdtemp(prefix="espy-prometheus-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_scraped_samples_arrive_by_remote_write(self):
        target_port = self.target.server_address[1]
        config = os.path.join(self.tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""
global:
  scrape_interval: 1s
  external_labels:
    replica: r1
scrape_configs:
  - job_name: espytest
    static_configs:
      - targets: ["127.0.0.1:{target_port}"]
        labels:
          team: infra
remote_write:
  - url: {self.espy.url('/api/v1/write')}
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
""")
        prom = PeerProcess(self, [PROMETHEUS, "--config.file=" + config,
                                  "--storage.tsdb.path=" + os.path.join(self.tmp, "data"),
                                  f"--web.listen-address=127.0.0.1:{free_port()}"],
                           os.path.join(self.tmp, "prometheus.log"))

        try:
            rows = self.espy.wait_for_samples("espytest_requests_total", code="200")
            temp = self.espy.wait_for_samples("espytest_temperature")
            up = self.espy.wait_for_samples("up", job="espytest")
        except AssertionError:
            raise AssertionError("prometheus log:\n" + prom.tail())
        r = rows[0]
        self.assertEqual(1027, r["value"])
        self.assertEqual({"name": "espytest_requests_total", "code": "200", "path": "/a b",
                          "job": "espytest", "instance": f"127.0.0.1:{target_port}",
                          "team": "infra", "replica": "r1"},
                         {k: v for k, v in r.items() if k not in ("value", "ts")})
        self.assertEqual(-12.5, temp[0]["value"])
        self.assertEqual(1, up[0]["value"])
        self.assertGreaterEqual(
            self.espy.self_metric('espy_samples_ingested_total{protocol="remote_write"}'), 3)


if __name__ == "__main__":
    unittest.main()

"""Replays what Grafana's Prometheus data source sends (health check `1+1`, buildinfo, labels,
label values, series, metadata, instant and range queries as GET and as POST forms) against the
real binary, and checks Prometheus's JSON envelopes, value formats and error shapes."""

import json
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from espy_server import EspyTestCase  # noqa: E402

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class GrafanaPrometheusApiTest(EspyTestCase):
    @classmethod
    def setUpClass(cls):
        # Whole seconds, a minute ago, so every sample is inside the 5m lookback.
        cls.t0 = int(time.time()) - 600

    def setUp(self):
        self.espy = self.server()
        points = []
        for i in range(10):  # every 30s from t0: counter +10 per step
            ts = self.t0 + 30 * i
            points.append({"name": "http_requests_total", "value": 10 * i, "ts": ts,
                           "job": "api", "instance": "a:1"})
            points.append({"name": "http_requests_total", "value": 20 * i, "ts": ts,
                           "job": "api", "instance": "b:1"})
            points.append({"name": "temperature", "value": -1.5, "ts": ts, "room": "lab"})
        status, body = self.espy.post_metrics(points)
        self.assertEqual(status, 202, body)

    def get(self, path, **params):
        if params:
            path += "?" + urllib.parse.urlencode(params, doseq=True)
        status, headers, body = self.espy.request("GET", path)
        return status, headers, json.loads(body)

    def post(self, path, **params):
        status, headers, body = self.espy.request(
            "POST", path, urllib.parse.urlencode(params, doseq=True).encode(), FORM)
        return status, headers, json.loads(body)

    def assertSuccess(self, status, headers, body):
        self.assertEqual(status, 200, body)
        self.assertTrue(headers["content-type"].startswith("application/json"))
        self.assertEqual(body["status"], "success", body)
        return body["data"]

    def test_health_check_query_one_plus_one(self):
        now = time.time()
        for send in (self.get, self.post):
            data = self.assertSuccess(*send("/api/v1/query", query="1+1", time=f"{now:.3f}"))
            self.assertEqual(data["resultType"], "scalar")
            ts, value = data["result"]
            self.assertAlmostEqual(ts, now, places=2)
            self.assertEqual(value, "2")

    def test_buildinfo_reports_a_prometheus_version(self):
        data = self.assertSuccess(*self.get("/api/v1/status/buildinfo"))
        major, minor = data["version"].split(".")[:2]
        self.assertGreaterEqual((int(major), int(minor)), (2, 42))
        for key in ("revision", "branch", "buildUser", "buildDate", "goVersion"):
            self.assertIn(key, data)

    def test_labels_and_label_values(self):
        start, end = self.t0 - 60, self.t0 + 600
        data = self.assertSuccess(*self.get("/api/v1/labels", start=start, end=end))
        self.assertEqual(data, ["__name__", "instance", "job", "room"])
        data = self.assertSuccess(*self.post("/api/v1/labels", **{"match[]": "temperature"}))
        self.assertEqual(data, ["__name__", "room"])
        data = self.assertSuccess(*self.get("/api/v1/label/__name__/values", start=start, end=end))
        self.assertEqual(data, ["http_requests_total", "temperature"])
        data = self.assertSuccess(*self.get("/api/v1/label/instance/values",
                                            **{"match[]": 'http_requests_total{job="api"}'}))
        self.assertEqual(data, ["a:1", "b:1"])
        data = self.assertSuccess(*self.get("/api/v1/label/nope/values"))
        self.assertEqual(data, [])

    def test_series_by_match_and_time_range(self):
        data = self.assertSuccess(*self.get(
            "/api/v1/series", **{"match[]": ["http_requests_total", "temperature"]},
            start=self.t0, end=self.t0 + 600))
        self.assertEqual(data, [
            {"__name__": "http_requests_total", "instance": "a:1", "job": "api"},
            {"__name__": "http_requests_total", "instance": "b:1", "job": "api"},
            {"__name__": "temperature", "room": "lab"},
        ])
        # Nothing written before t0.
        data = self.assertSuccess(*self.get("/api/v1/series", **{"match[]": "temperature"},
                                            start=self.t0 - 100, end=self.t0 - 1))
        self.assertEqual(data, [])

    def test_metadata_and_exemplar_envelopes(self):
        data = self.assertSuccess(*self.get("/api/v1/metadata"))
        self.assertEqual(data, {})
        data = self.assertSuccess(*self.post("/api/v1/query_exemplars", query="temperature",
                                             start=self.t0, end=self.t0 + 600))
        self.assertEqual(data, [])

    def test_query_range_with_step(self):
        start, end = self.t0 + 60, self.t0 + 240
        data = self.assertSuccess(*self.post(
            "/api/v1/query_range", query="sum by (job) (rate(http_requests_total[1m]))",
            start=start, end=end, step=60))
        self.assertEqual(data["resultType"], "matrix")
        self.assertEqual(len(data["result"]), 1)
        series = data["result"][0]
        self.assertEqual(series["metric"], {"job": "api"})
        self.assertEqual([p[0] for p in series["values"]], [start, start + 60, start + 120,
                                                             start + 180])
        # 10/30s + 20/30s = 1 per second.
        self.assertEqual({p[1] for p in series["values"]}, {"1"})
        # Durations as step, RFC 3339 times.
        rfc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
        data = self.assertSuccess(*self.get("/api/v1/query_range", query="temperature",
                                            start=rfc, end=end, step="1m30s"))
        self.assertEqual(data["result"][0]["values"][0], [start, "-1.5"])
        self.assertEqual(len(data["result"][0]["values"]), 3)

    def test_instant_vector_format(self):
        t = self.t0 + 270.5
        data = self.assertSuccess(*self.get("/api/v1/query", query="http_requests_total / 0",
                                            time=t))
        self.assertEqual(data["resultType"], "vector")
        self.assertEqual(data["result"][0]["value"], [t, "+Inf"])
        data = self.assertSuccess(*self.get("/api/v1/query", query="temperature[1m]",
                                            time=self.t0 + 60))
        self.assertEqual(data["resultType"], "matrix")
        self.assertEqual(data["result"][0]["values"],
                         [[self.t0, "-1.5"], [self.t0 + 30, "-1.5"], [self.t0 + 60, "-1.5"]])

    def test_errors_use_prometheus_shapes_and_codes(self):
        cases = [
            ("/api/v1/query", {"query": "sum("}, 400, "bad_data"),
            ("/api/v1/query", {"query": "up", "time": "yesterday"}, 400, "bad_data"),
            ("/api/v1/query_range", {"query": "up", "start": 0, "end": 100000, "step": 1}, 400,
             "bad_data"),
            ("/api/v1/query_range", {"query": "up", "start": 10, "end": 0, "step": 1}, 400,
             "bad_data"),
            ("/api/v1/query", {"query": 'label_replace(temperature, "d", "", "room", "(")'}, 422,
             "execution"),
            ("/api/v1/series", {}, 400, "bad_data"),
        ]
        for path, params, code, error_type in cases:
            status, _, body = self.get(path, **params)
            self.assertEqual(status, code, (path, params, body))
            self.assertEqual(body["status"], "error")
            self.assertEqual(body["errorType"], error_type)
            self.assertTrue(body["error"], body)

    def test_format_query(self):
        data = self.assertSuccess(*self.get("/api/v1/format_query",
                                            query="sum(rate(x[5m]))by(job)"))
        self.assertEqual(data, "sum by (job) (rate(x[5m]))")

    def test_tsdb_status_counts_series(self):
        data = self.assertSuccess(*self.get("/api/v1/status/tsdb"))
        self.assertEqual(data["headStats"]["numSeries"], 3)
        # Every sample is in a chunk: at least one per series, all of them still in the head.
        self.assertEqual(data["headStats"]["numSamples"], 30)
        self.assertGreaterEqual(data["headStats"]["chunkCount"], 3)
        self.assertEqual(data["headStats"]["chunkCount"], self.espy.metric("espy_head_chunks"))
        self.assertEqual(data["seriesCountByMetricName"][0],
                         {"name": "http_requests_total", "value": 2})


if __name__ == "__main__":
    unittest.main()

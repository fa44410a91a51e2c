"""End-to-end tests of GET/POST /api/v1/export (VictoriaMetrics's raw export format): every raw
sample of the matching series, one JSON object per series and line, streamed in chunks and not
limited by --query-max-samples; bad parameters get 400."""

import json
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from espy_server import EspyTestCase  # noqa: E402


class ExportTest(EspyTestCase):
    def export(self, server, params, method="GET"):
        query = urllib.parse.urlencode(params, doseq=True)
        if method == "GET":
            return server.request("GET", "/api/v1/export?" + query)
        return server.request("POST", "/api/v1/export", query.encode(),
                              {"Content-Type": "application/x-www-form-urlencoded"})

    def test_exports_raw_samples_per_series(self):
        server = self.server()
        points = [{"name": "cpu", "host": h, "ts": 1700000000 + i * 10, "value": v}
                  for h, base in (("a", 1.5), ("b", 100)) for i, v in
                  enumerate([base, base + 0.25, base * 2])]
        points.append({"name": "mem", "host": "a", "ts": 1700000000, "value": 7})
        status, body = server.post_metrics(points)
        self.assertEqual(202, status, body)
        for method in ("GET", "POST"):
            status, headers, body = self.export(server, {"match[]": ['cpu{host=~"a|b"}']},
                                                method)
            self.assertEqual(200, status, body)
            self.assertEqual("application/stream+json", headers["content-type"])
            lines = [json.loads(line) for line in body.decode().splitlines()]
            self.assertEqual([
                {"metric": {"__name__": "cpu", "host": "a"}, "values": [1.5, 1.75, 3],
                 "timestamps": [1700000000000, 1700000010000, 1700000020000]},
                {"metric": {"__name__": "cpu", "host": "b"}, "values": [100, 100.25, 200],
                 "timestamps": [1700000000000, 1700000010000, 1700000020000]},
            ], lines)
        # start/end bound the samples; several match[] are a union.
        status, _, body = self.export(server, {"match[]": ["cpu", "mem"], "start": 1700000005,
                                               "end": 1700000010})
        self.assertEqual(200, status, body)
        lines = [json.loads(line) for line in body.decode().splitlines()]
        self.assertEqual([[1.75], [100.25]], [line["values"] for line in lines])

    def test_bad_parameters(self):
        server = self.server()
        status, body = server.post_metrics([{"name": "x", "ts": 1700000000 + i, "value": i}
                                            for i in range(10)])
        self.assertEqual(202, status, body)
        for params, want in (({}, "no match[] parameter provided"),
                             ({"match[]": "x", "start": "soon"}, 'invalid parameter "start"'),
                             ({"match[]": "x", "start": 1700000010, "end": 1700000000},
                              "end timestamp must not be before start time"),
                             ({"match[]": "x{"}, 'invalid parameter "match[]"')):
            status, _, body = self.export(server, params)
            self.assertEqual(400, status, body)
            doc = json.loads(body)
            self.assertEqual("bad_data", doc["errorType"])
            self.assertIn(want, doc["error"])
        status, _, body = self.export(server, {"match[]": "x", "end": 1700000003})
        self.assertEqual(200, status, body)
        self.assertEqual([0, 1, 2, 3], json.loads(body)["values"])

    def test_large_export_streams_past_the_query_sample_limit(self):
        # 200 series x 2,000 samples, about 5 MB of JSON: several pieces.
        server = self.server("--query-max-samples", "1000")
        for h in range(200):
            status, body = server.post_metrics(
                [{"name": "big", "host": "h%03d" % h, "ts": 1700000000 + i * 10,
                  "value": h + i / 4} for i in range(2000)])
            self.assertEqual(202, status, body)
        status, headers, body = self.export(server, {"match[]": "big"})
        self.assertEqual(200, status, body[:200])
        self.assertEqual("chunked", headers.get("transfer-encoding"))
        lines = [json.loads(line) for line in body.decode().splitlines()]
        self.assertEqual(["h%03d" % h for h in range(200)],
                         [line["metric"]["host"] for line in lines])
        for h, line in enumerate(lines):
            self.assertEqual([h + i / 4 for i in range(2000)], line["values"])
            self.assertEqual([(1700000000 + i * 10) * 1000 for i in range(2000)],
                             line["timestamps"])
        # The same limit still applies to PromQL.
        status, _, body = server.request("GET", "/api/v1/query?query=big[1y]&time=1700030000")
        self.assertEqual(422, status, body)

if __name__ == "__main__":
    unittest.main()

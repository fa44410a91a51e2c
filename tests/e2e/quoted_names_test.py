"""Names PromQL cannot write bare, end to end: a JSON write of the metric "cpu usage%" with the
label "my-label" is read back with Prometheus 3's quoted-name syntax ({"cpu usage%",
"my-label"="x"}, by ("my-label")) over /api/v1/query, /api/v1/query_range and /api/v1/series,
and through the live stream's selector; the query echoes and errors quote such names."""

import json
import os
import sys
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "stream"))
from espy_server import EspyTestCase  # noqa: E402
from wsclient import HandshakeError, WsClient  # noqa: E402

T0 = 1_700_000_000  # epoch seconds of the test points


class QuotedNamesTest(EspyTestCase):
    def setUp(self):
        self.espy = self.server()
        points = []
        for i in range(5):
            for label, value in (("x", 10), ("y", 20)):
                points.append({"name": "cpu usage%", "my-label": label, "host": "a",
                               "value": value + i, "ts": T0 + 60 * i})
            points.append({"name": "cpu", "my-label": "x", "value": 1, "ts": T0 + 60 * i})
        status, body = self.espy.post_metrics(points)
        self.assertEqual(202, status, body)

    def api(self, path, **params):
        query = urllib.parse.urlencode(params, doseq=True)
        status, _, body = self.espy.request("GET", f"{path}?{query}")
        return status, json.loads(body)

    def instant(self, q, t=T0 + 240):
        status, body = self.api("/api/v1/query", query=q, time=t)
        self.assertEqual(200, status, body)
        return {json.dumps(s["metric"], sort_keys=True): s["value"][1]
                for s in body["data"]["result"]}

    def test_selects_by_quoted_metric_and_label_names(self):
        got = self.instant('{"cpu usage%", "my-label"="x"}')
        self.assertEqual(
            {json.dumps({"__name__": "cpu usage%", "host": "a", "my-label": "x"},
                        sort_keys=True): "14"}, got)
        # The quoted name is the same matcher as __name__="...".
        self.assertEqual(got, self.instant('{__name__="cpu usage%", "my-label"="x"}'))
        self.assertEqual(2, len(self.instant('{"cpu usage%"}')))
        self.assertEqual(3, len(self.instant('{"my-label"=~"x|y"}')))
        self.assertEqual(1, len(self.instant('{"cpu usage%", "my-label"!="x"}')))
        self.assertEqual({'{"my-label": "x"}': "15", '{"my-label": "y"}': "24"},
                         self.instant('sum by ("my-label") ({"my-label"=~".+"})'))
        self.assertEqual({'{"host": "a"}': "38"},
                         self.instant('sum without ("my-label") ({"cpu usage%"})'))
        # Vector matching on a quoted label.
        self.assertEqual(
            {json.dumps({"host": "a", "my-label": "x"}, sort_keys=True): "14"},
            self.instant('{"cpu usage%"} * on ("my-label") group_left () cpu'))
        self.assertEqual(
            {json.dumps({"__name__": "cpu usage%", "host": "a", "my-label": "y"},
                        sort_keys=True): "24"},
            self.instant('{"cpu usage%"} unless ignoring ("host") cpu'))

    def test_range_query_and_series(self):
        status, body = self.api("/api/v1/query_range", query='rate({"cpu usage%"}[3m])',
                                start=T0 + 120, end=T0 + 240, step=60)
        self.assertEqual(200, status, body)
        series = {s["metric"]["my-label"]: s["values"] for s in body["data"]["result"]}
        self.assertEqual(["x", "y"], sorted(series))
        self.assertEqual(3, len(series["x"]))

        status, body = self.api("/api/v1/series", **{"match[]": '{"cpu usage%", "my-label"="y"}',
                                                     "start": T0, "end": T0 + 300})
        self.assertEqual(200, status, body)
        self.assertEqual([{"__name__": "cpu usage%", "host": "a", "my-label": "y"}],
                         body["data"])

    def test_printed_forms_quote_the_names(self):
        status, body = self.api("/api/v1/format_query",
                                query='sum by ("my-label") ({"cpu usage%", "my-label"!="z"})')
        self.assertEqual(200, status, body)
        self.assertEqual('sum by ("my-label") ({"my-label"!="z",__name__="cpu usage%"})',
                         body["data"])
        # An error that prints label sets writes them as selectors PromQL reads.
        status, body = self.api("/api/v1/query",
                                query='{"cpu usage%"} * on ("host") group_left {"cpu usage%"}',
                                time=T0 + 240)
        self.assertEqual(422, status, body)
        self.assertIn('{host="a"}', body["error"])
        self.assertIn('"my-label"="', body["error"])
        # Unquoted, the name is still a parse error, at the '-'.
        status, body = self.api("/api/v1/query", query='cpu{my-label="x"}')
        self.assertEqual(400, status, body)
        self.assertIn("unexpected", body["error"])
        status, body = self.api("/api/v1/query", query='sum by ("") (cpu)')
        self.assertEqual(400, status, body)
        self.assertIn('invalid label name for grouping: ""', body["error"])

    def test_stream_selector_with_quoted_names(self):
        match = urllib.parse.quote('{"cpu usage%", "my-label"="x"}')
        client = WsClient(self.espy.port, f"/v1/stream?match={match}")
        self.addCleanup(client.close)
        while True:
            msg = client.recv_json()
            if isinstance(msg, dict) and "subscribed" in msg:
                break
        status, body = self.espy.post_metrics([
            {"name": "cpu usage%", "my-label": "y", "value": 1, "ts": T0 + 600},
            {"name": "cpu", "my-label": "x", "value": 2, "ts": T0 + 600},
            {"name": "cpu usage%", "my-label": "x", "value": 3, "ts": T0 + 600},
        ])
        self.assertEqual(202, status, body)
        points = []
        while not points:
            msg = client.recv_json()
            if isinstance(msg, list):
                points.extend(msg)
        # One batch: had the selector let "y" or "cpu" through, they would be in it.
        self.assertEqual([3], [p["value"] for p in points])
        self.assertEqual("cpu usage%", points[0]["name"])
        self.assertEqual("x", points[0]["my-label"])

        with self.assertRaises(HandshakeError) as e:
            WsClient(self.espy.port,
                     "/v1/stream?match=" + urllib.parse.quote('{"cpu usage%", ""="x"}'))
        self.assertEqual(400, e.exception.status)
        self.assertIn("invalid label name", json.loads(e.exception.body)["error"])

if __name__ == "__main__":
    unittest.main()

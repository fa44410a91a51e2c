"""GET /v1/metrics with step and agg against the real binary: one aggregated point per series per
step bucket, in (ts, series) order, and clear 400s for bad parameters."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from espy_server import EspyTestCase  # noqa: E402


class V1MetricsStepTest(EspyTestCase):
    def setUp(self):
        self.espy = self.server()
        points = [{"name": "c", "value": v, "ts": 1700000000 + 10 * i, "job": "a"}
                  for i, v in enumerate([0, 10, 20, 5, 15, 25])]
        points.append({"name": "c", "value": 7, "ts": 1700000015, "job": "b"})
        status, body = self.espy.post_metrics(points)
        self.assertEqual(status, 202, body)

    def get(self, **params):
        params = {"name": "c", "sts": 1700000000, "ets": 1700000059, **params}
        return self.espy.get_metrics(params)

    def test_each_aggregation(self):
        expected = {
            "avg": [10, 7, 15], "min": [0, 7, 5], "max": [20, 7, 25], "sum": [30, 7, 45],
            "count": [3, 1, 3], "last": [20, 7, 25],
        }
        for agg, values in expected.items():
            status, _, body = self.get(step="30s", agg=agg)
            self.assertEqual(status, 200, body)
            self.assertEqual([p["value"] for p in body], values, agg)
            self.assertEqual([p["ts"] for p in body], ["2023-11-14T22:13:20.000Z"] * 2 +
                             ["2023-11-14T22:13:50.000Z"])
            self.assertEqual([p["job"] for p in body], ["a", "b", "a"])

    def test_rate_handles_counter_resets(self):
        status, _, body = self.get(step="30s", agg="rate")
        self.assertEqual(status, 200, body)
        self.assertAlmostEqual(body[0]["value"], 20 / 30)
        self.assertAlmostEqual(body[2]["value"], 25 / 30)  # 20 -> 5 is a reset

    def test_bad_parameters(self):
        for params, word in [({"step": "0s"}, "step"), ({"step": "xyz"}, "step"),
                             ({"step": "30s", "agg": "median"}, "agg"),
                             ({"step": "30s", "sts": None}, "sts"),
                             ({"step": "1s", "limit": 2}, "step")]:
            p = {k: v for k, v in {"name": "c", "sts": 1700000000, **params}.items()
                 if v is not None}
            status, _, body = self.espy.get_metrics(p)
            self.assertEqual(status, 400, (params, body))
            self.assertIn(word, body["error"])


if __name__ == "__main__":
    unittest.main()

"""End-to-end test of the range-query cache: a dashboard's sliding window reuses cached steps,
answers exactly as without the cache, and a late write into cached time shows at once."""

import json
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from espy_server import EspyTestCase  # noqa: E402

STEP = 60


class QueryCacheTest(EspyTestCase):
    def range_query(self, server, query, start, end, **extra):
        params = dict(query=query, start=start, end=end, step=STEP, **extra)
        status, _, body = server.request("GET", "/api/v1/query_range?"
                                         + urllib.parse.urlencode(params))
        self.assertEqual(200, status, body)
        return json.loads(body)["data"]["result"]

    def test_sliding_window_hits_the_cache_and_late_writes_show(self):
        server = self.server()
        # Three hours of a counter per host, ending an hour ago: older than the cache's
        # five-minute "recent" window, so every step of the queries below may be kept.
        end = (int(time.time()) - 3600) // STEP * STEP
        start = end - 3 * 3600
        points = [{"name": "req", "host": h, "ts": t, "value": (t - start) * (1 + i)}
                  for i, h in enumerate(["a", "b"]) for t in range(start, end + 1, 15)]
        status, body = server.post_metrics(points)
        self.assertEqual(202, status, body)
        query = "sum by (host) (rate(req[5m]))"
        first = self.range_query(server, query, start + 3600, end)
        self.assertEqual(1, server.metric("espy_query_cache_misses_total"))
        for shift in (STEP, 2 * STEP, 10 * STEP):
            got = self.range_query(server, query, start + 3600 + shift, end)
            fresh = self.range_query(server, query, start + 3600 + shift, end, nocache=1)
            self.assertEqual(fresh, got)
        self.assertEqual(3, server.metric("espy_query_cache_hits_total"))
        self.assertGreater(server.metric("espy_query_cache_bytes"), 0)
        # A late sample inside cached steps: the next answer has it.
        late = start + 2 * 3600 + 7
        status, body = server.post_metrics({"name": "req", "host": "a", "ts": late,
                                            "value": 10 ** 9})
        self.assertEqual(202, status, body)
        got = self.range_query(server, query, start + 3600, end)
        self.assertEqual(self.range_query(server, query, start + 3600, end, nocache=1), got)
        self.assertNotEqual(first, got)


if __name__ == "__main__":
    unittest.main()

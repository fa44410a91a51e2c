"""End-to-end test of the query pool: PromQL queries run on their own threads, so a slow query
holds none of the threads that serve HTTP, and its timeout still ends it."""

import json
import os
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from espy_server import EspyTestCase, wait_until  # noqa: E402

# About 750 million window steps: seconds of work, on 170,000 points of memory.
SLOW_QUERY = "stddev_over_time(vector(1)[1d:1s])"


class QueryPoolTest(EspyTestCase):
    def test_slow_query_leaves_http_free_and_times_out(self):
        # One HTTP thread and one query thread: without the pool, the slow query would hold the
        # only thread that could answer /metrics and /healthz.
        server = self.server("--threads", "1", "--query-max-concurrency", "1",
                             "--query-timeout", "2s")
        now = int(time.time())
        params = urllib.parse.urlencode({"query": SLOW_QUERY, "start": now - 86400, "end": now,
                                         "step": 10})
        results = []

        def run():
            results.append(server.request("GET", "/api/v1/query_range?" + params, timeout=60))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        self.addCleanup(lambda: [t.join() for t in threads])
        # One runs, the other waits for the query thread; HTTP answers meanwhile.
        wait_until("one query running and one waiting",
                   lambda: server.metric("espy_queries_running") == 1
                   and server.metric("espy_queries_waiting") == 1, timeout=30)
        status, _, body = server.request("GET", "/healthz", timeout=5)
        self.assertEqual(200, status, body)
        for t in threads:
            t.join()
        for status, _, body in results:
            self.assertEqual(503, status, body)
            doc = json.loads(body)
            self.assertEqual("timeout", doc["errorType"], doc)
        # A query thread counts itself done just after it has sent its answer.
        wait_until("no query running or waiting",
                   lambda: server.metric("espy_queries_running") == 0
                   and server.metric("espy_queries_waiting") == 0, timeout=30)


if __name__ == "__main__":
    unittest.main()

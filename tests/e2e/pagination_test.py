"""End-to-end tests of GET /v1/metrics paging: 100,000 points read back a page at a time through
the Link: <...>; rel="next" header, with and without writes landing during the read."""

import datetime
import json
import os
import sys
import threading
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from espy_server import EspyServer, next_link, send  # noqa: E402

SERIES = 100
STEPS = 1000  # timestamps per series
TOTAL = SERIES * STEPS
BATCH = 10_000
BASE = 1_577_836_800  # 2020-01-01T00:00:00Z, epoch seconds
END_ISO = "2020-01-01T00:16:39.000Z"  # BASE + STEPS - 1
LATER = BASE + 100_000  # where concurrent writers write


def iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")


def point_key(p):
    return (p["ts"], p["s"])


class PaginationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = EspyServer(start=False)
        try:
            cls.srv.start()
            # Batch b holds timestamps [b*10, b*10+10) of every series, series in name order;
            # the first batch thus creates the series s000..s099 in that order.
            steps_per_batch = BATCH // SERIES
            for b in range(STEPS // steps_per_batch):
                items = [{"name": "page", "value": s * STEPS + i, "ts": BASE + i, "s": f"s{s:03d}"}
                         for i in range(b * steps_per_batch, (b + 1) * steps_per_batch)
                         for s in range(SERIES)]
                status, body = cls.srv.post_metrics(items)
                assert (status, body) == (202, {"accepted": BATCH}), (status, body)
        except BaseException:
            cls.srv.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def read_pages(self, path, on_page=None):
        """Follows Link headers from `path` on one keep-alive connection: list of pages."""
        conn = self.srv.connection()
        self.addCleanup(conn.close)
        pages = []
        while path is not None:
            status, headers, body = send(conn, "GET", path)
            self.assertEqual(status, 200, body[:200])
            pages.append(json.loads(body))
            nxt = next_link(headers)
            if nxt is not None:
                self.assertRegex(headers["link"], r'^<[^>]+>; rel="next"$')
            path = nxt
            if on_page:
                on_page(len(pages))
        return pages

    def assertOriginalPointsOnceInOrder(self, points):
        """Every original point exactly once, in (ts, series) order with one consistent series
        order at every timestamp; values intact."""
        original = [p for p in points if p["ts"] <= END_ISO]
        keys = [point_key(p) for p in original]
        self.assertEqual(len(keys), len(set(keys)), "a point came back twice")
        self.assertEqual(len(original), TOTAL, "points missing")
        # Sorted by ts; within one ts, series in the same order every time (series order is the
        # server's, by series id; here creation order s000..s099).
        series_order = [p["s"] for p in original[:SERIES]]
        self.assertEqual(sorted(series_order), [f"s{s:03d}" for s in range(SERIES)])
        for i in range(STEPS):
            chunk = original[i * SERIES:(i + 1) * SERIES]
            self.assertEqual({p["ts"] for p in chunk}, {iso(BASE + i)}, f"timestamp {i}")
            self.assertEqual([p["s"] for p in chunk], series_order, f"series order at ts {i}")
            for p in chunk:
                self.assertEqual(p["value"], int(p["s"][1:]) * STEPS + i)

    def test_pages_follow_link_headers_over_all_points(self):
        pages = self.read_pages(f"/v1/metrics?name=page&ets={END_ISO}&limit=10000")
        self.assertEqual(len(pages), TOTAL // 10_000)
        self.assertTrue(all(len(p) == 10_000 for p in pages), [len(p) for p in pages])
        self.assertOriginalPointsOnceInOrder([p for page in pages for p in page])

    def test_uneven_pages_and_filters_survive_in_the_link(self):
        # A filtered, bounded query: the next links must keep name, s, sts, ets and limit.
        path = "/v1/metrics?" + urllib.parse.urlencode(
            {"name": "page", "s": "s042", "sts": iso(BASE + 10), "ets": iso(BASE + 709),
             "limit": "64"})
        pages = self.read_pages(path)
        points = [p for page in pages for p in page]
        self.assertEqual(len(pages), (700 + 63) // 64)
        self.assertEqual(len(pages[-1]), 700 % 64)
        self.assertEqual([p["value"] for p in points], [42 * STEPS + i for i in range(10, 710)])
        self.assertTrue(all(p["s"] == "s042" and p["name"] == "page" for p in points))

    def test_default_limit_is_10000(self):
        status, headers, body = self.srv.get_metrics({"name": "page"})
        self.assertEqual(status, 200)
        self.assertEqual(len(body), 10_000)
        self.assertIn("link", headers)

    def test_limit_is_capped_at_100000(self):
        # One point beyond the original range makes TOTAL + 1 (or more) points in all.
        status, _ = self.srv.post_metrics(
            {"name": "page", "value": 0, "ts": LATER + 10**6, "s": "x"})
        self.assertEqual(status, 202)
        status, headers, body = self.srv.get_metrics({"name": "page", "limit": "1000000"})
        self.assertEqual(status, 200)
        self.assertEqual(len(body), 100_000)
        self.assertIn("link", headers)

    def test_last_page_has_no_link(self):
        status, headers, body = self.srv.get_metrics(
            {"name": "page", "s": "s001", "ets": END_ISO, "limit": str(STEPS)})
        self.assertEqual((status, len(body)), (200, STEPS))
        self.assertNotIn("link", headers)

    def test_writes_during_paging_neither_repeat_nor_skip_points(self):
        # A writer adds points for old and new series in a later time range while the reader
        # pages through everything (no ets): the original points must come back exactly once.
        stop = threading.Event()
        first_write = threading.Event()
        written = []
        errors = []

        def writer():
            n = 0
            try:
                while not stop.is_set():
                    items = [{"name": "page", "value": n, "ts": LATER + n, "s": f"s{s:03d}"}
                             for s in range(0, SERIES, 10)]
                    items.append({"name": "page", "value": n, "ts": LATER + n, "s": f"new{n}"})
                    status, body = self.srv.post_metrics(items)
                    if status != 202:
                        raise AssertionError(f"POST during paging: {status} {body}")
                    with progress:
                        written.append(n)
                        progress.notify_all()
                    n += 1
                    first_write.set()
            except Exception as e:  # reported by the main thread
                with progress:
                    errors.append(e)
                    progress.notify_all()
                first_write.set()

        progress = threading.Condition()
        writes_at_page = {}

        def on_page(n):
            # After the first page, hold the reader until a new write has landed, so writes
            # certainly happen between the pages read.
            with progress:
                writes_at_page[n] = len(written)
                if n == 1:
                    self.assertTrue(progress.wait_for(lambda: len(written) > writes_at_page[1]
                                                      or errors, 60))

        t = threading.Thread(target=writer)
        t.start()
        try:
            self.assertTrue(first_write.wait(60), "writer never wrote")
            pages = self.read_pages("/v1/metrics?name=page&limit=10000", on_page=on_page)
        finally:
            stop.set()
            t.join(60)
        self.assertEqual(errors, [])
        self.assertGreater(len(written), writes_at_page[1], "no write landed while paging")
        points = [p for page in pages for p in page]
        keys = [point_key(p) for p in points]
        self.assertEqual(len(keys), len(set(keys)), "a point came back twice")
        self.assertEqual([p["ts"] for p in points], sorted(p["ts"] for p in points))
        self.assertOriginalPointsOnceInOrder(points)
        # Points written before paging began are all there too.
        later = {(p["ts"], p["s"]) for p in points if p["ts"] > END_ISO}
        self.assertIn((iso(LATER), "s000"), later)
        self.assertIn((iso(LATER), "new0"), later)

    def test_bad_cursor_is_400(self):
        for cursor in ("nonsense", "", "_1", "1_", "1_0", "zz_1", "1_1_1",
                       "8000000000000000_1"):
            with self.subTest(cursor=cursor):
                status, _, body = self.srv.get_metrics({"name": "page", "cursor": cursor})
                self.assertEqual(status, 400)
                self.assertIn("cursor", body["error"])

    def test_cursor_past_the_end_gives_an_empty_page(self):
        # Take a real cursor from the last full page of one series, then read past its end.
        status, headers, body = self.srv.get_metrics(
            {"name": "page", "s": "s003", "ets": END_ISO, "limit": str(STEPS - 1)})
        self.assertEqual((status, len(body)), (200, STEPS - 1))
        status, headers, body = self.srv.get_metrics(
            {"name": "page", "s": "s003", "ets": END_ISO, "limit": str(STEPS - 1),
             "cursor": urllib.parse.parse_qs(urllib.parse.urlsplit(
                 next_link(headers)).query)["cursor"][0]})
        self.assertEqual(status, 200)
        self.assertEqual([p["value"] for p in body], [3 * STEPS + STEPS - 1])
        self.assertNotIn("link", headers)


if __name__ == "__main__":
    unittest.main()

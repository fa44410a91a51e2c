"""End-to-end durability tests: writers POST batches while the server is killed with SIGKILL (or
stopped with SIGTERM); after a restart on the same data dir every acknowledged batch is there in
full and no batch is there in part."""

import collections
import datetime
import http.client
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from espy_server import EspyTestCase  # noqa: E402

K = 25  # samples per batch
WRITERS = 4
ROUNDS = 5
ACKS_BEFORE_KILL = 40  # batches acknowledged in a round before the kill
BASE = 1_577_836_800  # 2020-01-01T00:00:00Z


def batch_items(batch_id):
    return [{"name": "crash", "value": j, "ts": BASE + j, "batch": batch_id} for j in range(K)]


def influx_batch(prefix, w, n):
    """Influx lines for batch n of writer w: the same K series in every batch (so the series
    cache finds them from the third batch on), one timestamp per batch."""
    return "".join(f"crashinflux,r={prefix},w={w},slot={j} value={j} {BASE + n}\n"
                   for j in range(K)).encode()


def post_influx(server, prefix, w, n):
    status, _, body = server.request("POST", "/write?precision=s", influx_batch(prefix, w, n),
                                     {"Content-Type": "text/plain"}, timeout=30)
    return status, body


class Writers:
    """WRITERS threads POSTing batches with unique ids until told to stop or the server goes
    away. Records which batches were sent and which were acknowledged (202). Thread-safe."""

    def __init__(self, server, prefix, influx=False):
        self.server = server
        self.prefix = prefix
        self.influx = influx  # POST /write (Influx lines) instead of /v1/metrics
        self.sent = set()
        self.acked = set()
        self.failures = []  # unexpected answers (not a connection error)
        self.stop = threading.Event()
        self.cond = threading.Condition()
        self.threads = [threading.Thread(target=self._run, args=(w,)) for w in range(WRITERS)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def _run(self, w):
        n = 0
        while not self.stop.is_set():
            batch_id = f"{self.prefix}-w{w}-n{n}"
            n += 1
            with self.cond:
                self.sent.add(batch_id)
            try:
                if self.influx:
                    status, body = post_influx(self.server, self.prefix, w, n - 1)
                    ok = status == 204
                else:
                    status, body = self.server.post_metrics(batch_items(batch_id), timeout=30)
                    ok = status == 202 and body == {"accepted": K}
            except (OSError, http.client.HTTPException):
                return  # the server is gone (killed or stopping): this batch's fate is unknown
            with self.cond:
                if ok:
                    self.acked.add(batch_id)
                elif status != 503:  # a stopping server may refuse new work
                    self.failures.append((batch_id, status, body))
                self.cond.notify_all()

    def wait_for_acks(self, n, timeout=120):
        with self.cond:
            return self.cond.wait_for(lambda: len(self.acked) >= n or self.failures, timeout)


class CrashTest(EspyTestCase):
    def stored_batches(self, server):
        """batch id -> sorted values stored, read through every page."""
        points, _ = server.query_all(name="crash", limit=10_000)
        batches = collections.defaultdict(list)
        for p in points:
            batches[p["batch"]].append(p["value"])
        return {b: sorted(v) for b, v in batches.items()}

    def stored_influx_batches(self, server):
        """The same for the Influx writers: batch id -> sorted values stored."""
        points, _ = server.query_all(name="crashinflux", limit=10_000)
        batches = collections.defaultdict(list)
        for p in points:
            ts = datetime.datetime.fromisoformat(p["ts"].replace("Z", "+00:00")).timestamp()
            batches[f"{p['r']}-w{p['w']}-n{int(ts) - BASE}"].append(p["value"])
        return {b: sorted(v) for b, v in batches.items()}

    def assertAllOrNothing(self, stored, sent, acked):
        full = list(range(K))
        missing = sorted(b for b in acked if b not in stored)
        self.assertEqual(missing, [], f"{len(missing)} acknowledged batches lost")
        partial = {b: v for b, v in stored.items() if v != full}
        self.assertEqual(partial, {}, "batches stored in part (or with wrong values)")
        unknown = sorted(set(stored) - sent)
        self.assertEqual(unknown, [], "batches stored that were never sent")

    def test_kill_9_loses_no_acknowledged_batch_and_stores_no_partial_one(self):
        server = self.server()
        sent, acked = set(), set()
        for r in range(ROUNDS):
            with self.subTest(round=r):
                with Writers(server, f"r{r}") as writers:
                    self.assertTrue(writers.wait_for_acks(ACKS_BEFORE_KILL),
                                    f"only {len(writers.acked)} batches acknowledged")
                    server.kill()  # while the writers keep posting
                self.assertEqual(writers.failures, [])
                sent |= writers.sent
                acked |= writers.acked
                server.start()
                stored = self.stored_batches(server)
                self.assertAllOrNothing(stored, sent, acked)
                # Some batches were in flight when the server died (at most one per writer).
                self.assertLessEqual(len(writers.sent - writers.acked), WRITERS)
        server.stop()

    def test_kill_9_with_influx_writers_sending_known_series(self):
        # Series sent again go through the series cache and enter batches by ref; after WAL
        # replay they must still hold every acknowledged sample.
        server = self.server()
        sent, acked = set(), set()
        for r in range(3):
            with self.subTest(round=r):
                with Writers(server, f"i{r}", influx=True) as writers:
                    self.assertTrue(writers.wait_for_acks(ACKS_BEFORE_KILL),
                                    f"only {len(writers.acked)} batches acknowledged")
                    # Each writer's third batch on finds its series in the cache.
                    self.assertGreater(server.metric("espy_ingest_series_cache_hits_total"), 0)
                    server.kill()
                self.assertEqual(writers.failures, [])
                sent |= writers.sent
                acked |= writers.acked
                server.start()
                self.assertAllOrNothing(self.stored_influx_batches(server), sent, acked)
        server.stop()

    def test_sigterm_with_writers_in_flight_exits_0_and_keeps_acknowledged_batches(self):
        server = self.server()
        with Writers(server, "term") as writers:
            self.assertTrue(writers.wait_for_acks(ACKS_BEFORE_KILL))
            server.stop()  # asserts exit code 0
        self.assertEqual(writers.failures, [])
        # Every request the server took in was answered before it stopped.
        self.assertNotIn("grace period over", server.log_text())
        server.start()
        self.assertAllOrNothing(self.stored_batches(server), writers.sent, writers.acked)
        server.stop()

    def test_restart_after_clean_stop_keeps_everything(self):
        server = self.server()
        ids = [f"clean{i}" for i in range(20)]
        for batch_id in ids:
            self.assertEqual(server.post_metrics(batch_items(batch_id)), (202, {"accepted": K}))
        # Overwrites must survive too: the later value wins after replay.
        self.assertEqual(server.post_metrics({"name": "over", "value": 1, "ts": BASE}),
                         (202, {"accepted": 1}))
        self.assertEqual(server.post_metrics({"name": "over", "value": 2, "ts": BASE}),
                         (202, {"accepted": 1}))
        before, _ = server.query_all()
        self.assertEqual(len(before), len(ids) * K + 1)
        for _ in range(2):  # replay of a replayed log
            server.restart()
            after, _ = server.query_all()
            self.assertEqual(after, before)
        self.assertEqual([p["value"] for p in server.query(name="over")], [2])
        self.assertEqual(server.metric("espy_series"), len(ids) + 1)
        server.stop()


if __name__ == "__main__":
    unittest.main()

"""Retention as a user meets it: by default data is kept forever, so the README's 2016 examples
read back after restarts and after the background maintenance (one pass waits a minute: label
slow); with --retention, a sample already older than the retention is refused
when written (a 400 naming the item, the field and the retention, nothing stored), never accepted
and dropped a minute later, and a restart does not bring back what the retention dropped."""

import json
import re
import time
import unittest

from espy_server import EspyTestCase

# The README's first writes.
README_POINTS = [
    {"name": "cpu", "value": 0.5, "ts": "2016-01-01T10:00:00Z", "host": "a"},
    {"name": "cpu", "value": 0.7, "ts": 1451642460, "host": "a"},
    {"name": "cpu", "value": "0.25", "ts": "2016-01-01T12:00:00+02:00", "host": "b"},
]
README_READ = [
    {"name": "cpu", "value": 0.5, "ts": "2016-01-01T10:00:00.000Z", "host": "a"},
    {"name": "cpu", "value": 0.25, "ts": "2016-01-01T10:00:00.000Z", "host": "b"},
    {"name": "cpu", "value": 0.7, "ts": "2016-01-01T10:01:00.000Z", "host": "a"},
]
DAY = 24 * 3600
PERSISTED = re.compile(r'msg="persisted head data"')
MAINTENANCE_TIMEOUT = 150  # seconds; the background pass runs every 60


def iso(epoch_seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


class DefaultRetentionTest(EspyTestCase):
    def test_readme_data_from_2016_is_kept_across_restarts(self):
        srv = self.server()
        self.assertEqual(srv.post_metrics(README_POINTS), (202, {"accepted": 3}))
        self.assertEqual(srv.query(name="cpu", sts="2016-01-01", ets="2016-01-02"), README_READ)
        # The first restart replays the WAL; the second opens again with whatever the first
        # start's retention pass left.
        for _ in range(2):
            srv.restart()
            self.assertEqual(srv.query(name="cpu", sts="2016-01-01", ets="2016-01-02"),
                             README_READ)
        self.assertNotIn("retention dropped", srv.log_text())

    def test_readme_data_from_2016_is_kept_by_the_background_maintenance(self):
        # The first background pass (a minute after start) cuts the 2016 samples into a block,
        # as they are far older than the newest sample (one of now), and applies the retention
        # in the same pass; with a 90-day default it dropped them.
        srv = self.server()
        self.assertEqual(srv.post_metrics(README_POINTS), (202, {"accepted": 3}))
        self.assertEqual(srv.post_metrics({"name": "up", "value": 1}), (202, {"accepted": 1}))
        self.assertIsNotNone(srv.stderr.wait_for(PERSISTED, MAINTENANCE_TIMEOUT),
                             "no maintenance pass persisted the head")
        self.assertEqual(srv.metric("espy_blocks"), 1)
        self.assertEqual(srv.query(name="cpu", sts="2016-01-01", ets="2016-01-02"), README_READ)
        srv.restart()  # now read from the block
        self.assertEqual(srv.query(name="cpu", sts="2016-01-01", ets="2016-01-02"), README_READ)
        self.assertNotIn("retention dropped", srv.log_text())


class RetentionSetTest(EspyTestCase):
    def setUp(self):
        self.srv = self.server("--retention", "30d")

    def test_json_sample_older_than_the_retention_is_400_naming_item_field_and_retention(self):
        now = int(time.time())
        status, err = self.srv.post_metrics([
            {"name": "ret", "value": 1, "ts": now - DAY},
            {"name": "ret", "value": 2, "ts": "2016-01-01T10:00:00Z"},
        ])
        self.assertEqual(status, 400, err)
        self.assertEqual(err["item"], 1)
        self.assertEqual(err["field"], "ts")
        self.assertIn("older than the retention (30d)", err["problem"])
        self.assertIn("2016-01-01T10:00:00.000Z", err["problem"])
        self.assertEqual(self.srv.query(name="ret"), [])  # the whole batch was refused

    def test_ndjson_names_the_line(self):
        body = json.dumps({"name": "ret_nd", "value": 1}) + "\n" + \
            json.dumps({"name": "ret_nd", "value": 1, "ts": iso(time.time() - 31 * DAY)}) + "\n"
        status, err = self.srv.post_metrics(body, "application/x-ndjson")
        self.assertEqual((status, err["item"], err["field"]), (400, 1, "ts"), err)
        self.assertEqual(self.srv.query(name="ret_nd"), [])

    def test_influx_line_older_than_the_retention_is_refused_whole(self):
        now_ns = time.time_ns()
        old_ns = now_ns - 40 * DAY * 10**9
        body = f"ret_influx value=1 {now_ns}\nret_influx value=2 {old_ns}\n".encode()
        status, _, text = self.srv.request("POST", "/write", body)
        self.assertEqual(status, 400, text)
        self.assertIn("older than the retention (30d)", text.decode())
        self.assertEqual(self.srv.query(name="ret_influx"), [])

    def test_samples_inside_the_retention_are_kept_across_a_restart(self):
        ts = int(time.time()) - 29 * DAY
        self.assertEqual(self.srv.post_metrics({"name": "recent", "value": 3, "ts": ts}),
                         (202, {"accepted": 1}))
        self.srv.restart()
        self.assertEqual([p["value"] for p in self.srv.query(name="recent")], [3])


if __name__ == "__main__":
    unittest.main()

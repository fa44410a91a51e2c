"""Influx line protocol over HTTP from curl: /write (1.x) and /api/v2/write (2.x), escaping,
precision, gzip, and the 400 bodies that name the line and the field."""

import gzip
import json
import os
import subprocess
import tempfile
import unittest

from protocol_server import Espy


class InfluxTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.espy = Espy(graphite=False)

    @classmethod
    def tearDownClass(cls):
        cls.assert_code = cls.espy.close()

    def curl(self, path, body, *headers):
        """POSTs `body` (bytes) with curl; returns (status, body text)."""
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(body)
        try:
            cmd = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--data-binary", "@" + f.name]
            for h in headers:
                cmd += ["-H", h]
            out = subprocess.run(cmd + [self.espy.url(path)], check=True, capture_output=True,
                                 timeout=60).stdout.decode()
        finally:
            os.unlink(f.name)
        text, _, code = out.rpartition("\n")
        return int(code), text

    def test_v1_write_answers_204_and_samples_are_queryable(self):
        status, text = self.curl("/write?db=telegraf&rp=autogen&precision=s",
                                 b"weather,location=us-midwest temperature=82,humidity=71i 1465839830\n")
        self.assertEqual(204, status, text)
        self.assertEqual("", text)
        rows = self.espy.samples("weather_temperature")
        self.assertEqual([{"name": "weather_temperature", "value": 82, "ts": "2016-06-13T17:43:50.000Z",
                           "location": "us-midwest"}], rows)
        self.assertEqual(71, self.espy.samples("weather_humidity")[0]["value"])

    def test_v2_write_with_bucket_org_precision(self):
        status, text = self.curl("/api/v2/write?bucket=b&org=o&precision=ms",
                                 b"v2m,host=a value=1.5 1700000000123\n")
        self.assertEqual(204, status, text)
        self.assertEqual([{"name": "v2m", "value": 1.5, "ts": "2023-11-14T22:13:20.123Z",
                           "host": "a"}], self.espy.samples("v2m"))

    def test_escaping(self):
        status, text = self.curl(
            "/write?precision=s",
            b'esc\\ meas\\,x,tag\\ key=va\\=l\\,ue,t2=\\"q\\" fi\\=eld=1,b=t 1700000000\n')
        self.assertEqual(204, status, text)
        rows = self.espy.samples("esc meas,x_fi=eld")
        self.assertEqual(1, len(rows), rows)
        self.assertEqual("va=l,ue", rows[0]["tag key"])
        self.assertEqual('\\"q\\"', rows[0]["t2"])  # backslash before '"' is kept, as InfluxDB does
        self.assertEqual(1, self.espy.samples("esc meas,x_b")[0]["value"])

    def test_precisions(self):
        for precision, ts in [("ns", b"1700000000000000000"), ("us", b"1700000000000000"),
                              ("ms", b"1700000000000"), ("s", b"1700000000"), ("m", b"28333333"),
                              ("h", b"472222")]:
            status, text = self.curl("/write?precision=" + precision,
                                     b"prec,p=" + precision.encode() + b" v=1 " + ts + b"\n")
            self.assertEqual(204, status, text)
        got = {r["p"]: r["ts"] for r in self.espy.samples("prec_v")}
        self.assertEqual({"ns": "2023-11-14T22:13:20.000Z", "us": "2023-11-14T22:13:20.000Z",
                          "ms": "2023-11-14T22:13:20.000Z", "s": "2023-11-14T22:13:20.000Z",
                          "m": "2023-11-14T22:13:00.000Z", "h": "2023-11-14T22:00:00.000Z"}, got)

    def test_bad_precision(self):
        status, text = self.curl("/write?precision=fortnight", b"x v=1\n")
        self.assertEqual(400, status)
        self.assertEqual("precision", json.loads(text)["field"])

    def test_error_names_line_and_field_and_stores_nothing(self):
        status, text = self.curl("/write", b"good_before v=1\n\nbad_line,host=a v=\"str\"\n")
        self.assertEqual(400, status)
        body = json.loads(text)
        self.assertIn("unable to parse line 3 'bad_line,host=a v=\"str\"'", body["error"])
        self.assertEqual(3, body["line"])
        self.assertEqual("v", body["field"])
        self.assertEqual([], self.espy.samples("good_before_v"))

    def test_v2_error_shape(self):
        status, text = self.curl("/api/v2/write?bucket=b", b"m,t=1 f=1 notatime\n")
        self.assertEqual(400, status)
        body = json.loads(text)
        self.assertEqual("invalid", body["code"])
        self.assertIn("unable to parse line 1", body["message"])
        self.assertEqual("timestamp", body["field"])

    def test_gzip_body(self):
        body = gzip.compress(b"gz,host=a v=7 1700000000\n" * 3)
        status, text = self.curl("/write?precision=s", body, "Content-Encoding: gzip")
        self.assertEqual(204, status, text)
        self.assertEqual(7, self.espy.samples("gz_v")[0]["value"])

    def test_corrupt_gzip_is_400(self):
        status, text = self.curl("/write", b"\x1f\x8b\x08\x00garbage", "Content-Encoding: gzip")
        self.assertEqual(400, status)
        self.assertIn("gzip", json.loads(text)["error"])

    def test_counts_samples_and_rejections(self):
        before = self.espy.self_metric('espy_ingest_rejected_batches_total{protocol="influx"}') or 0
        self.curl("/write", b"nope\n")
        after = self.espy.self_metric('espy_ingest_rejected_batches_total{protocol="influx"}')
        self.assertEqual(before + 1, after)
        self.curl("/write", b"counted v=1\n")
        self.assertGreaterEqual(
            self.espy.self_metric('espy_samples_ingested_total{protocol="influx"}'), 1)

    def test_series_sent_again_are_found_by_their_spelling(self):
        hits = self.espy.self_metric("espy_ingest_series_cache_hits_total") or 0
        body = "again,host=a user=1,system=2 {}\nagain,host=b user=3 {}\n"
        for i in range(3):
            ts = 1700000000 + i
            status, text = self.curl("/write?precision=s", body.format(ts, ts).encode())
            self.assertEqual(204, status, text)
        # The first send creates the series, the second caches their
        # spellings, the third finds all three in the cache.
        self.assertGreaterEqual(self.espy.self_metric("espy_ingest_series_cache_hits_total"), hits + 3)
        self.assertGreaterEqual(self.espy.self_metric("espy_ingest_series_cache_entries"), 3)
        rows = self.espy.samples("again_user")
        self.assertEqual([("a", 1), ("b", 3)] * 3,
                         [(r["host"], r["value"]) for r in sorted(rows, key=lambda r: (r["ts"], r["host"]))])
        self.assertEqual([2, 2, 2], [r["value"] for r in self.espy.samples("again_system")])


if __name__ == "__main__":
    unittest.main()

"""End-to-end tests of the JSON API (POST/GET /v1/metrics) and the status endpoints, against the
real espy binary: the predecessor's documented examples, every input form, every kind of bad
input (and that a rejected batch stores nothing), media types, methods, keep-alive."""

import datetime
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from espy_server import EspyTestCase, metric_value as _m, send  # noqa: E402

ASDF = {"name": "asdf", "value": 42, "ts": "2016-01-01T00:00:00.000Z"}


class ApiTest(EspyTestCase):
    def setUp(self):
        self.srv = self.server()

    def post(self, payload, content_type="application/json"):
        return self.srv.post_metrics(payload, content_type)

    def assertAccepted(self, payload, n, content_type="application/json"):
        status, body = self.post(payload, content_type)
        self.assertEqual((status, body), (202, {"accepted": n}), payload)

    def assertBadParam(self, params, param):
        status, _, body = self.srv.get_metrics(params)
        self.assertEqual(status, 400, params)
        self.assertIn(f'"{param}"', body["error"], params)

    # --- the predecessor's README ----------------------------------------------------------

    def test_documented_examples(self):
        self.assertAccepted({"name": "asdf", "ts": "2016-01-01", "value": "42"}, 1)
        q = self.srv.query
        self.assertEqual(q(name="foo"), [])
        self.assertEqual(q(name="asdf"), [ASDF])
        self.assertEqual(q(name="asdf", sts="2016-01-01"), [ASDF])
        self.assertEqual(q(ets="2016-01-02"), [ASDF])
        self.assertEqual(q(name="asdf", sts="2016-01-01", ets="2016-01-02"), [ASDF])
        # An exact timestamp: sts = ets (the range is inclusive at both ends).
        self.assertEqual(q(name="asdf", sts="2016-01-01T00:00:00Z", ets="2016-01-01T00:00:00Z"),
                         [ASDF])
        # One millisecond either side excludes it.
        self.assertEqual(q(name="asdf", sts="2016-01-01T00:00:00.001Z"), [])
        self.assertEqual(q(name="asdf", ets="2015-12-31T23:59:59.999Z"), [])
        self.assertEqual(q(sts="2016-01-02"), [])
        # The exact JSON text: value a number, ts normalised.
        status, headers, _ = self.srv.get_metrics({"name": "asdf"})
        _, _, raw = self.srv.request("GET", "/v1/metrics?name=asdf")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("application/json"))
        self.assertEqual(json.loads(raw), [ASDF])
        self.assertIn(b'"value":42', raw)

    def test_reading_back_gives_the_same_object(self):
        point = {"name": "http_requests", "value": 12.5, "ts": "2016-01-01T10:00:00.250Z",
                 "host": "a", "path": 'a"b\\c\nd', "city": "Z\u00fcrich", "empty_ok": "x"}
        self.assertAccepted(point, 1)
        self.assertEqual(self.srv.query(name="http_requests"), [point])

    def test_label_values_numbers_and_bools_come_back_as_strings(self):
        self.assertAccepted('{"name": "lv", "value": 1, "ts": 0, "port": 8080, "ratio": 1.50, '
                            '"big": -2E+3, "on": true, "off": false}', 1)
        self.assertEqual(self.srv.query(name="lv"),
                         [{"name": "lv", "value": 1, "ts": "1970-01-01T00:00:00.000Z",
                           "port": "8080", "ratio": "1.50", "big": "-2E+3", "on": "true",
                           "off": "false"}])

    # --- input forms -----------------------------------------------------------------------

    def test_array_of_objects(self):
        self.assertAccepted([{"name": "arr", "value": i, "ts": f"2016-01-0{i}"}
                             for i in range(1, 4)], 3)
        self.assertEqual([p["value"] for p in self.srv.query(name="arr")], [1, 2, 3])

    def test_empty_array_accepts_nothing(self):
        self.assertAccepted([], 0)
        self.assertEqual(self.srv.query(), [])

    def test_ndjson_with_blank_lines_and_crlf(self):
        body = ('{"name":"nd","value":1,"ts":"2016-01-01"}\r\n'
                '\n'
                '{"name":"nd","value":2,"ts":"2016-01-02"}\n'
                '   \n'
                '{"name":"nd","value":3,"ts":"2016-01-03"}')
        self.assertAccepted(body, 3, "application/x-ndjson")
        self.assertEqual([p["value"] for p in self.srv.query(name="nd")], [1, 2, 3])

    def test_ndjson_media_type_parameters_and_case(self):
        self.assertAccepted('{"name":"nd2","value":1,"ts":1}\n', 1,
                            "Application/X-NDJSON; charset=utf-8")
        self.assertAccepted('{"name":"nd2","value":2,"ts":2}', 1, "application/json; charset=utf-8")
        self.assertEqual(len(self.srv.query(name="nd2")), 2)

    def test_json_without_content_type_and_as_curl_form(self):
        self.assertAccepted({"name": "ct", "value": 1, "ts": 1}, 1, content_type=None)
        self.assertAccepted(' [{"name": "ct", "value": 2, "ts": 2}]', 1,
                            "application/x-www-form-urlencoded")
        self.assertEqual([p["value"] for p in self.srv.query(name="ct")], [1, 2])

    def test_label_filters(self):
        self.assertAccepted([
            {"name": "cpu", "value": 1, "ts": 1, "host": "a", "dc": "x"},
            {"name": "cpu", "value": 2, "ts": 1, "host": "b", "dc": "x"},
            {"name": "cpu", "value": 3, "ts": 1, "host": "a", "dc": "y"},
            {"name": "mem", "value": 4, "ts": 1, "host": "a", "dc": "x"},
        ], 4)
        vals = lambda **p: sorted(x["value"] for x in self.srv.query(**p))  # noqa: E731
        self.assertEqual(vals(host="a"), [1, 3, 4])
        self.assertEqual(vals(name="cpu", host="a"), [1, 3])
        self.assertEqual(vals(name="cpu", host="a", dc="y"), [3])
        self.assertEqual(vals(dc="x"), [1, 2, 4])
        self.assertEqual(vals(host="c"), [])
        self.assertBadParam({"nosuchlabel": "a"}, "nosuchlabel")  # a misspelling, not []
        self.assertEqual(vals(name="cpu", host="b", sts="1970-01-01T00:00:01Z"), [2])
        self.assertEqual(vals(name="cpu", host="b", sts="1970-01-01T00:00:01.001Z"), [])
        # Percent-encoded filter values are decoded.
        self.assertAccepted({"name": "enc", "value": 5, "ts": 1, "path": "/a b&c=d"}, 1)
        self.assertEqual(vals(path="/a b&c=d"), [5])

    def test_every_timestamp_form(self):
        cases = [
            ("2016-01-01", "2016-01-01T00:00:00.000Z"),
            ("2016-01-01T10:00:00Z", "2016-01-01T10:00:00.000Z"),
            ("2016-01-01 10:00:00Z", "2016-01-01T10:00:00.000Z"),
            ("2016-01-01t10:00:00z", "2016-01-01T10:00:00.000Z"),
            ("2016-01-01T10:00:00", "2016-01-01T10:00:00.000Z"),
            ("2016-01-01T10:00Z", "2016-01-01T10:00:00.000Z"),
            ("2016-01-01T10:00:00+02:00", "2016-01-01T08:00:00.000Z"),
            ("2016-01-01T10:00:00-0530", "2016-01-01T15:30:00.000Z"),
            ("2016-01-01T01:00:00+02:00", "2015-12-31T23:00:00.000Z"),
            ("2016-01-01T10:00:00.5Z", "2016-01-01T10:00:00.500Z"),
            ("2016-01-01T10:00:00.123456+02:00", "2016-01-01T08:00:00.123Z"),
            ("2016-01-01T10:00:00.999999Z", "2016-01-01T10:00:00.999Z"),
            ("2016-02-29T00:00:00Z", "2016-02-29T00:00:00.000Z"),
            (1451642400, "2016-01-01T10:00:00.000Z"),
            (1451642400.5, "2016-01-01T10:00:00.500Z"),
            (1451642400.1239, "2016-01-01T10:00:00.123Z"),
            ("1451642400", "2016-01-01T10:00:00.000Z"),
            ("1451642400.25", "2016-01-01T10:00:00.250Z"),
            (0, "1970-01-01T00:00:00.000Z"),
            (-1.5, "1969-12-31T23:59:58.500Z"),
        ]
        self.assertAccepted([{"name": "tsf", "value": i, "ts": ts, "case": str(i)}
                             for i, (ts, _) in enumerate(cases)], len(cases))
        for i, (ts, want) in enumerate(cases):
            with self.subTest(ts=ts):
                got = self.srv.query(name="tsf", case=str(i))
                self.assertEqual([p["ts"] for p in got], [want])

    def test_missing_ts_means_now(self):
        before = datetime.datetime.now(datetime.timezone.utc)
        self.assertAccepted({"name": "now", "value": 1}, 1)
        after = datetime.datetime.now(datetime.timezone.utc)
        [point] = self.srv.query(name="now")
        ts = datetime.datetime.strptime(point["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc)
        self.assertLessEqual(before - datetime.timedelta(milliseconds=1), ts)
        self.assertLessEqual(ts, after)

    def test_values_numbers_numeric_strings_and_specials(self):
        values = [("42", 42), (1e3, 1000), ("1e3", 1000), (0.1, 0.1), (-5, -5), ("-2.5", -2.5),
                  (1.7976931348623157e308, 1.7976931348623157e308), ("NaN", "NaN"),
                  ("+Inf", "+Inf"), ("inf", "+Inf"), ("-Inf", "-Inf")]
        self.assertAccepted([{"name": "val", "value": v, "ts": i}
                             for i, (v, _) in enumerate(values)], len(values))
        got = [p["value"] for p in self.srv.query(name="val")]
        self.assertEqual(got, [want for _, want in values])

    def test_later_write_wins_for_same_series_and_ts(self):
        self.assertAccepted({"name": "lw", "value": 1, "ts": "2016-01-01", "h": "a"}, 1)
        self.assertAccepted({"name": "lw", "value": 2, "ts": "2016-01-01T00:00:00Z", "h": "a"}, 1)
        self.assertEqual(self.srv.query(name="lw"),
                         [{"name": "lw", "value": 2, "ts": "2016-01-01T00:00:00.000Z", "h": "a"}])
        # A different label set is another series: both kept.
        self.assertAccepted({"name": "lw", "value": 3, "ts": "2016-01-01", "h": "b"}, 1)
        self.assertEqual([p["value"] for p in self.srv.query(name="lw")], [2, 3])

    def test_later_write_wins_within_one_batch(self):
        self.assertAccepted([{"name": "lwb", "value": 1, "ts": 100},
                             {"name": "lwb", "value": 2, "ts": 100},
                             {"name": "lwb", "value": 3, "ts": 100}], 3)
        self.assertEqual([p["value"] for p in self.srv.query(name="lwb")], [3])

    def test_later_write_wins_after_restart(self):
        self.assertAccepted({"name": "lwr", "value": 1, "ts": 100}, 1)
        self.assertAccepted({"name": "lwr", "value": 2, "ts": 100}, 1)
        self.srv.restart()
        self.assertEqual([p["value"] for p in self.srv.query(name="lwr")], [2])

    def test_out_of_order_writes_come_back_sorted(self):
        # Descending, in separate requests and within one, over two series.
        for day in (9, 7, 5):
            self.assertAccepted({"name": "ooo", "value": day, "ts": f"2016-01-0{day}", "s": "1"}, 1)
        self.assertAccepted([{"name": "ooo", "value": d, "ts": f"2016-01-0{d}", "s": "1"}
                             for d in (8, 2, 6)], 3)
        self.assertAccepted([{"name": "ooo", "value": 10 + d, "ts": f"2016-01-0{d}", "s": "2"}
                             for d in (3, 1, 5)], 3)
        got = [(p["ts"][:10], p["s"], p["value"]) for p in self.srv.query(name="ooo")]
        want = sorted([(f"2016-01-0{d}", "1", d) for d in (2, 5, 6, 7, 8, 9)] +
                      [(f"2016-01-0{d}", "2", 10 + d) for d in (1, 3, 5)])
        self.assertEqual(got, want)

    # --- bad input -------------------------------------------------------------------------

    BAD_ITEMS = [
        # (label, the bad item, field)
        ("missing name", {"value": 1}, "name"),
        ("empty name", {"name": "", "value": 1}, "name"),
        ("name not a string", {"name": 5, "value": 1}, "name"),
        ("missing value", {"name": "x"}, "value"),
        ("bool value", {"name": "x", "value": True}, "value"),
        ("array value", {"name": "x", "value": [1]}, "value"),
        ("non-numeric string value", {"name": "x", "value": "abc"}, "value"),
        ("null value", {"name": "x", "value": None}, "value"),
        ("bad ts string", {"name": "x", "value": 1, "ts": "yesterday"}, "ts"),
        ("month 13", {"name": "x", "value": 1, "ts": "2016-13-01"}, "ts"),
        ("bool ts", {"name": "x", "value": 1, "ts": True}, "ts"),
        ("null ts", {"name": "x", "value": 1, "ts": None}, "ts"),
        ("ts out of range", {"name": "x", "value": 1, "ts": 1e300}, "ts"),
        ("ts in the far future", {"name": "x", "value": 1, "ts": "2999-01-01"}, "ts"),
        ("nested label", {"name": "x", "value": 1, "host": {"a": "b"}}, "host"),
        ("array label", {"name": "x", "value": 1, "host": ["a"]}, "host"),
        ("null label", {"name": "x", "value": 1, "host": None}, "host"),
        ("reserved label", {"name": "x", "value": 1, "__x": "y"}, "__x"),
    ]

    def assertBadBatch(self, body, content_type, item, field, marker):
        """POSTs `body`, wants 400 with `item`/`field` (None: absent), then checks that series
        `marker`, written by the body's good items, was not stored."""
        status, err = self.post(body, content_type)
        self.assertEqual(status, 400, body)
        self.assertIsInstance(err, dict, body)
        self.assertIsInstance(err.get("error"), str)
        self.assertTrue(err["error"])
        if item is None:
            self.assertNotIn("item", err)
        else:
            self.assertEqual(err.get("item"), item, err)
        if field is None:
            self.assertNotIn("field", err)
        else:
            self.assertEqual(err.get("field"), field, err)
        self.assertIsInstance(err.get("problem"), str, err)
        self.assertEqual(self.srv.query(name=marker), [], f"part of a rejected batch was stored: "
                                                           f"{body!r}")
        return err

    def test_bad_items_reject_the_whole_batch(self):
        for i, (what, bad, field) in enumerate(self.BAD_ITEMS):
            with self.subTest(what):
                marker = f"good{i}"
                good = {"name": marker, "value": 1, "ts": 1}
                batch = [good, dict(good, ts=2), bad, dict(good, ts=3)]
                err = self.assertBadBatch(json.dumps(batch), "application/json", 2, field, marker)
                self.assertIn(f"item 2", err["error"])
        # Nothing at all was stored, under any name.
        self.assertEqual(self.srv.query(), [])
        self.assertEqual(self.srv.metric("espy_samples_ingested_total", protocol="json"), 0)
        self.assertEqual(self.srv.metric("espy_ingest_rejected_batches_total", protocol="json"),
                         len(self.BAD_ITEMS))

    def test_duplicate_key(self):
        body = ('[{"name":"dupok","value":1,"ts":1},'
                '{"name":"dupok","value":1,"ts":2,"value":2}]')
        self.assertBadBatch(body, "application/json", 1, "value", "dupok")
        body = '[{"name":"dupok","value":1,"ts":1},{"name":"x","h":"a","value":1,"h":"b"}]'
        self.assertBadBatch(body, "application/json", 1, "h", "dupok")

    def test_not_an_object(self):
        good = '{"name":"noobj","value":1,"ts":1}'
        for item in ("42", '"str"', "[]", "null", "true"):
            with self.subTest(item):
                self.assertBadBatch(f"[{good},{item}]", "application/json", 1, None, "noobj")
        for body in ("42", '"str"', "null"):
            with self.subTest(body):
                self.assertBadBatch(body, "application/json", None, None, "noobj")

    def test_invalid_json(self):
        good = '{"name":"badjson","value":1,"ts":1}'
        for body in (f"[{good},", f"[{good},{{\"name\":", f"[{good}, {{name: \"x\"}}]",
                     f"[{good},{{\"name\":\"x\",\"value\":1,}}]", f"[{good}] trailing",
                     f"{good} {good}", "", "   ", f"[{good},{{\"name\":\"x\",\"value\":01}}]"):
            with self.subTest(body):
                status, err = self.post(body)
                self.assertEqual(status, 400, body)
                self.assertIn("error", err)
                self.assertIn("problem", err)
                self.assertEqual(self.srv.query(name="badjson"), [])

    def test_ndjson_bad_line_names_its_line(self):
        good = '{"name":"ndbad","value":1,"ts":1}'
        # Items count every line, blank ones too: the bad one is line 4, item 3.
        body = f"{good}\n\n{good.replace(':1}', ':2}')}\n{{\"name\":\"x\",\"value\":\"v\"}}\n{good}"
        self.assertBadBatch(body, "application/x-ndjson", 3, "value", "ndbad")
        body = f"{good}\n{good} {good}\n"
        self.assertBadBatch(body, "application/x-ndjson", 1, None, "ndbad")
        self.assertBadBatch(f"{good}\n[{good}]\n", "application/x-ndjson", 1, None, "ndbad")

    def test_unsupported_media_type(self):
        for ct in ("text/plain", "application/xml", "application/x-www-form-urlencoded"):
            with self.subTest(ct):
                body = '{"name":"media","value":1}' if ct != "application/x-www-form-urlencoded" \
                    else 'name=media&value=1'
                status, err = self.post(body, ct)
                self.assertEqual(status, 415)
                self.assertIn(ct, err["error"])
        self.assertEqual(self.srv.query(), [])

    def test_method_not_allowed(self):
        for method in ("PUT", "DELETE", "PATCH"):
            with self.subTest(method):
                status, headers, body = self.srv.request(method, "/v1/metrics", b"{}")
                self.assertEqual(status, 405)
                self.assertEqual(headers.get("allow"), "GET, POST")
                self.assertIn(method, json.loads(body)["error"])
        status, headers, _ = self.srv.request("POST", "/healthz", b"")
        self.assertEqual(status, 405)
        self.assertEqual(headers.get("allow"), "GET, HEAD")

    def test_unknown_path_is_json_404(self):
        for path in ("/nope", "/v1/metric", "/v1/metrics/extra", "/v2/metrics?name=a"):
            with self.subTest(path):
                status, headers, body = self.srv.request("GET", path)
                self.assertEqual(status, 404)
                self.assertTrue(headers["content-type"].startswith("application/json"))
                self.assertIn(path.split("?")[0], json.loads(body)["error"])

    def test_bad_get_parameters_name_the_parameter(self):
        self.assertBadParam({"sts": "yesterday"}, "sts")
        self.assertBadParam({"ets": "2016-02-30"}, "ets")
        self.assertBadParam({"sts": "2016-01-02", "ets": "2016-01-01"}, "sts")
        for limit in ("0", "-1", "abc", "1.5", ""):
            with self.subTest(limit=limit):
                self.assertBadParam({"limit": limit}, "limit")
        self.assertBadParam([("name", "a"), ("name", "b")], "name")
        self.assertBadParam([("host", "a"), ("host", "a")], "host")
        self.assertBadParam([("sts", "2016-01-01"), ("sts", "2016-01-01")], "sts")
        self.assertBadParam({"name": ""}, "name")
        self.assertBadParam({"host": ""}, "host")
        status, _, body = self.srv.get_metrics({"cursor": "nonsense"})
        self.assertEqual(status, 400)
        self.assertIn("cursor", body["error"])

    def values(self, params):
        status, _, body = self.srv.get_metrics(params)
        self.assertEqual(status, 200, (params, body))
        return [p["value"] for p in body]

    def test_get_sts_and_ets_relative_to_now(self):
        now = int(time.time())
        self.assertAccepted([{"name": "rel", "value": v, "ts": now - age}
                             for v, age in ((1, 7200), (2, 600), (3, 60))], 3)
        self.assertEqual(self.values({"name": "rel", "sts": "now-1h"}), [2, 3])
        self.assertEqual(self.values({"name": "rel", "sts": "-15m", "ets": "now-5m"}), [2])
        self.assertEqual(self.values({"name": "rel", "sts": "now-3h", "ets": "now"}), [1, 2, 3])
        self.assertEqual(self.values({"name": "rel", "ets": "-90m"}), [1])
        for bad in ("now-1x", "now-", "now+"):
            with self.subTest(bad):
                status, _, body = self.srv.get_metrics({"sts": bad})
                self.assertEqual(status, 400)
                self.assertIn('parameter "sts"', body["error"])
                self.assertIn("now-1h, -15m", body["error"])

    def test_get_match_takes_regex_and_negative_selectors(self):
        self.assertAccepted([
            {"name": "sel", "value": 1, "ts": 1, "host": "web1", "dc": "x"},
            {"name": "sel", "value": 2, "ts": 2, "host": "web2", "dc": "y"},
            {"name": "sel", "value": 3, "ts": 3, "host": "db1", "dc": "y"},
            {"name": "other", "value": 4, "ts": 4, "host": "web3", "dc": "y"},
        ], 4)
        self.assertEqual(self.values({"name": "sel", "match": '{host=~"web.*"}'}), [1, 2])
        self.assertEqual(self.values({"match": 'sel{dc!="x"}'}), [2, 3])
        # Several match parameters, and the plain filters beside them, must all match.
        self.assertEqual(self.values([("match", '{host=~"web.*"}'), ("match", '{dc!="x"}')]),
                         [2, 4])
        self.assertEqual(self.values([("match", '{host=~"web.*"}'), ("dc", "y"), ("name", "sel")]),
                         [2])
        self.assertEqual(self.values({"match": '{__name__="sel",host!~"web.*|nothing"}'}), [3])
        # A label named like a reserved parameter is reachable through match.
        self.assertAccepted({"name": "odd", "value": 5, "ts": 5, "limit": "x"}, 1)
        self.assertEqual(self.values({"match": 'odd{limit="x"}'}), [5])
        self.assertBadParam({"match": '{host=~"web'}, "match")

    def test_get_filter_on_a_label_no_series_has_is_400_not_an_empty_list(self):
        self.assertAccepted({"name": "cpu", "value": 1, "ts": 1, "host": "a"}, 1)
        status, _, body = self.srv.get_metrics({"nme": "cpu"})
        self.assertEqual(status, 400)
        self.assertIn('parameter "nme": no series has a label "nme"', body["error"])
        self.assertIn("name, sts, ets, limit, cursor, step, agg, match", body["error"])
        # Also with step, and beside a good filter.
        self.assertBadParam({"name": "cpu", "hots": "a", "sts": 0, "step": "1m"}, "hots")
        # A known label with a value no series has is a plain empty answer.
        self.assertEqual(self.values({"name": "cpu", "host": "b"}), [])
        self.assertEqual(self.values({"name": "cpu", "host": "a"}), [1])

    def test_trailing_data_after_the_first_json_value_is_named(self):
        status, err = self.post('{"name":"cpu","value":1} xx')
        self.assertEqual(status, 400)
        self.assertEqual(err["problem"],
                         "malformed JSON: trailing data after the first JSON value, at byte 25")
        self.assertEqual(self.srv.query(), [])

    # --- status endpoints ------------------------------------------------------------------

    def test_health_and_readiness(self):
        # Prometheus' paths (/-/healthy, /-/ready) answer as Kubernetes' customary ones do.
        for path, body in (("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"}),
                           ("/-/healthy", {"status": "ok"}), ("/-/ready", {"status": "ready"})):
            with self.subTest(path):
                status, headers, raw = self.srv.request("GET", path)
                self.assertEqual((status, json.loads(raw)), (200, body))
                status, _, raw = self.srv.request("HEAD", path)
                self.assertEqual((status, raw), (200, b""))

    def test_self_metrics_move_with_requests(self):
        s = self.srv
        status, headers, text = s.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain"))
        text = text.decode()
        # Labelled counters appear with their first sample; gauges from the start.
        for family in ("espy_series", "espy_wal_written_bytes", "espy_wal_fsyncs"):
            self.assertIn(f"# TYPE {family} gauge", text)
        posts = s.metric("espy_http_requests_total", route="/v1/metrics", code="202")
        wal = s.metric("espy_wal_written_bytes")
        syncs = s.metric("espy_wal_fsyncs")
        self.assertEqual(s.metric("espy_series"), 0)
        self.assertAccepted([{"name": "m", "value": 1, "ts": 1, "k": str(i)} for i in range(3)], 3)
        self.assertAccepted({"name": "m", "value": 1, "ts": 2, "k": "0"}, 1)
        self.post({"name": ""})  # 400
        s.request("GET", "/nowhere")  # 404
        # The request counter is bumped just after the response is written, so the client can
        # read the response first: wait until the last request (the 404) is counted.
        text = self._metrics_when(lambda t: _m(t, "espy_http_requests_total",
                                               route="unmatched", code="404") == 1)
        for family in ("espy_http_requests_total", "espy_samples_ingested_total"):
            self.assertIn(f"# TYPE {family} counter", text)
        self.assertEqual(_m(text, "espy_http_requests_total", route="/v1/metrics", code="202"),
                         posts + 2)
        self.assertEqual(_m(text, "espy_http_requests_total", route="/v1/metrics", code="400"), 1)
        self.assertEqual(_m(text, "espy_samples_ingested_total", protocol="json"), 4)
        self.assertEqual(_m(text, "espy_ingest_rejected_batches_total", protocol="json"), 1)
        self.assertEqual(_m(text, "espy_series"), 3)
        self.assertGreater(_m(text, "espy_wal_written_bytes"), wal)
        self.assertGreaterEqual(_m(text, "espy_wal_fsyncs"), syncs + 1)

    def _metrics_when(self, cond, attempts=200):
        """/metrics text once `cond(text)` holds (polls by round trips, no sleeps)."""
        for _ in range(attempts):
            text = self.srv.metrics_text()
            if cond(text):
                return text
        self.fail(f"/metrics never satisfied the condition:\n{text}")

    # --- connections -----------------------------------------------------------------------

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        conn = self.srv.connection()
        self.addCleanup(conn.close)
        status, headers, _ = send(conn, "GET", "/healthz")
        self.assertEqual(status, 200)
        sock = conn.sock
        local = sock.getsockname()
        steps = [
            ("POST", "/v1/metrics", b'{"name":"ka","value":1,"ts":1}', 202),
            ("GET", "/v1/metrics?name=ka", None, 200),
            ("POST", "/v1/metrics", b'{"name":""}', 400),
            ("GET", "/nope", None, 404),
            ("PUT", "/v1/metrics", b"", 405),
            ("POST", "/v1/metrics", b'[{"name":"ka","value":2,"ts":2}]', 202),
            ("GET", "/v1/metrics?name=ka", None, 200),
        ]
        for method, path, body, want in steps:
            status, headers, data = send(conn, method, path, body,
                                         {"Content-Type": "application/json"})
            self.assertEqual(status, want, (method, path, data))
            self.assertNotEqual(headers.get("connection", "").lower(), "close")
            self.assertIs(conn.sock, sock, "the server closed the keep-alive connection")
            self.assertEqual(conn.sock.getsockname(), local)
        self.assertEqual([p["value"] for p in json.loads(data)], [1, 2])

    def test_connection_close_is_honoured(self):
        conn = self.srv.connection()
        self.addCleanup(conn.close)
        status, headers, _ = send(conn, "GET", "/healthz", headers={"Connection": "close"})
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("connection", "").lower(), "close")


if __name__ == "__main__":
    unittest.main()

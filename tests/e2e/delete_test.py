"""End-to-end tests of deleting series through Prometheus's admin API
(POST /api/v1/admin/tsdb/delete_series, clean_tombstones): the deleted samples are gone from
/v1/metrics, PromQL and the series/labels APIs, at once and after a kill -9 right after the 204;
samples written later are kept; bad requests get 400 naming the parameter; the endpoints are off
unless --enable-admin-api is set."""

import datetime
import json
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from espy_server import EspyTestCase  # noqa: E402

BASE = 1_577_836_800  # 2020-01-01T00:00:00Z
ADMIN = "--enable-admin-api=true"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def offset(ts):
    """Seconds after BASE of a /v1/metrics timestamp (RFC 3339 or epoch seconds)."""
    if isinstance(ts, (int, float)):
        return int(ts) - BASE
    return int(datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()) - BASE


def points(host, values):
    return [{"name": "cpu", "value": v, "ts": BASE + i, "host": host} for i, v in values]


class DeleteTest(EspyTestCase):
    def admin(self, server, what, params, method="POST"):
        body = urllib.parse.urlencode(params, doseq=True)
        return server.request(method, f"/api/v1/admin/tsdb/{what}", body.encode(), FORM)

    def write(self, server, host, values):
        status, body = server.post_metrics(points(host, values))
        self.assertEqual(202, status, body)

    def values(self, server, host):
        """{seconds after BASE: value} of cpu{host} through GET /v1/metrics."""
        got = server.query(name="cpu", host=host, sts=BASE - 100, ets=BASE + 100)
        return {offset(p["ts"]): p["value"] for p in got}

    def promql(self, server, query, time=BASE + 20):
        status, _, body = server.request(
            "GET", "/api/v1/query?" + urllib.parse.urlencode({"query": query, "time": time}))
        self.assertEqual(200, status, body)
        return {r["metric"].get("host"): float(r["value"][1])
                for r in json.loads(body)["data"]["result"]}

    def api(self, server, path, **params):
        status, _, body = server.request("GET", path + "?" + urllib.parse.urlencode(params, True))
        self.assertEqual(200, status, body)
        return json.loads(body)["data"]

    def test_admin_endpoints_are_off_by_default(self):
        server = self.server()
        for what in ("delete_series", "clean_tombstones"):
            status, _, body = self.admin(server, what, {"match[]": "cpu"})
            self.assertEqual(503, status, body)
            self.assertEqual("admin APIs disabled", json.loads(body)["error"])

    def test_deleted_samples_are_gone_everywhere_and_after_a_kill(self):
        server = self.server(ADMIN)
        self.write(server, "a", [(i, i) for i in range(10)])
        self.write(server, "b", [(i, 100 + i) for i in range(10)])

        # RFC 3339 start, unix-seconds end, as Prometheus accepts both.
        status, _, body = self.admin(server, "delete_series", {
            "match[]": 'cpu{host="a"}', "start": "2020-01-01T00:00:02Z", "end": str(BASE + 5)})
        self.assertEqual(204, status, body)
        self.assertEqual(b"", body)
        server.kill()  # kill -9 right after the answer: the deletion must hold
        server.start()

        want_a = {i: i for i in (0, 1, 6, 7, 8, 9)}
        self.assertEqual(want_a, self.values(server, "a"))
        self.assertEqual(10, len(self.values(server, "b")))
        self.assertEqual({"a": 6, "b": 10}, self.promql(server, "count_over_time(cpu[1h])"))
        # A range with nothing left lists no series for host a.
        self.assertEqual([{"__name__": "cpu", "host": "b"}],
                         self.api(server, "/api/v1/series", **{
                             "match[]": "cpu", "start": BASE + 3, "end": BASE + 4}))

        # Everything of host a, no time range: gone from series and label values too.
        status, _, body = self.admin(server, "delete_series", {"match[]": ['cpu{host="a"}']})
        self.assertEqual(204, status, body)
        self.assertEqual({}, self.values(server, "a"))
        self.assertEqual({"b": 10}, self.promql(server, "count_over_time(cpu[1h])"))
        self.assertEqual([{"__name__": "cpu", "host": "b"}],
                         self.api(server, "/api/v1/series", **{"match[]": "cpu"}))
        self.assertEqual(["b"], self.api(server, "/api/v1/label/host/values"))

        # Written after the delete, into the deleted range: visible, also after a crash.
        self.write(server, "a", [(3, 33)])
        server.kill()
        server.start()
        self.assertEqual({3: 33}, self.values(server, "a"))
        self.assertEqual(["a", "b"], self.api(server, "/api/v1/label/host/values"))

        status, _, body = self.admin(server, "clean_tombstones", {}, method="PUT")
        self.assertEqual(204, status, body)
        server.restart()
        self.assertEqual({3: 33}, self.values(server, "a"))
        self.assertEqual(10, len(self.values(server, "b")))

    def test_several_selectors_delete_the_union(self):
        server = self.server(ADMIN)
        for host in ("a", "b", "c"):
            self.write(server, host, [(0, 1), (1, 2)])
        status, _, body = self.admin(server, "delete_series",
                                     {"match[]": ['cpu{host="a"}', '{__name__="cpu",host=~"c"}']})
        self.assertEqual(204, status, body)
        self.assertEqual({"b": 2}, self.promql(server, "count_over_time(cpu[1h])"))

    def test_bad_requests_name_the_parameter_and_change_nothing(self):
        server = self.server(ADMIN)
        self.write(server, "a", [(0, 1)])
        cases = [
            ({}, "no match[] parameter provided"),
            ({"match[]": "cpu{"}, 'invalid parameter "match[]"'),
            ({"match[]": '{host=""}'}, 'invalid parameter "match[]"'),
            ({"match[]": "cpu", "start": "yesterday"}, 'invalid parameter "start"'),
            ({"match[]": "cpu", "end": "2020-13-01T00:00:00Z"}, 'invalid parameter "end"'),
            ({"match[]": "cpu", "start": BASE + 10, "end": BASE}, 'invalid parameter "end"'),
        ]
        for params, want in cases:
            with self.subTest(params=params):
                status, _, body = self.admin(server, "delete_series", params)
                self.assertEqual(400, status, body)
                self.assertIn(want, json.loads(body)["error"])
        status, _, _ = server.request("GET", "/api/v1/admin/tsdb/delete_series?match[]=cpu")
        self.assertEqual(405, status)
        self.assertEqual({0: 1}, self.values(server, "a"))


if __name__ == "__main__":
    unittest.main()

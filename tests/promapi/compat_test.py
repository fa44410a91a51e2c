"""PromQL compatibility with Debian's real Prometheus 2.42: the same generated data is written
into Prometheus (as TSDB blocks made by `promtool tsdb create-blocks-from openmetrics`) and into
Espy (POST /v1/metrics); a few hundred instant and range queries must give the same answers
(same series, same timestamps, values equal within a relative 1e-9, NaN equal to NaN).
Skipped when /usr/bin/prometheus or promtool is missing."""

import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from espy_server import EspyTestCase  # noqa: E402

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
STEP = 15  # seconds between generated samples
HOURS = 2

QUERIES = [
    "http_requests_total",
    "rate(http_requests_total[5m])",
    "irate(http_requests_total[5m])",
    "increase(http_requests_total[10m])",
    "delta(temperature[10m])",
    "idelta(temperature[5m])",
    "deriv(temperature[10m])",
    "predict_linear(temperature[10m], 600)",
    "resets(http_requests_total[30m])",
    "changes(up[30m])",
    "sum by (job) (rate(http_requests_total[5m]))",
    "sum without (instance) (rate(http_requests_total[5m]))",
    "avg(temperature)",
    "max by (job) (up)",
    "min(temperature)",
    "count(up == 1)",
    "group by (code) (http_requests_total)",
    "topk(2, rate(http_requests_total[5m]))",
    "bottomk(2, temperature)",
    "quantile(0.9, temperature)",
    "stddev(temperature)",
    "stdvar by (job) (http_requests_total)",
    'count_values("v", up)',
    "histogram_quantile(0.9, sum by (le) (rate(req_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.5, rate(req_duration_seconds_bucket[5m]))",
    "avg_over_time(temperature[15m])",
    "max_over_time(temperature[15m])",
    "min_over_time(temperature[15m])",
    "sum_over_time(temperature[15m])",
    "count_over_time(temperature[15m])",
    "stddev_over_time(temperature[15m])",
    "stdvar_over_time(temperature[15m])",
    "quantile_over_time(0.75, temperature[15m])",
    "last_over_time(temperature[15m])",
    "present_over_time(temperature[1m])",
    "absent(nonexistent)",
    'absent_over_time(temperature{room="a"}[1m])',
    "holt_winters(temperature[15m], 0.3, 0.4)",
    "max_over_time(rate(http_requests_total[5m])[30m:1m])",
    "avg_over_time(temperature[20m:3m] offset 5m)",
    "http_requests_total offset 10m",
    "rate(http_requests_total[5m]) / on(job, instance) group_left "
    "sum by (job, instance) (rate(http_requests_total[5m]))",
    "temperature > 20",
    "temperature > bool 20",
    "20 < temperature",
    "up and on(job) (up == 1)",
    "temperature or up",
    'http_requests_total unless on(code) http_requests_total{code="500"}',
    "abs(temperature - 20)",
    "round(temperature, 0.5)",
    "ceil(temperature) + floor(temperature)",
    "clamp(temperature, 15, 25)",
    "clamp_min(temperature, 20)",
    'label_replace(up, "host", "$1", "instance", "(.*):.*")',
    'label_join(up, "id", "/", "job", "instance")',
    "timestamp(temperature)",
    "time() - timestamp(temperature)",
    "scalar(sum(up))",
    "vector(time())",
    "hour(timestamp(temperature))",
    "exp(-temperature / 100)",
    "ln(temperature)",
    "sqrt(abs(temperature))",
    "sgn(temperature - 20)",
    "-temperature",
    "temperature % 3",
    "2 ^ (temperature / 10)",
    "sin(temperature) + cos(temperature) + atan2(temperature, 7)",
    "temperature atan2 temperature",
    "rate(http_requests_total[5m] @ end())",
    "sum(rate(http_requests_total[5m] @ start()))",
    "min_over_time(sum(up)[1h:5m])",
]
# topk/bottomk over gauges whose values tie often (a handful of small integers), with gaps, and
# with NaNs made by the query (ln of a negative number, 0/0): which of the tied series Prometheus
# keeps at a step depends on how its heap breaks ties, and a range query shows every step.
TOPK_QUERIES = [
    "topk(1, load)",
    "topk(2, load)",
    "topk(3, load)",
    "bottomk(1, load)",
    "bottomk(2, load)",
    "bottomk(4, load)",
    "topk(2.9, load)",
    "bottomk(1.5, load)",
    "topk(0.5, load)",
    "topk(100, load)",
    "topk by (zone) (2, load)",
    "bottomk without (host) (1, load)",
    "topk(scalar(count(load)) - 4, load)",
    "topk(2, -load)",
]
# Over a function's or an operator's result, Prometheus 2.42's range queries feed the series to
# topk in Go map order, which changes from run to run, so which of the tied series it keeps
# does too (its instant queries keep the order). For these, a range query must keep the same
# values at every step, whichever series they come from.
TOPK_TIES_ANY_SERIES = [
    "topk(2, ln(load - 1))",
    "bottomk(2, ln(load - 1))",
    "topk(3, load / load)",
    "bottomk(3, load / load - 1)",
]
QUERIES += TOPK_QUERIES + TOPK_TIES_ANY_SERIES
RANGE_QUERIES = QUERIES[:24] + ["sum(temperature) / count(temperature)", "time()"] + TOPK_QUERIES


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def generate(t0):
    """{labels tuple: [(ts seconds, value)]} with counters (with resets), gauges with gaps,
    classic histogram buckets and up."""
    rng = random.Random(42)
    data = {}
    n = HOURS * 3600 // STEP
    for job in ("api", "db"):
        for inst in ("a:1", "b:1"):
            for code in ("200", "500"):
                v, pts = 0.0, []
                for i in range(n):
                    v = 0.0 if rng.random() < 0.01 else v + rng.randint(0, 10)
                    pts.append((t0 + i * STEP, v))
                data[(("__name__", "http_requests_total"), ("code", code), ("instance", inst),
                      ("job", job))] = pts
            pts = [(t0 + i * STEP, float(rng.random() < 0.9)) for i in range(n)]
            data[(("__name__", "up"), ("instance", inst), ("job", job))] = pts
        counts = [0.0] * 5
        bucket_pts = [[] for _ in counts]
        for i in range(n):
            for _ in range(rng.randint(0, 20)):
                x = rng.expovariate(4)
                for b, le in enumerate((0.1, 0.25, 0.5, 1.0, math.inf)):
                    if x <= le:
                        counts[b] += 1
            for b in range(5):
                bucket_pts[b].append((t0 + i * STEP, counts[b]))
        for b, le in enumerate(("0.1", "0.25", "0.5", "1", "+Inf")):
            data[(("__name__", "req_duration_seconds_bucket"), ("job", job), ("le", le))] = \
                bucket_pts[b]
    for room in ("a", "b", "c"):
        v, pts = 20.0, []
        for i in range(n):
            v += rng.uniform(-1, 1)
            if rng.random() > 0.05:  # gaps
                pts.append((t0 + i * STEP, round(v, 3)))
        data[(("__name__", "temperature"), ("room", room))] = pts
    for host in range(8):
        pts = []
        for i in range(n):
            if rng.random() > 0.1:  # gaps
                pts.append((t0 + i * STEP, float(rng.choice((0, 1, 1, 2, 2, 3)))))
        data[(("__name__", "load"), ("host", f"h{host}"), ("zone", "ab"[host % 2]))] = pts
    return data


def openmetrics(data):
    lines = []
    for labels, pts in sorted(data.items()):
        name = labels[0][1]
        rest = ",".join(f'{k}="{v}"' for k, v in labels[1:])
        for ts, v in pts:
            lines.append(f"{name}{{{rest}}} {v!r} {ts}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def get_json(base, path, params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def same_value(a, b):
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if x == y:
        return True
    return abs(x - y) <= 1e-9 * max(abs(x), abs(y))


def diff(want, got):
    """None when the two Prometheus API answers agree, else a description."""
    if want.get("status") != got.get("status"):
        return f"status {want.get('status')} vs {got.get('status')}: {got}"
    if want["status"] != "success":
        return None
    w, g = want["data"], got["data"]
    if w["resultType"] != g["resultType"]:
        return f"resultType {w['resultType']} vs {g['resultType']}"
    if w["resultType"] in ("scalar", "string"):
        ok = w["result"][0] == g["result"][0] and same_value(w["result"][1], g["result"][1])
        return None if ok else f"{w['result']} vs {g['result']}"
    key = "value" if w["resultType"] == "vector" else "values"

    def by_metric(result):
        return {json.dumps(s["metric"], sort_keys=True): s[key] for s in result}

    wm, gm = by_metric(w["result"]), by_metric(g["result"])
    if wm.keys() != gm.keys():
        return f"series differ: only prometheus {sorted(wm.keys() - gm.keys())[:3]}, " \
               f"only espy {sorted(gm.keys() - wm.keys())[:3]}"
    for m, wv in wm.items():
        gv = gm[m]
        wp = [wv] if key == "value" else wv
        gp = [gv] if key == "value" else gv
        if len(wp) != len(gp):
            return f"{m}: {len(wp)} vs {len(gp)} points"
        for a, b in zip(wp, gp):
            if a[0] != b[0] or not same_value(a[1], b[1]):
                return f"{m}: {a} vs {b}"
    return None


def diff_values_per_step(want, got):
    """None when two range query answers hold the same values at every step (NaN equal to
    NaN), whichever series hold them; else a description."""
    if want.get("status") != got.get("status"):
        return f"status {want.get('status')} vs {got.get('status')}: {got}"

    def by_step(answer):
        steps = {}
        for s in answer["data"]["result"]:
            for ts, v in s["values"]:
                steps.setdefault(ts, []).append(float(v))
        return {ts: sorted(vs, key=lambda x: (math.isnan(x), x)) for ts, vs in steps.items()}

    w, g = by_step(want), by_step(got)
    if w.keys() != g.keys():
        return f"steps differ: only prometheus {sorted(w.keys() - g.keys())[:3]}, " \
               f"only espy {sorted(g.keys() - w.keys())[:3]}"
    for ts, wv in sorted(w.items()):
        gv = g[ts]
        if len(wv) != len(gv) or not all(same_value(a, b) for a, b in zip(wv, gv)):
            return f"at {ts}: {wv} vs {gv}"
    return None


@unittest.skipUnless(os.access(PROMETHEUS, os.X_OK) and os.access(PROMTOOL, os.X_OK),
                     "needs Debian's prometheus package")
class PrometheusCompatibilityTest(EspyTestCase):
    def start_prometheus(self, data_dir):
        cfg = os.path.join(data_dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1h\n")
        port = free_port()
        proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={data_dir}/tsdb",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=10y"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(lambda: (proc.kill(), proc.wait(), proc.stderr.close()))
        ready = threading.Event()
        log = []

        def read():
            for line in iter(proc.stderr.readline, b""):
                log.append(line.decode(errors="replace"))
                if b"Server is ready to receive web requests" in line:
                    ready.set()
        threading.Thread(target=read, daemon=True).start()
        self.assertTrue(ready.wait(60), "prometheus did not start:\n" + "".join(log[-20:]))
        return f"http://127.0.0.1:{port}"

    def test_queries_match_prometheus(self):
        # Whole hours, ending an hour ago: complete blocks, inside retention.
        t0 = (int(time.time()) // 7200) * 7200 - 4 * 3600
        data = generate(t0)
        tmp = self.tmpdir()
        om = os.path.join(tmp, "data.om")
        with open(om, "w") as f:
            f.write(openmetrics(data))
        subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", om,
                        os.path.join(tmp, "tsdb")], check=True, capture_output=True)
        prom = self.start_prometheus(tmp)

        espy = self.server()
        batch = []
        for labels, pts in data.items():
            extra = {k: v for k, v in labels[1:]}
            for ts, v in pts:
                batch.append({"name": labels[0][1], "value": v, "ts": ts, **extra})
        for i in range(0, len(batch), 5000):
            status, body = espy.post_metrics(batch[i:i + 5000])
            self.assertEqual(status, 202, body)
        base = espy.url("").rstrip("/")

        failures, compared, nonempty = [], 0, 0
        times = [t0 + 1800, t0 + 3667.5, t0 + 5700, t0 + 7199, t0 + 7500]
        for q in QUERIES:
            for t in times:
                params = {"query": q, "time": t}
                want = get_json(prom, "/api/v1/query", params)
                d = diff(want, get_json(base, "/api/v1/query", params))
                compared += 1
                nonempty += bool(want.get("data", {}).get("result"))
                if d:
                    failures.append(f"{q} @ {t - t0}s: {d}")
        for q in RANGE_QUERIES:
            for step in ("60", "433"):
                params = {"query": q, "start": t0 + 600, "end": t0 + 7000, "step": step}
                want = get_json(prom, "/api/v1/query_range", params)
                d = diff(want, get_json(base, "/api/v1/query_range", params))
                compared += 1
                nonempty += bool(want.get("data", {}).get("result"))
                if d:
                    failures.append(f"range {q} step {step}: {d}")
        for q in TOPK_TIES_ANY_SERIES:
            for step in ("60", "433"):
                params = {"query": q, "start": t0 + 600, "end": t0 + 7000, "step": step}
                want = get_json(prom, "/api/v1/query_range", params)
                d = diff_values_per_step(want, get_json(base, "/api/v1/query_range", params))
                compared += 1
                nonempty += bool(want.get("data", {}).get("result"))
                if d:
                    failures.append(f"range {q} step {step} (values per step): {d}")
        print(f"compared {compared} query results with Prometheus ({nonempty} non-empty), "
              f"{len(failures)} differ", file=sys.stderr)
        # Most queries must return data, or the comparison proves little.
        self.assertGreater(nonempty, compared * 3 // 4)
        self.assertEqual(failures, [], "\n".join(failures[:30]))


if __name__ == "__main__":
    unittest.main()

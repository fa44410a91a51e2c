#!/usr/bin/python3
"""Query latency of Espy against Prometheus and VictoriaMetrics on the same data.

Starts build/espy, /usr/bin/prometheus and /usr/bin/victoria-metrics on free
loopback ports with temporary data dirs, loads the same samples into all three
through Prometheus remote write, polls each until it returns the full sample
count, waits until the servers are idle, then runs every query --reps times
per target on keep-alive connections, interleaving targets within each round
(the order rotates every round), and prints p50/p99 per query and target and
Espy's ratios. Everything it starts is stopped on exit (try/finally; the
servers also get SIGKILL through PR_SET_PDEATHSIG if this script dies).

    /usr/bin/python3 bench/query_bench.py [--bin build/espy] [--points 100]
        [--hosts 1000] [--hist-hosts 100] [--reps 200] [--warmup 10] [--json out.json]
        [--budget 120] [--perf '(3r),(4r)'] [--perf-seconds 15] [--keep]

Workload (the storage issue's, plus a histogram): 10 metric names (5 counters
with random positive increments, 5 random-walk gauges) x 1,000 hosts (host
label), region = one of 4 by host, job="bench", and mid="<metric index 0-9>"
so that labelsets stay distinct once rate() drops __name__ (Prometheus rejects
duplicates). h_bucket: 100 hosts x 10 le buckets, job="hist", cumulative
counters. One sample every 10 s; --points per series (100: 1,000,000 samples
in the 10,000 main series; 1000: 10,000,000). The data ends on a whole minute
~2 minutes before the run starts; range queries cover the 24 h before that.

Needs Debian's python3 for python3-snappy (scripts/install-deps bench).
"""

import argparse
import ctypes
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

try:
    import snappy  # python3-snappy
except ImportError:
    sys.exit("query_bench: needs python3-snappy; run it with /usr/bin/python3 "
             "(scripts/install-deps bench)")

METRICS = [
    ("http_requests_total", "counter"), ("http_errors_total", "counter"),
    ("net_bytes_sent_total", "counter"), ("net_bytes_recv_total", "counter"),
    ("disk_ops_total", "counter"),
    ("cpu_usage_percent", "gauge"), ("mem_used_bytes", "gauge"),
    ("load_avg_1m", "gauge"), ("temp_celsius", "gauge"), ("queue_depth", "gauge"),
]
GAUGE_BASE = {"cpu_usage_percent": 50, "mem_used_bytes": 4e9, "load_avg_1m": 2,
              "temp_celsius": 55, "queue_depth": 100}
REGIONS = ["us-east", "us-west", "eu-central", "ap-south"]
LE = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
LE_CDF = [0.05, 0.15, 0.35, 0.6, 0.8, 0.9, 0.95, 0.98, 0.995, 1.0]
STEP_S = 10
TICK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ workload
def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(field, payload):
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


def pb_label(name, value):
    return _ld(1, _ld(1, name.encode()) + _ld(2, value.encode()))


def make_series(n_hosts, n_hist_hosts):
    """[(label protobuf bytes, value spec for series_values)] for every series."""
    series = []
    for h in range(n_hosts):
        host, region = "host-%d" % h, REGIONS[h % 4]
        for m, (name, kind) in enumerate(METRICS):
            labels = (pb_label("__name__", name) + pb_label("host", host) +
                      pb_label("job", "bench") + pb_label("mid", str(m)) +
                      pb_label("region", region))
            series.append((labels, ("counter" if kind == "counter" else "gauge", name,
                                    1000003 * (h * 10 + m) + 17)))
    for h in range(n_hist_hosts):
        host, region = "host-%d" % h, REGIONS[h % 4]
        for b, le in enumerate(LE):
            labels = (pb_label("__name__", "h_bucket") + pb_label("host", host) +
                      pb_label("job", "hist") + pb_label("le", le) +
                      pb_label("region", region))
            series.append((labels, ("bucket", b, 7919 * h + 5)))
    return series


def series_values(spec, T):
    kind = spec[0]
    if kind == "counter":
        r = random.Random(spec[2])
        v = r.uniform(0, 1e6)
        out = []
        for _ in range(T):
            v += r.expovariate(1 / 50.0)
            out.append(round(v, 3))
        return out
    if kind == "gauge":
        r = random.Random(spec[2])
        base = GAUGE_BASE[spec[1]]
        v = base * r.uniform(0.5, 1.5)
        out = []
        for _ in range(T):
            v = max(0.0, v + r.gauss(0, base * 0.02))
            out.append(round(v, 4))
        return out
    # bucket: the same observation counts for every bucket of one host (same seed),
    # cumulative over le, so buckets stay monotonic in le at every timestamp
    r = random.Random(spec[2])
    frac = LE_CDF[spec[1]]
    v, out = 0.0, []
    for _ in range(T):
        v += round(r.randint(20, 80) * frac)
        out.append(v)
    return out


def build_requests(series, T, end_ms, shards, window, per_req):
    """Remote-write bodies per shard. Series i goes to shard i % shards; each shard
    is sent time-window-major (all its series for `window` timestamps, then the
    next window) so that no server sees a sample far behind its newest one
    (Prometheus' head refuses samples older than its max time minus 1 h)."""
    start_ms = end_ms - (T - 1) * STEP_S * 1000
    ts = [start_ms + k * STEP_S * 1000 for k in range(T)]
    ts_bytes = [b"\x10" + _varint(t) for t in ts]
    values = [series_values(spec, T) for _, spec in series]
    out = [[] for _ in range(shards)]
    pack = struct.Struct("<d").pack
    for sh in range(shards):
        idx = list(range(sh, len(series), shards))
        for w0 in range(0, T, window):
            w1 = min(T, w0 + window)
            per_series = max(1, per_req // (w1 - w0))
            for g in range(0, len(idx), per_series):
                parts = []
                for i in idx[g:g + per_series]:
                    vals = values[i]
                    smp = b"".join(_ld(2, b"\x09" + pack(vals[k]) + ts_bytes[k])
                                   for k in range(w0, w1))
                    parts.append(_ld(1, series[i][0] + smp))
                out[sh].append(snappy.compress(b"".join(parts)))
    return out, start_ms


# ------------------------------------------------------------------ servers
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Server:
    def __init__(self, name, argv_fn, ready_path, root):
        self.name = name
        self.port = free_port()
        self.datadir = os.path.join(root, name)
        os.makedirs(self.datadir)
        self.argv = argv_fn(self.port, self.datadir)
        self.base = "http://127.0.0.1:%d" % self.port
        self.ready_path = ready_path
        self.logpath = os.path.join(root, name + ".log")
        self.proc = None

    def start(self):
        self.logf = open(self.logpath, "wb")
        self.proc = subprocess.Popen(self.argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s; log %s:\n%s" % (
                    self.name, self.proc.returncode, self.logpath, self.log_tail()))
            try:
                st, _ = get(self.base + self.ready_path, timeout=2)
                if 200 <= st < 300:
                    return
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("%s not ready after %ds at %s%s" % (
                    self.name, timeout, self.base, self.ready_path))
            time.sleep(0.1)

    def cpu_s(self):
        try:
            f = open("/proc/%d/stat" % self.proc.pid).read().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / TICK
        except (OSError, IndexError):
            return 0.0

    def rss_mib(self):
        try:
            for line in open("/proc/%d/status" % self.proc.pid):
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def log_tail(self, n=2000):
        try:
            return open(self.logpath, "rb").read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()


def get(url, timeout=120):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        c.request("GET", u.path + ("?" + u.query if u.query else ""))
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def post(conn, path, body, headers):
    h = dict(headers)
    h["Content-Length"] = str(len(body))
    conn.request("POST", path, body=body, headers=h)
    r = conn.getresponse()
    return r.status, r.read()


RW_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
              "X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "query_bench/1"}


def send_all(srv, shards):
    errs = []

    def run(reqs):
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=300)
        for body in reqs:
            st, data = post(c, "/api/v1/write", body, RW_HEADERS)
            if not 200 <= st < 300:
                errs.append("%s: POST /api/v1/write -> %d %s" % (srv.name, st, data[:300]))
                break
        c.close()

    ths = [threading.Thread(target=run, args=(reqs,)) for reqs in shards]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    if errs:
        raise RuntimeError(errs[0])


POLL = [0]


def count_samples(srv, end_s, span_s, extra):
    POLL[0] += 1
    q = 'sum(count_over_time({job=~"bench|hist",poll!="%d"}[%ds]))' % (POLL[0], span_s)
    args = {"query": q, "time": str(end_s + 1)}
    args.update(extra)
    st, body = get(srv.base + "/api/v1/query?" + urllib.parse.urlencode(args))
    if st != 200:
        raise RuntimeError("%s: count query -> %d %s" % (srv.name, st, body[:300]))
    res = json.loads(body)["data"]["result"]
    return int(float(res[0]["value"][1])) if res else 0


def wait_count(srv, want, end_s, span_s, extra, timeout):
    t0, last, last_change = time.time(), None, time.time()
    while True:
        n = count_samples(srv, end_s, span_s, extra)
        if n == want:
            return time.time() - t0
        if n != last:
            last, last_change = n, time.time()
        if time.time() - last_change > timeout:
            raise RuntimeError("%s: count stuck at %d of %d for %ds" % (srv.name, n, want, timeout))
        time.sleep(0.3)


def sys_busy_s():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / TICK


def loadavg():
    return open("/proc/loadavg").read().split()[0:3]


def wait_idle(servers, max_wait=90, threshold=0.05):
    """Waits until the servers together use < threshold cores over 2 s (VictoriaMetrics
    merges parts and Espy/Prometheus may compact in the background after ingestion)."""
    deadline = time.time() + max_wait
    while True:
        c0 = sum(s.cpu_s() for s in servers)
        time.sleep(2)
        used = (sum(s.cpu_s() for s in servers) - c0) / 2
        if used < threshold or time.time() > deadline:
            return used


# ------------------------------------------------------------------ queries
def query_suite(end_s):
    """The issue's five queries. (3) and (4) are run both as an instant query at the
    end of the data and as a 24 h range at 60 s step (the issue does not say which;
    its 1 M-sample figures, 4-9 ms for (3), fit the instant form)."""
    day = {"start": str(end_s - 86400), "end": str(end_s), "step": "60"}
    at = {"time": str(end_s)}
    q3 = 'sum by (region) (rate({job="bench"}[5m]))'
    q4 = "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))"
    return [
        ("(1) 1 series raw", "/api/v1/query",
         dict(at, query='http_requests_total{host="host-42"}[1d]')),
        ("(1b) 1 series latest", "/api/v1/query",
         dict(at, query='http_requests_total{host="host-42"}')),
        ("(2) rate 1 host 24h", "/api/v1/query_range",
         dict(day, query='rate(http_requests_total{host="host-42"}[5m])')),
        ("(3) sum by region rate 10k", "/api/v1/query", dict(at, query=q3)),
        ("(3r) same, 24h range", "/api/v1/query_range", dict(day, query=q3)),
        ("(3n) one name (1k series), 24h range", "/api/v1/query_range",
         dict(day, query="sum by (region) (rate(http_requests_total[5m]))")),
        ("(4) histogram_quantile", "/api/v1/query", dict(at, query=q4)),
        ("(4r) same, 24h range", "/api/v1/query_range", dict(day, query=q4)),
        ("(5) label host values", "/api/v1/label/host/values", {}),
    ]


def shape(body):
    """(series, points) of a query answer, or (values, 0) for label values."""
    d = json.loads(body)
    if d.get("status") != "success":
        return ("error: " + str(d.get("error"))[:200], 0)
    data = d["data"]
    if isinstance(data, list):
        return (len(data), 0)
    res = data["result"]
    if data["resultType"] == "matrix":
        return (len(res), sum(len(r.get("values", [])) for r in res))
    return (len(res), len(res))


def pct(sorted_vals, p):
    return sorted_vals[min(len(sorted_vals) - 1, int(round(p * (len(sorted_vals) - 1))))]


def run_queries(targets, end_s, reps, warmup, budget_s):
    """targets: [(label, Server, extra args)]. Each round sends the query once to every
    target, in an order that rotates every round. A query whose round takes long gets
    fewer rounds (at least 30), so that it fits in about budget_s seconds.
    Returns {query: {...}}."""
    conns = {lab: http.client.HTTPConnection("127.0.0.1", s.port, timeout=300)
             for lab, s, _ in targets}
    results = {}

    def one(lab, url, qname):
        c = conns[lab]
        t0 = time.perf_counter()
        c.request("GET", url)
        r = c.getresponse()
        body = r.read()
        dt = (time.perf_counter() - t0) * 1000
        if r.status != 200:
            raise RuntimeError("%s %s -> %d %s" % (lab, qname, r.status, body[:300]))
        return dt, body

    try:
        for qname, path, args in query_suite(end_s):
            urls = {}
            for lab, s, extra in targets:
                a = dict(args)
                a.update(extra)
                urls[lab] = path + ("?" + urllib.parse.urlencode(a) if a else "")
            info = {}
            t0 = time.perf_counter()
            for lab, _, _ in targets:
                _, body = one(lab, urls[lab], qname)
                info[lab] = dict(shape=shape(body), bytes=len(body))
            round_s = time.perf_counter() - t0
            n_warm = max(1, min(warmup, int(0.1 * budget_s / round_s)))
            n_reps = max(min(reps, 30), min(reps, int(budget_s / round_s)))
            lat = {lab: [] for lab, _, _ in targets}
            busy0, cpu0 = sys_busy_s(), {lab: s.cpu_s() for lab, s, _ in targets}
            own0 = os.times()
            la0 = loadavg()
            t_start = time.time()
            for rnd in range(n_warm + n_reps):
                order = targets[rnd % len(targets):] + targets[:rnd % len(targets)]
                for lab, _, _ in order:
                    dt, _ = one(lab, urls[lab], qname)
                    if rnd >= n_warm:
                        lat[lab].append(dt)
            own1 = os.times()
            wall_cpu = sys_busy_s() - busy0
            srv_cpu = sum(s.cpu_s() - cpu0[lab] for lab, s, _ in targets
                          if not lab.endswith("nocache"))
            own = (own1.user + own1.system) - (own0.user + own0.system)
            q = {}
            for lab, _, _ in targets:
                v = sorted(lat[lab])
                q[lab] = dict(p50=pct(v, 0.5), p99=pct(v, 0.99), **info[lab])
            results[qname] = dict(targets=q, reps=n_reps, warmup=n_warm,
                                  seconds=time.time() - t_start,
                                  loadavg_before=la0, loadavg_after=loadavg(),
                                  other_cpu_s=max(0.0, wall_cpu - srv_cpu - own))
            log("%-28s " % qname + "  ".join(
                "%s p50=%.2f p99=%.2f %s" % (lab, q[lab]["p50"], q[lab]["p99"], q[lab]["shape"])
                for lab, _, _ in targets) + "  reps=%d load=%s other_cpu=%.1fs" % (
                    n_reps, la0[0], results[qname]["other_cpu_s"]))
    finally:
        for c in conns.values():
            c.close()
    return results


def perf_profile(srv, target_extra, end_s, qname, seconds, outdir):
    """perf record -g on espy while one query runs in a loop; returns the report head."""
    suite = {n: (p, a) for n, p, a in query_suite(end_s)}
    name = next((n for n in suite if qname in n), None)
    if name is None:
        raise RuntimeError("--perf %r matches no query (have: %s)" % (qname, ", ".join(suite)))
    path, args = suite[name]
    a = dict(args)
    a.update(target_extra)
    url = path + ("?" + urllib.parse.urlencode(a) if a else "")
    data = os.path.join(outdir, "perf.data")
    pr = subprocess.Popen(["perf", "record", "-g", "-F", "999", "-p", str(srv.proc.pid),
                           "-o", data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          preexec_fn=_die_with_parent)
    n = 0
    try:
        time.sleep(0.5)
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=300)
        t_end = time.time() + seconds
        while time.time() < t_end:
            c.request("GET", url)
            c.getresponse().read()
            n += 1
        c.close()
    finally:
        pr.send_signal(signal.SIGINT)
        try:
            pr.wait(60)
        except subprocess.TimeoutExpired:
            pr.kill()
            pr.wait()
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio",
                          "--percent-limit", "1.5", "-g", "none", "--sort", "symbol"],
                         capture_output=True, text=True)
    lines = [re.sub(r"[\s-]+$", "", ln).strip() for ln in rep.stdout.splitlines()
             if ln.strip() and not ln.startswith("#")]
    return name, n, lines[:30]


# ------------------------------------------------------------------ report
def fmt_ms(v):
    return "%.2f" % v if v < 10 else "%.1f" % v if v < 100 else "%.0f" % v


def report(results, labels, title):
    out = ["### " + title, ""]
    hdr = ["query"]
    for lab in labels:
        hdr += ["%s p50" % lab, "%s p99" % lab]
    hdr += ["espy/%s p50" % lab for lab in labels if lab != "espy"]
    out.append("| " + " | ".join(hdr) + " |")
    out.append("|" + "---|" * len(hdr))
    for qname, r in results.items():
        t = r["targets"]
        row = [qname]
        for lab in labels:
            row += [fmt_ms(t[lab]["p50"]), fmt_ms(t[lab]["p99"])]
        row += ["%.2f" % (t["espy"]["p50"] / t[lab]["p50"]) for lab in labels if lab != "espy"]
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    out.append("| query | " + " | ".join("%s (series, points) bytes" % l for l in labels) +
               " | reps | load avg before / after | other CPU s |")
    out.append("|" + "---|" * (len(labels) + 4))
    for qname, r in results.items():
        t = r["targets"]
        out.append("| %s | %s | %d | %s / %s | %.1f |" % (
            qname, " | ".join("%s %s" % (t[l]["shape"], t[l]["bytes"]) for l in labels), r["reps"],
            r["loadavg_before"][0], r["loadavg_after"][0], r["other_cpu_s"]))
    return "\n".join(out)


# ------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="build/espy", help="espy binary (default build/espy)")
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    ap.add_argument("--victoria-metrics", default="/usr/bin/victoria-metrics")
    ap.add_argument("--points", type=int, default=100, help="samples per series (10 s apart)")
    ap.add_argument("--hosts", type=int, default=1000, help="hosts (10 series each)")
    ap.add_argument("--hist-hosts", type=int, default=100, help="hosts with h_bucket (10 le each)")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--budget", type=float, default=120,
                    help="seconds per query; slow queries get fewer reps (at least 30)")
    ap.add_argument("--no-vm-nocache", action="store_true",
                    help="skip the extra VictoriaMetrics column with nocache=1")
    ap.add_argument("--perf", default=None,
                    help="after measuring, perf record espy while each of these queries loops "
                         "(comma-separated substrings of their names, e.g. '(3r),(4r)')")
    ap.add_argument("--perf-seconds", type=float, default=15)
    ap.add_argument("--json", default=None, help="write raw results here")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, perf.data)")
    a = ap.parse_args()
    # SIGTERM/SIGHUP unwind through the finally below, which stops the servers
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, f: sys.exit("query_bench: signal %d, stopping" % n))

    espy_bin = os.path.abspath(a.bin)
    for b in (espy_bin, a.prometheus, a.victoria_metrics):
        if not os.access(b, os.X_OK):
            sys.exit("query_bench: %s is not an executable (build espy or install the peers: "
                     "scripts/install-deps bench)" % b)

    end_s = (int(time.time()) - 120) // 60 * 60
    end_ms = end_s * 1000
    T = a.points
    t0 = time.time()
    series = make_series(a.hosts, a.hist_hosts)
    shards, start_ms = build_requests(series, T, end_ms, shards=2, window=10, per_req=10000)
    n_main, n_hist = a.hosts * 10 * T, a.hist_hosts * len(LE) * T
    total = len(series) * T
    log("generated %d series x %d points = %d samples (%d main + %d h_bucket), "
        "%d requests, %.0f MB, in %.1fs" % (len(series), T, total, n_main, n_hist,
                                            sum(len(s) for s in shards),
                                            sum(len(b) for s in shards for b in s) / 1e6,
                                            time.time() - t0))

    root = tempfile.mkdtemp(prefix="query_bench.")
    prom_cfg = os.path.join(root, "prometheus.yml")
    with open(prom_cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1h\n  evaluation_interval: 1h\nscrape_configs: []\n")
    servers = [
        Server("espy", lambda p, d: [espy_bin, "serve", "--listen=127.0.0.1:%d" % p,
                                     "--data-dir=" + d], "/readyz", root),
        Server("prom", lambda p, d: [a.prometheus, "--config.file=" + prom_cfg,
                                     "--storage.tsdb.path=" + d,
                                     "--web.listen-address=127.0.0.1:%d" % p,
                                     "--web.enable-remote-write-receiver"], "/-/ready", root),
        Server("vm", lambda p, d: [a.victoria_metrics, "-storageDataPath=" + d,
                                   "-httpListenAddr=127.0.0.1:%d" % p,
                                   "-retentionPeriod=1"], "/health", root),
    ]
    count_extra = {"vm": {"nocache": "1"}}
    span_s = (end_ms - start_ms) // 1000 + 120
    out = dict(points=T, series=len(series), samples=total, end_s=end_s,
               espy_bin=espy_bin, started=time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    try:
        for s in servers:
            s.start()
        for s in servers:
            s.wait_ready()
        log("started " + ", ".join("%s pid %d on :%d" % (s.name, s.proc.pid, s.port)
                                   for s in servers) + "; data under " + root)
        load = {}
        for s in servers:
            t1 = time.time()
            send_all(s, shards)
            t2 = time.time()
            vis = wait_count(s, total, end_s, span_s, count_extra.get(s.name, {}), timeout=120)
            load[s.name] = dict(send_s=t2 - t1, visible_after_s=vis, rss_mib=s.rss_mib())
            log("%s: sent %d samples in %.1fs, all counted %.1fs later, RSS %.0f MiB" % (
                s.name, total, t2 - t1, vis, s.rss_mib()))
        out["load"] = load
        used = wait_idle(servers)
        log("servers idle (%.2f cores); load average %s" % (used, " ".join(loadavg())))
        targets = [("espy", servers[0], {}), ("prom", servers[1], {}), ("vm", servers[2], {})]
        if not a.no_vm_nocache:
            targets.append(("vm nocache", servers[2], {"nocache": "1"}))
        res = run_queries(targets, end_s, a.reps, a.warmup, a.budget)
        out["results"] = res
        out["rss_mib_after"] = {s.name: s.rss_mib() for s in servers}
        labels = [lab for lab, _, _ in targets]
        title = "%d series x %d points (%s samples + %s h_bucket), up to %d reps, %s" % (
            len(series), T, "{:,}".format(n_main), "{:,}".format(n_hist), a.reps,
            out["started"])
        print(report(res, labels, title), flush=True)
        out["perf"] = []
        for pq in filter(None, (a.perf or "").split(",")):
            name, n, lines = perf_profile(servers[0], {}, end_s, pq, a.perf_seconds, root)
            out["perf"].append(dict(query=name, runs=n, top=lines))
            print("\nperf record -g -p <espy> during %d runs of %s (self time, >=1.5%%):"
                  % (n, name))
            print("\n".join(lines), flush=True)
    finally:
        for s in servers:
            try:
                s.stop()
            except Exception as e:  # keep stopping the others
                log("stopping %s: %s" % (s.name, e))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=1)
        if a.keep:
            log("kept " + root)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

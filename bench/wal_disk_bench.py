#!/usr/bin/python3
"""Disk bytes per sample right after an ingest: what the WAL costs.

Starts each given espy binary on an empty temporary data dir, sends the peer-bench
workload through Prometheus remote write (S series x T timestamps 10 s apart, B samples
a request, C connections, each series on one connection in timestamp order; series i is
one of 10 metric names, host-<(i/10)%1000>, one of 4 regions, job-<i/10000>; counters
grow by random increments with 3 decimals, gauges random-walk with 4), waits until the
query API counts every sample, then reports per sample:

  du        allocated blocks of the data dir while the server runs (what the
            peer-bench's "disk B/sample" measures: st_blocks, so it includes the
            space the WAL reserves ahead of its records with fallocate)
  records   WAL record bytes written (espy_wal_written_bytes: framing included)
  du stop   allocated blocks after a clean shutdown (the WAL cuts its reserve)

and the send rate and the server's CPU seconds for the sending (both move with
the machine's load: alternate binaries and take several runs).

    /usr/bin/python3 bench/wal_disk_bench.py --bin build/espy [--bin other/espy] [--runs 1]
"""

import argparse
import os
import random
import json
import re
import shutil
import struct
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import query_bench as qb  # noqa: E402  (needs python3-snappy: Debian's python3)

METRICS = [("http_requests_total", True), ("http_errors_total", True),
           ("net_bytes_sent_total", True), ("net_bytes_recv_total", True),
           ("disk_ops_total", True), ("cpu_usage_percent", False), ("mem_used_bytes", False),
           ("load_avg_1m", False), ("temp_celsius", False), ("queue_depth", False)]
GAUGE_BASE = {"cpu_usage_percent": 50, "mem_used_bytes": 4e9, "load_avg_1m": 2,
              "temp_celsius": 55, "queue_depth": 100}
REGIONS = ["us-east", "us-west", "eu-central", "ap-south"]


def labels_of(i):
    name, _ = METRICS[i % 10]
    h = (i // 10) % 1000
    return [("__name__", name), ("host", "host-%d" % h), ("job", "job-%d" % (i // 10000)),
            ("region", REGIONS[h % 4])]


def values_of(i, T):
    name, counter = METRICS[i % 10]
    r = random.Random(1000003 * i + 17)
    out = []
    if counter:
        v = r.uniform(0, 1e6)
        for _ in range(T):
            v += r.expovariate(1 / 50.0)
            out.append(round(v, 3))
    else:
        base = GAUGE_BASE[name]
        v = base * r.uniform(0.5, 1.5)
        for _ in range(T):
            v = max(0.0, v + r.gauss(0, base * 0.02))
            out.append(round(v, 4))
    return out


def pb_timeseries(labels, samples):
    lb = b"".join(qb._ld(1, qb._ld(1, n.encode()) + qb._ld(2, v.encode())) for n, v in labels)
    sb = b"".join(qb._ld(2, b"\x09" + struct.pack("<d", v) + b"\x10" + qb._varint(t))
                  for v, t in samples)
    return qb._ld(1, lb + sb)


def build(S, T, B, C, end_ms):
    """Requests per connection: time-major, B samples each, a series' samples grouped."""
    ts = [end_ms - (T - 1 - k) * 10000 for k in range(T)]
    labels = [labels_of(i) for i in range(S)]
    values = [values_of(i, T) for i in range(S)]
    shards = []
    for shard in range(C):
        reqs, cur = [], []

        def flush():
            per = {}
            for i, k in cur:
                per.setdefault(i, []).append((values[i][k], ts[k]))
            raw = b"".join(pb_timeseries(labels[i], smp) for i, smp in per.items())
            reqs.append(qb.snappy.compress(raw))

        for k in range(T):
            for i in range(shard, S, C):
                cur.append((i, k))
                if len(cur) == B:
                    flush()
                    cur = []
        if cur:
            flush()
        shards.append(reqs)
    return shards


def du(path):
    blocks = size = 0
    for root, _, files in os.walk(path):
        for f in files:
            st = os.lstat(os.path.join(root, f))
            blocks += st.st_blocks * 512
            size += st.st_size
    return blocks, size


def wait_count(srv, want, end_s, span_s, timeout=120):
    """Polls the query API until it counts `want` samples (a changing label
    matcher keeps any result cache out of it)."""
    last, last_change, poll = None, time.time(), 0
    while True:
        poll += 1
        q = 'sum(count_over_time({__name__=~".+",poll!="%d"}[%ds]))' % (poll, span_s)
        st, body = qb.get(srv.base + "/api/v1/query?" +
                          urllib.parse.urlencode({"query": q, "time": str(end_s + 1)}))
        if st != 200:
            raise RuntimeError("count query -> %d %s" % (st, body[:300]))
        res = json.loads(body)["data"]["result"]
        n = int(float(res[0]["value"][1])) if res else 0
        if n == want:
            return
        if n != last:
            last, last_change = n, time.time()
        if time.time() - last_change > timeout:
            raise RuntimeError("count stuck at %d of %d" % (n, want))
        time.sleep(0.3)


def wal_written(srv):
    st, body = qb.get(srv.base + "/metrics")
    m = re.search(rb"^espy_wal_written_bytes(?:\{[^}]*\})? ([0-9.e+]+)$", body, re.M)
    if st != 200 or not m:
        raise RuntimeError("no espy_wal_written_bytes in /metrics")
    return float(m.group(1))


def run_one(binary, shards, n, end_ms, span_s, root, tag):
    srv = qb.Server(tag, lambda port, d: [binary, "serve", "--listen=127.0.0.1:%d" % port,
                                          "--data-dir=" + d], "/readyz", root)
    srv.start()
    try:
        srv.wait_ready()
        cpu0 = srv.cpu_s()
        t0 = time.time()
        qb.send_all(srv, shards)
        send_s = time.time() - t0
        cpu = srv.cpu_s() - cpu0  # the server's CPU for the ingest, before any query
        wait_count(srv, n, end_ms // 1000, span_s)
        blocks, size = du(srv.datadir)
        records = wal_written(srv)
    finally:
        srv.stop()
    blocks_stopped, _ = du(srv.datadir)
    return dict(du=blocks / n, size=size / n, records=records / n, du_stopped=blocks_stopped / n,
                rate=n / send_s, cpu=cpu)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", action="append", help="espy binary (repeat to compare)")
    ap.add_argument("-S", type=int, default=10000)
    ap.add_argument("-T", type=int, default=100)
    ap.add_argument("-B", type=int, default=10000)
    ap.add_argument("-C", type=int, default=2)
    ap.add_argument("--runs", type=int, default=1)
    a = ap.parse_args()
    bins = a.bin or ["build/espy"]
    n = a.S * a.T
    end_ms = (int(time.time()) - 120) // 10 * 10000
    shards = build(a.S, a.T, a.B, a.C, end_ms)
    print("| binary | run | du B/sample (running) | file size B/sample | WAL records B/sample "
          "| du B/sample (stopped) | send samples/s | server CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    root = tempfile.mkdtemp(prefix="wal_disk_bench_")
    try:
        for r in range(a.runs):
            for j, b in enumerate(bins):
                res = run_one(os.path.abspath(b), shards, n, end_ms, a.T * 10 + 120, root,
                              "espy%d_run%d" % (j, r))
                print("| %s | %d | %.2f | %.2f | %.2f | %.2f | %.0f | %.2f |" % (
                    b, r + 1, res["du"], res["size"], res["records"], res["du_stopped"],
                    res["rate"], res["cpu"]), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

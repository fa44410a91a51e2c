#!/usr/bin/python3
"""A range read of 1,000 series over 7 days: Espy against VictoriaMetrics's /api/v1/export.

Starts build/espy and /usr/bin/victoria-metrics on free loopback ports with temporary data
dirs, loads the same samples into both through Prometheus remote write (the query_bench
workload: 10 metrics x --hosts hosts, here one sample a minute for 7 days), waits until each
counts them all, then reads every raw sample back --reps times per target, alternating:

  espy        GET /api/v1/export?match[]={job="bench"}     (raw samples, JSON lines)
  espy query  GET /api/v1/query?query={job="bench"}[7d]    (a range selector, Prometheus JSON)
  vm          GET /api/v1/export?match[]={job="bench"}     (raw samples, JSON lines)

and prints the median and best wall time and bytes of each (curl, output discarded).

    /usr/bin/python3 bench/range_read_bench.py [--bin build/espy] [--hosts 100] [--reps 5]
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import query_bench as qb  # noqa: E402

DAYS = 7


def timed_get(url):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total} "
                          "%{size_download}", url], capture_output=True, text=True, check=True)
    code, seconds, size = out.stdout.split()
    if code != "200":
        raise RuntimeError("GET %s -> %s" % (url, code))
    return float(seconds), int(size)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="build/espy")
    ap.add_argument("--victoria-metrics", default="/usr/bin/victoria-metrics")
    ap.add_argument("--hosts", type=int, default=100, help="hosts (10 series each)")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, f: sys.exit("range_read_bench: signal %d, stopping" % n))
    qb.STEP_S = 60
    T = DAYS * 24 * 60
    end_s = (int(time.time()) - 120) // 60 * 60
    series = qb.make_series(a.hosts, 0)
    shards, start_ms = qb.build_requests(series, T, end_s * 1000, shards=2, window=60,
                                         per_req=10000)
    total = len(series) * T
    qb.log("generated %d series x %d points = %d samples" % (len(series), T, total))
    root = tempfile.mkdtemp(prefix="range_read_bench.")
    servers = [
        qb.Server("espy", lambda p, d: [os.path.abspath(a.bin), "serve",
                                        "--listen=127.0.0.1:%d" % p, "--data-dir=" + d],
                  "/readyz", root),
        qb.Server("vm", lambda p, d: [a.victoria_metrics, "-storageDataPath=" + d,
                                      "-httpListenAddr=127.0.0.1:%d" % p,
                                      "-retentionPeriod=1"], "/health", root),
    ]
    span_s = (end_s * 1000 - start_ms) // 1000 + 120
    try:
        for s in servers:
            s.start()
            s.wait_ready()
        for s in servers:
            qb.send_all(s, shards)
            qb.wait_count(s, total, end_s, span_s, {"nocache": "1"} if s.name == "vm" else {},
                          timeout=120)
            qb.log("%s: all %d samples counted" % (s.name, total))
        qb.wait_idle(servers)
        sel = '{job="bench"}'
        export = "/api/v1/export?" + urllib.parse.urlencode(
            {"match[]": sel, "start": end_s - DAYS * 86400, "end": end_s})
        urls = {
            "espy": servers[0].base + export,
            "espy query": servers[0].base + "/api/v1/query?" + urllib.parse.urlencode(
                {"query": "%s[%dd]" % (sel, DAYS), "time": end_s}),
            "vm": servers[1].base + export,
        }
        times = {name: [] for name in urls}
        sizes = {}
        for rep in range(a.reps):
            order = list(urls) if rep % 2 == 0 else list(reversed(list(urls)))
            for name in order:
                seconds, size = timed_get(urls[name])
                times[name].append(seconds)
                sizes[name] = size
        print("\n%d series x %d points (%s samples), %d reps, %s\n" % (
            len(series), T, "{:,}".format(total), a.reps, time.strftime("%Y-%m-%d %H:%M %Z")))
        print("| target | request | median s | best s | MB | samples/s (median) |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name in urls:
            t = sorted(times[name])
            med = t[len(t) // 2]
            what = "query {job=\"bench\"}[7d]" if name == "espy query" else "export"
            print("| %s | %s | %.2f | %.2f | %.0f | %s |" % (
                name, what, med, t[0], sizes[name] / 1e6, "{:,.0f}".format(total / med)))
        ratio = sorted(times["vm"])[a.reps // 2] / sorted(times["espy"])[a.reps // 2]
        print("\nespy is %.2fx VictoriaMetrics's export speed (median over median)" % ratio)
    finally:
        for s in servers:
            try:
                s.stop()
            except Exception as e:
                qb.log("stopping %s: %s" % (s.name, e))
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

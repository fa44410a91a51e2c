#!/usr/bin/env python3
"""Live stream benchmark driver: for each configuration it starts a fresh espy
(its own temporary data dir), runs the C++ load client
(src/stream/stream_latency_bench.cc) against it, stops espy, and prints the
median over --repeats runs as a Markdown table; every run's raw JSON goes to
--raw.

    bench/stream_bench.py --bin build-streambench/espy \\
        --client build-streambench/src/stream/stream_latency_bench \\
        [--clients 1,100,1000] [--modes shared,per-series] [--fsync batch,never] \\
        [--repeats 3] [--rate 100] [--posts 500] [--saturate-seconds 3]

The client measures, per point and client, receive time minus POST send time
and minus POST answer time (steady clock, one process), p50/p90/p99/max;
points and messages delivered per second when writers post back to back;
and espy's RSS before and after the clients connect (memory per connection).
"""

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def start_espy(bin_path, fsync, data_dir):
    port = free_port()
    proc = subprocess.Popen(
        [bin_path, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir,
         "--fsync", fsync, "--stream-max-connections", "2000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"espy exited with {proc.returncode} at start")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return proc, port
        except OSError:
            time.sleep(0.05)
    stop_espy(proc)
    raise RuntimeError("espy did not answer /healthz within 20 s")


def stop_espy(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_one(args, fsync, mode, clients):
    with tempfile.TemporaryDirectory(prefix="espy-streambench-") as d:
        proc, port = start_espy(args.bin, fsync, d)
        try:
            load_before = os.getloadavg()[0]
            cmd = [args.client, "--port", str(port), "--pid", str(proc.pid),
                   "--clients", str(clients), "--mode", mode, "--rate", str(args.rate),
                   "--posts", str(args.posts), "--warmup", str(args.warmup),
                   "--saturate-seconds", str(args.saturate_seconds),
                   "--batch", str(args.batch), "--writers", str(args.writers),
                   "--threads", str(args.threads), "--json"]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if out.stderr:
                sys.stderr.write(out.stderr[-2000:])
            lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
            if not lines:
                raise RuntimeError(f"client exited {out.returncode} without a result")
            r = json.loads(lines[-1])
            r.update(fsync=fsync, exit=out.returncode, load_before=load_before,
                     load_after=os.getloadavg()[0])
            return r
        finally:
            stop_espy(proc)


def med(runs, *path):
    vals = []
    for r in runs:
        v = r
        for p in path:
            v = v[p]
        vals.append(v)
    return statistics.median(vals)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build-streambench/espy")
    ap.add_argument("--client", default="build-streambench/src/stream/stream_latency_bench")
    ap.add_argument("--clients", default="1,100,1000")
    ap.add_argument("--modes", default="shared,per-series")
    ap.add_argument("--fsync", default="batch,never")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--posts", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--saturate-seconds", type=float, default=3)
    ap.add_argument("--batch", type=int, default=1,
                    help="points per POST when saturating (shared mode)")
    ap.add_argument("--writers", type=int, default=4,
                    help="connections posting back to back when saturating")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--raw", default="", help="append every run's JSON to this file")
    args = ap.parse_args()
    fds = raise_fd_limit(8192)
    print(f"# open-file limit {fds}; load average at start {os.getloadavg()}", flush=True)

    header = ("| fsync | mode | clients | send→recv p50 / p90 / p99 / max ms | "
              "answer→recv p50 / p99 ms | all-clients p99 ms | POST rtt p50 ms | "
              "fan-out points/s | msgs/s | dropped | RSS KiB/conn (connected / after) | load |")
    rows = []
    for fsync in args.fsync.split(","):
        for mode in args.modes.split(","):
            for n in map(int, args.clients.split(",")):
                runs = []
                for i in range(args.repeats):
                    r = run_one(args, fsync, mode, n)
                    runs.append(r)
                    s = r["from_send"]
                    print(f"# {fsync} {mode} {n} run {i + 1}: p50 {s['p50_ms']:.3f} "
                          f"p99 {s['p99_ms']:.3f} max {s['max_ms']:.3f} ms; "
                          f"fan-out {r['sat_points_s']:,.0f} points/s; "
                          f"{r['received']}/{r['expected']}; load {r['load_before']:.2f}",
                          flush=True)
                    if args.raw:
                        with open(args.raw, "a") as f:
                            f.write(json.dumps(r) + "\n")
                loads = [r["load_before"] for r in runs] + [r["load_after"] for r in runs]
                rows.append(
                    f"| {fsync} | {mode} | {n:,} | "
                    f"{med(runs, 'from_send', 'p50_ms'):.2f} / {med(runs, 'from_send', 'p90_ms'):.2f}"
                    f" / {med(runs, 'from_send', 'p99_ms'):.2f} / {med(runs, 'from_send', 'max_ms'):.2f} | "
                    f"{med(runs, 'from_answer', 'p50_ms'):.2f} / {med(runs, 'from_answer', 'p99_ms'):.2f} | "
                    f"{med(runs, 'all_clients', 'p99_ms'):.2f} | {med(runs, 'post_rtt', 'p50_ms'):.2f} | "
                    f"{med(runs, 'sat_points_s'):,.0f} | {med(runs, 'sat_messages_s'):,.0f} | "
                    f"{med(runs, 'sat_dropped'):,.0f} | "
                    f"{med(runs, 'rss_per_conn_connected_kib'):.1f} / "
                    f"{med(runs, 'rss_per_conn_after_kib'):.1f} | "
                    f"{min(loads):.1f}-{max(loads):.1f} |")
    print(header)
    print("|" + " ---: |" * (header.count("|") - 1))
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()

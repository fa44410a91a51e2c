#!/usr/bin/env python3
"""Probe scheduler benchmark: how many website checks per second one `espy serve` sustains, and
what each target costs in CPU and memory.

    bench/probe_bench.py --bin build/espy [--targets 1000,5000] [--interval 5] [--measure 60]

For each N it starts a target server (a second espy, whose GET /healthz is cheap and answers
thousands of fresh connections a second; python's http.server cannot), writes a config with N
HTTP probes on http://TARGET/healthz?i=K (distinct targets, the same path), runs `espy serve`
with it, waits until every probe has started (two intervals plus a margin), then measures over
--measure seconds:

- checks finished (espy_probe_checks_total on /metrics) per second, against N / interval;
- late starts (espy_probe_late_starts_total: a check started over 1 s after it was due);
- CPU seconds of the probing espy (utime + stime from /proc/PID/stat) per check, and the target
  server's, reported apart;
- RSS of the probing espy minus that of an idle espy (same flags, no probes), per target.

The probing espy stores every check's ~16 samples in its own database, so its CPU includes
ingesting them: that is what a user's server does too. Each check opens a fresh connection (as
Espy's probes always do). Everything runs on loopback and stops by itself.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def metric_sum(text, name):
    """Sum of every sample of `name` in Prometheus text (any labels)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Espy:
    """One `espy serve` on a free loopback port and a temporary data dir."""

    def __init__(self, binary, workdir, name, config=None, extra=()):
        self.port = free_port()
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        cmd = [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir",
               os.path.join(self.dir, "data"), "--log-level", "warn", *extra]
        if config:
            cmd += ["--config", config]
        self.log = open(os.path.join(self.dir, "stderr.log"), "w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ESPY_")}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log, env=env)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode}; see "
                                   f"{self.log.name}")
            try:
                get(self.url("/healthz"), timeout=2)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not answer /healthz within 30 s")
                time.sleep(0.05)  # polling interval

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def counters(self):
        text = get(self.url("/metrics"))
        failed = 0.0
        for line in text.splitlines():
            if line.startswith("espy_probe_checks_total{") and 'result="failure"' in line:
                failed += float(line.rsplit(" ", 1)[1])
        return (metric_sum(text, "espy_probe_checks_total"),
                metric_sum(text, "espy_probe_late_starts_total"), failed)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def write_config(path, n, target_port, interval, timeout):
    with open(path, "w") as f:
        f.write("probes:\n")
        for i in range(n):
            f.write(f"  - name: t{i}\n    url: http://127.0.0.1:{target_port}/healthz?i={i}\n"
                    f"    interval: {interval}s\n    timeout: {timeout}s\n")


def idle_rss(binary, workdir, settle):
    idle = Espy(binary, workdir, "idle")
    try:
        time.sleep(settle)  # a benchmark settling period, not a test's wait
        return rss_kib(idle.proc.pid)
    finally:
        idle.stop()


def run(binary, workdir, n, interval, timeout, settle, measure, perf):
    target = Espy(binary, workdir, f"target-{n}")
    config = os.path.join(workdir, f"probes-{n}.yaml")
    write_config(config, n, target.port, interval, timeout)
    prober = Espy(binary, workdir, f"prober-{n}", config=config)
    try:
        time.sleep(2 * interval + settle)  # every probe has started and run at least once
        pid = prober.proc.pid
        c0, l0, f0 = prober.counters()
        cpu0, tcpu0, t0 = cpu_seconds(pid), cpu_seconds(target.proc.pid), time.monotonic()
        if perf:
            prof = subprocess.Popen(["perf", "record", "-g", "-p", str(pid), "-o",
                                     os.path.join(workdir, f"perf-{n}.data"), "--", "sleep",
                                     "10"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(measure)  # the measurement window
        c1, l1, f1 = prober.counters()
        cpu1, tcpu1, t1 = cpu_seconds(pid), cpu_seconds(target.proc.pid), time.monotonic()
        if perf:
            prof.wait()
            for title, view in (("self time by symbol", ["--no-children"]),
                                ("with callees by symbol", ["--children"]),
                                ("self time by thread id", ["--no-children", "--sort", "pid"]),
                                ("self time by library", ["--no-children", "--sort", "dso"])):
                report = subprocess.run(
                    ["perf", "report", "--stdio", *view, "--percent-limit", "1.5", "-g", "none",
                     "-i", os.path.join(workdir, f"perf-{n}.data")],
                    capture_output=True, text=True)
                print(f"perf, N={n}, {title}:\n" + "\n".join(
                    line[:160] for line in report.stdout.splitlines()
                    if line.strip() and not line.startswith("#")), flush=True)
        rss = rss_kib(pid)
        elapsed = t1 - t0
        checks = c1 - c0
        return {
            "n": n, "interval": interval, "elapsed": elapsed, "checks": checks,
            "rate": checks / elapsed, "want": n / interval, "late": l1 - l0,
            "late_total": l1, "failed": f1 - f0, "cpu_s": cpu1 - cpu0, "cpu_ms_per_check":
            1000 * (cpu1 - cpu0) / checks if checks else float("nan"),
            "target_cpu_s": tcpu1 - tcpu0, "rss_kib": rss,
        }
    finally:
        prober.stop()
        target.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "espy"))
    ap.add_argument("--targets", default="1000,5000", help="comma-separated N values")
    ap.add_argument("--interval", type=int, default=5, help="probe interval, seconds")
    ap.add_argument("--timeout", type=int, default=2, help="probe timeout, seconds")
    ap.add_argument("--settle", type=float, default=5, help="extra seconds before measuring")
    ap.add_argument("--measure", type=float, default=60, help="measurement window, seconds")
    ap.add_argument("--perf", action="store_true", help="perf record -g the prober for 10 s")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="espy-probe-bench-")
    try:
        base = idle_rss(args.bin, workdir, args.settle)
        print(f"idle espy RSS: {base} KiB", flush=True)
        rows = []
        for n in (int(x) for x in args.targets.split(",")):
            r = run(args.bin, workdir, n, args.interval, args.timeout, args.settle, args.measure,
                    args.perf)
            r["kib_per_target"] = (r["rss_kib"] - base) / n
            rows.append(r)
            print(f"N={n}: {r['checks']:.0f} checks in {r['elapsed']:.1f} s = {r['rate']:.1f}/s "
                  f"(schedule {r['want']:.0f}/s), {r['failed']:.0f} failed, late starts {r['late']:.0f} in the window "
                  f"({r['late_total']:.0f} since start), prober CPU {r['cpu_s']:.1f} s = "
                  f"{r['cpu_ms_per_check']:.3f} ms/check, target CPU {r['target_cpu_s']:.1f} s, "
                  f"RSS {r['rss_kib'] / 1024:.1f} MiB = {r['kib_per_target']:.2f} KiB/target",
                  flush=True)
        print("\n| targets | interval | checks/s (schedule) | late starts | prober CPU ms/check "
              "| prober CPU % | target CPU % | RSS MiB | KiB/target |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['n']:,} | {r['interval']} s | {r['rate']:.0f} ({r['want']:.0f}) | "
                  f"{r['late']:.0f} | {r['cpu_ms_per_check']:.3f} | "
                  f"{100 * r['cpu_s'] / r['elapsed']:.0f} | "
                  f"{100 * r['target_cpu_s'] / r['elapsed']:.0f} | {r['rss_kib'] / 1024:.1f} | "
                  f"{r['kib_per_target']:.2f} |")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark 5: latency from a sample in the kernel to the HTTP API.

One long-running `workload marker` process; for each trial it is told to
start spinning in a function it has never run before (bench_marker_<n>) and
prints the wall-clock time it entered it. The API (/api/folded?pid=) is
polled every POLL seconds until that function shows up. The latency is
seen - entered: it includes the wait for the first sample (up to one
sampling period), the collector's drain interval, the bus, symbolization,
the aggregator's flush window (windows become visible when they close) and
one poll period of resolution.

Run with the shipped drain interval (100 ms) and, by default, a 1 s flush
window (profiling.flush_interval; the shipped default is 5 s, where the
figures grow by about the difference).
"""
import os
import random
import subprocess
import time

import common

TRIALS = int(os.environ.get("BENCH_LAT_TRIALS", "30"))
FLUSH = os.environ.get("BENCH_LAT_FLUSH", "1s")
POLL = 0.02
TIMEOUT = 30.0


def main():
    sp = common.Skyprof(flush=FLUSH)
    wl = None
    lat = []
    missed = []
    rng = random.Random(8)
    flush_s = (float(FLUSH[:-2]) / 1e3 if FLUSH.endswith("ms") else
               float(FLUSH[:-1]) if FLUSH.endswith("s") else 1.0)
    try:
        sp.wait_ready()
        wl = subprocess.Popen([os.path.join(common.BENCH_BIN, "workload"),
                               "marker"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, bufsize=1)
        if wl.stdout.readline().strip() != "ready":
            raise RuntimeError("marker workload did not start")
        # Let the collector learn the process and its mappings first: the
        # figure is the steady-state latency of a known process.
        time.sleep(1.5)
        for n in range(min(TRIALS, 40)):
            wl.stdin.write("%d\n" % n)
            wl.stdin.flush()
            words = wl.stdout.readline().split()
            if len(words) != 3 or words[0] != "start":
                raise RuntimeError("marker workload said %r" % words)
            entered = int(words[2]) / 1e9
            needle = ";bench_marker_%d;" % n
            path = "/api/folded?pid=%d" % wl.pid
            seen = None
            while time.time() < entered + TIMEOUT:
                status, body = common.http_get(sp.port, path)
                # the marker calls s_spin: it is never the leaf
                if status == 200 and needle in body:
                    seen = time.time()
                    break
                time.sleep(POLL)
            if seen is None:
                # Counted, with what the API had for the process, rather
                # than fatal: a lost marker is a finding of its own.
                status, body = common.http_get(sp.port, path)
                missed.append({"marker": n, "api_status": status,
                               "marker_lines": [
                                   ln for ln in body.splitlines()
                                   if "bench_marker" in ln][-5:],
                               "lines": len(body.splitlines())})
                common.log("latency: marker %d never reached the API" % n)
            else:
                lat.append(seen - entered)
                common.log("latency: marker %d after %.3f s" % (n, lat[-1]))
            # park the workload off CPU between trials
            wl.stdin.write("-1\n")
            wl.stdin.flush()
            wl.stdout.readline()
            # A trial starting right after the last was seen would start
            # just after a flush every time: a random pause spreads the
            # start over the flush window's phase.
            time.sleep(rng.uniform(0, flush_s))
    finally:
        if wl:
            wl.kill()
            wl.wait()
        sp.stop()
    if not lat:
        raise RuntimeError("no marker ever reached the API")
    result = {"flush_interval": FLUSH, "trials": len(lat) + len(missed),
              "missed": missed,
              "median_s": common.median(lat),
              "p99_s": common.percentile(lat, 99),
              "min_s": min(lat), "max_s": max(lat), "all_s": lat}
    common.save("latency", result)
    print("latency kernel sample -> HTTP API (flush %s, %d trials): median "
          "%.3f s, p99 %.3f s (min %.3f, max %.3f), %d never seen in %.0f s"
          % (FLUSH, result["trials"], result["median_s"], result["p99_s"],
             result["min_s"], result["max_s"], len(missed), TIMEOUT))


if __name__ == "__main__":
    main()

"""Network throughput (issue 14): HTTP/1.1 requests per second the
collector (capture) and the aggregator (the network room: parsing,
pairing, metrics) sustain without loss, and the CPU each spends per
request.

A tests/progs/httpload server runs under a NETWORK task; paced httpload
clients (bench/netdrive.py) send keep-alive GET /ok at increasing rates
(BENCH_NET_RATES, requests/s, default "2000 5000 10000 20000 40000"), each
for BENCH_NET_STEP_SECONDS (10). After each step the pipeline is drained
and the step is lossless when the network room counted every request the
clients completed (GET /api/network) and no loss counter moved (collector
net_lost_kernel = ring full, net_lost_user, net_publish_errors,
net_hook_losses; aggregator net_events_lost, net_conn_evictions). CPU is
utime+stime of the collector and the aggregator from /proc/PID/stat over
the step and its drain, less their idle CPU for as long (measured before
the first step). Host-wide profiling is off, so the collector's CPU is the
capture's. The steps stop at the first loss, or when the clients fall
below 80% of the asked rate (the single-process server is then the
limit, and the figure is a lower bound).

Writes results/netthroughput.json and prints a table.
"""
import os
import time

import common
import netdrive

RATES = [int(r) for r in os.environ.get(
    "BENCH_NET_RATES", "2000 5000 10000 20000 40000").split()]
STEP = float(os.environ.get("BENCH_NET_STEP_SECONDS", "10"))
IDLE = 5.0


def cpu(pids):
    return {k: common.cpu_seconds([p]) for k, p in pids.items()}


def main():
    sky = common.Skyprof(flush="1s", host_wide=False)
    srv = None
    try:
        sky.wait_ready(samples=False)
        srv, port = netdrive.server()
        common.post_task(sky, srv.pid, "NETWORK",
                         len(RATES) * (STEP + 60) + 120)
        netdrive.wait_traced(sky, srv.pid, port)
        counted, m = netdrive.settle(sky, srv.pid)
        pids = {k: v for k, v in sky.stage_pids().items()
                if k in ("collector", "aggregator")}
        c0 = cpu(pids)
        time.sleep(IDLE)
        c1 = cpu(pids)
        idle = {k: (c1[k] - c0[k]) / IDLE for k in pids}
        steps = []
        for rate in RATES:
            lost0 = netdrive.losses(m)
            c0, t0 = cpu(pids), time.time()
            drv = netdrive.Driver(port, rate, STEP, short=False)
            drv.run()
            n, m = netdrive.settle(sky, srv.pid)
            c1, dt = cpu(pids), time.time() - t0
            lost = {k: v - lost0[k] for k, v in netdrive.losses(m).items()
                    if v - lost0[k]}
            got = (n or 0) - (counted or 0)
            counted = n
            made = drv.made
            step = {"rate": rate, "achieved": made / max(drv.elapsed, 1e-9),
                    "made": made, "counted": got, "lost": lost,
                    "client_failures": drv.failed,
                    "lossless": got == made and not lost and made > 0}
            for k in pids:
                used = max(0.0, c1[k] - c0[k] - idle[k] * dt)
                step[k + "_cpu_s"] = used
                step[k + "_us_per_request"] = used / max(made, 1) * 1e6
                step[k + "_core_share"] = used / max(drv.elapsed, 1e-9)
            steps.append(step)
            common.log("netthroughput: asked %d/s, made %d (%.0f/s), counted "
                       "%d, lost %s, collector %.1f us/req, aggregator %.1f "
                       "us/req" % (rate, made, step["achieved"], got, lost,
                                   step["collector_us_per_request"],
                                   step["aggregator_us_per_request"]))
            if not step["lossless"] or step["achieved"] < 0.8 * rate:
                break
        ok = [s for s in steps if s["lossless"]]
        best = max(ok, key=lambda s: s["achieved"]) if ok else None
        out = {"step_seconds": STEP, "idle_cpu_share": idle, "steps": steps,
               "best_lossless_rps": best["achieved"] if best else 0.0,
               "limited_by_load": bool(steps) and steps[-1]["lossless"]}
        if best:
            for k in pids:
                out[k + "_us_per_request"] = best[k + "_us_per_request"]
                # The marginal cost: a stage's CPU also has a part per
                # second of traffic (drains, peer lookups in /proc) that
                # does not grow with the rate; the slope between the
                # lowest and highest lossless steps is what one more
                # request costs.
                lo = min(ok, key=lambda s: s["made"])
                if best["made"] > lo["made"]:
                    out[k + "_marginal_us_per_request"] = max(
                        0.0, (best[k + "_cpu_s"] - lo[k + "_cpu_s"]) /
                        (best["made"] - lo["made"]) * 1e6)
        common.save("netthroughput", out)
        print("| asked req/s | made req/s | counted = made | losses | "
              "collector us/req | aggregator us/req |")
        print("|---|---|---|---|---|---|")
        for s in steps:
            print("| %d | %.0f | %s | %s | %.1f | %.1f |" %
                  (s["rate"], s["achieved"],
                   "yes" if s["counted"] == s["made"] else
                   "no (%d of %d)" % (s["counted"], s["made"]),
                   s["lost"] or "none", s["collector_us_per_request"],
                   s["aggregator_us_per_request"]))
        for k in pids:
            if k + "_marginal_us_per_request" in out:
                print("%s marginal CPU: %.2f us/request" %
                      (k, out[k + "_marginal_us_per_request"]))
        print("highest lossless rate: %.0f req/s%s" %
              (out["best_lossless_rps"],
               " (the load generator's limit, not the pipeline's)"
               if out["limited_by_load"] else ""))
    finally:
        if srv and srv.poll() is None:
            srv.terminate()
            srv.wait()
        sky.stop()


if __name__ == "__main__":
    main()

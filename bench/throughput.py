"""Benchmark 3: pipeline throughput, collector -> symbolizer -> aggregator.

The pipeline runs without its collector; build/bench/rawpub plays the
collector and publishes raw batches at increasing rates. After each step the
aggregator's /metrics tells how many samples arrived (samples_in) and what
each stage counted as lost (bus_lost_total: sequence gaps), dropped
(bus_dropped_total: publisher at its high-water mark) or dropped whole
(symbolizer batches_dropped). The highest rate with every sample delivered
is the throughput; the stage that was busiest (CPU of its process during the
step) or first lost messages is the one that saturated.
"""
import os
import subprocess
import time

import common

RATES = [int(r) for r in os.environ.get(
    "BENCH_RATES",
    "50000 100000 150000 200000 250000 300000 400000").split()]
STEP_SECONDS = float(os.environ.get("BENCH_STEP_SECONDS", "5"))
BATCH = int(os.environ.get("BENCH_BATCH", "1000"))
OBJECTS = [p for p in (
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
    "/usr/lib/x86_64-linux-gnu/libzmq.so.5",
    "/usr/lib/x86_64-linux-gnu/libcrypto.so.3") if os.path.exists(p)]
LOSS_KEYS = ("skyprof_symbolizer_bus_lost_total/raw.stacks",
             "skyprof_aggregator_bus_lost_total/sym.stacks",
             "skyprof_symbolizer_bus_dropped_total/sym.stacks",
             "skyprof_broker_bus_dropped_total",
             "skyprof_symbolizer_batches_dropped",
             "skyprof_aggregator_samples_rejected",
             "skyprof_aggregator_batches_duplicate")


def settle(sp, key, target=None, timeout=20.0):
    """Metrics once key reached target, or has stopped growing for 4 s (a
    draining backlog's intake was once seen to stand still for 1.5 s, so a
    short quiet time would cut it short and look like a silent loss)."""
    last, stable_since = None, time.time()
    deadline = time.time() + timeout
    m = sp.metrics()
    while time.time() < deadline:
        time.sleep(0.25)
        m = sp.metrics()
        v = m.get(key)
        if target is not None and v is not None and v >= target:
            stable_since = time.time()
            break
        if v != last:
            last, stable_since = v, time.time()
        elif time.time() - stable_since >= 4.0:
            break
    m["_settled_at"] = stable_since
    return m


def samples_in(sp):
    return sp.metrics().get("skyprof_aggregator_samples_in", 0)


def run_step(sp, endpoint, stages, i, rate, before):
    """One rate: publish for STEP_SECONDS, watch the aggregator's intake
    while publishing, then wait for the backlog to drain."""
    cpu0 = {k: common.cpu_seconds([p]) for k, p in stages.items()}
    pub = subprocess.Popen(
        [os.path.join(common.BENCH_BIN, "rawpub"), endpoint,
         "collector/bench%d" % i, str(rate), str(STEP_SECONDS), str(BATCH)]
        + OBJECTS, stdout=subprocess.PIPE, text=True)
    # rawpub waits 0.5 s for subscriptions; measure the intake over the
    # middle of the step, where a pipeline that keeps up delivers at the
    # sending rate and one that does not delivers at its capacity.
    time.sleep(0.5 + 1.0)
    n0, t0 = samples_in(sp), time.time()
    time.sleep(STEP_SECONDS - 1.5)
    n1, t1 = samples_in(sp), time.time()
    out = pub.communicate()[0]
    if pub.returncode != 0:
        raise RuntimeError("rawpub failed")
    t_sent = time.time()
    fields = dict(kv.split("=") for kv in out.split())
    published = int(fields["published_samples"])
    after = settle(sp, "skyprof_aggregator_samples_in",
                   before.get("skyprof_aggregator_samples_in", 0) + published)
    got = after.get("skyprof_aggregator_samples_in", 0) - \
        before.get("skyprof_aggregator_samples_in", 0)
    cpu1 = {k: common.cpu_seconds([p]) for k, p in stages.items()}
    losses = {k: after.get(k, 0) - before.get(k, 0) for k in LOSS_KEYS}
    achieved = published / float(fields["seconds"])
    delivered_rate = (n1 - n0) / (t1 - t0)
    return {
        "rate": rate, "achieved_rate": achieved,
        "delivered_rate": delivered_rate,
        "published": published, "delivered": got,
        "send_failures": int(fields["send_failures"]),
        "losses": losses,
        # Stage CPU per sample over the step and its backlog: the rate one
        # core of that stage can sustain is the inverse.
        "stage_cpu_us_per_sample": {
            k: 1e6 * (cpu1[k] - cpu0[k]) / max(1, published)
            for k in stages},
        "stage_peak_rss_mib": {k: peak_rss_mib(p)
                               for k, p in stages.items()},
        "drain_seconds": after.get("_settled_at", t_sent) - t_sent,
        # Kept up: every sample arrived, nothing lost, and the intake while
        # sending matched the sending rate (no backlog building in the
        # queues, which hold up to bus.hwm batches per socket).
        # (0.9: the intake is read from /metrics over a 3.5 s window, and
        # the sender and the stages share the machine's two cores.)
        "ok": (got >= published and not any(losses.values()) and
               delivered_rate >= 0.9 * achieved and
               after.get("_settled_at", t_sent) - t_sent <= 1.0),
        "metrics_after": after}


def peak_rss_mib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def main():
    sp = common.Skyprof(without=("collector",), flush="1s",
                        # fresh counters while the rate is stepped
                        stats_interval="500ms")
    result = {"batch": BATCH, "step_seconds": STEP_SECONDS,
              "objects": OBJECTS, "steps": []}
    try:
        sp.wait_ready(samples=False)
        endpoint = "ipc://%s/run/bus-in" % sp.dir
        stages = sp.stage_pids()
        before = settle(sp, "skyprof_aggregator_samples_in", timeout=3)
        failures = 0
        for i, rate in enumerate(RATES):
            step = run_step(sp, endpoint, stages, i, rate, before)
            before = step.pop("metrics_after")
            result["steps"].append(step)
            common.log("throughput: %7d/s asked, %7.0f/s sent, %7.0f/s "
                       "delivered while sending, %d/%d in the end, lag %.1f s"
                       % (rate, step["achieved_rate"], step["delivered_rate"],
                          step["delivered"], step["published"],
                          step["drain_seconds"]))
            failures = failures + 1 if not step["ok"] else 0
            if failures >= 2:
                break
    finally:
        sp.stop()
    ok = [s for s in result["steps"] if s["ok"]]
    result["max_ok_rate"] = max((s["achieved_rate"] for s in ok), default=0)
    bad = [s for s in result["steps"] if not s["ok"] and
           s["achieved_rate"] > result["max_ok_rate"]]
    if bad:
        first = bad[0]
        result["breaks_at"] = first["rate"]
        result["capacity_at_break"] = first["delivered_rate"]
        cost = first["stage_cpu_us_per_sample"]
        result["saturated_stage"] = max(cost, key=cost.get)
    # Per-sample CPU of each stage, from the fastest step that kept up
    # (the queues were short, so no batching effects from a backlog).
    ref = ok[-1] if ok else result["steps"][-1]
    result["stage_cpu_us_per_sample"] = ref["stage_cpu_us_per_sample"]
    result["stage_peak_rss_mib"] = result["steps"][-1]["stage_peak_rss_mib"]
    common.save("throughput", result)
    print("throughput: %.0f samples/s sustained without loss%s"
          % (result["max_ok_rate"],
             "; at %d/s asked it delivers %.0f/s, first to saturate: %s" %
             (result["breaks_at"], result["capacity_at_break"],
              result["saturated_stage"]) if bad else ""))
    print("throughput: CPU per sample %s" % "  ".join(
        "%s %.2f us" % kv for kv in sorted(
            result["stage_cpu_us_per_sample"].items(), key=lambda kv: -kv[1])
        if kv[1] > 0.005))
    print("throughput: peak RSS %s" % "  ".join(
        "%s %.0f MiB" % kv for kv in sorted(
            result["stage_peak_rss_mib"].items())))


if __name__ == "__main__":
    main()

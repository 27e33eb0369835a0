"""Benchmark 2: what the agent itself costs.

While it profiles the whole host at 100 Hz, with 300 extra sleeping
processes and one CPU-bound program running (so samples flow), the CPU time
of every skyprof process (launcher and stages, utime + stime from
/proc/PID/stat) per second of wall time, and the sum of their RSS at the
end. perf (`record -a -g -F 99`) and bpftrace (`profile:hz:99`) are
measured the same way for comparison; perf's cost does not include the
`perf report` it would need to show anything, bpftrace's includes its
in-kernel aggregation only.
"""
import os
import subprocess
import time

import common

SLEEPERS = int(os.environ.get("BENCH_SLEEPERS", "300"))
WINDOW = float(os.environ.get("BENCH_COST_SECONDS", "20"))
CONFIGS = ("skyprof", "perf", "bpftrace")


def measure(prof):
    """CPU seconds per wall second and RSS over WINDOW seconds."""
    pids = prof.all_pids()
    stages = prof.stage_pids() if isinstance(prof, common.Skyprof) else {}
    s0 = {k: common.cpu_seconds([p]) for k, p in stages.items()}
    f0 = common.forks_total()
    c0, t0 = common.cpu_seconds(pids), time.time()
    time.sleep(WINDOW)
    pids_now = prof.all_pids()
    # A stage restarted mid-window would make the delta meaningless.
    restarted = sorted(pids) != sorted(pids_now)
    c1, t1 = common.cpu_seconds(pids_now), time.time()
    per_proc = {k: common.rss_bytes(p) for k, p in stages.items()}
    cpu_stage = {k: (common.cpu_seconds([p]) - s0[k]) / (t1 - t0)
                 for k, p in stages.items()}
    rss = sum(common.rss_bytes(p) for p in pids_now)
    pss = sum(common.pss_bytes(p) for p in pids_now)
    return {"cpu_per_s": (c1 - c0) / (t1 - t0), "rss_bytes": rss,
            "pss_bytes": pss,
            # Host churn: the collector and policy engine follow every
            # process, so their cost depends on how busy the host is.
            "host_forks_per_s": (common.forks_total() - f0) / (t1 - t0),
            "rss_per_stage": per_proc, "cpu_per_stage": cpu_stage,
            "restarted": restarted,
            "pids": len(pids_now)}


def main():
    wl_bin = os.path.join(common.BENCH_BIN, "workload")
    sleepers = subprocess.Popen([wl_bin, "sleepers", str(SLEEPERS)],
                                stdout=subprocess.PIPE, text=True)
    busy = None
    result = {"sleepers": SLEEPERS, "window_s": WINDOW, "configs": {}}
    try:
        if sleepers.stdout.readline().strip() != "ready":
            raise RuntimeError("sleepers did not start")
        # Long enough for every window; killed at the end.
        busy = subprocess.Popen([wl_bin, "cpu", "1000000000000"],
                                stdout=subprocess.DEVNULL)
        for config in CONFIGS:
            common.log("agentcost: %s, %d sleepers, %.0f s"
                       % (config, SLEEPERS, WINDOW))
            prof = common.start_profiler(config)
            try:
                time.sleep(2)  # start-up scans are not the steady state
                m = measure(prof)
                if isinstance(prof, common.Skyprof):
                    met = prof.metrics()
                    m["collector_processes"] = met.get(
                        "skyprof_collector_processes", 0)
                    for key in ("skyprof_collector_samples_received",
                                "skyprof_collector_maps_refreshes",
                                "skyprof_collector_proc_events",
                                "skyprof_collector_batches_published",
                                "skyprof_symbolizer_batches_in",
                                "skyprof_aggregator_batches_in",
                                "skyprof_aggregator_batches_duplicate"):
                        m[key.replace("skyprof_", "")] = met.get(key, 0)
                m["loadavg"] = common.loadavg()
                result["configs"][config] = m
            finally:
                prof.stop()
    finally:
        if busy:
            busy.kill()
            busy.wait()
        sleepers.terminate()
        sleepers.wait()
    common.save("agentcost", result)
    for config, m in result["configs"].items():
        print("agentcost %-9s cpu %.2f%% of one core  rss %.1f MiB  pss %.1f "
              "MiB  (host: %.0f forks/s, load %.1f)%s"
              % (config, 100 * m["cpu_per_s"], m["rss_bytes"] / 2**20,
                 m["pss_bytes"] / 2**20,
                 m["host_forks_per_s"], m["loadavg"],
                 "  (a stage restarted!)" if m["restarted"] else ""))
        counters = {k: v for k, v in m.items() if k.startswith(
            ("collector_", "symbolizer_", "aggregator_"))}
        if counters:
            print("    " + " ".join("%s=%.0f" % kv
                                    for kv in sorted(counters.items())))
        for stage, rss in sorted(m["rss_per_stage"].items()):
            print("    %-10s cpu %.3f%%  rss %.1f MiB"
                  % (stage, 100 * m["cpu_per_stage"][stage], rss / 2**20))


if __name__ == "__main__":
    main()

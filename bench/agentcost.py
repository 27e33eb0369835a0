"""Benchmark 2: what the agent itself costs.

While it profiles the whole host at 100 Hz, with 300 extra sleeping
processes and one CPU-bound program running (so samples flow), the CPU time
of every skyprof process (launcher and stages, utime + stime from
/proc/PID/stat) per second of wall time, and the sum of their RSS at the
end. perf (`record -a -g -F 99`) and bpftrace (`profile:hz:99`) are
measured the same way for comparison; perf's cost does not include the
`perf report` it would need to show anything, bpftrace's includes its
in-kernel aggregation only.

skyprof runs twice in the same run (issue 15): "skyprof" is the default
configuration (`collector.unwinder: auto`: user stacks walked in the
kernel with .eh_frame tables; the gauge unwind_dwarf_active says whether
the walker loaded), "skyprof-fp" sets `collector.unwinder: fp` (frame
pointers only). With the walker the window starts once the tables of the
processes found at start are built (unwind_tables_pending == 0), so it
measures the steady state; the build itself is reported beside it.
"""
import os
import subprocess
import time

import common

SLEEPERS = int(os.environ.get("BENCH_SLEEPERS", "300"))
WINDOW = float(os.environ.get("BENCH_COST_SECONDS", "20"))
CONFIGS = ("skyprof", "skyprof-fp", "perf", "bpftrace")
SKYPROF_EXTRA = {"skyprof": "", "skyprof-fp": "  unwinder: fp\n"}
UNWIND = "skyprof_collector_unwind_"
# How long the walker may take to build the start-up tables.
SETTLE_TIMEOUT = float(os.environ.get("BENCH_UNWIND_SETTLE_S", "120"))


def start(config):
    if config in SKYPROF_EXTRA:
        return common.started(common.Skyprof(
            collector_extra=SKYPROF_EXTRA[config]))
    return common.start_profiler(config)


def wait_tables(sky, timeout):
    """Seconds until the collector has no unwind table left to build
    (it reports at every stats interval); None without the walker."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        m = sky.metrics()
        if m.get(UNWIND + "dwarf_active", 0) != 1:
            if UNWIND + "dwarf_active" in m:
                return None
        elif m.get(UNWIND + "tables_pending", 1) == 0 and \
                m.get(UNWIND + "procs", 0) > 0:
            return time.time() - t0
        time.sleep(0.5)
    raise RuntimeError("unwind tables still pending after %.0f s" % timeout)


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
            prof = start(config)
            try:
                settle = None
                if isinstance(prof, common.Skyprof):
                    settle = wait_tables(prof, SETTLE_TIMEOUT)
                time.sleep(2)  # start-up scans are not the steady state
                m = measure(prof)
                if isinstance(prof, common.Skyprof):
                    met = prof.metrics()
                    m["unwinder"] = "fp" if config == "skyprof-fp" else "auto"
                    m["tables_settle_s"] = settle
                    # What the walker keeps (tables, rows, kernel bytes)
                    # and what it did in the window.
                    m["unwind"] = {k[len(UNWIND):]: v for k, v in met.items()
                                   if k.startswith(UNWIND) and "/" not in k}
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
        print("agentcost %-10s cpu %.2f%% of one core  rss %.1f MiB  pss %.1f "
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
        if "unwind" in m:
            u = m["unwind"]
            print("    unwinder %s: dwarf_active=%.0f tables=%.0f rows=%.0f "
                  "bytes=%.1f MiB (reserved %.1f MiB) build %.0f ms, "
                  "settled after %s; walks=%.0f fp_walks=%.0f"
                  % (m["unwinder"], u.get("dwarf_active", 0),
                     u.get("tables", 0), u.get("rows", 0),
                     u.get("bytes", 0) / 2**20,
                     u.get("bytes_reserved", 0) / 2**20,
                     u.get("build_ns", 0) / 1e6,
                     "—" if m["tables_settle_s"] is None
                     else "%.1f s" % m["tables_settle_s"],
                     u.get("walks", 0), u.get("fp_walks", 0)))
        for stage, rss in sorted(m["rss_per_stage"].items()):
            print("    %-10s cpu %.3f%%  rss %.1f MiB"
                  % (stage, 100 * m["cpu_per_stage"][stage], rss / 2**20))


if __name__ == "__main__":
    main()

"""Benchmark 1: slowdown of a profiled workload.

A CPU-bound and a syscall-heavy fixed-work program (build/bench/workload)
run alone, under skyprof (host-wide on-CPU at 100 Hz), under
`perf record -a -g -F 99` and under bpftrace's `profile:hz:99` probe. Every
profiler samples the whole host in the background, as an agent does, so
the figures compare what the profiled program pays, not start-up costs.

The machine is shared and noisy, so the configurations are interleaved in
rounds (alone, skyprof, perf, bpftrace, alone, ...) and each cell keeps the
minimum and the median of its runs. The slowdown is min(config) / min(alone)
- 1 on wall time; the spread of the alone runs is reported as the noise
floor, which says how small a slowdown the run can see at all.
"""
import os
import subprocess
import time

import common

CONFIGS = ("alone", "skyprof", "perf", "bpftrace")
WORK = {"cpu": os.environ.get("BENCH_CPU_ITER", "200000000"),
        "sys": os.environ.get("BENCH_SYS_ITER", "500000")}
ROUNDS = int(os.environ.get("BENCH_OVERHEAD_ROUNDS", "3"))
REPS = int(os.environ.get("BENCH_OVERHEAD_REPS", "4"))


def run_workload(mode):
    out = subprocess.run([os.path.join(common.BENCH_BIN, "workload"), mode,
                          WORK[mode]], capture_output=True, text=True,
                         check=True).stdout
    fields = dict(kv.split("=") for kv in out.split())
    return int(fields["wall_ns"]) / 1e9, int(fields["cpu_ns"]) / 1e9


def bpf_snapshot(prof):
    """(run_time_ns, run_cnt) summed over the profiler's perf_event (sampling)
    programs; None for perf, which runs no BPF."""
    if prof is None or getattr(prof, "name", "") == "perf":
        return None
    ids = common.bpf_prog_ids(prof.all_pids())
    st = common.bpf_prog_stats(ids)
    samp = [v for v in st.values() if v[0] == "perf_event"]
    return (sum(v[2] for v in samp), sum(v[3] for v in samp),
            sum(v[2] for v in st.values()), time.time())


def main():
    with common.BpfStats():
        measure()


def measure():
    runs = {(c, m): {"wall": [], "cpu": []} for c in CONFIGS for m in WORK}
    bpf = {c: [0, 0, 0, 0.0] for c in CONFIGS}
    loads = []
    for r in range(ROUNDS):
        for config in CONFIGS:
            common.log("overhead: round %d/%d %s" % (r + 1, ROUNDS, config))
            prof = common.start_profiler(config)
            try:
                time.sleep(0.5)
                b0 = bpf_snapshot(prof)
                for _ in range(REPS):
                    for mode in WORK:
                        wall, cpu = run_workload(mode)
                        runs[(config, mode)]["wall"].append(wall)
                        runs[(config, mode)]["cpu"].append(cpu)
                    loads.append(common.loadavg())
                b1 = bpf_snapshot(prof)
                if b0 and b1:
                    for i in range(4):
                        bpf[config][i] += b1[i] - b0[i]
            finally:
                if prof:
                    prof.stop()
    result = {"work": WORK, "rounds": ROUNDS, "reps": REPS,
              "loadavg_median": common.median(loads), "cells": {}}
    # In-kernel cost of the BPF programs, exact where wall times drown in
    # noise: ns per sampling-program run, and all the profiler's programs'
    # time as a share of the machine's CPU while the workloads ran.
    result["bpf"] = {}
    for config, (ns, cnt, all_ns, secs) in bpf.items():
        if cnt:
            result["bpf"][config] = {
                "sample_prog_ns_per_run": ns / cnt,
                "sample_runs_per_s": cnt / secs,
                "all_progs_cpu_share": all_ns / 1e9 / secs / os.cpu_count()}
    for mode in WORK:
        alone = runs[("alone", mode)]
        base_min = min(alone["wall"])
        base_med = common.median(alone["wall"])
        # Noise floor: how far the median alone run sits above the best.
        noise = base_med / base_min - 1
        for config in CONFIGS:
            w = runs[(config, mode)]["wall"]
            c = runs[(config, mode)]["cpu"]
            result["cells"]["%s/%s" % (mode, config)] = {
                "wall_min": min(w), "wall_median": common.median(w),
                "cpu_min": min(c), "cpu_median": common.median(c),
                "slowdown_min": min(w) / base_min - 1,
                "slowdown_median": common.median(w) / base_med - 1,
                "cpu_slowdown_min": min(c) / min(alone["cpu"]) - 1,
                "noise_floor": noise, "runs": len(w)}
    common.save("overhead", result)
    for k, v in result["bpf"].items():
        print("overhead %-9s BPF sampling program %.0f ns/run at %.0f runs/s; "
              "all its programs %.3f%% of the machine's CPU"
              % (k, v["sample_prog_ns_per_run"], v["sample_runs_per_s"],
                 100 * v["all_progs_cpu_share"]))
    for k, v in result["cells"].items():
        print("overhead %-14s wall min %.3fs med %.3fs  slowdown min %+.2f%%"
              " med %+.2f%%  cpu-time slowdown %+.2f%%"
              % (k, v["wall_min"], v["wall_median"], 100 * v["slowdown_min"],
                 100 * v["slowdown_median"], 100 * v["cpu_slowdown_min"]))


if __name__ == "__main__":
    main()

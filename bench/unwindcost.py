"""Benchmark 7b: what the .eh_frame walk costs per sample in BPF against
the frame-pointer walk, on the same stack in the same run (issue 15's
goal: at most +1 µs at 20–40 user frames).

bench/unwindcost.c loads bench/unwindcost.bpf.c, a BPF_PROG_TYPE_SYSCALL
program that includes the samplers' walker (bpf/unwind.bpf.h), gives its
own process the unwind tables through collector/unwinder.c as the
collector does, and at the bottom of a call chain of 20 and 40 frames
(the driver is built with frame pointers, so both walks are complete)
takes its user stack BENCH_UNWINDCOST_RUNS times per run, both ways from
the same registers: bpf_get_task_stack (the kernel's frame-pointer walk,
what bpf_get_stack runs in the perf_event program) and sky_unwind_user.
Each take is timed with bpf_ktime_get_ns; a run's median, then the median
over BENCH_UNWINDCOST_ROUNDS interleaved rounds. The timing alone (an
empty take) is reported too: it is in both figures and cancels in the
delta.

Twice per depth: with warm caches (the same stack again and again: the
walk's own work) and cold, BENCH_UNWINDCOST_COLD_RUNS takes each after a
4 MiB read that evicts what the last take used, as a sampler finds the
caches after 10 ms of other work (the tables' rows, the process's
mapping entry and the stack copy then cost misses the frame pointers'
walk does not have).
"""
import os
import subprocess

import common

ROUNDS = int(os.environ.get("BENCH_UNWINDCOST_ROUNDS", "61"))
RUNS = int(os.environ.get("BENCH_UNWINDCOST_RUNS", "400"))
COLD_RUNS = int(os.environ.get("BENCH_UNWINDCOST_COLD_RUNS", "41"))
FRAMES = [int(f) for f in
          os.environ.get("BENCH_UNWINDCOST_FRAMES", "20 40").split()]
GOAL_NS = 1000     # issue 15: at most +1 µs over frame pointers
SKY_UNW_END_ROOT = 1


def parse(line):
    out = {}
    for part in line.split():
        k, _, v = part.partition("=")
        try:
            out[k] = int(v)
        except ValueError:
            out[k] = float(v)
    return out


def main():
    exe = os.path.join(common.BENCH_BIN, "unwindcost")
    res = subprocess.run([exe, str(ROUNDS), str(RUNS), str(COLD_RUNS)] +
                         [str(f) for f in FRAMES],
                         capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        raise RuntimeError("unwindcost failed: %s" % res.stderr.strip())
    rows, insns = [], None
    for line in res.stdout.splitlines():
        if line.startswith("prog "):
            insns = parse(line[5:]).get("verified_insns")
        elif line.startswith("cold="):
            r = parse(line)
            r["delta_ns"] = r["walk_ns"] - r["fp_ns"]
            # The walk is only comparable when it went the whole way and
            # found the frames the frame pointers found.
            r["complete"] = (r["end"] == SKY_UNW_END_ROOT and
                             r["same"] == r["fp_frames"] and r["fp"] == 0)
            rows.append(r)
    # Per frame: the slope between the shallowest and deepest stack.
    slope = {}
    for cold in (0, 1):
        rs = [r for r in rows if r["cold"] == cold]
        if len(rs) >= 2 and rs[-1]["frames"] > rs[0]["frames"]:
            a, b = rs[0], rs[-1]
            slope["cold" if cold else "warm"] = {
                "walk_ns_per_frame": (b["walk_ns"] - a["walk_ns"]) /
                (b["frames"] - a["frames"]),
                "fp_ns_per_frame": (b["fp_ns"] - a["fp_ns"]) /
                (b["fp_frames"] - a["fp_frames"])}
    for r in rows:
        common.log("unwindcost: %s, %d frames (fp %d): fp %.0f ns, walk "
                   "%.0f ns, delta %+.0f ns = %.2f of the +1 µs goal%s"
                   % ("cold" if r["cold"] else "warm", r["frames"],
                      r["fp_frames"], r["fp_ns"], r["walk_ns"],
                      r["delta_ns"], r["delta_ns"] / GOAL_NS,
                      "" if r["complete"] else " (walk INCOMPLETE)"))
    for k, v in slope.items():
        common.log("unwindcost: %s, per frame: walk %.1f ns, fp %.1f ns"
                   % (k, v["walk_ns_per_frame"], v["fp_ns_per_frame"]))
    common.save("unwindcost", {"rounds": ROUNDS, "runs": RUNS,
                               "cold_runs": COLD_RUNS,
                               "verified_insns": insns, "goal_ns": GOAL_NS,
                               "depths": rows, "slope": slope,
                               "loadavg": common.loadavg()})


if __name__ == "__main__":
    main()

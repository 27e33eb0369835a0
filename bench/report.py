"""The table of `make bench`: reads the JSON every bench/*.py wrote into the
results directory and prints one Markdown table, skyprof beside its peers,
with the ratios and whether each target is met."""
import json
import os
import platform
import subprocess
import time

import common


def load(name):
    try:
        with open(os.path.join(common.RESULTS, name + ".json")) as f:
            return json.load(f)
    except OSError:
        return None


def pct(x):
    return "—" if x is None else "%+.2f%%" % (100 * x)


def verdict(ok):
    return "yes" if ok else "**no**"


def main():
    rows = []
    ov = load("overhead")
    if ov:
        for mode, label in (("cpu", "CPU-bound"), ("sys", "syscall-heavy")):
            c = {k: ov["cells"].get("%s/%s" % (mode, k), {})
                 for k in ("skyprof", "perf", "bpftrace", "alone")}
            sk = c["skyprof"].get("slowdown_min")
            pf = c["perf"].get("slowdown_min")
            bt = c["bpftrace"].get("slowdown_min")
            ratio = "%.2f" % (sk / pf) if sk is not None and pf and pf > 0 \
                else "perf ≤ 0"
            noise = c["alone"].get("noise_floor", 0)
            rows.append((
                "1 slowdown, %s (min of %d runs; noise floor %.2f%%)"
                % (label, c["alone"].get("runs", 0), 100 * noise),
                pct(sk), "perf %s, bpftrace %s" % (pct(pf), pct(bt)),
                "skyprof/perf " + ratio, "≤ ½ perf and < 1%",
                # A floor above the target means this run cannot tell.
                "unresolved (noise)" if noise > 0.01 else
                verdict(sk is not None and sk < 0.01 and
                        (pf is None or sk <= max(pf, 0) / 2))))
            cs = c["skyprof"].get("cpu_slowdown_min")
            cp = c["perf"].get("cpu_slowdown_min")
            cb = c["bpftrace"].get("cpu_slowdown_min")
            rows.append(("1 same, on the workload's CPU time", pct(cs),
                         "perf %s, bpftrace %s" % (pct(cp), pct(cb)), "",
                         "", ""))
        b = ov.get("bpf", {})
        if "skyprof" in b:
            rows.append((
                "1 in-kernel BPF cost per sample (bpf_stats), and all the "
                "profiler's programs as a share of the machine's CPU",
                "%.1f µs, %.3f%%" % (b["skyprof"]["sample_prog_ns_per_run"]
                                      / 1e3,
                                      100 * b["skyprof"]["all_progs_cpu_share"]),
                "bpftrace %.1f µs, %.3f%%" % (
                    b.get("bpftrace", {}).get("sample_prog_ns_per_run", 0)
                    / 1e3,
                    100 * b.get("bpftrace", {}).get("all_progs_cpu_share", 0)),
                "", "", ""))
    ac = load("agentcost")
    if ac:
        cf = ac["configs"]
        sk = cf.get("skyprof", {})
        peers = ", ".join("%s %.2f%%" % (k, 100 * cf[k]["cpu_per_s"])
                          for k in ("perf", "bpftrace") if k in cf)
        rows.append(("2 agent CPU, host-wide 100 Hz, %d sleepers + 1 busy "
                     "process, host making %.0f processes/s (%% of one core)"
                     % (ac["sleepers"], sk.get("host_forks_per_s", 0)),
                     "%.2f%%" % (100 * sk.get("cpu_per_s", 0)), peers,
                     "", "< 1%", verdict(sk.get("cpu_per_s", 1) < 0.01)))
        peers = ", ".join("%s %.0f (%.0f) MiB"
                          % (k, cf[k]["rss_bytes"] / 2**20,
                             cf[k].get("pss_bytes", 0) / 2**20)
                          for k in ("perf", "bpftrace") if k in cf)
        rows.append(("2 agent RSS summed over its processes (PSS: shared "
                     "library pages counted once)",
                     "%.0f (%.0f) MiB" % (sk.get("rss_bytes", 0) / 2**20,
                                          sk.get("pss_bytes", 0) / 2**20),
                     peers, "", "< 64 MiB (on RSS)",
                     verdict(sk.get("rss_bytes", 1 << 40) < 64 << 20)))
    tp = load("throughput")
    if tp:
        extra = ""
        if "breaks_at" in tp:
            extra = "at %d/s asked: %.0f/s delivered; %s saturates first" % (
                tp["breaks_at"], tp["capacity_at_break"],
                tp["saturated_stage"])
        cost = ", ".join("%s %.2f µs" % kv for kv in sorted(
            tp["stage_cpu_us_per_sample"].items(), key=lambda kv: -kv[1])
            if kv[1] > 0.005)
        rows.append(("3 pipeline samples/s without loss (batches of %d)"
                     % tp["batch"], "%.0f" % tp["max_ok_rate"], extra,
                     "CPU/sample: " + cost, "≥ 200,000",
                     verdict(tp["max_ok_rate"] >= 200000)))
    sy = load("symbols")
    if sy:
        sk = sy["skyprof"]
        lv = sy["peers"].get("llvm-symbolizer", {})
        rows.append(("4 symbolization warm, %s, %d addr (ns/lookup)"
                     % (os.path.basename(sy["object"]), sy["n"]),
                     "%.0f" % sk["warm_ns"],
                     "llvm-symbolizer %.0f" % lv.get("warm_ns", 0),
                     "%.1fx" % lv.get("warm_ratio", 0), "≥ 10x llvm",
                     verdict(lv.get("warm_ratio", 0) >= 10)))
        peers = ", ".join(
            "%s %.2f s%s" % (k, p["full_run_s"],
                             "" if p["addresses"] == sy["n"] else "*")
            for k, p in sy["peers"].items() if not p.get("missing"))
        rows.append(("4 symbolization cold (load + all lookups; peers: a "
                      "whole run, * scaled from a subset)",
                      "%.3f s" % sk["cold_s"], peers,
                      "%.1fx llvm" % lv.get("cold_ratio", 0), "", ""))
        agree = ", ".join(
            "%s %.2f%% (%.2f%%)" % (k, 100 * p["agreement"]["share"],
                                    100 * p["agreement"]["share_base_name"])
            for k, p in sy["peers"].items() if not p.get("missing"))
        # The verdict takes the spelling-independent figure: LLVM's own
        # demangler spells lambdas and nullptr_t differently from GNU's
        # (which skyprof and binutils share); the exact shares are shown.
        worst = min((p["agreement"]["share_base_name"]
                     for p in sy["peers"].values()
                     if not p.get("missing")), default=0)
        rows.append(("4 same function name, exact (without templates/params;"
                     " verdict on the latter)",
                     "", agree, "", "≥ 99.9%", verdict(worst >= 0.999)))
    la = load("latency")
    if la:
        rows.append(("5 latency kernel sample → HTTP API, flush %s, %d "
                     "trials" % (la["flush_interval"], la["trials"]),
                     "median %.2f s, p99 %.2f s%s" % (
                         la["median_s"], la["p99_s"],
                         ", %d of %d never seen" % (len(la["missed"]),
                                                    la["trials"])
                         if la.get("missed") else ""),
                     "(no peer serves an API)", "", "", ""))
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True,
                                cwd=common.ROOT).stdout.strip()
    except OSError:
        commit = "?"
    load1 = ov.get("loadavg_median") if ov else None
    print("skyprof %s, kernel %s, %d CPUs, %s%s"
          % (commit, platform.release(), os.cpu_count(),
             time.strftime("%Y-%m-%d %H:%M"),
             ", load average during the overhead runs %.1f" % load1
             if load1 is not None else ""))
    print()
    print("| measure | skyprof | peers | ratio / detail | target | met |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()

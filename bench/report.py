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


def overhead_rows(ov):
    """Benchmark 1 (bench/overhead.py): the gap detector's rows, then the
    syscall- and switch-heavy fixed work, then the BPF cross-check."""
    rows = []
    g = ov["gaps"]

    def cost(k):
        v = g.get(k)
        if not v:
            return "—"
        return "%s (%+.0f gaps/s × %.1f µs)" % (
            pct(v["slowdown_phase"]), v["phase_extra_n_per_s"],
            v["phase_gap_ns"] / 1e3)
    sk = g.get("skyprof", {}).get("slowdown_phase")
    pf = g.get("perf", {}).get("slowdown_phase")
    ratio = "%.2f" % (sk / pf) if sk is not None and pf else "—"
    rows.append((
        "1 CPU-bound: time taken from the profiled thread (gap detector on "
        "CPU %d, gaps phase-locked to the sampling period, net of the same "
        "fold alone; median of %d runs of %d ms)"
        % (ov["work_cpu"], g["alone"]["runs"], ov["gaps_ms"]),
        cost("skyprof"), "perf %s, bpftrace %s" % (cost("perf"),
                                                   cost("bpftrace")),
        "skyprof/perf " + ratio, "≤ ½ perf and < 1%",
        verdict(sk is not None and sk < 0.01 and
                (pf is None or sk <= max(pf, 0) / 2))))
    skp = g.get("skyprof-perf", {}).get("slowdown_phase")
    if skp is not None:
        rows.append((
            "1 same, skyprof on its own perf_event CPU-clock interrupt "
            "(`collector.sampler: perf_event`, the sampler before the tick; "
            "10.05 ms)", cost("skyprof-perf"), "perf %s" % cost("perf"),
            "skyprof-perf/perf %s" % ("%.2f" % (skp / pf) if pf else "—"),
            "", ""))
    lo, hi = ov["gaps_alone_short_ns_per_s_range"]
    rows.append((
        "1 same, difference of medians of all interrupt gaps < 1 ms "
        "(alone: %.1f–%.1f ms/s, so ±%.2f%% noise)"
        % (lo / 1e6, hi / 1e6, (hi - lo) / 2e9 * 100),
        pct(g.get("skyprof", {}).get("slowdown_diff")),
        "perf %s, bpftrace %s" % (pct(g.get("perf", {}).get("slowdown_diff")),
                                  pct(g.get("bpftrace", {}).get(
                                      "slowdown_diff"))), "", "", ""))
    c = g.get("perf-cpu0")
    if c:
        rows.append((
            "1 detector check: perf -C %d while the workload runs on CPU %d "
            "(must see nothing) vs perf -a" % (1 - ov["work_cpu"]
                                               if ov["work_cpu"] < 2 else 0,
                                               ov["work_cpu"]),
            "", "perf -C: %+.1f gaps/s, %s; perf -a: %+.1f gaps/s"
            % (c["phase_extra_n_per_s"], pct(c["slowdown_phase"]),
               g.get("perf", {}).get("phase_extra_n_per_s", 0)),
            "", "≈ 0 vs ≈ 99", verdict(abs(c["phase_extra_n_per_s"]) < 10 and
                                        g.get("perf", {}).get(
                                            "phase_extra_n_per_s", 0) > 60)))
    b = ov.get("bpf", {})
    if "skyprof" in b:
        rows.append((
            "1 BPF sampling program per sample (bpf_stats) inside the gap "
            "per sample, and all the profiler's programs as a share of the "
            "machine's CPU",
            "%.1f µs of %.1f µs, %.3f%%" % (
                b["skyprof"]["sample_prog_ns_per_run"] / 1e3,
                g["skyprof"]["phase_gap_ns"] / 1e3,
                100 * b["skyprof"]["all_progs_cpu_share"]),
            "bpftrace %.1f µs of %.1f µs, %.3f%%" % (
                b.get("bpftrace", {}).get("sample_prog_ns_per_run", 0) / 1e3,
                g.get("bpftrace", {}).get("phase_gap_ns", 0) / 1e3,
                100 * b.get("bpftrace", {}).get("all_progs_cpu_share", 0)),
            "", "", ""))
    rows.extend(offcpu_rows(ov))
    rate = ov.get("rate", {})
    if rate:
        def r(k):
            v = rate.get(k)
            return "—" if not v else "%.4f (%.4f–%.4f) at %.2f ms" % (
                v["ratio_median"], v["ratio_range"][0], v["ratio_range"][1],
                v["period_ns"] / 1e6)
        worst = [abs(x - 1) for v in rate.values() for x in v["ratio_range"]]
        rows.append((
            "1 no loss of samples: samples on the busy CPU %d / (its busy "
            "time in /proc/stat / period), per gap-detector run"
            % ov["work_cpu"], "tick " + r("skyprof"),
            "", "skyprof perf_event " + r("skyprof-perf"), "within 1%",
            verdict(bool(worst) and max(worst) <= 0.01)))
    f = ov["fixed"]
    for mode, label in (("sys", "syscall-heavy"),
                        ("switch", "context-switch-heavy")):
        cells = {k: f.get("%s/%s" % (mode, k), {}) for k in
                 ("alone", "skyprof", "skyprof-offcpu", "perf", "bpftrace")}
        al = cells["alone"]
        if not al:
            continue

        def both(v):
            return "%s (CPU %s)" % (pct(v.get("slowdown_min")),
                                    pct(v.get("cpu_slowdown_min")))
        noise = max(al["noise_floor"], al["cpu_noise_floor"])
        sk = cells["skyprof"].get("cpu_slowdown_min")
        pf = cells["perf"].get("cpu_slowdown_min")
        extra = ""
        if mode == "switch" and cells["skyprof-offcpu"]:
            per = (cells["skyprof-offcpu"]["cpu_min"] - al["cpu_min"]) / \
                max(1, al["switches"]) * 1e9
            extra = "off-CPU task: +%.2f µs CPU per context switch" % (
                per / 1e3)
        rows.append((
            "1 %s, min of %d runs: wall (CPU time); noise floor alone "
            "%.1f%% (%.1f%%)" % (label, al["runs"], 100 * al["noise_floor"],
                                 100 * al["cpu_noise_floor"]),
            "on-CPU %s; off-CPU task %s" % (both(cells["skyprof"]),
                                            both(cells["skyprof-offcpu"])),
            "perf %s, bpftrace %s" % (both(cells["perf"]),
                                      both(cells["bpftrace"])),
            extra, "≤ ½ perf and < 1%",
            "unresolved (noise)" if noise > 0.01 else
            verdict(sk is not None and sk < 0.01 and
                    (pf is None or sk <= max(pf, 0) / 2))))
    return rows


def offcpu_rows(ov):
    """The off-CPU probe: its untraced path per run (bpf_stats) and what an
    OFF_CPU task costs a context-switch-heavy program."""
    rows = []
    b = ov.get("bpf", {})
    other = b.get("skyprof-offcpu-other")
    if other:
        ns = other["offcpu_prog_ns_per_run"]
        rows.append((
            "1 off-CPU probe, untraced path: ns per run (bpf_stats) while an "
            "OFF_CPU task targets a sleeping process, over every switch of "
            "the host", "%.0f ns at %.0f runs/s" % (ns, other[
                "offcpu_runs_per_s"]), "", "", "≤ 150 ns", verdict(ns <= 150)))
    f = ov["fixed"]
    al = f.get("switch/alone")
    cells = [(k, f.get("switch/" + k)) for k in
             ("skyprof-offcpu", "skyprof-offcpu-all", "skyprof-offcpu-other")]
    if al and cells[0][1]:
        def cell(v):
            return "—" if not v else "%s (CPU %s)" % (
                pct(v["slowdown_min"]), pct(v["cpu_slowdown_min"]))
        sk = cells[0][1]["slowdown_min"]
        rows.append((
            "1 context-switch-heavy under an OFF_CPU task on it, min of %d "
            "runs: wall (CPU time); noise floor alone %.1f%% (%.1f%%)"
            % (al["runs"], 100 * al["noise_floor"],
               100 * al["cpu_noise_floor"]),
            "sampled (default) %s" % cell(cells[0][1]),
            "every period with stacks (before) %s; task on another process "
            "%s" % (cell(cells[1][1]), cell(cells[2][1])), "",
            "≤ 10%", verdict(sk <= 0.10)))
    return rows


def leafshare_rows(ls):
    rows = []
    c = ls.get("configs", {})
    if "skyprof" in c:
        worst = max(v["max_diff_points"] for v in c.values())
        rows.append((
            "6 leaf shares vs `perf record -a -g` sampling the same run "
            "(cpu + sys workloads, %.0f s): largest difference over leaves "
            "≥ 1%%" % ls["seconds"],
            "tick %.2f points" % c["skyprof"]["max_diff_points"],
            "", "skyprof perf_event %s" % (
                "%.2f points" % c["skyprof-perf"]["max_diff_points"]
                if "skyprof-perf" in c else "—"),
            "≤ 2 points", verdict(worst <= 2)))
    return rows


def unwind_rows(uw):
    """Benchmark 7 (bench/unwind.py): whole stacks of a Debian-built
    program against perf's DWARF unwinding, and what the tables cost."""
    sk, pf = uw["skyprof"], uw["perf"]
    worst = {kind: max((abs(a - b) for _, a, b in uw[kind]), default=0)
             for kind in ("self", "inclusive")}
    rows = [("7 stacks reaching main/start_thread, %s (%s)"
             % (uw["program"], "DWARF walker" if uw.get("dwarf_active")
                else "frame pointers"),
             "%.1f%% (mean depth %.1f)" % (100 * sk["rooted"],
                                           sk["mean_depth"]),
             "perf --call-graph dwarf %.1f%% (%.1f)" % (100 * pf["rooted"],
                                                        pf["mean_depth"]),
             "", "≥ 99%", verdict(sk["rooted"] >= 0.99))]
    for kind in ("self", "inclusive"):
        rows.append(("7 top-10 %s shares, largest difference to perf"
                     % kind, "%.1f points" % (100 * worst[kind]), "",
                     ", ".join("%s %.1f/%.1f" % (k, 100 * a, 100 * b)
                               for k, a, b in uw[kind][:3]),
                     "≤ 2 points", verdict(worst[kind] <= 0.02)))
    for o in uw.get("objects", []):
        rows.append(("7 unwind table of %s (%.0f MiB file)"
                     % (os.path.basename(o["object"]),
                        o["file_bytes"] / 2**20),
                     "%.1f ms, %.0f KiB" % (o["ms"], o["bytes"] / 1024), "",
                     "%d rows" % o["rows"], "< 1 s",
                     verdict(o["ms"] < 1000)))
    h = uw.get("host")
    if h:
        rows.append(("7 unwind tables of every object the host's %d "
                     "processes map" % h["processes"],
                     "%.1f MiB, %.0f ms" % (h["bytes"] / 2**20, h["ms"]),
                     "", "%d objects" % h["objects"], "reported", ""))
    return rows


def unwindcost_rows(uc):
    """Benchmark 7b (bench/unwindcost.py): the walk's BPF cost per sample
    against frame pointers on the same stack, per depth, with warm and
    with cold caches."""
    rows = []
    for d in uc["depths"]:
        rows.append((
            "7 BPF cost per sample, %d user frames, %s caches: .eh_frame "
            "walk vs frame pointers on the same stack (median of %d rounds "
            "× %d takes)" % (d["frames"], "cold" if d["cold"] else "warm",
                            uc["rounds"],
                            uc["cold_runs"] if d["cold"] else uc["runs"]),
            "%.2f µs" % (d["walk_ns"] / 1e3),
            "frame pointers %.2f µs (%d frames)" % (d["fp_ns"] / 1e3,
                                                   d["fp_frames"]),
            "%+.2f µs = %.2f of the goal%s"
            % (d["delta_ns"] / 1e3, d["delta_ns"] / uc["goal_ns"],
               "" if d["complete"] else "; walk INCOMPLETE"),
            "≤ +1 µs", verdict(d["complete"] and
                               d["delta_ns"] <= uc["goal_ns"])))
    return rows


def agentcost_rows(ac):
    """Benchmark 2 (bench/agentcost.py): skyprof's CPU and RSS with the
    .eh_frame walker (the default) and with frame pointers, same run."""
    rows = []
    cf = ac["configs"]
    sk = cf.get("skyprof", {})
    fp = cf.get("skyprof-fp")
    peers = ", ".join("%s %.2f%%" % (k, 100 * cf[k]["cpu_per_s"])
                      for k in ("perf", "bpftrace") if k in cf)

    def stages(m, key, scale, fmt):
        """The per-stage figures, largest first."""
        return ", ".join(fmt % (k, v * scale) for k, v in sorted(
            m.get(key, {}).items(), key=lambda kv: -kv[1]))

    def walker(m):
        u = m.get("unwind")
        if not u:
            return ""
        if not u.get("dwarf_active"):
            return "unwind_dwarf_active=0"
        return "unwind_dwarf_active=1, %d tables, %.1f MiB kernel" % (
            u.get("tables", 0), u.get("bytes", 0) / 2**20)
    rows.append(("2 agent CPU, host-wide 100 Hz, %d sleepers + 1 busy "
                 "process, host making %.0f processes/s (%% of one core); "
                 "default unwinder (auto: .eh_frame walker)"
                 % (ac["sleepers"], sk.get("host_forks_per_s", 0)),
                 "%.2f%%" % (100 * sk.get("cpu_per_s", 0)), peers,
                 "; ".join(x for x in (walker(sk), stages(
                     sk, "cpu_per_stage", 100, "%s %.3f%%")) if x),
                 "< 1%", verdict(sk.get("cpu_per_s", 1) < 0.01)))
    if fp:
        rows.append(("2 same, `collector.unwinder: fp` (frame pointers), "
                     "same run",
                     "%.2f%%" % (100 * fp["cpu_per_s"]), peers,
                     "; ".join(x for x in (walker(fp), stages(
                         fp, "cpu_per_stage", 100, "%s %.3f%%")) if x),
                     "< 1%", verdict(fp["cpu_per_s"] < 0.01)))
    peers = ", ".join("%s %.0f (%.0f) MiB"
                      % (k, cf[k]["rss_bytes"] / 2**20,
                         cf[k].get("pss_bytes", 0) / 2**20)
                      for k in ("perf", "bpftrace") if k in cf)
    for m, label in ((sk, "agent RSS summed over its processes (PSS: shared "
                      "library pages counted once); walker"),
                     (fp, "same, frame pointers")):
        if not m:
            continue
        rows.append(("2 " + label,
                     "%.0f (%.0f) MiB" % (m.get("rss_bytes", 0) / 2**20,
                                          m.get("pss_bytes", 0) / 2**20),
                     peers, stages(m, "rss_per_stage", 1 / 2**20,
                                   "%s %.1f"),
                     "< 64 MiB (on RSS)",
                     verdict(m.get("rss_bytes", 1 << 40) < 64 << 20)))
    return rows


def unwindhost_rows(uh):
    """Benchmark 7c (bench/unwindhost.py): the collector's unwind tables
    for a host of a few hundred processes of different programs."""
    rows = []
    for config in ("auto", "fp"):
        c = uh["configs"].get(config)
        if not c:
            continue
        u = c["unwind"]
        if config == "auto":
            rows.append((
                "7 unwind tables for %d processes of %d programs, host-wide "
                "(%d processes in all): tables, rows, kernel memory "
                "(reserved), build time, until none pending"
                % (uh["started"], uh["programs"], u.get("procs", 0)),
                "%d tables, %.2f M rows, %.1f MiB (%.0f MiB), %.0f ms build, "
                "%.1f s" % (u.get("tables", 0), u.get("rows", 0) / 1e6,
                            u.get("bytes", 0) / 2**20,
                            u.get("bytes_reserved", 0) / 2**20,
                            u.get("build_ns", 0) / 1e6, c["settle_s"]),
                "unwindbench host: %d objects, %.2f M rows" % (
                    uh.get("host", {}).get("objects", 0),
                    uh.get("host", {}).get("rows", 0) / 1e6),
                "refused %d, evicted %d, dwarf_active %d" % (
                    u.get("tables_refused", 0), u.get("tables_evicted", 0),
                    u.get("dwarf_active", 0)),
                "reported", ""))
        rows.append((
            "7 same, collector RSS, %s" % (
                "walker" if config == "auto" else "`collector.unwinder: fp`"),
            "%.1f MiB" % (c["collector_rss_bytes"] / 2**20), "", "", "", ""))
    return rows


def main():
    rows = []
    ov = load("overhead")
    if ov and "gaps" in ov:
        rows.extend(overhead_rows(ov))
    ac = load("agentcost")
    if ac:
        rows.extend(agentcost_rows(ac))
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
    ls = load("leafshare")
    if ls:
        rows.extend(leafshare_rows(ls))
    uw = load("unwind")
    if uw:
        rows.extend(unwind_rows(uw))
    uh = load("unwindhost")
    if uh:
        rows.extend(unwindhost_rows(uh))
    uc = load("unwindcost")
    if uc:
        rows.extend(unwindcost_rows(uc))
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
    nt = load("netthroughput")
    if nt:
        rows.append(("6 HTTP/1.1 keep-alive req/s through a traced server "
                     "with zero loss (capture + network room)",
                     "%.0f%s" % (nt["best_lossless_rps"],
                                 " (load-bound)" if nt["limited_by_load"]
                                 else ""),
                     "(no peer parses HTTP)",
                     "CPU/request: collector %.1f µs, aggregator %.1f µs"
                     % (nt.get("collector_us_per_request", 0),
                        nt.get("aggregator_us_per_request", 0)), "", ""))
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

"""Benchmark 1: what a profiler costs the program it profiles.

Wall times of fixed work cannot show a 1 % effect on this shared 2-vCPU VM
(runs alone spread by 10-40 %), so the CPU-bound figure comes from a gap
detector instead (`workload gaps`, bench/workload.c): one thread pinned to
CPU BENCH_WORK_CPU reads CLOCK_MONOTONIC in a tight loop and logs every gap
between two reads longer than 1 µs. A gap during which the thread was
switched out (its context switch counters moved) is kept apart: that is
another process using the CPU, not the profiler's handler. What is left
are interrupts (ticks, the profilers' sampling interrupts with their BPF
program or perf handler and stack walk) and hypervisor exits.

Two estimates of a profiler's in-context cost, per second of the thread:
- phase-locked: a sampling profiler's timer fires at t0 + k * period
  (hrtimer_forward keeps the phase), so its gaps pile up at one phase when
  gap start times are folded modulo the period (skyprof 10 ms, perf and
  bpftrace 1e9/99 ns), while ticks (4 ms) and hypervisor exits spread over
  all phases. Extra gaps = gaps in the peak window minus the median
  background of the other phases; cost per sample = median length of the
  gaps in the peak. Immune to the hypervisor's noise, which is larger than
  the effect.
- difference of medians: sum of interrupt gaps < 1 ms per second under the
  profiler minus the same alone (median of the runs); the spread of the
  runs alone is its noise.
The slowdown is the stolen time over wall time. skyprof's BPF run_time_ns /
run_cnt (kernel.bpf_stats_enabled) per sample is shown beside the gap
length: the gap also holds the interrupt entry and exit and the
hypervisor's timer exit.

Validation: `perf-cpu0` runs `perf record -C 0` while the workload sits on
CPU 1: the detector must see no extra gaps there, and ~99/s under perf -a.

Off-CPU: skyprof with only an OFF_CPU task on the workload process (its
probe runs on sched_switch), measured on `workload switch` (two threads on
one CPU handing a byte back and forth) and on `workload sys` (syscalls),
by min-of-N wall and CPU time, with the noise floor of the runs alone.
Configurations: the default task (`skyprof-offcpu`), every period with its
stacks (`-all`), no period drawn at random (`-nostacks`: the per-switch
bookkeeping without the stack walks), the task on a sleeping process
(`-other`: the untraced path), and with BENCH_BEFORE_BUILD the default
task with another build's skyprof (`-before`). BENCH_OVERHEAD_MODES=switch
runs only that line. The fixed work is timed with kernel.bpf_stats_enabled
off (its two clock reads per program run are not the profiler's cost); a
quarter-length run with it on follows for the BPF figures, unless
BENCH_BPF_STATS=0.

All configurations are interleaved in rounds; every profiler samples in
the background, so start-up costs are not counted. One `workload serve`
process per configuration and round runs all the measurements, so the
off-CPU task can target it before they start.
"""
import json
import os
import subprocess
import tempfile
import time
import urllib.request

import common

CONFIGS = ("alone", "skyprof", "skyprof-perf", "skyprof-offcpu",
           "skyprof-offcpu-all", "skyprof-offcpu-nostacks",
           "skyprof-offcpu-before",
           "skyprof-offcpu-other", "perf", "bpftrace", "perf-cpu0")
# BENCH_CONFIGS="alone skyprof-offcpu" runs a subset ("alone" is always
# run: every figure is against it).
if os.environ.get("BENCH_CONFIGS"):
    CONFIGS = ("alone",) + tuple(c for c in CONFIGS if c != "alone" and
                                 c in os.environ["BENCH_CONFIGS"].split())
# skyprof-offcpu-before: the off-CPU task with the skyprof of another build
# directory (BENCH_BEFORE_BUILD, e.g. an earlier commit's), only with it.
if not os.environ.get("BENCH_BEFORE_BUILD"):
    CONFIGS = tuple(c for c in CONFIGS if c != "skyprof-offcpu-before")
WORK_CPU = int(os.environ.get("BENCH_WORK_CPU", "1"))
OTHER_CPU = 0 if WORK_CPU != 0 else 1
GAPS_MS = int(os.environ.get("BENCH_GAPS_MS", "2000"))
SYS_ITER = int(os.environ.get("BENCH_SYS_ITER", "500000"))
SWITCH_ROUNDS = int(os.environ.get("BENCH_SWITCH_ROUNDS", "100000"))
ROUNDS = int(os.environ.get("BENCH_OVERHEAD_ROUNDS", "3"))
REPS = int(os.environ.get("BENCH_OVERHEAD_REPS", "3"))
# BENCH_OVERHEAD_MODES="switch" measures only the context-switch-heavy
# work (the off-CPU probe's case) and skips the gap detector.
MODES = os.environ.get("BENCH_OVERHEAD_MODES", "gaps sys switch").split()
# BENCH_BPF_STATS=0: no BPF figures at all (the fixed work is timed
# without bpf_stats either way).
STATS_ON = os.environ.get("BENCH_BPF_STATS", "1") != "0"
# Interrupt gaps shorter than this are the profilers' (and the ticks');
# longer ones are hypervisor steal.
SHORT_NS = 1000000
# Sampling periods: skyprof's collector.host_period, and perf's and
# bpftrace's cpu-clock at 99 Hz (the kernel turns -F 99 into a fixed
# NSEC_PER_SEC / 99 period for software clock events).
# skyprof samples every 10.05 ms here, not 10 ms: other engineers' skyprof
# collectors sample this host every 10 ms while the benchmark runs, and
# their gaps must not fold onto ours (at 10.05 ms they drift through every
# phase within 2 s, and so do the 1 ms host and 4 ms guest ticks).
SKYPROF_PERIOD = "10050us"
# skyprof samples on the guest's scheduler tick by default (no interrupt of
# its own): its cost is the extra length of the tick gaps, folded at the
# tick period (CONFIG_HZ, read from the collector's metrics) against the
# same fold alone. It keeps every 2nd tick: 125 Hz at HZ=250, more samples
# than perf's 99 Hz. skyprof-perf is the perf_event sampler (forced), the
# way skyprof sampled before the tick.
TICK_HOST_PERIOD = os.environ.get("BENCH_TICK_HOST_PERIOD", "8ms")
PERIOD = {"skyprof": 4000000, "skyprof-perf": 10050000, "perf": 10101010,
          "bpftrace": 10101010, "perf-cpu0": 10101010}
FOLD_BIN_NS = 50000      # phase bins; the peak window is 2 bins
# Only gaps shorter than this are folded: a sampling handler takes tens of
# µs, and one stray 500 µs stall in a bin would outweigh 100 samples.
FOLD_MAX_NS = 200000


# ------------------------------------------------------------ workload
class Server:
    """One `workload serve` process pinned to the workload CPU."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [os.path.join(common.BENCH_BIN, "workload"), "serve",
             str(WORK_CPU)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, bufsize=1)
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError("workload serve said %r" % line)
        self.pid = int(line[1].split("=")[1])

    def run(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line or line.startswith("error"):
            raise RuntimeError("workload %s: %r" % (cmd, line))
        return dict(kv.split("=", 1) for kv in line.split())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def gap_run(fields):
    """The figures of one `gaps` run, per second of its wall time."""
    wall = int(fields["wall_ns"]) / 1e9
    short_n = sum(int(fields["band%d_n" % b]) for b in range(3))
    short_ns = sum(int(fields["band%d_ns" % b]) for b in range(3))
    log = []
    if fields["log"] != "-":
        for item in fields["log"].split(","):
            at, length = item.split(":")
            if int(length) < FOLD_MAX_NS:
                log.append((float(at) * 1e3, int(length)))
    hist = {}
    if fields["hist"] != "-":
        for item in fields["hist"].split(","):
            low, n, _ = item.split(":")
            hist[int(low)] = int(n) / wall
    return {"wall_s": wall, "short_n_per_s": short_n / wall,
            "short_ns_per_s": short_ns / wall,
            "switched_ns_per_s": int(fields["sw_ns"]) / wall,
            "long_ns_per_s": int(fields["band3_ns"]) / wall,
            "cpu": int(fields["cpu"]), "cpu_end": int(fields["cpu_end"]),
            "hist_per_s": hist,
            "fold": {str(p): fold(log, wall, p)
                     for p in sorted(set(PERIOD.values()))}}


def fold(log, wall, period):
    """Gaps phase-locked to a sampling period: fold gap start times modulo
    the period and take the window of two bins holding the most gap time
    above the background as the profiler's phase.

    The background is not flat when the period is a whole number of
    milliseconds: the host's 1 kHz tick (its timer exits are ~10 µs gaps,
    phase-locked to the guest's clock, which shares the TSC) and the
    guest's 4 ms tick fold onto a comb of phases 1 or 2 ms apart. Then each
    bin's background is the mean of the bins one comb step apart, and the
    peak above it is scaled by K/(K-1) (the peak is itself one of the K
    teeth averaged). Otherwise the background is the median bin."""
    nbins = max(4, int(period // FOLD_BIN_NS))
    counts = [0] * nbins
    sums = [0] * nbins
    phase = []
    for at, length in log:
        b = int((at % period) / period * nbins) % nbins
        counts[b] += 1
        sums[b] += length
        phase.append(b)
    comb = 0
    for q in (2000000, 1000000):
        if period % q == 0 and period // q >= 2:
            comb = q
            break
    if comb:
        step = comb // FOLD_BIN_NS
        k = nbins // step
        scale = k / (k - 1.0)

        def resid(v):
            return [(v[b] - sum(v[(b + i * step) % nbins] for i in range(k))
                     / k) * scale for b in range(nbins)]
        res_n, res_ns = resid(counts), resid(sums)
    else:
        bg_n = common.median(counts)
        bg_ns = common.median(sums)
        res_n = [c - bg_n for c in counts]
        res_ns = [s - bg_ns for s in sums]
    peak = max(range(nbins), key=lambda b: res_ns[b] + res_ns[(b + 1) % nbins])
    win = (peak, (peak + 1) % nbins)
    lengths = sorted(length for (at, length), b in zip(log, phase)
                     if b in win)
    return {"extra_n_per_s": (res_n[win[0]] + res_n[win[1]]) / wall,
            "extra_ns_per_s": (res_ns[win[0]] + res_ns[win[1]]) / wall,
            "samples_per_s": 1e9 / period,
            "median_gap_ns": common.median(lengths) if lengths else 0,
            "peak_n": counts[win[0]] + counts[win[1]], "comb_ns": comb}


# ------------------------------------------------------------ profilers
class PerfOneCpu(common.Peer):
    """`perf record -g -F 99 -C CPU`: samples one CPU only (the control)."""

    def __init__(self, cpu):  # pylint: disable=super-init-not-called
        self.name = "perf"
        self.dir = tempfile.mkdtemp(prefix="bench-perf-cpu%d-" % cpu)
        self.out = open(os.path.join(self.dir, "out"), "w")
        self.proc = subprocess.Popen(
            ["perf", "record", "-C", str(cpu), "-g", "-F", "99", "-q",
             "-o", os.path.join(self.dir, "perf.data")],
            stdout=self.out, stderr=self.out)


def http_post(port, path, body):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, r.read().decode("utf-8", "replace")


def start_offcpu(pid, collector_extra=""):
    """skyprof with no host-wide sampling and one OFF_CPU task on pid;
    returns once the collector's probe is attached."""
    sk = common.Skyprof(host_wide=False, stats_interval="500ms",
                        collector_extra=collector_extra)
    try:
        sk.wait_ready(samples=False)
        status, body = http_post(sk.port, "/api/tasks", json.dumps(
            {"pid": pid, "target": "OFF_CPU", "duration": 600}))
        if status != 200:
            raise RuntimeError("POST /api/tasks: %d %s" % (status, body))
        deadline = time.time() + 30
        while time.time() < deadline:
            m = sk.metrics()
            if m.get("skyprof_collector_offcpu_attached", 0) >= 1 and \
                    m.get("skyprof_collector_offcpu_pids", 0) >= 1:
                return sk
            time.sleep(0.2)
        raise RuntimeError("the off-CPU probe did not attach")
    except Exception:
        sk.stop()
        raise


def start_before(pid):
    """The default off-CPU task with another build of skyprof (an earlier
    commit, BENCH_BEFORE_BUILD: its build directory), for a before/after
    comparison in one run."""
    before = os.environ.get("BENCH_BEFORE_BUILD")
    if not before:
        raise RuntimeError("skyprof-offcpu-before needs BENCH_BEFORE_BUILD")
    saved = common.BUILD
    common.BUILD = os.path.abspath(before)
    try:
        return start_offcpu(pid)
    finally:
        common.BUILD = saved


class Bystander:
    """A process that sleeps: the target of an off-CPU task that leaves
    every switch of the workload untraced."""

    def __init__(self):
        self.proc = subprocess.Popen(["sleep", "3600"])
        self.pid = self.proc.pid

    def close(self):
        self.proc.kill()
        self.proc.wait()


def start_config(config, server, bystander):
    if config == "skyprof-offcpu":
        return start_offcpu(server.pid)
    if config == "skyprof-offcpu-all":
        # every blocking period recorded with its stacks, as before
        return start_offcpu(server.pid, "  offcpu_sample_every: 1\n")
    if config == "skyprof-offcpu-nostacks":
        # no short period recorded: what the per-switch bookkeeping alone
        # costs, without the stack walks
        return start_offcpu(server.pid, "  offcpu_sample_every: 1000000\n")
    if config == "skyprof-offcpu-other":
        return start_offcpu(bystander.pid)
    if config == "skyprof-offcpu-before":
        return start_before(server.pid)
    if config == "perf-cpu0":
        return common.started(PerfOneCpu(OTHER_CPU))
    if config == "skyprof":
        # dump_period too: host_period may not be shorter
        return common.start_profiler(config, period=TICK_HOST_PERIOD)
    if config == "skyprof-perf":
        return common.start_profiler(
            "skyprof", period=SKYPROF_PERIOD,
            collector_extra="  sampler: perf_event\n")
    return common.start_profiler(config)


# skyprof's on-CPU sampler on the tick (it runs on every hrtimer expiry and
# returns at once unless the timer is the tick) and its off-CPU probe.
TICK_PROG = "sky_on_tick"
OFFCPU_PROG = "sky_off_switch"


def bpf_snapshot(prof):
    """In-kernel run time of the profiler's BPF programs: sampling
    (perf_event, or the tick program) programs, the off-CPU probe, and all
    of them; with the samples skyprof's collector wrote per CPU. None for
    perf (no BPF)."""
    if prof is None or getattr(prof, "name", "") == "perf":
        return None
    st = common.bpf_prog_stats(common.bpf_prog_ids(prof.all_pids()))
    samp = [v for v in st.values()
            if v[0] == "perf_event" or v[1] == TICK_PROG]
    off = [v for v in st.values() if v[1] == OFFCPU_PROG]
    return [sum(v[2] for v in samp), sum(v[3] for v in samp),
            sum(v[2] for v in st.values()), sum(v[3] for v in st.values()),
            time.time(), sum(v[2] for v in off), sum(v[3] for v in off),
            samples_per_cpu(prof)]


def samples_per_cpu(prof):
    """skyprof's SKY_CNT_SAMPLES per CPU, read from its counters map."""
    if not isinstance(prof, common.Skyprof):
        return []
    ids = common.bpf_map_ids(prof.all_pids())
    for m in common.bpf_maps(ids):
        if m.get("name") == "counters":
            return common.bpf_percpu_values(m["id"], 2)
    return []


def busy_per_cpu():
    """Non-idle ns per CPU so far, from /proc/stat."""
    hz = os.sysconf("SC_CLK_TCK")
    out = []
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts[0].startswith("cpu") and parts[0] != "cpu":
                v = [int(x) for x in parts[1:9]]
                out.append((v[0] + v[1] + v[2] + v[5] + v[6] + v[7])
                           * 1e9 / hz)
    return out


# ------------------------------------------------------------ measure
def main():
    if not STATS_ON:
        measure()
        return
    with common.BpfStats():
        measure()


def measure():
    gaps = {c: [] for c in CONFIGS}
    fixed = {(c, m): [] for c in CONFIGS for m in ("sys", "switch")}
    bpf = {c: [0, 0, 0, 0, 0.0, 0, 0] for c in CONFIGS}
    rate = {c: [] for c in CONFIGS}
    loads = []
    failed = []
    bystander = Bystander()
    try:
        for r in range(ROUNDS):
            for config in CONFIGS:
                # One configuration failing to start (a loaded machine) costs
                # its round, not the whole run.
                try:
                    measure_config(config, r, gaps, fixed, bpf, rate, loads,
                                   bystander)
                except RuntimeError as e:
                    common.log("overhead: round %d %s failed: %s"
                               % (r + 1, config, e))
                    failed.append("%s/%d" % (config, r + 1))
    finally:
        bystander.close()
    result = summarize(gaps, fixed, bpf)
    result["rate"] = summarize_rate(rate)
    result["failed_rounds"] = failed
    result["loadavg_median"] = common.median(loads)
    common.save("overhead", result)
    show(result)


def measure_config(config, r, gaps, fixed, bpf, rate, loads, bystander):
    """One round of one configuration: gaps, fixed work, BPF figures."""
    common.log("overhead: round %d/%d %s" % (r + 1, ROUNDS, config))
    server = Server()
    prof = None
    try:
        prof = start_config(config, server, bystander)
        time.sleep(0.5)
        b0 = bpf_snapshot(prof)
        for _ in range(REPS):
            if "gaps" in MODES:
                measure_gaps(config, server, prof, gaps, rate)
            for mode, n in (("sys", SYS_ITER),
                            ("switch", SWITCH_ROUNDS)):
                if mode not in MODES:
                    continue
                # Timed without bpf_stats: a user's host does not pay its
                # two clock reads per program run, and the off-CPU probe
                # runs on every switch. A quarter-length run with the
                # stats on then gives the BPF figures (ns per run).
                with common.BpfStats(on=False):
                    f = server.run("%s %d" % (mode, n))
                fixed[(config, mode)].append(
                    (int(f["wall_ns"]) / 1e9, int(f["cpu_ns"]) / 1e9,
                     int(f.get("nvcsw_total", 0))))
                if STATS_ON:
                    server.run("%s %d" % (mode, max(1, n // 4)))
            loads.append(common.loadavg())
        b1 = bpf_snapshot(prof)
        if b0 and b1:
            for i in range(7):
                bpf[config][i] += b1[i] - b0[i]
    finally:
        server.close()
        if prof:
            prof.stop()


def measure_gaps(config, server, prof, gaps, rate):
    """One run of the gap detector, with the samples skyprof took meanwhile
    on the busy CPU."""
    s0, c0 = samples_per_cpu(prof), busy_per_cpu()
    g = gap_run(server.run("gaps %d" % GAPS_MS))
    s1, c1 = samples_per_cpu(prof), busy_per_cpu()
    if s0 and s1:
        rate[config].append(
            (s1[WORK_CPU] - s0[WORK_CPU], c1[WORK_CPU] - c0[WORK_CPU],
             g["wall_s"], sample_period_ns(prof)))
    gaps[config].append(g)


def sample_period_ns(prof):
    """The host-wide period skyprof's collector samples at (its metric)."""
    return prof.metrics().get("skyprof_collector_sampler_host_period_ns", 0)


def summarize_rate(rate):
    """Samples on the busy workload CPU against its busy time / period."""
    out = {}
    for config, runs in rate.items():
        ratios = [n / (busy / period) for n, busy, _, period in runs
                  if period and busy > 0]
        if ratios:
            out[config] = {"runs": len(ratios),
                           "ratio_median": common.median(ratios),
                           "ratio_range": [min(ratios), max(ratios)],
                           "period_ns": runs[0][3]}
    return out


def summarize(gaps, fixed, bpf):
    result = {"work_cpu": WORK_CPU, "gaps_ms": GAPS_MS, "rounds": ROUNDS,
              "reps": REPS, "sys_iter": SYS_ITER,
              "switch_rounds": SWITCH_ROUNDS, "gaps": {}, "fixed": {},
              "bpf": {}}
    alone = gaps["alone"]
    if not alone:
        # no gap runs (BENCH_OVERHEAD_MODES): no gap rows in the report
        del result["gaps"]
        summarize_fixed(result, fixed)
        summarize_bpf(result, bpf)
        return result
    a_short = [g["short_ns_per_s"] for g in alone]
    a_n = [g["short_n_per_s"] for g in alone]
    buckets = sorted({b for g in sum(gaps.values(), []) for b in g["hist_per_s"]})

    def hist_median(runs):
        return {b: common.median([g["hist_per_s"].get(b, 0) for g in runs])
                for b in buckets}
    a_hist = hist_median(alone)
    for config, runs in gaps.items():
        if not runs:
            continue
        period = str(PERIOD.get(config, PERIOD["skyprof"]))
        folds = [g["fold"][period] for g in runs]
        short = [g["short_ns_per_s"] for g in runs]
        # Extra gaps by bucket (median of the runs minus alone's): their
        # median length, the brief's "median extra gap".
        h = hist_median(runs)
        extra = [(b, max(0.0, h[b] - a_hist[b])) for b in buckets]
        total = sum(n for _, n in extra if _ < SHORT_NS)
        acc, med_extra = 0.0, 0
        for b, n in extra:
            if b >= SHORT_NS:
                break
            acc += n
            if total > 0 and acc >= total / 2:
                med_extra = b
                break
        result["gaps"][config] = {
            "runs": len(runs), "fold_period_ns": int(period),
            # phase-locked estimate
            "phase_extra_n_per_s": common.median([f["extra_n_per_s"]
                                                  for f in folds]),
            "phase_extra_ns_per_s": common.median([f["extra_ns_per_s"]
                                                   for f in folds]),
            "phase_gap_ns": common.median([f["median_gap_ns"]
                                           for f in folds]),
            "phase_extra_ns_range": [min(f["extra_ns_per_s"] for f in folds),
                                     max(f["extra_ns_per_s"] for f in folds)],
            # difference of medians against the runs alone
            "short_ns_per_s": common.median(short),
            "short_n_per_s": common.median([g["short_n_per_s"]
                                            for g in runs]),
            "diff_extra_ns_per_s": common.median(short) - common.median(a_short),
            "diff_extra_n_per_s": common.median([g["short_n_per_s"]
                                                 for g in runs])
                                  - common.median(a_n),
            "hist_median_extra_gap_ns": med_extra,
            "switched_ns_per_s": common.median([g["switched_ns_per_s"]
                                                for g in runs]),
            "long_ns_per_s": common.median([g["long_ns_per_s"] for g in runs]),
            "cpu_moved": sum(1 for g in runs if g["cpu"] != WORK_CPU or
                             g["cpu_end"] != WORK_CPU)}
        # Slowdown: time the profiler took from the thread per second.
        r = result["gaps"][config]
        # The densest window of pure noise is not empty: the same fold of
        # the runs alone at this period is the estimator's floor.
        r["phase_floor_ns_per_s"] = common.median(
            [g["fold"][period]["extra_ns_per_s"] for g in alone])
        r["phase_floor_n_per_s"] = common.median(
            [g["fold"][period]["extra_n_per_s"] for g in alone])
        r["slowdown_phase"] = (r["phase_extra_ns_per_s"] -
                               r["phase_floor_ns_per_s"]) / 1e9
        r["slowdown_diff"] = r["diff_extra_ns_per_s"] / 1e9
    # Noise of the difference of medians: spread of the runs alone.
    result["gaps_alone_short_ns_per_s_range"] = [min(a_short), max(a_short)]
    summarize_fixed(result, fixed)
    summarize_bpf(result, bpf)
    return result


def summarize_fixed(result, fixed):
    """Min-of-N wall and CPU times of the fixed work against alone's."""
    for mode in ("sys", "switch"):
        a = fixed[("alone", mode)]
        if not a:
            continue
        a_wall_min = min(w for w, _, _ in a)
        a_cpu_min = min(c for _, c, _ in a)
        for config in CONFIGS:
            runs = fixed[(config, mode)]
            if not runs:
                continue
            wall = [w for w, _, _ in runs]
            cpu = [c for _, c, _ in runs]
            result["fixed"]["%s/%s" % (mode, config)] = {
                "runs": len(runs), "wall_min": min(wall),
                "wall_median": common.median(wall), "cpu_min": min(cpu),
                "cpu_median": common.median(cpu),
                "slowdown_min": min(wall) / a_wall_min - 1,
                "cpu_slowdown_min": min(cpu) / a_cpu_min - 1,
                # how far the median run alone sits above the best one
                "noise_floor": common.median([w for w, _, _ in a])
                / a_wall_min - 1,
                "cpu_noise_floor": common.median([c for _, c, _ in a])
                / a_cpu_min - 1,
                "switches": common.median([s for _, _, s in runs])}


def summarize_bpf(result, bpf):
    """The profilers' BPF run time per run and per second."""
    for config, (ns, cnt, all_ns, all_cnt, secs, off_ns, off_cnt) in \
            bpf.items():
        if all_cnt:
            result["bpf"][config] = {
                "sample_prog_ns_per_run": ns / cnt if cnt else 0,
                "sample_runs_per_s": cnt / secs,
                # the sampler's time per second of one CPU
                "sample_prog_ns_per_cpu_s": ns / secs / os.cpu_count(),
                "offcpu_prog_ns_per_run": off_ns / off_cnt if off_cnt else 0,
                "offcpu_runs_per_s": off_cnt / secs,
                "all_prog_ns_per_run": all_ns / all_cnt,
                "all_runs_per_s": all_cnt / secs,
                "all_progs_cpu_share": all_ns / 1e9 / secs / os.cpu_count()}


def show(result):
    lo, hi = result.get("gaps_alone_short_ns_per_s_range", (0, 0))
    for k, v in result.get("gaps", {}).items():
        print("overhead %-14s slowdown (phase-locked, net of the floor "
              "alone %.1f µs/s) %+.3f%%; by difference of medians %+.3f%%"
              % (k, v["phase_floor_ns_per_s"] / 1e3, 100 * v["slowdown_phase"],
                 100 * v["slowdown_diff"]))
    if "alone" in result.get("gaps", {}):
        print("overhead gaps: CPU %d, %d runs of %d ms per config; alone, "
              "interrupt gaps < 1 ms take %.0f-%.0f µs/s"
              % (WORK_CPU, result["gaps"]["alone"]["runs"], GAPS_MS,
                 lo / 1e3, hi / 1e3))
    for k, v in result.get("gaps", {}).items():
        print("overhead gaps %-14s phase-locked at %.3f ms: %+6.1f gaps/s "
              "%+7.1f µs/s (%.1f-%.1f), gap %5.1f µs | diff of medians: "
              "%+6.1f gaps/s %+7.1f µs/s, median extra gap %.1f µs | "
              "switched out %.0f µs/s"
              % (k, v["fold_period_ns"] / 1e6, v["phase_extra_n_per_s"],
                 v["phase_extra_ns_per_s"] / 1e3,
                 v["phase_extra_ns_range"][0] / 1e3,
                 v["phase_extra_ns_range"][1] / 1e3,
                 v["phase_gap_ns"] / 1e3, v["diff_extra_n_per_s"],
                 v["diff_extra_ns_per_s"] / 1e3,
                 v["hist_median_extra_gap_ns"] / 1e3,
                 v["switched_ns_per_s"] / 1e3))
    for k, v in result["bpf"].items():
        print("overhead bpf %-14s sampling program %.0f ns/run at %.0f "
              "runs/s (%.1f µs per CPU-second); off-CPU probe %.0f ns/run at "
              "%.0f runs/s; all programs %.0f ns/run at %.0f runs/s, %.3f%% "
              "of the machine's CPU"
              % (k, v["sample_prog_ns_per_run"], v["sample_runs_per_s"],
                 v["sample_prog_ns_per_cpu_s"] / 1e3,
                 v["offcpu_prog_ns_per_run"], v["offcpu_runs_per_s"],
                 v["all_prog_ns_per_run"], v["all_runs_per_s"],
                 100 * v["all_progs_cpu_share"]))
    for k, v in result.get("rate", {}).items():
        print("overhead rate %-14s samples on the busy CPU %d / (its busy "
              "time / %.3f ms): median %.4f (%.4f-%.4f) over %d runs"
              % (k, WORK_CPU, v["period_ns"] / 1e6, v["ratio_median"],
                 v["ratio_range"][0], v["ratio_range"][1], v["runs"]))
    for k, v in result["fixed"].items():
        print("overhead %-21s wall min %.3fs slowdown %+6.2f%% (floor %.2f%%)"
              "  cpu min %.3fs slowdown %+6.2f%% (floor %.2f%%)"
              % (k, v["wall_min"], 100 * v["slowdown_min"],
                 100 * v["noise_floor"], v["cpu_min"],
                 100 * v["cpu_slowdown_min"], 100 * v["cpu_noise_floor"]))


if __name__ == "__main__":
    main()

"""Benchmark 6: do skyprof's samples say what perf's say?

A CPU-bound process (`workload cpu`, its leaf is bench_cpu_leaf) and a
syscall-heavy one (`workload sys`, its leaves are kernel functions) run
for BENCH_LEAF_SECONDS while skyprof (host-wide, on the scheduler tick by
default; `skyprof-perf` forces its perf_event sampler) and `perf record -a
-g` sample the host at about the same rate. For the two processes
together, the share of samples whose leaf (innermost frame) is each
function is compared: perf's from `perf report --no-children --sort sym`,
skyprof's from the aggregator's folded stacks (`/api/folded?pid=`). The
figure is the largest difference in percentage points over the leaves
that hold at least 1 % in either profile.
"""
import os
import subprocess
import tempfile
import time
import urllib.parse

import common

SECONDS = float(os.environ.get("BENCH_LEAF_SECONDS", "10"))
MIN_SHARE = 0.01
CONFIGS = {"skyprof": "", "skyprof-perf": "  sampler: perf_event\n"}


def start_workloads():
    wl = os.path.join(common.BENCH_BIN, "workload")
    return [subprocess.Popen([wl, mode, "1000000000000"],
                             stdout=subprocess.DEVNULL)
            for mode in ("cpu", "sys")]


def stop(procs):
    for p in procs:
        p.kill()
        p.wait()


def libc_aliases():
    """name -> plainest alias of the same libc address, from libc's
    dynamic symbols and its separate debug file (Debian's libc6-dbg,
    found by build-id), which holds the internal names perf prints."""
    libc = "/lib/x86_64-linux-gnu/libc.so.6"
    files = [(libc, ["nm", "-D", "--defined-only", libc])]
    note = subprocess.run(["readelf", "-n", libc], capture_output=True,
                          text=True).stdout
    for line in note.splitlines():
        if "Build ID:" in line:
            bid = line.split()[-1]
            dbg = "/usr/lib/debug/.build-id/%s/%s.debug" % (bid[:2], bid[2:])
            if os.path.exists(dbg):
                files.append((dbg, ["nm", "--defined-only", dbg]))
    by_addr = {}
    for _, cmd in files:
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) != 3 or parts[1] not in "TtWwi":
                continue
            name = parts[2].split("@")[0]
            by_addr.setdefault(parts[0], set()).add(name)
    aliases = {}
    for names in by_addr.values():
        if len(names) < 2:
            continue
        plain = min(names, key=lambda n: (len(n) - len(n.lstrip("_")), len(n), n))
        for n in names:
            aliases[n] = plain
    return aliases


ALIASES = None


def canonical(name):
    global ALIASES
    if ALIASES is None:
        ALIASES = libc_aliases()
    return ALIASES.get(name, name)


def base_name(frame):
    """`[k] do_sys_poll` -> do_sys_poll; `main` -> main."""
    frame = frame.strip()
    if frame.startswith("[") and "] " in frame:
        frame = frame.split("] ", 1)[1]
    return frame


def skyprof_leaves(sk, pids):
    counts = {}
    for pid in pids:
        q = urllib.parse.urlencode({"pid": pid, "event": "on-cpu",
                                    "unit": "count"})
        status, body = common.http_get(sk.port, "/api/folded?" + q)
        if status != 200:
            raise RuntimeError("folded pid %d: %d %s" % (pid, status, body))
        for line in body.splitlines():
            stack, _, n = line.rpartition(" ")
            if not stack:
                continue
            frame = stack.split(";")[-1]
            leaf = base_name(frame)
            if not frame.strip().startswith("[k]"):
                leaf = canonical(leaf)
            counts[leaf] = counts.get(leaf, 0) + int(n)
    return shares(counts)


def perf_leaves(data, pids):
    out = subprocess.run(
        ["perf", "report", "-i", data, "--stdio", "--no-children", "-q",
         "--sort", "sym", "-g", "none", "--percentage", "relative",
         "--pid", ",".join(str(p) for p in pids), "--percent-limit", "0"],
        capture_output=True, text=True).stdout
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 3 or not parts[0].endswith("%"):
            continue
        share = float(parts[0].rstrip("%")) / 100
        name = parts[2] if parts[1].startswith("[") else parts[1]
        if parts[1] != "[k]":
            name = canonical(name)
        counts[name] = counts.get(name, 0) + share
    return shares(counts)


def shares(counts):
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else {}


def compare(ours, theirs):
    keys = [k for k in set(ours) | set(theirs)
            if max(ours.get(k, 0), theirs.get(k, 0)) >= MIN_SHARE]
    diffs = sorted(((abs(ours.get(k, 0) - theirs.get(k, 0)), k)
                    for k in keys), reverse=True)
    return {"max_diff_points": 100 * diffs[0][0] if diffs else 0,
            "worst": [(k, 100 * ours.get(k, 0), 100 * theirs.get(k, 0))
                      for _, k in diffs[:5]],
            "leaves": len(keys)}


def run(config, extra):
    tmp = tempfile.mkdtemp(prefix="bench-leaf-")
    data = os.path.join(tmp, "perf.data")
    sk = common.started(common.Skyprof(period="8ms",
                                       collector_extra=extra))
    perf = None
    procs = []
    try:
        # perf at skyprof's rate (125 Hz at HZ=250): both see the same run
        perf = subprocess.Popen(["perf", "record", "-a", "-g", "-F", "125",
                                 "-q", "-o", data],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(1)
        procs = start_workloads()
        time.sleep(SECONDS)
        pids = [p.pid for p in procs]
        stop(procs)
        procs = []
        perf.send_signal(2)
        perf.wait(timeout=60)
        time.sleep(3)  # the collector's publish and the aggregator's flush
        ours = skyprof_leaves(sk, pids)
        theirs = perf_leaves(data, pids)
        return dict(compare(ours, theirs), config=config)
    finally:
        stop(procs)
        if perf and perf.poll() is None:
            perf.kill()
            perf.wait()
        sk.stop()
        subprocess.run(["rm", "-rf", tmp])


def main():
    result = {"seconds": SECONDS, "configs": {}}
    for config, extra in CONFIGS.items():
        common.log("leafshare: %s and perf record, %.0f s" % (config, SECONDS))
        result["configs"][config] = run(config, extra)
    common.save("leafshare", result)
    for config, r in result["configs"].items():
        print("leafshare %-12s vs perf record: largest leaf-share difference "
              "%.2f points over %d leaves >= 1%%; worst: %s"
              % (config, r["max_diff_points"], r["leaves"],
                 ", ".join("%s %.1f/%.1f" % w for w in r["worst"])))


if __name__ == "__main__":
    main()

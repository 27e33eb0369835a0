"""Benchmark 7c: the unwind tables of a host with 300 processes (issue 15).

BENCH_HOST_PROCS (300) processes of some 25 different programs installed
on this Debian host, each idle (blocked reading a pipe that stays open, or
sleeping): coreutils, shells, perl, sqlite3, tclsh, vim, two Pythons, gdb,
node, and libLLVM-14 mapped three ways (llvm-symbolizer, clangd, and a
Python that dlopens it with ctypes). Then skyprof profiles the host twice,
one after the other:

  auto  the default (`collector.unwinder: auto`): once the collector has
        built every table it found (unwind_tables_pending == 0), its
        metrics give the tables, rows, kernel bytes (used and reserved by
        the maps), build time and processes, with the collector's RSS;
  fp    `collector.unwinder: fp`: the collector's RSS without the walker.

Other processes of the host count too (the collector is host-wide), so
`unwindbench host` (bench/unwindbench.c: every object mapped by a process
in /proc, built once in user space) gives the same host's objects and rows
as a cross-check, and `unwindbench objects` the build time of libLLVM-14's
table alone (the collector has no per-table time).
"""
import os
import subprocess
import sys
import time

import common

PROCS = int(os.environ.get("BENCH_HOST_PROCS", "300"))
SETTLE_TIMEOUT = float(os.environ.get("BENCH_UNWIND_SETTLE_S", "180"))
LLVM = "/usr/lib/x86_64-linux-gnu/libLLVM-14.so.1"
UNWIND = "skyprof_collector_unwind_"
PY_READ = "import sys; sys.stdin.read()"

# (weight, argv): every program blocks on its stdin (a pipe held open) or
# sleeps. Weights share BENCH_HOST_PROCS out; the large programs get few
# processes, since a table is built per object, not per process.
PROGRAMS = [
    (20, ["sleep", "1000000"]),
    (20, ["cat"]),
    (15, ["sed", "-n", "p"]),
    (15, ["grep", "x"]),
    (15, ["sort"]),
    (15, ["tee", "/dev/null"]),
    (15, ["tail", "-f", "/dev/null"]),
    (10, ["od"]),
    (10, ["dd", "status=none", "of=/dev/null"]),
    (10, ["xargs"]),
    (20, ["bash", "-c", "read x"]),
    (20, ["dash", "-c", "read x"]),
    (15, ["perl", "-e", "<STDIN>"]),
    (15, ["sqlite3", ":memory:"]),
    (10, ["bc", "-q"]),
    (10, ["ed", "-s"]),
    (10, ["tclsh"]),
    (10, ["vim", "-e", "-s", "-n", "-u", "NONE"]),
    (5, ["ssh-agent", "-D"]),
    (10, [sys.executable, "-c", PY_READ]),
    (10, ["/usr/bin/python3", "-c", PY_READ]),
    (5, [sys.executable, "-c", "import ctypes, sys; ctypes.CDLL(%r); "
         "sys.stdin.read()" % LLVM]),
    (5, ["llvm-symbolizer"]),
    (3, ["clangd"]),
    (4, ["gdb", "-q", "-nx"]),
    (3, ["node", "-e", "process.stdin.resume()"]),
]


def available(argv):
    exe = argv[0]
    if os.path.isabs(exe):
        return os.access(exe, os.X_OK)
    return any(os.access(os.path.join(d, exe), os.X_OK)
               for d in os.environ.get("PATH", "").split(os.pathsep))


def start_programs():
    """The processes, [(argv, Popen)], weights scaled to PROCS."""
    progs = [(w, a) for w, a in PROGRAMS if available(a)]
    total = sum(w for w, _ in progs)
    counts = [max(1, w * PROCS // total) for w, _ in progs]
    i = 0
    while sum(counts) < PROCS:  # rounding: the rest round-robin
        counts[i % len(counts)] += 1
        i += 1
    out = []
    for (_, argv), n in zip(progs, counts):
        for _ in range(n):
            out.append((argv, subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)))
    return out


def wait_idle(procs, timeout=120.0):
    """Until the started processes use no CPU for a second: all started
    and mapped what they map (ctypes' dlopen happens late)."""
    pids = [p.pid for _, p in procs]
    last = common.cpu_seconds(pids)
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(1)
        now = common.cpu_seconds(pids)
        if now == last:
            return
        last = now
    common.log("unwindhost: processes still busy after %.0f s" % timeout)


def wait_tables(sky, want_procs, t0, timeout):
    """Seconds from t0 (the launcher's start) until the collector's walker
    has the processes and no table left to build; None without the
    walker."""
    while time.time() - t0 < timeout:
        m = sky.metrics()
        if UNWIND + "dwarf_active" in m and m[UNWIND + "dwarf_active"] != 1:
            return None
        if m.get(UNWIND + "tables_pending", 1) == 0 and \
                m.get(UNWIND + "procs", 0) >= want_procs:
            return time.time() - t0
        time.sleep(0.5)
    raise RuntimeError("unwind tables still pending after %.0f s" % timeout)


def kv_lines(text):
    return [dict(p.split("=", 1) for p in line.split()) for line in
            text.splitlines() if "=" in line]


def run(config, alive):
    extra = "  unwinder: fp\n" if config == "fp" else ""
    t0 = time.time()
    sky = common.Skyprof(collector_extra=extra)
    try:
        # Samples need not flow: the tables are built for every process
        # found, sampled or not.
        sky.wait_ready(samples=False)
        settle = None
        if config == "auto":
            settle = wait_tables(sky, alive, t0, SETTLE_TIMEOUT)
        time.sleep(4)  # two stats intervals: the gauges are current
        m = sky.metrics()
        col = sky.stage_pids().get("collector", 0)
        return {"settle_s": settle,
                "processes": m.get("skyprof_collector_processes", 0),
                "collector_rss_bytes": common.rss_bytes(col),
                "collector_cpu_s": common.cpu_seconds([col]),
                "agent_rss_bytes": sum(common.rss_bytes(p)
                                       for p in sky.all_pids()),
                "unwind": {k[len(UNWIND):]: v for k, v in m.items()
                           if k.startswith(UNWIND) and "/" not in k},
                "loadavg": common.loadavg()}
    finally:
        sky.stop()


def main():
    tool = os.path.join(common.BENCH_BIN, "unwindbench")
    procs = start_programs()
    result = {"started": len(procs), "configs": {}}
    try:
        wait_idle(procs)
        alive = [(a, p) for a, p in procs if p.poll() is None]
        result["alive"] = len(alive)
        result["programs"] = len({tuple(a) for a, _ in alive})
        result["per_program"] = {}
        for a, _ in alive:
            key = " ".join(os.path.basename(x) for x in a[:1]) + (
                " (libLLVM via ctypes)" if "ctypes" in " ".join(a) else "")
            result["per_program"][key] = result["per_program"].get(key, 0) + 1
        common.log("unwindhost: %d of %d processes alive, %d programs"
                   % (len(alive), len(procs), result["programs"]))
        for config in ("auto", "fp"):
            common.log("unwindhost: skyprof, collector.unwinder: %s" % config)
            result["configs"][config] = run(config, len(alive))
        host = kv_lines(subprocess.run([tool, "host"], capture_output=True,
                                       text=True).stdout)
        result["host"] = {k: float(v) for k, v in (host[0] if host
                                                    else {}).items()}
        if os.path.exists(LLVM):
            objs = kv_lines(subprocess.run([tool, "objects", "3", LLVM],
                                           capture_output=True,
                                           text=True).stdout)
            if objs:
                result["llvm"] = {k: (v if k == "object" else float(v))
                                  for k, v in objs[0].items()}
        result["loadavg"] = common.loadavg()
    finally:
        for _, p in procs:
            p.kill()
        for _, p in procs:
            p.wait()
    common.save("unwindhost", result)
    print("unwindhost: %d processes of %d programs started, %d alive"
          % (result["started"], result["programs"], result["alive"]))
    for config, c in result["configs"].items():
        u = c["unwind"]
        print("unwindhost %-4s collector RSS %.1f MiB (agent %.1f MiB), "
              "collector CPU %.2f s, %d processes, load %.2f"
              % (config, c["collector_rss_bytes"] / 2**20,
                 c["agent_rss_bytes"] / 2**20, c["collector_cpu_s"],
                 c["processes"], c["loadavg"]))
        if u.get("dwarf_active"):
            print("    tables %d, rows %d, bytes %.1f MiB, reserved %.1f "
                  "MiB, build %.0f ms, procs %d, refused %d, evicted %d, "
                  "pending 0 after %.1f s"
                  % (u.get("tables", 0), u.get("rows", 0),
                     u.get("bytes", 0) / 2**20,
                     u.get("bytes_reserved", 0) / 2**20,
                     u.get("build_ns", 0) / 1e6, u.get("procs", 0),
                     u.get("tables_refused", 0), u.get("tables_evicted", 0),
                     c["settle_s"] or 0))
    h = result.get("host")
    if h:
        print("unwindhost unwindbench host: %d processes, %d objects, %d rows, "
              "%.1f MiB, %.0f ms" % (h["processes"], h["objects"], h["rows"],
                                     h["bytes"] / 2**20, h["ms"]))
    if "llvm" in result:
        o = result["llvm"]
        print("unwindhost unwindbench %s: %.1f ms, %d rows, %.1f MiB"
              % (os.path.basename(o["object"]), o["ms"], o["rows"],
                 o["bytes"] / 2**20))


if __name__ == "__main__":
    main()

"""Benchmark 7: whole user stacks without frame pointers (issue 15).

A program nobody here wrote, built the way Debian builds it: zstd from
Debian's own source package (`apt-get source libzstd`, with a private apt
state under the build directory, so the host's apt configuration is left
alone), compiled with `dpkg-buildflags` (-O2 -g, no frame pointers),
compresses a generated 64 MiB text with two worker threads
(`zstd -T2 -12`). `perf record --call-graph dwarf` starts it while
skyprof samples the host, so both see the same run. Compared, each on
its own samples: the share of stacks reaching the thread root (main or
start_thread on the stack), and the top-10 self and inclusive shares side
by side (names made comparable as in bench/leafshare.py).

Also the cost of the tables (bench/unwindbench.c over lib/unwind_table):
build time (median of BENCH_UNWIND_ROUNDS) and memory for libc, a
libLLVM-sized object and the zstd binary, and for every executable object
mapped by the host's processes, each built once.

BENCH_UNWIND_SRC caches the built zstd (default: $BUILD/bench/src).
"""
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse

import common
import leafshare

SRC = os.environ.get("BENCH_UNWIND_SRC", os.path.join(common.BENCH_BIN, "src"))
ROUNDS = int(os.environ.get("BENCH_UNWIND_ROUNDS", "5"))
INPUT_BYTES = 64 << 20
ZSTD_ARGS = ["-T2", "-12", "-c"]
TOP = 10
ROOTS = ("main", "start_thread")
OBJECTS = ["/lib/x86_64-linux-gnu/libc.so.6",
           "/usr/lib/x86_64-linux-gnu/libLLVM-15.so.1",
           "/usr/lib/x86_64-linux-gnu/libLLVM-14.so.1"]
ACTIVE_METRIC = "skyprof_collector_unwind_dwarf_active"


# ------------------------------------------------------------ the program
def apt(state, *args):
    """apt-get with its source list and state under `state`: the host's
    sources stay as they are, and Debian's deb-src index is fetched here
    only."""
    etc = os.path.join(state, "etc")
    return ["apt-get", "-q",
            "-o", "Dir::Etc::SourceList=/dev/null",
            "-o", "Dir::Etc::SourceParts=" + etc,
            "-o", "Dir::State::Lists=" + os.path.join(state, "lists"),
            "-o", "Dir::Cache=" + os.path.join(state, "cache")] + list(args)


def suite():
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return "bookworm"


def build_zstd():
    """Path of zstd built from Debian's source with Debian's flags."""
    exe = os.path.join(SRC, "zstd", "programs", "zstd")
    if os.path.exists(exe):
        return exe
    state = os.path.join(SRC, "apt")
    for d in ("etc", "lists/partial", "cache"):
        os.makedirs(os.path.join(state, d), exist_ok=True)
    with open(os.path.join(state, "etc", "src.sources"), "w") as f:
        f.write("Types: deb-src\nURIs: http://deb.debian.org/debian\n"
                "Suites: %s\nComponents: main\n"
                "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
                % suite())
    common.log("unwind: fetching Debian's zstd source package")
    subprocess.run(apt(state, "update"), check=True, stdout=subprocess.DEVNULL)
    dl = os.path.join(SRC, "dl")
    os.makedirs(dl, exist_ok=True)
    subprocess.run(apt(state, "source", "--download-only", "libzstd"),
                   check=True, cwd=dl, stdout=subprocess.DEVNULL)
    dsc = [f for f in os.listdir(dl) if f.endswith(".dsc")][0]
    tree = os.path.join(SRC, "zstd")
    shutil.rmtree(tree, ignore_errors=True)
    subprocess.run(["dpkg-source", "-x", dsc, tree], check=True, cwd=dl,
                   stdout=subprocess.DEVNULL)
    flags = {v: subprocess.run(["dpkg-buildflags", "--get", v],
                               capture_output=True, text=True,
                               check=True).stdout.strip()
             for v in ("CFLAGS", "CPPFLAGS", "LDFLAGS")}
    common.log("unwind: building zstd with %s" % flags["CFLAGS"])
    # The flags go in the environment: on make's command line they would
    # replace the Makefile's own additions (-DZSTD_MULTITHREAD, -pthread),
    # and Debian's zstd is multithreaded.
    subprocess.run(["make", "-C", "programs", "zstd", "-j2"],
                   env=dict(os.environ, **flags), check=True, cwd=tree,
                   stdout=subprocess.DEVNULL)
    return exe


def make_input():
    """A 64 MiB text of pseudo-random words: compressible, the same in
    every run."""
    path = os.path.join(common.BENCH_BIN, "unwind-input.txt")
    if os.path.exists(path) and os.path.getsize(path) >= INPUT_BYTES:
        return path
    rng = 0x15
    words = []
    for _ in range(5000):
        w = ""
        rng = (rng * 6364136223846793005 + 1442695040888963407) % 2**64
        for k in range(2 + (rng >> 33) % 9):
            w += chr(97 + (rng >> (k * 5 % 59)) % 26)
        words.append(w)
    with open(path + ".tmp", "w") as f:
        n = 0
        while n < INPUT_BYTES:
            parts = []
            for _ in range(12):
                rng = (rng * 6364136223846793005 + 1442695040888963407) % 2**64
                parts.append(words[(rng >> 33) % len(words)])
            line = " ".join(parts) + "\n"
            f.write(line)
            n += len(line)
    os.rename(path + ".tmp", path)
    return path


# ------------------------------------------------------------ stacks
def name(frame):
    """A frame as both profilers can agree on it: the kind marker dropped
    ('[l] read' -> 'read'), libc aliases to one name."""
    kernel = frame.strip().startswith("[k]")
    n = leafshare.base_name(frame).split("@")[0]
    return n if kernel else leafshare.canonical(n)


def skyprof_stacks(sk, pid):
    """[(frames outermost first, count)] of one process."""
    q = urllib.parse.urlencode({"pid": pid, "event": "on-cpu",
                                "unit": "count"})
    status, body = common.http_get(sk.port, "/api/folded?" + q)
    if status != 200:
        raise RuntimeError("folded pid %d: %d %s" % (pid, status, body))
    out = []
    for line in body.splitlines():
        stack, _, n = line.rpartition(" ")
        frames = [f for f in stack.split(";")
                  if f and not f.startswith(("[p] ", "[t] "))]
        if frames:
            out.append(([name(f) for f in frames], int(n)))
    return out


def perf_stacks(data):
    """[(frames outermost first, 1)] of every sample in data, inlined
    frames left out (skyprof names the function the address is in)."""
    text = subprocess.run(
        ["perf", "script", "-i", data, "--no-inline", "-F", "ip,sym"],
        capture_output=True, text=True).stdout
    out, cur = [], []
    for line in text.splitlines() + [""]:
        parts = line.split(None, 1)
        if not parts:
            if cur:
                out.append((list(reversed(cur)), 1))
            cur = []
            continue
        sym = parts[1].strip() if len(parts) > 1 else "[unknown]"
        sym = sym.split("+0x")[0]
        cur.append(name(sym))
    return out


def profile(stacks):
    """Rooted share and self / inclusive shares of a list of stacks."""
    total = sum(n for _, n in stacks)
    rooted = sum(n for f, n in stacks if any(r in f for r in ROOTS))
    depth = sum(len(f) * n for f, n in stacks)
    self_c, incl_c = {}, {}
    for frames, n in stacks:
        self_c[frames[-1]] = self_c.get(frames[-1], 0) + n
        for f in set(frames):
            incl_c[f] = incl_c.get(f, 0) + n
    share = (lambda c: {k: v / total for k, v in c.items()}) if total else \
        (lambda c: {})
    return {"samples": total,
            "rooted": rooted / total if total else 0,
            "mean_depth": depth / total if total else 0,
            "self": share(self_c), "inclusive": share(incl_c)}


def side_by_side(ours, theirs, kind):
    """The top-TOP of perf's kind shares (perf's unwinding is the
    reference), each with skyprof's share."""
    top = sorted(theirs[kind].items(), key=lambda kv: -kv[1])[:TOP]
    return [(k, ours[kind].get(k, 0), v) for k, v in top]


def compare_run(exe, inp):
    tmp = tempfile.mkdtemp(prefix="bench-unwind-")
    data = os.path.join(tmp, "perf.data")
    sk = common.started(common.Skyprof(period="10ms"))
    try:
        time.sleep(1)
        t0 = time.time()
        with open(inp, "rb") as stdin:
            subprocess.run(["perf", "record", "-q", "--call-graph", "dwarf",
                            "-F", "99", "-o", data, "--", exe] + ZSTD_ARGS,
                           stdin=stdin, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
        seconds = time.time() - t0
        pids = subprocess.run(["perf", "script", "-i", data, "-F", "pid"],
                              capture_output=True, text=True).stdout.split()
        pid = int(pids[0]) if pids else 0
        time.sleep(3)  # the collector's publish and the aggregator's flush
        metrics = sk.metrics()
        ours = profile(skyprof_stacks(sk, pid))
        theirs = profile(perf_stacks(data))
        return {"seconds": seconds, "pid": pid,
                "dwarf_active": metrics.get(ACTIVE_METRIC, 0),
                # the collector's own unwinder counters (tables, BPF bytes)
                "collector": {k: v for k, v in metrics.items()
                              if k.startswith("skyprof_collector_unwind")
                              and "/" not in k},
                "skyprof": {k: ours[k] for k in ("samples", "rooted",
                                                 "mean_depth")},
                "perf": {k: theirs[k] for k in ("samples", "rooted",
                                                "mean_depth")},
                "self": side_by_side(ours, theirs, "self"),
                "inclusive": side_by_side(ours, theirs, "inclusive")}
    finally:
        sk.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------ tables
def kv_lines(text):
    return [dict(p.split("=", 1) for p in line.split()) for line in
            text.splitlines() if "=" in line]


def tables(exe):
    tool = os.path.join(common.BENCH_BIN, "unwindbench")
    objs = [o for o in OBJECTS if os.path.exists(o)] + [exe]
    out = subprocess.run([tool, "objects", str(ROUNDS)] + objs,
                         capture_output=True, text=True).stdout
    per = [{"object": d["object"], "ms": float(d["ms"]),
            "rows": int(d["rows"]), "bytes": int(d["bytes"]),
            "file_bytes": int(d["file_bytes"]), "errors": int(d["errors"])}
           for d in kv_lines(out)]
    host = kv_lines(subprocess.run([tool, "host"], capture_output=True,
                                   text=True).stdout)
    h = host[0] if host else {}
    return per, {k: float(v) for k, v in h.items()}


def main():
    exe = build_zstd()
    inp = make_input()
    common.log("unwind: zstd %s under perf --call-graph dwarf and skyprof"
               % " ".join(ZSTD_ARGS))
    result = compare_run(exe, inp)
    result["objects"], result["host"] = tables(exe)
    result["program"] = "zstd %s (Debian source, dpkg-buildflags)" % \
        " ".join(ZSTD_ARGS)
    common.save("unwind", result)
    for who in ("skyprof", "perf"):
        r = result[who]
        print("unwind %-8s %5d samples, %.1f%% reach main/start_thread, "
              "mean depth %.1f" % (who, r["samples"], 100 * r["rooted"],
                                   r["mean_depth"]))
    for kind in ("self", "inclusive"):
        print("unwind top-%d %s (skyprof / perf %%):" % (TOP, kind))
        for k, a, b in result[kind]:
            print("  %-40s %6.1f %6.1f" % (k[:40], 100 * a, 100 * b))
    for o in result["objects"]:
        print("unwind table %-45s %8.1f ms %8.1f KiB (%d rows) from a "
              "%.1f MiB file" % (o["object"], o["ms"], o["bytes"] / 1024,
                                 o["rows"], o["file_bytes"] / 2**20))
    for k, v in sorted(result["collector"].items()):
        print("unwind collector %s %g" % (k, v))
    h = result["host"]
    if h:
        print("unwind tables of the host: %d processes, %d objects, "
              "%.1f MiB, %.0f ms" % (h["processes"], h["objects"],
                                     h["bytes"] / 2**20, h["ms"]))


if __name__ == "__main__":
    main()

"""Benchmark 4: symbolization against llvm-symbolizer, addr2line and
eu-addr2line.

The same N (default 100,000) pseudo-random addresses inside function symbols
of a large object (libLLVM-14, ~35k functions in .dynsym, C++ names) are
resolved by skyprof's symbolizer library (build/bench/symbench: cold = first
pass including loading the object, warm = mean per lookup over further
passes), by llvm-symbolizer, `addr2line -f -C` and `eu-addr2line -f -C`
(one process each reading every address on stdin; timed with hyperfine).
llvm-symbolizer's warm per-lookup cost is its time for ROUNDS x N addresses
minus its time for one address (start-up and loading), over ROUNDS x N.
Agreement is the share of addresses where the peer printed exactly the same
function name as skyprof.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time

import common

N = int(os.environ.get("BENCH_SYM_N", "100000"))
ROUNDS = int(os.environ.get("BENCH_SYM_ROUNDS", "5"))
CANDIDATES = ("/usr/lib/x86_64-linux-gnu/libLLVM-14.so.1",
              "/usr/lib/llvm-14/lib/libLLVM-14.so.1",
              "/usr/lib/x86_64-linux-gnu/libc.so.6")


def hyperfine(cmd, runs, tmp, name):
    """Mean and min seconds of a shell command over runs (hyperfine)."""
    out = os.path.join(tmp, name + ".json")
    subprocess.run(["hyperfine", "--runs", str(runs), "--warmup", "1",
                    "--style", "none", "--export-json", out, cmd],
                   check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        r = json.load(f)["results"][0]
    return {"mean_s": r["mean"], "min_s": r["min"], "median_s": r["median"]}


def read_names(path, blank_separated=False):
    with open(path, errors="replace") as f:
        text = f.read()
    if blank_separated:
        # llvm-symbolizer: function line, file:line line, blank line
        return [blk.split("\n", 1)[0] for blk in text.split("\n\n")
                if blk.strip()]
    # addr2line -f: function line, file:line line, per address
    lines = text.splitlines()
    return lines[0::2]


def base_name(name):
    """A demangled name without template arguments and parameters: the
    demanglers of LLVM and GNU spell some of those differently ('lambda'
    vs {lambda#1}, decltype(nullptr) vs std::nullptr_t)."""
    for i, c in enumerate(name):
        if c in "<(":
            return name[:i]
    return name


def agreement(ours, theirs):
    n = min(len(ours), len(theirs))
    same = sum(1 for a, b in zip(ours[:n], theirs[:n]) if a == b)
    same_base = sum(1 for a, b in zip(ours[:n], theirs[:n])
                    if base_name(a) == base_name(b))
    return {"same": same, "compared": n, "of": len(ours),
            "share": same / len(ours) if ours else 0.0,
            "share_base_name": same_base / len(ours) if ours else 0.0}


def main():
    obj = os.environ.get("BENCH_SYM_OBJECT") or next(
        p for p in CANDIDATES if os.path.exists(p))
    tmp = tempfile.mkdtemp(prefix="bench-sym-")
    result = {"object": obj, "n": N, "rounds": ROUNDS,
              "object_mib": os.path.getsize(obj) / 2**20, "peers": {}}
    try:
        addrs = os.path.join(tmp, "addrs")
        ours_path = os.path.join(tmp, "ours")
        common.log("symbols: skyprof on %s, %d addresses" % (obj, N))
        runs = []
        for _ in range(3):
            out = subprocess.run(
                [os.path.join(common.BENCH_BIN, "symbench"), obj, str(N),
                 str(ROUNDS), addrs, ours_path],
                capture_output=True, text=True, check=True).stdout
            runs.append(dict(line.split("=", 1) for line in out.split()))
        cold = min(float(r["cold_ms"]) for r in runs) / 1e3
        warm = min(float(r["warm_ns_per_lookup"]) for r in runs)
        best = min(float(r.get("best_pass_ns_per_lookup", "nan"))
                   for r in runs)
        resolved = runs[-1]["resolved"]
        result["skyprof"] = {"cold_s": cold, "warm_ns": warm,
                             "best_pass_ns": best,
                             "resolved": resolved,
                             "cache_bytes": int(runs[-1]["cache_bytes"])}
        with open(ours_path, errors="replace") as f:
            ours = f.read().splitlines()

        # Stdin for the peers: the same virtual addresses.
        many = os.path.join(tmp, "many")
        with open(addrs) as f:
            text = f.read()
        with open(many, "w") as f:
            f.write(text * ROUNDS)
        one = os.path.join(tmp, "one")
        with open(one, "w") as f:
            f.write(text.split("\n", 1)[0] + "\n")

        llvm = shutil.which("llvm-symbolizer") or \
            shutil.which("llvm-symbolizer-14")
        # name: (command, llvm-style output, addresses it is given). The
        # binutils tools search the symbol table per address (~1 ms and
        # ~6 ms per address here), so they get the first SUBSET addresses
        # and their time is scaled to N: 100,000 would take minutes.
        peers = {
            "llvm-symbolizer": (
                "%s --obj=%s --functions=linkage --no-inlines --demangle"
                % (llvm, obj), True, N),
            "addr2line": ("addr2line -f -C -e %s" % obj, False,
                          min(N, int(os.environ.get("BENCH_A2L_N", "3000")))),
            "eu-addr2line": ("eu-addr2line -f -C -e %s" % obj, False,
                             min(N, int(os.environ.get("BENCH_EU_N", "400")))),
        }
        for name, (cmd, blank_sep, n) in peers.items():
            if not shutil.which(cmd.split()[0]):
                result["peers"][name] = {"missing": True}
                continue
            common.log("symbols: %s, %d addresses" % (name, n))
            subset = os.path.join(tmp, name + ".addrs")
            with open(subset, "w") as f:
                f.writelines(text.splitlines(True)[:n])
            names_path = os.path.join(tmp, name + ".names")
            if n == N:
                full = hyperfine("%s < %s > /dev/null" % (cmd, subset), 3,
                                 tmp, name)
                took = full["min_s"]
            else:
                took = None
            with open(subset) as fin, open(names_path, "w") as fout:
                t0 = time.perf_counter()
                subprocess.run(cmd.split(), stdin=fin, stdout=fout,
                               stderr=subprocess.DEVNULL, check=True)
                once = time.perf_counter() - t0
            peer = {"addresses": n,
                    # seconds for all N addresses (scaled for a subset)
                    "full_run_s": took if took is not None
                    else once * N / n}
            if name == "llvm-symbolizer":
                start = hyperfine("%s < %s > /dev/null" % (cmd, one), 3,
                                  tmp, name + "-one")
                rounds = hyperfine("%s < %s > /dev/null" % (cmd, many), 2,
                                   tmp, name + "-many")
                peer["startup_s"] = start["min_s"]
                peer["warm_ns"] = 1e9 * (rounds["min_s"] - start["min_s"]) \
                    / (N * ROUNDS)
            theirs = read_names(names_path, blank_sep)
            peer["agreement"] = agreement(ours[:n], theirs)
            # A few disagreements, for the report.
            peer["examples"] = [
                (a, b) for a, b in zip(ours, theirs) if a != b][:3]
            result["peers"][name] = peer
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sk = result["skyprof"]
    # skyprof's cold pass covers N lookups plus loading, like a peer's
    # single run over N addresses (which adds its process start-up).
    for name, peer in result["peers"].items():
        if peer.get("missing"):
            continue
        peer["cold_ratio"] = peer["full_run_s"] / sk["cold_s"]
        if "warm_ns" in peer:
            peer["warm_ratio"] = peer["warm_ns"] / sk["warm_ns"]
    common.save("symbols", result)
    print("symbols %s (%.0f MiB), %d addresses: skyprof cold %.3f s, warm "
          "%.0f ns/lookup (%s resolved)"
          % (obj, result["object_mib"], N, sk["cold_s"], sk["warm_ns"],
             sk["resolved"]))
    for name, peer in result["peers"].items():
        if peer.get("missing"):
            print("symbols %-15s not installed" % name)
            continue
        print("symbols %-15s run %.3f s%s (%.1fx skyprof cold)%s  same name "
              "%.2f%% (%.2f%% without templates/parameters)" % (name, peer["full_run_s"],
                          "" if peer["addresses"] == N else
                          " (scaled from %d)" % peer["addresses"],
                          peer["cold_ratio"],
                          ", warm %.0f ns/lookup (%.1fx skyprof warm)"
                          % (peer["warm_ns"], peer["warm_ratio"])
                          if "warm_ns" in peer else "",
                          100 * peer["agreement"]["share"],
                          100 * peer["agreement"]["share_base_name"]))


if __name__ == "__main__":
    main()

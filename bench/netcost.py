"""Network capture cost (issue 14): CPU per socket call with the capture
attached, against the same calls with nothing attached, in one run.

bench/netcost.c bounces 64-byte messages over TCP loopback between two
processes (plain send/recv, and SSL_write/SSL_read through the system
OpenSSL) in three modes: off (nothing attached), traced (both processes in
the capture's pid filter: syscall hooks, payload capture, TLS uprobes) and
other (the capture attached for an idle process only: what every process
outside the NETWORK tasks pays). Modes are interleaved over BENCH_NET_RUNS
rounds (5) and the medians compared. The kernel's own accounting of the
programs (kernel.bpf_stats_enabled: run_time_ns / run_cnt per program) is
read in the `other` mode for the per-run cost of the untraced fast path.

Writes results/netcost.json and prints a table.
"""
import json
import os
import subprocess
import tempfile
import time

import common

RUNS = int(os.environ.get("BENCH_NET_RUNS", "5"))
ROUNDS = int(os.environ.get("BENCH_NET_ROUNDS", "20000"))
TLS_ROUNDS = int(os.environ.get("BENCH_NET_TLS_ROUNDS", "5000"))
MODES = ("off", "traced", "other")


def build(out):
    build_dir = common.BUILD
    libs = subprocess.run(["pkg-config", "--libs", "libbpf", "libelf",
                           "libzmq", "msgpack"], capture_output=True,
                          text=True, check=True).stdout.split()
    subprocess.run(["gcc", "-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-Wno-unused-parameter",
                    "-D_GNU_SOURCE", "-I" + common.ROOT,
                    "-I" + os.path.join(common.ROOT, "lib"),
                    "-I" + os.path.join(build_dir, "gen"), "-o", out,
                    os.path.join(common.ROOT, "bench/netcost.c"),
                    os.path.join(build_dir, "lib/libcollector.a"),
                    os.path.join(build_dir, "lib/liblib.a")] + libs +
                   ["-lssl", "-lcrypto", "-lm"], check=True)


def bpf_prog_stats():
    """run_time_ns and run_cnt of the capture's programs (bpftool)."""
    try:
        out = subprocess.run(["bpftool", "prog", "show", "--json"],
                             capture_output=True, text=True, check=True)
        progs = json.loads(out.stdout)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return {}
    stats = {}
    for p in progs:
        name = p.get("name", "")
        if name.startswith("sky_net_") and "run_cnt" in p:
            s = stats.setdefault(name, [0, 0])
            s[0] += p.get("run_time_ns", 0)
            s[1] += p.get("run_cnt", 0)
    return stats


def run_one(exe, mode, tls, cert, key):
    args = [exe, mode, str(TLS_ROUNDS if tls else ROUNDS)]
    if tls:
        args += ["--tls", cert, key]
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        common.log("netcost: %s failed: %s" % (" ".join(args), out.stderr))
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    exe = os.path.join(common.BENCH_BIN, "netcost")
    build(exe)
    tmp = tempfile.mkdtemp()
    cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                    "-subj", "/CN=localhost"], capture_output=True, check=True)
    res = {}
    lost = 0
    per_run = {}
    stats_path = "/proc/sys/kernel/bpf_stats_enabled"
    for tls in (0, 1):
        for _ in range(RUNS):
            for mode in MODES:
                r = run_one(exe, mode, tls, cert, key)
                if r:
                    res.setdefault((tls, mode), []).append(r["ns_per_call"])
                    lost += r["lost"]
    # The untraced fast path, as the kernel accounts it: stats are on only
    # for this run (they cost a clock read per program run themselves).
    try:
        with open(stats_path, "w") as f:
            f.write("1")
        # bpftool must see the programs while they are loaded: run netcost
        # in the background and sample at its end.
        p = subprocess.Popen([exe, "other", str(ROUNDS * 5)],
                             stdout=subprocess.PIPE, text=True)
        last = {}
        while p.poll() is None:
            s = bpf_prog_stats()
            if s:
                last = s
            time.sleep(0.2)
        p.communicate()
        per_run = {k: (v[0] / v[1] if v[1] else 0.0, v[1])
                   for k, v in last.items()}
    except OSError as e:
        common.log("netcost: no bpf_stats: %s" % e)
    finally:
        try:
            with open(stats_path, "w") as f:
                f.write("0")
        except OSError:
            pass
    out = {"runs": RUNS, "rounds": ROUNDS, "tls_rounds": TLS_ROUNDS,
           "lost": lost, "per_run_ns": per_run}
    rows = []
    for tls in (0, 1):
        off = common.median(res.get((tls, "off"), [0.0]))
        for mode in ("traced", "other"):
            v = common.median(res.get((tls, mode), [0.0]))
            key_name = "%s_%s" % ("tls" if tls else "plain", mode)
            out[key_name + "_ns"] = v
            out[key_name + "_added_ns"] = v - off
            out[key_name + "_ratio"] = v / off if off else 0.0
            rows.append((("TLS" if tls else "plain"), mode, off, v))
        out[("tls" if tls else "plain") + "_off_ns"] = off
    common.save("netcost", out)
    print("| calls | capture | off ns/call | with ns/call | added | ratio |")
    print("|---|---|---|---|---|---|")
    for kind, mode, off, v in rows:
        print("| %s | %s | %.0f | %.0f | %+.0f | %.2f |" %
              (kind, "traced" if mode == "traced" else "other pid traced",
               off, v, v - off, v / off if off else 0.0))
    for name, (ns, cnt) in sorted(per_run.items()):
        print("| untraced fast path | %s | | %.0f ns/run | | %d runs |" %
              (name, ns, cnt))
    print("events lost in the traced runs: %d" % lost)


if __name__ == "__main__":
    main()

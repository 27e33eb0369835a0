"""Shared helpers of the skyprof benchmarks (bench/*.py).

Starting and stopping the skyprof pipeline and the peer profilers, reading
process CPU time and RSS from /proc, the aggregator's /metrics, and small
statistics. Every benchmark writes its figures as JSON into the results
directory; bench/report.py turns them into the table.
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("SKYPROF_BUILD", os.path.join(ROOT, "build"))
BENCH_BIN = os.path.join(BUILD, "bench")
RESULTS = os.environ.get("BENCH_RESULTS", os.path.join(BENCH_BIN, "results"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Without an OAP address the launcher does not start the uplink.
STAGES = ("broker", "collector", "symbolizer", "aggregator", "policy")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def save(name, data):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, name + ".json"), "w") as f:
        json.dump(data, f, indent=1)


# ------------------------------------------------------------------ /proc
def cpu_ticks(pid):
    """utime + stime of one process in clock ticks, 0 when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return 0
    # comm may hold spaces and parentheses: fields start after the last ')'
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pids):
    return sum(cpu_ticks(p) for p in pids) / CLK_TCK


def rss_bytes(pid):
    try:
        with open("/proc/%d/statm" % pid) as f:
            return int(f.read().split()[1]) * PAGE
    except OSError:
        return 0


def pss_bytes(pid):
    """Proportional set size: shared library pages divided among the
    processes mapping them, so a sum over processes counts them once."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_pids(root):
    """root and all its descendants (for peers that fork helpers)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                text = f.read()
        except OSError:
            continue
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def forks_total():
    """Processes and threads created on the host since boot."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("processes "):
                return int(line.split()[1])
    return 0


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# ------------------------------------------------------------------ stats
def median(xs):
    return statistics.median(xs) if xs else float("nan")


def percentile(xs, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(q / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


# ------------------------------------------------------------------ http
def http_get(port, path, timeout=5.0):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except Exception as e:  # noqa: BLE001 - any failure is "not yet"
        return 0, str(e)


def parse_metrics(text):
    """Prometheus text -> {name: sum over label sets}, and per topic."""
    sums = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        try:
            key, value = line.rsplit(" ", 1)
            v = float(value)
        except ValueError:
            continue
        name = key.split("{", 1)[0]
        sums[name] = sums.get(name, 0.0) + v
        if 'topic="' in key:
            topic = key.split('topic="', 1)[1].split('"', 1)[0]
            sums[name + "/" + topic] = sums.get(name + "/" + topic, 0.0) + v
    return sums


# ------------------------------------------------------------------ skyprof
class Skyprof:
    """The pipeline under the launcher, in a private runtime directory."""

    def __init__(self, yaml_extra="", without=(), flush="1s",
                 period="10ms", host_wide=True, stats_interval="2s",
                 collector_extra=""):
        self.dir = tempfile.mkdtemp(prefix="skyprof-bench-")
        self.port = 20000 + (os.getpid() * 7 + int(time.time())) % 20000
        self.config = os.path.join(self.dir, "skyprof.yaml")
        with open(self.config, "w") as f:
            f.write("runtime_dir: %s/run\n"
                    "log:\n  level: warn\n"
                    "bus:\n  stats_interval: %s\n"
                    "profiling:\n  flush_interval: %s\n"
                    "  task:\n    on_cpu:\n      dump_period: %s\n"
                    "collector:\n  host_wide: %s\n  host_period: %s\n%s"
                    "aggregator:\n  http_addr: 127.0.0.1:%d\n"
                    "  store_path: %s/history.db\n%s"
                    % (self.dir, stats_interval, flush, period,
                       "true" if host_wide else "false", period,
                       collector_extra,
                       self.port, self.dir, yaml_extra))
        argv = [os.path.join(BUILD, "bin", "skyprof"), "--config",
                self.config, "--bin-dir", os.path.join(BUILD, "bin")]
        for w in without:
            argv += ["--without", w]
        self.without = set(without)
        self.log = open(os.path.join(self.dir, "skyprof.log"), "w")
        self.proc = subprocess.Popen(argv, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def stage_pids(self):
        pids = {}
        try:
            with open(os.path.join(self.dir, "run", "launcher.status")) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 2 and int(parts[1]) > 0:
                        pids[parts[0]] = int(parts[1])
        except OSError:
            pass
        return pids

    def all_pids(self):
        """The launcher and every stage."""
        return [self.proc.pid] + list(self.stage_pids().values())

    def metrics(self):
        status, body = http_get(self.port, "/metrics")
        return parse_metrics(body) if status == 200 else {}

    def wait_ready(self, timeout=30.0, samples=True):
        """Until every stage runs, the API answers and (with samples) the
        collector has delivered samples, so its BPF programs are live."""
        want = set(STAGES) - self.without
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            if want <= set(self.stage_pids()):
                m = self.metrics()
                if m and (not samples or
                          m.get("skyprof_collector_samples_received", 0) > 0):
                    return True
            time.sleep(0.2)
        raise RuntimeError("skyprof did not start; see %s" % self.log.name)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        subprocess.run(["rm", "-rf", self.dir])


def post_task(sky, pid, target, duration):
    """POST /api/tasks: a fixed-time task on one process; True when the
    aggregator took it (an HTTP error raises)."""
    body = json.dumps({"pid": pid, "target": target,
                       "duration": int(duration)}).encode()
    req = urllib.request.Request(
        "http://127.0.0.1:%d/api/tasks" % sky.port, data=body,
        method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status == 200


# ------------------------------------------------------------------ peers
class Peer:
    """A peer profiler sampling the whole host at 99 Hz in the background."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="bench-%s-" % name)
        out = open(os.path.join(self.dir, "out"), "w")
        if name == "perf":
            argv = ["perf", "record", "-a", "-g", "-F", "99", "-q",
                    "-o", os.path.join(self.dir, "perf.data")]
        elif name == "bpftrace":
            argv = ["bpftrace", "-e",
                    "profile:hz:99 { @[ustack, kstack] = count(); }"]
        else:
            raise ValueError(name)
        self.proc = subprocess.Popen(argv, stdout=out, stderr=out)
        self.out = out

    def wait_ready(self, timeout=30.0):
        """perf: its mmap buffers exist once it writes the data file
        header; bpftrace: it prints 'Attaching' when its probe loads."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            if self.name == "perf":
                p = os.path.join(self.dir, "perf.data")
                if os.path.exists(p) and os.path.getsize(p) > 0:
                    time.sleep(0.5)
                    return True
            else:
                with open(os.path.join(self.dir, "out")) as f:
                    if "Attaching" in f.read():
                        time.sleep(0.5)
                        return True
            time.sleep(0.1)
        raise RuntimeError("%s did not start; see %s/out" %
                           (self.name, self.dir))

    def all_pids(self):
        return tree_pids(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        subprocess.run(["rm", "-rf", self.dir])


def start_profiler(name, **kw):
    """'skyprof', 'perf' or 'bpftrace', running and sampling; None for
    'alone'."""
    if name == "alone":
        return None
    return started(Skyprof(**kw) if name == "skyprof" else Peer(name))


def started(p):
    """p once it samples; stopped if it never gets there."""
    try:
        p.wait_ready()
    except Exception:
        p.stop()
        raise
    return p


# ------------------------------------------------------------------ bpf
def s_fdinfo_ids(pids, field):
    """The ids fdinfo names with field ("prog_id:", "map_id:") over the
    fds of the processes."""
    ids = set()
    for pid in pids:
        d = "/proc/%d/fdinfo" % pid
        try:
            fds = os.listdir(d)
        except OSError:
            continue
        for fd in fds:
            try:
                with open(os.path.join(d, fd)) as f:
                    for line in f:
                        if line.startswith(field):
                            ids.add(int(line.split()[1]))
            except OSError:
                continue
    return ids


def bpf_prog_ids(pids):
    """Ids of the BPF programs the processes hold (prog and link fds)."""
    return s_fdinfo_ids(pids, "prog_id:")


def bpf_map_ids(pids):
    """Ids of the BPF maps the processes hold."""
    return s_fdinfo_ids(pids, "map_id:")


def bpf_maps(ids):
    """`bpftool map show` entries of the given maps."""
    out = subprocess.run(["bpftool", "map", "show", "-j"],
                         capture_output=True, text=True).stdout
    try:
        return [m for m in json.loads(out) if m.get("id") in ids]
    except ValueError:
        return []


def bpf_percpu_values(map_id, key):
    """Per-CPU u64 values of a u32 key in a per-CPU array map."""
    out = subprocess.run(
        ["bpftool", "map", "lookup", "id", str(map_id), "key"] +
        [str(b) for b in key.to_bytes(4, "little")] + ["-j"],
        capture_output=True, text=True).stdout
    try:
        entry = json.loads(out)
    except ValueError:
        return []
    vals = entry.get("values", [])
    res = []
    for v in vals:
        raw = v.get("value")
        if isinstance(raw, list):
            res.append(int.from_bytes(bytes(int(b, 16) for b in raw),
                                      "little"))
        else:
            res.append(int(raw))
    return res


def bpf_prog_stats(ids):
    """{id: (type, name, run_time_ns, run_cnt)} of the given programs;
    run figures need kernel.bpf_stats_enabled=1."""
    out = subprocess.run(["bpftool", "prog", "show", "-j"],
                         capture_output=True, text=True).stdout
    stats = {}
    try:
        progs = json.loads(out)
    except ValueError:
        return stats
    for p in progs:
        if p.get("id") in ids:
            stats[p["id"]] = (p.get("type"), p.get("name"),
                              p.get("run_time_ns", 0), p.get("run_cnt", 0))
    return stats


class BpfStats:
    """Sets kernel.bpf_stats_enabled for a measurement (on: it costs two
    clock reads per program run; off: timings without that instrument)
    and restores the previous value afterwards."""
    PATH = "/proc/sys/kernel/bpf_stats_enabled"

    def __init__(self, on=True):
        self.value = "1" if on else "0"

    def __enter__(self):
        with open(self.PATH) as f:
            self.old = f.read().strip()
        with open(self.PATH, "w") as f:
            f.write(self.value)
        return self

    def __exit__(self, *exc):
        with open(self.PATH, "w") as f:
            f.write(self.old)

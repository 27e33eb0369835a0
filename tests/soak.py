#!/usr/bin/env python3
"""Churn soak (`make soak`, not part of `make test`): the whole pipeline
under process churn for a long time, and under the failures it must ride
out. Four phases, each with its own pipeline (bench/common.Skyprof, the
local launcher):

  churn      SOAK_RATE process starts a second (default 1000) for
             SOAK_SECONDS (default 600) with host-wide profiling, an ON_CPU
             task on tests/progs/cpu_workload and an OFF_CPU task on
             tests/progs/offcpu_workload. RSS of every stage must be flat
             after the warm-up (SOAK_WARMUP, default 60 s), no stage may be
             restarted, and every sample must be accounted for from the
             stages' own counters (aggregator /metrics) once drained:
               collector: samples_received = on_cpu_published
                          + on_cpu_unpublished + samples_invalid
                          + samples_dropped_user
               bus:       collector batches_published = symbolizer
                          batches_in + symbolizer bus_lost_total
               symbolizer: batches_in = batches_out + batches_dropped
               bus:       symbolizer batches_out = aggregator batches_in
                          + aggregator bus_lost_total
               stacks:    collector stacks_published = aggregator
                          samples_in + samples_rejected (exact when no
                          batch was dropped or lost on the way)
             The totals are read once the collector was stopped cleanly
             (it publishes its final counters) and the rest drained.
  broker     a churn burst with the broker SIGKILLed in the middle: the
             launcher restarts it, no other stage restarts, samples reach
             the aggregator again afterwards, losses are counted.
  diskfull   the history database on a 2 MiB tmpfs filled up: history
             write errors are counted (store_errors), the API keeps serving
             what is in memory, nothing restarts.
  oapflap    the uplink against tests/fake_oap, which is stopped and started
             again every SOAK_FLAP_PERIOD (10 s) for SOAK_FLAP_SECONDS
             (default 600): the uplink never restarts, its RSS stays flat,
             reconnects are counted.
  net        a NETWORK task on a tests/progs/httpload server, driven by
             httpload clients opening SOAK_NET_RATE short connections a
             second (default 1000; one GET /ok each, so one accept, one
             request, one close per connection) for SOAK_NET_SECONDS
             (default 60). RSS of the collector and the aggregator must be
             flat after SOAK_NET_WARMUP (default 35 s; the aggregator keeps
             SOAK_NET_HISTORY, 30s, of profile windows), no stage may be
             restarted, and every request must be accounted for: the
             requests the clients made (client output) = the http1
             requests the network room counted for the server
             (GET /api/network endpoints) when no loss was counted, else
             the difference must be explained by the counted losses
             (collector net_lost_kernel/net_lost_user/net_publish_errors/
             net_hook_losses, aggregator net_events_lost,
             net_conn_evictions).

In the churn phase the aggregator keeps SOAK_HISTORY (1m) of windows and
the symbolizer caches SOAK_SYM_CACHE (8MB), so bounded memory is at its
bound by the end of the warm-up. Each phase's launcher log (all stages'
stderr) is kept next to the results as <results>.<phase>.log.
SOAK_PHASES (default "churn broker diskfull oapflap net") picks phases
(`SOAK_PHASES=net make soak` runs the network soak alone). Exit
status 0 only when every check of every phase held; the figures are printed
and written as JSON to SOAK_RESULTS (default build/soak-results.json).
Needs root (BPF, mounting the tmpfs).
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "bench"))
import common  # noqa: E402
import netdrive  # noqa: E402

BUILD = common.BUILD
PROGS = os.path.join(BUILD, "tests", "progs")
ENV = os.environ

RATE = int(ENV.get("SOAK_RATE", "1000"))
SECONDS = float(ENV.get("SOAK_SECONDS", "600"))
WARMUP = float(ENV.get("SOAK_WARMUP", "60"))
BURST = float(ENV.get("SOAK_BURST_SECONDS", "30"))
FLAP_SECONDS = float(ENV.get("SOAK_FLAP_SECONDS", "600"))
FLAP_PERIOD = float(ENV.get("SOAK_FLAP_PERIOD", "10"))
PHASES = ENV.get("SOAK_PHASES",
                 "churn broker diskfull oapflap net").split()
NET_RATE = int(ENV.get("SOAK_NET_RATE", "1000"))
NET_SECONDS = float(ENV.get("SOAK_NET_SECONDS", "60"))
NET_WARMUP = float(ENV.get("SOAK_NET_WARMUP", "35"))
NET_HISTORY = ENV.get("SOAK_NET_HISTORY", "30s")
RESULTS = ENV.get("SOAK_RESULTS", os.path.join(BUILD, "soak-results.json"))
# RSS is flat when it grew after the warm-up by no more than this share
# plus a few pages of allocator noise.
RSS_GROWTH_SHARE = 0.10
RSS_GROWTH_SLACK = 8 << 20
# Counter names that count something lost or refused, reported per stage.
DROP_WORDS = ("dropped", "lost", "rejected", "invalid", "unpublished",
              "errors", "refused", "too_large", "skipped", "unreadable",
              "failed", "duplicate")

failures = []


def check(ok, what):
    common.log(("  ok    " if ok else "  FAIL  ") + what)
    if not ok:
        failures.append(what)
    return ok


def keep_log(sky, phase):
    """The launcher's log (every stage's stderr) next to the results: the
    pipeline's directory goes away with it."""
    dest = "%s.%s.log" % (os.path.splitext(RESULTS)[0], phase)
    try:
        os.makedirs(os.path.dirname(RESULTS) or ".", exist_ok=True)
        with open(sky.log.name) as src, open(dest, "w") as out:
            out.write(src.read())
    except OSError as e:
        common.log("  cannot keep the log: %s" % e)


def restarts(sky):
    """{stage: restarts} from the launcher's status file."""
    out = {}
    try:
        with open(os.path.join(sky.dir, "run", "launcher.status")) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    out[parts[0]] = int(parts[2])
    except OSError:
        pass
    return out


def rss_by_stage(sky):
    return {name: common.rss_bytes(pid)
            for name, pid in sky.stage_pids().items()}


def post_task(sky, pid, target, duration):
    try:
        return common.post_task(sky, pid, target, duration)
    except Exception as e:  # noqa: BLE001
        common.log("  task %s: %s" % (target, e))
        return False


def drained(sky, settle=3, timeout=60):
    """Metrics once the pipeline is idle: the per-stage counters (which
    travel on the bus every stats_interval) unchanged for `settle` reads
    a stats interval apart."""
    keys = ("skyprof_collector_batches_published",
            "skyprof_symbolizer_batches_out", "skyprof_aggregator_batches_in",
            "skyprof_aggregator_samples_in")
    last, same = None, 0
    deadline = time.time() + timeout
    m = {}
    while time.time() < deadline and same < settle:
        time.sleep(2.5)
        m = sky.metrics()
        now = tuple(m.get(k, -1) for k in keys)
        same = same + 1 if now == last else 0
        last = now
    return m


def exited(pid):
    """Gone, or a zombie its (paused) parent has not reaped."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return True
    return text[text.rindex(")") + 2:].startswith("Z")


def final_counters(sky):
    """Exact totals: with the launcher paused (so it restarts nothing),
    the collector is stopped cleanly -- it publishes its last batches and
    then its final counters -- and the rest of the pipeline drains. Every
    stage's counters then describe the same, finished stream. The launcher
    is resumed afterwards (it then restarts the collector)."""
    launcher = sky.proc.pid
    collector = sky.stage_pids().get("collector")
    os.kill(launcher, signal.SIGSTOP)
    try:
        if collector:
            os.kill(collector, signal.SIGTERM)
            deadline = time.time() + 30
            while time.time() < deadline and not exited(collector):
                time.sleep(0.1)
        return drained(sky)
    finally:
        os.kill(launcher, signal.SIGCONT)


def drops(m):
    """Every loss/refusal counter that is not zero, by full name."""
    return {k: v for k, v in sorted(m.items())
            if "/" not in k and v and any(w in k for w in DROP_WORDS)
            and not k.endswith("_bucket")}


def accounting(m):
    g = lambda k: m.get(k, 0.0)  # noqa: E731
    rows = [
        ("collector on-CPU",
         g("skyprof_collector_samples_received"),
         g("skyprof_collector_on_cpu_published")
         + g("skyprof_collector_on_cpu_unpublished")
         + g("skyprof_collector_samples_invalid")
         + g("skyprof_collector_samples_dropped_user")),
        ("collector -> symbolizer batches",
         g("skyprof_collector_batches_published"),
         g("skyprof_symbolizer_batches_in")
         + g("skyprof_symbolizer_bus_lost_total")),
        ("symbolizer batches",
         g("skyprof_symbolizer_batches_in"),
         g("skyprof_symbolizer_batches_out")
         + g("skyprof_symbolizer_batches_dropped")),
        ("symbolizer -> aggregator batches",
         g("skyprof_symbolizer_batches_out"),
         g("skyprof_aggregator_batches_in")
         + g("skyprof_aggregator_bus_lost_total")),
    ]
    lossless = (g("skyprof_symbolizer_bus_lost_total") == 0 and
                g("skyprof_aggregator_bus_lost_total") == 0 and
                g("skyprof_symbolizer_batches_dropped") == 0)
    if lossless:
        rows.append(("collector -> aggregator stacks",
                     g("skyprof_collector_stacks_published"),
                     g("skyprof_aggregator_samples_in")
                     + g("skyprof_aggregator_samples_rejected")))
    return rows


def start_workloads(seconds):
    cpu = subprocess.Popen([os.path.join(PROGS, "cpu_workload"),
                            str(int(seconds))], stdout=subprocess.DEVNULL)
    off = subprocess.Popen([os.path.join(PROGS, "offcpu_workload"),
                            str(int(seconds))], stdout=subprocess.DEVNULL)
    return cpu, off


def stop(procs):
    for p in procs:
        if p and p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        if p:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def churn(seconds):
    return subprocess.Popen([os.path.join(PROGS, "churn"), str(RATE),
                             str(seconds), "/bin/true"],
                            stdout=subprocess.PIPE, text=True)


def churn_result(p):
    out, _ = p.communicate()
    fields = dict(kv.split("=") for kv in out.split())
    return int(fields.get("started", 0)), int(fields.get("failed", 0))


def bounded_pipeline(history):
    """A started pipeline whose history and symbol cache are bounded below
    their defaults (history, SOAK_SYM_CACHE): see phase_churn."""
    bounds = {"SKYPROF_AGGREGATOR_HISTORY": history,
              "SKYPROF_SYMBOLIZER_CACHE_SIZE": ENV.get("SOAK_SYM_CACHE",
                                                       "8MB")}
    ENV.update(bounds)
    try:
        return common.started(common.Skyprof(flush="1s"))
    finally:
        for k in bounds:
            del ENV[k]


def flat(start, end):
    return end <= start * (1 + RSS_GROWTH_SHARE) + RSS_GROWTH_SLACK


# ----------------------------------------------------------------- phases
def phase_churn(result):
    common.log("== churn: %d starts/s for %ds (warm-up %ds)" %
               (RATE, SECONDS, WARMUP))
    # Bounded memory grows to its bound before it is flat: in-memory
    # history is kept for aggregator.history and the symbolizer caches up
    # to symbolizer.cache_size. Smaller bounds than the defaults let both
    # reach their steady size within the warm-up, so growth after it is a
    # leak, not a cache filling.
    sky = bounded_pipeline(ENV.get("SOAK_HISTORY", "1m"))
    cpu = off = ch = None
    try:
        cpu, off = start_workloads(SECONDS + 120)
        time.sleep(1)
        check(post_task(sky, cpu.pid, "ON_CPU", SECONDS + 60),
              "ON_CPU task accepted")
        check(post_task(sky, off.pid, "OFF_CPU", SECONDS + 60),
              "OFF_CPU task accepted")
        rss_start = rss_by_stage(sky)
        ch = churn(SECONDS)
        t0 = time.time()
        series = []
        rss_warm = None
        while ch.poll() is None:
            time.sleep(5)
            series.append((round(time.time() - t0), rss_by_stage(sky)))
            if rss_warm is None and time.time() - t0 >= WARMUP:
                rss_warm = series[-1][1]
        started, failed = churn_result(ch)
        rss_end = rss_by_stage(sky)
        rss_warm = rss_warm or rss_start
        stop([cpu, off])
        rs = restarts(sky)
        m = final_counters(sky)
        result.update(rss_start=rss_start, rss_warm=rss_warm,
                      rss_end=rss_end, restarts=rs, started=started,
                      spawn_failed=failed, drops=drops(m),
                      rate=started / max(SECONDS, 1),
                      rss_series=series)
        common.log("  %d processes started (%.0f/s), %d spawns failed" %
                   (started, started / max(SECONDS, 1), failed))
        for name in sorted(rss_end):
            common.log("  rss %-10s start %6.1f MiB  warm %6.1f MiB  end "
                       "%6.1f MiB" % (name, rss_start.get(name, 0) / 2**20,
                                      rss_warm.get(name, 0) / 2**20,
                                      rss_end[name] / 2**20))
            check(flat(rss_warm.get(name, 0), rss_end[name]),
                  "%s RSS flat after warm-up" % name)
        check(all(v == 0 for v in rs.values()), "no stage restarted (%s)" %
              rs)
        rows = accounting(m)
        result["accounting"] = rows
        for what, sent, got in rows:
            check(sent == got, "%s: sent %d = received + dropped %d" %
                  (what, sent, got))
        check(m.get("skyprof_aggregator_samples_in", 0) > 0,
              "samples reached the aggregator")
        for k, v in drops(m).items():
            common.log("  drop counter %s = %d" % (k, v))
    finally:
        stop([ch, cpu, off])
        keep_log(sky, "churn")
        sky.stop()


def phase_broker(result):
    common.log("== broker killed in a %ds burst" % BURST)
    sky = common.started(common.Skyprof(flush="1s"))
    ch = None
    try:
        pids_before = sky.stage_pids()
        ch = churn(BURST)
        time.sleep(BURST / 2)
        os.kill(pids_before["broker"], signal.SIGKILL)
        time.sleep(3)
        before = sky.metrics().get("skyprof_aggregator_samples_in", 0)
        churn_result(ch)
        m = drained(sky)
        pids_after = sky.stage_pids()
        rs = restarts(sky)
        result.update(restarts=rs, drops=drops(m))
        check(rs.get("broker") == 1, "the launcher restarted the broker once")
        check(all(pids_after.get(s) == p for s, p in pids_before.items()
                  if s != "broker"), "no other stage restarted")
        check(m.get("skyprof_aggregator_samples_in", 0) > before,
              "samples reach the aggregator after the broker came back")
        for k, v in drops(m).items():
            common.log("  drop counter %s = %d" % (k, v))
    finally:
        stop([ch])
        keep_log(sky, "broker")
        sky.stop()


def phase_diskfull(result):
    common.log("== history database on a full tmpfs")
    mnt = tempfile.mkdtemp(prefix="skyprof-soak-full-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt],
                   check=True)
    ENV["SKYPROF_AGGREGATOR_STORE_PATH"] = os.path.join(mnt, "history.db")
    sky = None
    ch = cpu = None
    try:
        sky = common.started(common.Skyprof(flush="1s"))
        # Fill what is left of the filesystem.
        with open(os.path.join(mnt, "filler"), "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        cpu = subprocess.Popen([os.path.join(PROGS, "cpu_workload"),
                                str(int(BURST + 30))],
                               stdout=subprocess.DEVNULL)
        ch = churn(BURST)
        churn_result(ch)
        m = drained(sky)
        status, body = common.http_get(sky.port, "/api/processes")
        rs = restarts(sky)
        result.update(store_errors=m.get("skyprof_aggregator_store_errors",
                                         0), restarts=rs, drops=drops(m))
        check(m.get("skyprof_aggregator_store_errors", 0) > 0,
              "history write errors counted (store_errors %d)" %
              m.get("skyprof_aggregator_store_errors", 0))
        check(status == 200 and ('"pid":%d' % cpu.pid) in body.replace(
            " ", ""), "the API still serves the in-memory windows")
        check(all(v == 0 for v in rs.values()), "no stage restarted (%s)" %
              rs)
    finally:
        stop([ch, cpu])
        if sky:
            keep_log(sky, "diskfull")
            sky.stop()
        del ENV["SKYPROF_AGGREGATOR_STORE_PATH"]
        subprocess.run(["umount", mnt])
        os.rmdir(mnt)


def phase_oapflap(result):
    common.log("== OAP flapping every %ds for %ds" % (FLAP_PERIOD,
                                                     FLAP_SECONDS))
    oapdir = tempfile.mkdtemp(prefix="skyprof-soak-oap-")
    port = 30000 + os.getpid() % 20000
    # The Debian python3 (python3-grpcio), whatever python runs this.
    argv = ["/usr/bin/python3", os.path.join(HERE, "fake_oap", "fake_oap.py"),
            "--dir", oapdir, "--port", str(port), "--no-record-data"]

    def oap_up():
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline and not os.path.exists(
                os.path.join(oapdir, "ready")):
            time.sleep(0.1)
        return p

    oap = oap_up()
    sky = None
    cpu = None
    # The uplink notices the OAP at its calls: ask for tasks often enough
    # that every down period is seen.
    ENV["SKYPROF_PROFILING_CHECK_INTERVAL"] = "2s"
    try:
        sky = common.Skyprof(
            flush="1s",
            yaml_extra="core:\n  backend:\n    addr: 127.0.0.1:%d\n" % port)
        # With an OAP address the launcher starts the uplink too.
        stages = common.STAGES
        common.STAGES = stages + ("uplink",)
        try:
            common.started(sky)
        finally:
            common.STAGES = stages
        cpu = subprocess.Popen([os.path.join(PROGS, "cpu_workload"),
                                str(int(FLAP_SECONDS + 60))],
                               stdout=subprocess.DEVNULL)
        pids = sky.stage_pids()
        t0 = time.time()
        rss_warm = None
        while time.time() - t0 < FLAP_SECONDS:
            time.sleep(FLAP_PERIOD)
            if oap.poll() is None:
                oap.terminate()
                oap.wait()
                os.unlink(os.path.join(oapdir, "ready"))
            else:
                oap = oap_up()
            if rss_warm is None and time.time() - t0 >= min(WARMUP,
                                                            FLAP_SECONDS / 3):
                rss_warm = common.rss_bytes(pids["uplink"])
        m = sky.metrics()
        rss_end = common.rss_bytes(pids["uplink"])
        rs = restarts(sky)
        result.update(restarts=rs, uplink_rss_warm=rss_warm,
                      uplink_rss_end=rss_end,
                      reconnects=m.get("skyprof_uplink_reconnects", 0),
                      drops=drops(m))
        common.log("  uplink rss warm %.1f MiB end %.1f MiB, reconnects %d" %
                   ((rss_warm or 0) / 2**20, rss_end / 2**20,
                    m.get("skyprof_uplink_reconnects", 0)))
        check(rs.get("uplink") == 0, "the uplink never restarted")
        check(flat(rss_warm or rss_end, rss_end), "uplink RSS flat")
        check(m.get("skyprof_uplink_reconnects", 0) > 0,
              "reconnects counted")
        for k, v in drops(m).items():
            common.log("  drop counter %s = %d" % (k, v))
    finally:
        del ENV["SKYPROF_PROFILING_CHECK_INTERVAL"]
        stop([cpu, oap])
        if sky:
            keep_log(sky, "oapflap")
            sky.stop()
        subprocess.run(["rm", "-rf", oapdir])


def phase_net(result):
    common.log("== net: %d short connections/s for %ds (warm-up %ds)" %
               (NET_RATE, NET_SECONDS, NET_WARMUP))
    # Host-wide profiling runs too; its history is bounded as in the churn
    # phase, below the warm-up, so that growth after the warm-up is the
    # network's (with the default 1h the aggregator grows ~130 KiB/s here
    # with profile windows, while the network room stays at ~80 KiB).
    sky = bounded_pipeline(NET_HISTORY)
    srv = None
    try:
        srv, port = netdrive.server()
        check(post_task(sky, srv.pid, "NETWORK", NET_SECONDS + 120),
              "NETWORK task accepted")
        warm = netdrive.wait_traced(sky, srv.pid, port)
        base, _ = netdrive.settle(sky, srv.pid)
        pids = {k: v for k, v in sky.stage_pids().items()
                if k in ("collector", "aggregator")}
        rss_start = {k: common.rss_bytes(p) for k, p in pids.items()}
        series = []
        state = {"warm": None, "next": 5.0}

        def sample(t):
            if t < state["next"]:
                return
            state["next"] += 5.0
            now = {k: common.rss_bytes(p) for k, p in pids.items()}
            g = sky.metrics()
            series.append((round(t), now,
                           {k: g.get("skyprof_aggregator_" + k, 0) for k in
                            ("net_connections", "net_memory_bytes")}))
            if state["warm"] is None and t >= NET_WARMUP:
                state["warm"] = now
        drv = netdrive.Driver(port, NET_RATE, NET_SECONDS, short=True)
        drv.run(sample)
        rss_end = {k: common.rss_bytes(p) for k, p in pids.items()}
        rss_warm = state["warm"] or rss_start
        counted, m = netdrive.settle(sky, srv.pid)
        common.log("  network room: %d connections, %.1f MiB at the end of "
                   "the load, %d connections, %.1f MiB drained" % (
                       series[-1][2]["net_connections"] if series else 0,
                       (series[-1][2]["net_memory_bytes"] if series else 0)
                       / 2**20, m.get("skyprof_aggregator_net_connections",
                                      0),
                       m.get("skyprof_aggregator_net_memory_bytes", 0)
                       / 2**20))
        rs = restarts(sky)
        lost = netdrive.losses(m)
        made = drv.made
        got = (counted or 0) - (base or 0)
        result.update(rate=made / max(drv.elapsed, 1e-9), made=made,
                      warmup_requests=warm, counted=got,
                      client_failures=drv.failed, ticks_skipped=drv.skipped,
                      losses=lost, rss_start=rss_start, rss_warm=rss_warm,
                      rss_end=rss_end, restarts=rs, rss_series=series,
                      counters={k: m.get(k, 0)
                                for k in netdrive.NOTE_COUNTERS},
                      drops=drops(m))
        common.log("  %d requests on as many connections in %.1f s "
                   "(%.0f/s), %d client runs failed, %d ticks skipped" %
                   (made, drv.elapsed, made / max(drv.elapsed, 1e-9),
                    drv.failed, drv.skipped))
        common.log("  network room counted %d http1 requests at the server"
                   % got)
        for name in sorted(rss_end):
            common.log("  rss %-10s start %6.1f MiB  warm %6.1f MiB  end "
                       "%6.1f MiB" % (name, rss_start[name] / 2**20,
                                      rss_warm.get(name, 0) / 2**20,
                                      rss_end[name] / 2**20))
            check(flat(rss_warm.get(name, 0), rss_end[name]),
                  "%s RSS flat after warm-up" % name)
        room = [g["net_memory_bytes"] for t, _, g in series
                if t >= NET_WARMUP]
        check(not room or max(room) <= 2 * min(room) + (64 << 10),
              "network room memory flat after warm-up (%s bytes)" %
              (room and "%d..%d" % (min(room), max(room))))
        check(all(v == 0 for v in rs.values()), "no stage restarted (%s)" %
              rs)
        check(made >= NET_RATE * NET_SECONDS * 0.9,
              "clients made %d of %d requests" % (made,
                                                  NET_RATE * NET_SECONDS))
        check(drv.failed == 0, "no client run failed")
        for k, v in lost.items():
            common.log("  loss counter %s = %d" % (k, v))
        if not any(lost.values()):
            check(got == made, "requests made %d = counted by the network "
                  "room %d (no loss counted)" % (made, got))
        else:
            check(got <= made, "requests counted %d <= made %d, the rest "
                  "in the loss counters %s" % (got, made, lost))
    finally:
        stop([srv])
        keep_log(sky, "net")
        sky.stop()


def main():
    results = {}
    for name in PHASES:
        fn = globals().get("phase_" + name)
        if not fn:
            common.log("unknown phase %s" % name)
            return 2
        results[name] = {}
        try:
            fn(results[name])
        except Exception as e:  # noqa: BLE001 - a phase that breaks fails
            check(False, "%s: %s" % (name, e))
    results["failures"] = failures
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(results, f, indent=1, default=str)
    common.log("soak: %d check(s) failed; figures in %s" %
               (len(failures), RESULTS))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

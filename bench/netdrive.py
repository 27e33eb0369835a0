"""HTTP load through a traced tests/progs/httpload server, shared by the
network soak (tests/soak.py, phase net) and the network throughput bench
(bench/netthroughput.py): the server under a NETWORK task, paced
httpload clients, the request count the network room reports for the
server, and the loss counters of the capture and the room.
"""
import json
import os
import subprocess
import time

import common

HTTPLOAD = os.path.join(common.BUILD, "tests", "progs", "httpload")
# Clients are started every TICK seconds, each doing a TICK's share of the
# rate; more than MAX_INFLIGHT unfinished clients means the server is behind
# and the tick is skipped (counted), so a slow server is not buried.
TICK = 0.1
MAX_INFLIGHT = 64
# Counters of events or connections the capture or the room lost, by the
# names /metrics gives them (collector stats carry the stage prefix).
LOSS_COUNTERS = ("skyprof_collector_net_lost_kernel",
                 "skyprof_collector_net_lost_user",
                 "skyprof_collector_net_publish_errors",
                 "skyprof_collector_net_hook_losses",
                 "skyprof_collector_net_invalid",
                 "skyprof_aggregator_net_events_lost",
                 "skyprof_aggregator_net_batches_rejected",
                 "skyprof_aggregator_net_conn_evictions")
# What the capture cut or skipped without losing a request.
NOTE_COUNTERS = ("skyprof_collector_net_truncated",
                 "skyprof_collector_net_events",
                 "skyprof_collector_net_published",
                 "skyprof_aggregator_net_events",
                 "skyprof_aggregator_net_streams_unknown")


def server():
    """(Popen, port) of an httpload server on a free port."""
    p = subprocess.Popen([HTTPLOAD, "server", "0"], stdout=subprocess.PIPE,
                         text=True)
    line = p.stdout.readline().split()
    if len(line) != 2 or line[0] != "port":
        p.kill()
        p.wait()
        raise RuntimeError("httpload server did not start")
    return p, int(line[1])


def requests_counted(sky, pid):
    """HTTP/1.x requests the network room counted at the server (sum of
    its endpoint rows), None when the view cannot be read."""
    status, body = common.http_get(sky.port, "/api/network?pid=%d" % pid)
    if status != 200:
        return None
    try:
        view = json.loads(body)
    except ValueError:
        return None
    return sum(e.get("requests", 0) for e in view.get("endpoints", [])
               if e.get("pid") == pid)


def client_once(port, args):
    """One httpload client run: the requests it completed (0 on failure)."""
    out = subprocess.run([HTTPLOAD, "client", str(port)] + args,
                         capture_output=True, text=True, timeout=60)
    return s_requests(out.stdout)


def s_requests(text):
    f = text.split()
    try:
        return int(f[f.index("requests") + 1])
    except (ValueError, IndexError):
        return 0


def wait_traced(sky, pid, port, timeout=30.0):
    """Until the room counts the server's requests (probes attached and the
    task delivered): the number of warm-up requests made."""
    made = 0
    deadline = time.time() + timeout
    while time.time() < deadline:
        made += client_once(port, ["/ok"])
        time.sleep(1)
        if (requests_counted(sky, pid) or 0) > 0:
            return made
    raise RuntimeError("the network room never counted the server's "
                       "requests")


def settle(sky, pid, reads=3, timeout=60.0):
    """(requests counted, /metrics) once the count stopped moving for
    `reads` reads a stats interval apart."""
    last, same = None, 0
    deadline = time.time() + timeout
    n, m = None, {}
    while time.time() < deadline and same < reads:
        time.sleep(2.5)
        n = requests_counted(sky, pid)
        m = sky.metrics()
        key = (n, tuple(m.get(k, 0) for k in LOSS_COUNTERS + NOTE_COUNTERS))
        same = same + 1 if key == last else 0
        last = key
    return n, m


def losses(m):
    return {k: m.get(k, 0) for k in LOSS_COUNTERS}


class Driver:
    """Paced clients: `rate` requests a second for `seconds`, either short
    connections (one request each: `short=True`) or keep-alive (one
    connection per client, rate * TICK requests on it)."""

    def __init__(self, port, rate, seconds, short):
        self.port, self.rate, self.seconds = port, rate, seconds
        self.short = short
        self.made = 0
        self.failed = 0
        self.skipped = 0
        self.elapsed = 0.0

    def run(self, on_tick=None):
        per = max(1, int(round(self.rate * TICK)))
        ticks = int(round(self.seconds / TICK))
        arg = ["--conns", str(per)] if self.short else ["--rounds", str(per)]
        inflight = []
        t0 = time.time()
        for i in range(ticks):
            inflight = [p for p in inflight if not self.s_reap(p)]
            if len(inflight) >= MAX_INFLIGHT:
                self.skipped += 1
            else:
                inflight.append(subprocess.Popen(
                    [HTTPLOAD, "client", str(self.port)] + arg + ["/ok"],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                    text=True))
            if on_tick:
                on_tick(time.time() - t0)
            delay = t0 + (i + 1) * TICK - time.time()
            if delay > 0:
                time.sleep(delay)
        for p in inflight:
            p.wait()
            self.s_reap(p)
        self.elapsed = time.time() - t0
        return self.made

    def s_reap(self, p):
        if p.poll() is None:
            return False
        out = p.stdout.read()
        p.stdout.close()
        n = s_requests(out)
        self.made += n
        if p.returncode != 0:
            self.failed += 1
        return True

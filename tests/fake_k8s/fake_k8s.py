#!/usr/bin/python3
"""A fake Kubernetes API server for the uplink's discovery tests.

HTTPS with the certificate the test generated (its own CA), a bearer
token, list and watch of pods (fieldSelector=spec.nodeName=X), services
and endpoints, with resourceVersions, ADDED / MODIFIED / DELETED events,
BOOKMARK-free streams, a 410 and dropped watches on demand.

  fake_k8s.py --dir DIR --cert PEM --key PEM --token T [--port N]

DIR/port              the port bound (written at start)
DIR/ready             written once serving
DIR/requests.log      one line per request: "<status> <path?query>"
DIR/cmd/<name>.json   commands, applied in name order then removed:
   {"op": "put", "kind": "pods"|"services"|"endpoints", "object": {...}}
   {"op": "delete", "kind": ..., "namespace": ns, "name": name}
   {"op": "drop"}      cut every open watch (the client must resume)
   {"op": "compact"}   forget the event history: a watch from an older
                       resourceVersion gets an ERROR event with code 410
   {"op": "gone_status"} the next watch request is answered HTTP 410
"""
import argparse
import json
import os
import signal
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KINDS = {"pods": "PodList", "services": "ServiceList",
         "endpoints": "EndpointsList"}


class Store:
    def __init__(self):
        self.cond = threading.Condition()
        self.rv = 1
        self.objects = {k: {} for k in KINDS}
        self.history = []          # (rv, kind, type, object)
        self.oldest = 0            # watches from below this get 410
        self.drop_gen = 0
        self.gone_status = False

    def apply(self, cmd):
        with self.cond:
            op = cmd["op"]
            if op in ("put", "delete"):
                kind = cmd["kind"]
                if op == "put":
                    obj = cmd["object"]
                    md = obj.setdefault("metadata", {})
                    key = (md["namespace"], md["name"])
                    etype = "MODIFIED" if key in self.objects[kind] else "ADDED"
                    self.rv += 1
                    md["resourceVersion"] = str(self.rv)
                    self.objects[kind][key] = obj
                else:
                    key = (cmd["namespace"], cmd["name"])
                    obj = self.objects[kind].pop(key, None)
                    if obj is None:
                        return
                    etype = "DELETED"
                    self.rv += 1
                    obj["metadata"]["resourceVersion"] = str(self.rv)
                self.history.append((self.rv, kind, etype, obj))
            elif op == "drop":
                self.drop_gen += 1
            elif op == "compact":
                # Every version seen so far is gone: a watch resuming from
                # one gets 410; a relist returns the new version.
                self.history = []
                self.rv += 1
                self.oldest = self.rv
            elif op == "gone_status":
                self.gone_status = True
            self.cond.notify_all()


def node_of(obj):
    return obj.get("spec", {}).get("nodeName", "")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def note(self, status):
        with open(os.path.join(self.server.dir, "requests.log"), "a") as f:
            f.write("%d %s\n" % (status, self.path))

    def fail(self, status, reason):
        body = json.dumps({"kind": "Status", "code": status,
                           "reason": reason}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.note(status)
        self.close_connection = True

    def do_GET(self):
        store = self.server.store
        if self.headers.get("Authorization") != "Bearer " + self.server.token:
            return self.fail(401, "Unauthorized")
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        parts = url.path.strip("/").split("/")
        if len(parts) != 3 or parts[:2] != ["api", "v1"] or parts[2] not in KINDS:
            return self.fail(404, "NotFound")
        kind = parts[2]
        node = None
        sel = q.get("fieldSelector", "")
        if sel:
            if not sel.startswith("spec.nodeName="):
                return self.fail(400, "BadRequest")
            node = sel.split("=", 1)[1]

        def wanted(obj):
            return node is None or node_of(obj) == node

        if q.get("watch") not in ("1", "true"):
            with store.cond:
                items = [o for o in store.objects[kind].values() if wanted(o)]
                doc = {"kind": KINDS[kind], "apiVersion": "v1",
                       "metadata": {"resourceVersion": str(store.rv)},
                       "items": items}
                body = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.note(200)
            return
        with store.cond:
            if store.gone_status:
                store.gone_status = False
                return self.fail(410, "Gone")
        since = int(q.get("resourceVersion", "0") or "0")
        deadline = time.time() + int(q.get("timeoutSeconds", "60"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        self.note(200)
        self.close_connection = True
        with store.cond:
            drop_gen = store.drop_gen
        try:
            while True:
                out = []
                with store.cond:
                    if since < store.oldest:
                        out.append({"type": "ERROR", "object": {
                            "kind": "Status", "code": 410,
                            "reason": "Expired"}})
                        end = True
                    else:
                        end = False
                        for rv, k, etype, obj in store.history:
                            if rv > since and k == kind:
                                since = rv
                                if wanted(obj):
                                    out.append({"type": etype, "object": obj})
                    if not out and not end:
                        store.cond.wait(0.2)
                    dropped = store.drop_gen != drop_gen
                for ev in out:
                    self.wfile.write(json.dumps(ev).encode() + b"\n")
                self.wfile.flush()
                if end or dropped or time.time() >= deadline:
                    break
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(os.path.join(a.dir, "cmd"), exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.daemon_threads = True
    server.dir = a.dir
    server.token = a.token
    server.store = Store()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def commands():
        cmd_dir = os.path.join(a.dir, "cmd")
        while True:
            for name in sorted(os.listdir(cmd_dir)):
                if not name.endswith(".json"):
                    continue
                path = os.path.join(cmd_dir, name)
                with open(path) as f:
                    server.store.apply(json.load(f))
                os.unlink(path)
            time.sleep(0.02)

    threading.Thread(target=commands, daemon=True).start()
    with open(os.path.join(a.dir, "port.tmp"), "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(os.path.join(a.dir, "port.tmp"), os.path.join(a.dir, "port"))
    with open(os.path.join(a.dir, "ready"), "w") as f:
        f.write("1")
    server.serve_forever()


if __name__ == "__main__":
    main()

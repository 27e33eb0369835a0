#!/usr/bin/python3
"""A fake SkyWalking OAP for the uplink tests (Debian python3-grpcio).

Generic handlers accept every method and never parse more protobuf than
needed: requests are recorded as raw bytes, one file per message, so the
C tests decode them with protobuf-c and assert on the content.

  fake_oap.py --dir DIR [--port N] [--token T] [--no-record-data]
              [--tls-cert PEM --tls-key PEM]

DIR/port               the port actually bound (written at start)
DIR/ready              written once serving
DIR/req/<Method>/<stamp>-<call>-<msg>.bin   every request message
                       (<Method> is the method's name, except for the
                       services whose method is just "collect":
                       LogReportService.collect,
                       SpanAttachedEventReportService.collect, ...)
DIR/reply/<Method>.once.bin   reply for the next call only (then removed)
DIR/reply/<Method>.bin        reply for every call (default: empty
                              Commands, which is zero bytes)
DIR/status/<Method>           a gRPC status name to fail calls with

reportProcesses is answered by default with a processId "proc-<pid>" for
every host and Kubernetes process, echoing its entity, as the real OAP
does.

--token T: calls without metadata `authentication: T` fail with
UNAUTHENTICATED (and are still counted in DIR/req/<Method>.denied).
"""
import argparse
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

STREAMING = {"collectProfilingData", "collect", "collectBatch"}


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf, i):
    shift = value = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(buf):
    """Yields (number, wire_type, value) of one protobuf message."""
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 2:
            n, i = read_varint(buf, i)
            v = buf[i:i + n]
            if len(v) != n:
                raise ValueError("truncated field")
            i += n
        elif wt == 1:
            v = buf[i:i + 8]
            i += 8
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ValueError("bad wire type")
        yield num, wt, v


def ld(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def answer_report(request):
    """EBPFProcessReportList -> EBPFReportProcessDownstream."""
    out = b""
    for num, _, proc in fields(request):
        if num != 1:
            continue
        for pnum, _, host in fields(proc):
            # hostProcess = 1 -> downstream hostProcess = 2;
            # k8sProcess = 2 -> downstream k8sProcess = 3 (same shapes).
            if pnum not in (1, 2):
                continue
            entity, pid = b"", 0
            for hnum, _, v in fields(host):
                if hnum == 1:
                    entity = v
                elif hnum == 2:
                    pid = v
            down_host = varint(1 << 3 | 0) + varint(pid) + ld(2, entity)
            down = ld(1, b"proc-%d" % pid) + ld(pnum + 1, down_host)
            out += ld(1, down)
    return out


class Fake(grpc.GenericRpcHandler):
    def __init__(self, root, token, record_data):
        self.root = root
        self.token = token
        self.record_data = record_data
        self.lock = threading.Lock()
        self.calls = 0
        self.stamp = "%020d" % time.time_ns()

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def record(self, method, call, index, data):
        d = self.path("req", method)
        os.makedirs(d, exist_ok=True)
        name = "%s-%06d-%06d.bin" % (self.stamp, call, index)
        tmp = os.path.join(d, "." + name)
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(d, name))

    def check(self, method, context):
        status = self.path("status", method)
        if os.path.exists(status):
            with open(status) as f:
                code = f.read().strip()
            context.abort(getattr(grpc.StatusCode, code), "forced by test")
        if self.token is None:
            return
        md = dict(context.invocation_metadata())
        if md.get("authentication") != self.token:
            with self.lock:
                with open(self.path("req", method + ".denied"), "a") as f:
                    f.write("x\n")
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")

    def reply(self, method, request):
        once = self.path("reply", method + ".once.bin")
        with self.lock:
            if os.path.exists(once):
                with open(once, "rb") as f:
                    data = f.read()
                os.unlink(once)
                return data
        fixed = self.path("reply", method + ".bin")
        if os.path.exists(fixed):
            with open(fixed, "rb") as f:
                return f.read()
        if method == "reportProcesses":
            return answer_report(request)
        return b""

    def next_call(self):
        with self.lock:
            self.calls += 1
            return self.calls

    def unary(self, method):
        def handle(request, context):
            call = self.next_call()
            os.makedirs(self.path("req"), exist_ok=True)
            self.check(method, context)
            self.record(method, call, 0, request)
            return self.reply(method, request)
        return handle

    def stream(self, method):
        def handle(iterator, context):
            call = self.next_call()
            os.makedirs(self.path("req"), exist_ok=True)
            self.check(method, context)
            count = 0
            for index, msg in enumerate(iterator):
                count += 1
                if self.record_data:
                    self.record(method, call, index, msg)
            with self.lock:
                with open(self.path("req", method + ".count"), "a") as f:
                    f.write("%d\n" % count)
            return self.reply(method, b"")
        return handle

    def service(self, details):
        # "/skywalking.v3.LogReportService/collect"
        service, method = details.method.lstrip("/").rsplit("/", 1)
        name = method
        if method == "collect":
            name = service.rsplit(".", 1)[-1] + ".collect"
        if method in STREAMING:
            return grpc.stream_unary_rpc_method_handler(self.stream(name))
        return grpc.unary_unary_rpc_method_handler(self.unary(name))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token")
    ap.add_argument("--no-record-data", action="store_true")
    ap.add_argument("--tls-cert", help="PEM certificate: serve TLS")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(
        (Fake(args.dir, args.token, not args.no_record_data),))
    if args.tls_cert:
        with open(args.tls_key, "rb") as f:
            key = f.read()
        with open(args.tls_cert, "rb") as f:
            cert = f.read()
        creds = grpc.ssl_server_credentials(((key, cert),))
        port = server.add_secure_port("127.0.0.1:%d" % args.port, creds)
    else:
        port = server.add_insecure_port("127.0.0.1:%d" % args.port)
    if port == 0:
        print("fake_oap: cannot bind port %d" % args.port, file=sys.stderr)
        return 1
    server.start()
    with open(os.path.join(args.dir, "port"), "w") as f:
        f.write("%d\n" % port)
    with open(os.path.join(args.dir, "ready"), "w") as f:
        f.write("%d\n" % os.getpid())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Load tools of the HTTP benchmark (issue 14), run by tests/bench/http_bench.sh.

Debian's python3 only (no pip). Everything talks HTTP/1.1 to 127.0.0.1.

  preload  PORT --api syncmesh|etcd --keys N [--prefix P] [--value-size B]
           writes N keys (64-byte values) over one keep-alive connection, so
           the GET benchmarks read keys that exist.
  idle     PORT --conns N [--probe-seconds S]
           opens N keep-alive connections, sends one GET /healthz on each and
           leaves them idle, then probes /healthz on one more connection
           (one request every 10 ms) and reports the probe's latencies.
  watch    PORT --watchers W --writes N
           opens W /v1/watch streams, makes N writes through one more
           connection and counts the `update` events the streams receive.

Each prints one line "RESULT key=value ..." that the script parses, after
human lines on stderr. Failures of the server under test are results, not
errors: the exit code is non-zero only when the tool itself cannot run.
"""

import argparse
import base64
import http.client
import json
import selectors
import socket
import sys
import time

HOST = "127.0.0.1"


def result(**fields):
    print("RESULT " + " ".join(f"{k}={v}" for k, v in fields.items()),
          flush=True)


def percentile(sorted_values, fraction):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


def value_of(size, i):
    text = f"v{i}-"
    return (text + "x" * size)[:size]


def preload(args):
    conn = http.client.HTTPConnection(HOST, args.port, timeout=10)
    failed = 0
    for i in range(args.keys):
        key = f"{args.prefix}{i}"
        val = value_of(args.value_size, i)
        if args.api == "syncmesh":
            conn.request("PUT", f"/v1/kv/{key}", body=val,
                         headers={"Content-Type": "application/octet-stream"})
        else:
            body = json.dumps({
                "key": base64.b64encode(key.encode()).decode(),
                "value": base64.b64encode(val.encode()).decode()})
            conn.request("POST", "/v3/kv/put", body=body,
                         headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        if resp.status >= 300:
            failed += 1
        # http.client reopens by itself after a `Connection: close` answer
        # (cpp-httplib closes keep-alive connections after 5 requests).
    result(keys=args.keys, failed=failed)
    return 0


def request_bytes(path):
    return (f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n"
            "Connection: keep-alive\r\n\r\n").encode()


class Conn:
    """A non-blocking client connection and what it has seen."""

    def __init__(self, sock):
        self.sock = sock
        self.connected = False
        self.status = None  # status code of the first answer
        self.head = b""
        self.closed = False
        self.tail = b""
        self.events = 0
        self.overflows = 0


def open_many(sel, count, path, deadline):
    """Opens `count` connections, sends `path` on each; returns them."""
    conns = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.connect_ex((HOST, args_port))
        c = Conn(s)
        conns.append(c)
        sel.register(s, selectors.EVENT_WRITE, c)
    pending = count
    while pending > 0 and time.monotonic() < deadline:
        for key, mask in sel.select(timeout=0.2):
            c = key.data
            if not c.connected:
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    c.closed = True
                    pending -= 1
                    sel.unregister(c.sock)
                    continue
                c.connected = True
                c.sock.send(path)
                sel.modify(c.sock, selectors.EVENT_READ, c)
                continue
            if handle_read(sel, c):
                pending -= 1
    return conns


def handle_read(sel, c):
    """Reads what arrived; returns True when `c` got its answer's status
    line (or closed) for the first time."""
    first = c.status is None and not c.closed
    try:
        data = c.sock.recv(65536)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        data = b""
    if not data:
        c.closed = True
        sel.unregister(c.sock)
        return first
    if c.status is None:
        c.head += data
        if b"\r\n" in c.head:
            line = c.head.split(b"\r\n", 1)[0].split()
            c.status = int(line[1]) if len(line) > 1 else 0
            data = c.head
            c.head = b""
        else:
            return False
    # Count SSE events; keep a tail so a pattern split across reads counts.
    window = c.tail + data
    c.events += window.count(b"event: update") - c.tail.count(b"event: update")
    c.overflows += (window.count(b"event: overflow")
                    - c.tail.count(b"event: overflow"))
    c.tail = window[-32:]
    return first


def drain(sel, timeout):
    for key, _ in sel.select(timeout=timeout):
        handle_read(sel, key.data)


def idle(args):
    sel = selectors.DefaultSelector()
    start = time.monotonic()
    conns = open_many(sel, args.conns, request_bytes("/healthz"),
                      start + args.open_seconds)
    opened = time.monotonic() - start
    answered = sum(1 for c in conns if c.status is not None)
    print(f"idle: {answered}/{args.conns} connections answered in "
          f"{opened:.1f} s; probing", file=sys.stderr)
    latencies = []
    failures = 0
    probe = None
    end = time.monotonic() + args.probe_seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            if probe is None:
                probe = http.client.HTTPConnection(HOST, args.port,
                                                   timeout=args.probe_timeout)
            probe.request("GET", "/healthz")
            resp = probe.getresponse()
            resp.read()
            if resp.status != 200:
                failures += 1
            else:
                latencies.append(time.monotonic() - t0)
            if resp.will_close:
                probe.close()
                probe = None
        except (OSError, http.client.HTTPException):
            failures += 1
            if probe is not None:
                probe.close()
            probe = None
        drain(sel, 0)  # notice connections the server closed meanwhile
        time.sleep(0.01)
    drain(sel, 0)
    still_open = sum(1 for c in conns if c.connected and not c.closed)
    latencies.sort()
    ms = lambda x: "none" if x is None else f"{x * 1000:.2f}"
    total = len(latencies) + failures
    result(conns=args.conns, answered=answered, still_open=still_open,
           probes=total, probe_failures=failures,
           p50_ms=ms(percentile(latencies, 0.50)),
           p99_ms=ms(percentile(latencies, 0.99)),
           max_ms=ms(latencies[-1] if latencies else None))
    for c in conns:
        c.sock.close()
    return 0


def watch(args):
    sel = selectors.DefaultSelector()
    path = request_bytes(f"/v1/watch?prefix={args.prefix}")
    conns = open_many(sel, args.watchers, path,
                      time.monotonic() + args.open_seconds)
    streams = [c for c in conns if c.status == 200 and not c.closed]
    refused = {}
    for c in conns:
        if c not in streams:
            key = str(c.status) if c.status is not None else "none"
            refused[key] = refused.get(key, 0) + 1
    print(f"watch: {len(streams)}/{args.watchers} streams open, others: "
          f"{refused or '-'}; writing {args.writes} keys", file=sys.stderr)
    writer = http.client.HTTPConnection(HOST, args.port, timeout=2)
    write_failures = 0
    t0 = time.monotonic()
    # A server whose workers are all held by streams may not answer writes
    # at all: the writes stop at a deadline and the rest count as failed.
    write_deadline = t0 + args.wait_seconds
    for i in range(args.writes):
        if time.monotonic() > write_deadline:
            write_failures += args.writes - i
            break
        try:
            writer.request("PUT", f"/v1/kv/{args.prefix}{i}",
                           body=value_of(64, i),
                           headers={"Content-Type": "application/octet-stream"})
            resp = writer.getresponse()
            resp.read()
            if resp.status >= 300:
                write_failures += 1
        except (OSError, http.client.HTTPException):
            write_failures += 1
            writer.close()
            writer = http.client.HTTPConnection(HOST, args.port, timeout=2)
        drain(sel, 0)
    written = time.monotonic() - t0
    # A write the client gave up on may still have been applied: every
    # attempted write is expected on every open stream.
    expected = len(streams) * args.writes
    deadline = time.monotonic() + args.wait_seconds
    received = 0
    while time.monotonic() < deadline:
        drain(sel, 0.1)
        received = sum(c.events for c in streams)
        if received >= expected:
            break
    elapsed = time.monotonic() - t0
    result(watchers=args.watchers, open=len(streams),
           refused=",".join(f"{k}:{v}" for k, v in refused.items()) or "0",
           writes=args.writes, write_failures=write_failures,
           expected=expected, received=received,
           overflows=sum(c.overflows for c in streams),
           closed=sum(1 for c in streams if c.closed),
           write_s=f"{written:.2f}", all_s=f"{elapsed:.2f}")
    for c in conns:
        c.sock.close()
    return 0


def main():
    global args_port
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pre = sub.add_parser("preload")
    pre.add_argument("port", type=int)
    pre.add_argument("--api", choices=["syncmesh", "etcd"], default="syncmesh")
    pre.add_argument("--keys", type=int, default=1000)
    pre.add_argument("--prefix", default="bench-")
    pre.add_argument("--value-size", type=int, default=64)
    idl = sub.add_parser("idle")
    idl.add_argument("port", type=int)
    idl.add_argument("--conns", type=int, default=10000)
    idl.add_argument("--open-seconds", type=float, default=30)
    idl.add_argument("--probe-seconds", type=float, default=10)
    idl.add_argument("--probe-timeout", type=float, default=2)
    wat = sub.add_parser("watch")
    wat.add_argument("port", type=int)
    wat.add_argument("--watchers", type=int, default=1000)
    wat.add_argument("--writes", type=int, default=100)
    wat.add_argument("--prefix", default="watchbench-")
    wat.add_argument("--open-seconds", type=float, default=15)
    wat.add_argument("--wait-seconds", type=float, default=15)
    args = p.parse_args()
    args_port = args.port
    return {"preload": preload, "idle": idle, "watch": watch}[args.cmd](args)


args_port = 0

if __name__ == "__main__":
    sys.exit(main())

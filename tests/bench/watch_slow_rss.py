#!/usr/bin/env python3
"""Issue 14's slow-watcher attack, measured (not a test): RSS of a
syncmesh-node with two /v1/watch clients that never read while 3,000 PUTs
of 64 KiB values (16 keys) go through; then the watchers read: did each
get `event: overflow`? Usage: watch_slow_rss.py path/to/syncmesh-node"""
import http.client, socket, subprocess, sys, re, time

node_bin = sys.argv[1]
p = subprocess.Popen([node_bin, "--port=0", "--http=127.0.0.1:0", "--log-level=warning"],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
line = p.stdout.readline()
m = re.search(r"http=127\.0\.0\.1:(\d+)", line)
port = int(m.group(1))

def rss_mb():
    with open(f"/proc/{p.pid}/status") as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1]) / 1024

watchers = []
for _ in range(2):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /v1/watch HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    watchers.append(s)
time.sleep(0.5)
before = rss_mb()
c = http.client.HTTPConnection("127.0.0.1", port)
val = b"v" * (64 * 1024)
peak = before
for i in range(3000):
    c.request("PUT", f"/v1/kv/big{i % 16}", body=val, headers={"Content-Type": "application/octet-stream"})
    r = c.getresponse(); r.read()
    assert r.status == 204, r.status
    if i % 100 == 0:
        peak = max(peak, rss_mb())
after = rss_mb()
peak = max(peak, after)
overflow = []
for s in watchers:
    s.settimeout(10)
    got = b""
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            got += d
            if b"event: overflow" in got and got.endswith(b"0\r\n\r\n"):
                break
    except socket.timeout:
        pass
    overflow.append(b"event: overflow" in got)
print(f"{node_bin}: RSS before {before:.0f} MB, peak {peak:.0f} MB, after {after:.0f} MB; overflow seen by watchers: {overflow}")
p.terminate(); p.wait()

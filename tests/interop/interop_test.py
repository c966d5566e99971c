#!/usr/bin/python3
"""Interop tests: syncmesh nodes in py2p mode with real js2p and py2p 0.7.870.

Run by ctest (tests/interop/CMakeLists.txt), one scenario per test:

    /usr/bin/python3 interop_test.py --scenario NAME --node-bin PATH --work DIR

The set-up (once per build tree, under a lock) installs js2p 0.7.870 from the
npm registry into WORK/node_modules and unpacks the py2p 0.7.870 wheel that
the js2p package ships into WORK/py2p-wheel. py2p runs inside this process on
Debian's python3 with Debian's python3-base58, python3-u-msgpack and
python3-pyee plus the import shims in shims/ (see README.md). js2p nodes run
as `node js2p_node.js`, syncmesh nodes as `syncmesh-node --wire=py2p` driven
through the HTTP API. Exit code 77 (ctest SKIP_RETURN_CODE) with a reason when
npm, node or the Debian packages are unavailable.

Waiting is always polling with a deadline. Every scenario has its own port
range; a port that is still in use (py2p sets no SO_REUSEADDR) is skipped.
"""
import argparse
import base64
import errno
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
JS2P_VERSION = "0.7.870"
SKIP = 77
SCENARIOS = [
    "js2p_join", "py2p_join", "chain_js2p_syncmesh_py2p",
    "chain_syncmesh_js2p_syncmesh", "leases", "misbehaving_peers",
    "allowed_deletes", "value_limits", "messages_py2p", "messages_js2p",
    "message_lookups", "falsy_owned_values", "py2p_owner_through_syncmesh",
    "restart_data_dir", "islands", "restart_between"
]
DEBIAN_PY = ["python3-base58", "python3-u-msgpack", "python3-pyee"]


class Skip(Exception):
    """The environment cannot run the interop tests (not a failure)."""


def log(*args):
    print("[interop %s]" % time.strftime("%H:%M:%S"), *args, flush=True)


def wait_until(pred, what, timeout=15.0, interval=0.05):
    """Polls `pred` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # the thing is not there yet
            last = e
        time.sleep(interval)
    raise AssertionError("timed out after %.0f s waiting for %s (last: %r)" %
                         (timeout, what, last))


def wait_next_second(t):
    """py2p's lease rule compares whole seconds: wait until the clock passed
    second `t` (so a same-second tie cannot decide)."""
    wait_until(lambda: int(time.time()) > t, "the clock to pass %d" % t, 3)


# -- set-up -------------------------------------------------------------------


def setup(work):
    """Installs js2p and unpacks py2p into `work`, once; returns
    (node_modules, wheel dir). Raises Skip when that is impossible."""
    os.makedirs(work, exist_ok=True)
    if not os.path.exists("/usr/bin/python3") or sys.executable != "/usr/bin/python3":
        raise Skip("run with Debian's /usr/bin/python3 (got %s)" % sys.executable)
    missing = [p for p in DEBIAN_PY if shutil.which("dpkg-query") and subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
        text=True).stdout.find("install ok installed") < 0]
    if missing:
        raise Skip("Debian packages missing: %s (run deploy/install-deps.sh)" %
                   " ".join(missing))
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise Skip("%s is not installed" % tool)
    modules = os.path.join(work, "node_modules")
    wheel_dir = os.path.join(work, "py2p-wheel")
    with open(os.path.join(work, ".setup.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one npm install at a time
        pkg = os.path.join(modules, "js2p", "package.json")
        version = None
        if os.path.exists(pkg):
            with open(pkg) as f:
                version = json.load(f).get("version")
        if version != JS2P_VERSION:
            log("installing js2p %s from the npm registry" % JS2P_VERSION)
            try:
                # Few retries: an unreachable registry should skip soon.
                env = dict(os.environ, npm_config_fetch_retries="1",
                           npm_config_fetch_timeout="60000")
                res = subprocess.run(
                    ["npm", "install", "--no-audit", "--no-fund",
                     "--no-save", "--prefix", work, "js2p@" + JS2P_VERSION],
                    capture_output=True, text=True, timeout=300, env=env)
            except subprocess.TimeoutExpired:
                raise Skip("npm install js2p@%s timed out (registry "
                           "unreachable?)" % JS2P_VERSION)
            if res.returncode != 0 or not os.path.exists(pkg):
                raise Skip("npm install js2p@%s failed (registry unreachable?): "
                           "%s" % (JS2P_VERSION, res.stderr.strip()[-400:]))
        if not os.path.exists(os.path.join(wheel_dir, "py2p", "sync.py")):
            wheel = os.path.join(modules, "js2p", "dist",
                                 "py2p-%s-py2.py3-none-any.whl" % JS2P_VERSION)
            if not os.path.exists(wheel):
                raise Skip("the js2p package ships no py2p wheel at %s" % wheel)
            zipfile.ZipFile(wheel).extractall(wheel_dir)
    sys.path[:0] = [os.path.join(HERE, "shims"), wheel_dir]
    try:
        import py2p.mesh  # noqa: F401  (checks the shims work)
        import py2p.sync  # noqa: F401
        import umsgpack  # noqa: F401
    except ImportError as e:
        raise Skip("py2p 0.7.870 does not import: %s (needs %s: run "
                   "deploy/install-deps.sh)" % (e, " ".join(DEBIAN_PY)))
    # Nodes are wired explicitly: py2p must not dial addresses from peers
    # lists on its own (that would short-cut the chains under test).
    py2p.mesh.max_outgoing = 0
    return modules, wheel_dir


# -- values across implementations --------------------------------------------


def norm(v):
    """Python form of a value for comparisons: bytes, str, int, float, bool,
    None, lists and dicts (keys str or bytes)."""
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return v


def to_json(v):
    if isinstance(v, bytes):
        return {"$base64": base64.b64encode(v).decode()}
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    if isinstance(v, dict):
        return {(k if isinstance(k, str) else
                 "$base64:" + base64.b64encode(k).decode()): to_json(x)
                for k, x in v.items()}
    return v


def from_json(v):
    if isinstance(v, list):
        return [from_json(x) for x in v]
    if isinstance(v, dict):
        if set(v) == {"$base64"}:
            return base64.b64decode(v["$base64"])
        out = {}
        for k, x in v.items():
            if k.startswith("$base64:"):
                k = base64.b64decode(k[len("$base64:"):])
            out[k] = from_json(x)
        return out
    return v


def as_key(k):
    return k.encode() if isinstance(k, str) else bytes(k)


# -- nodes ---------------------------------------------------------------------


class Ports:
    """A scenario's own port range; ports are handed out in order."""

    def __init__(self, scenario):
        self.next = 31000 + 200 * SCENARIOS.index(scenario)
        self.end = self.next + 200

    def take(self):
        if self.next >= self.end:
            raise AssertionError("port range exhausted")
        self.next += 1
        return self.next - 1


class LeaseRefused(Exception):
    """A node refused a write because another node holds the key's lease."""


class SyncmeshNode:
    """syncmesh-node --wire=py2p, driven through its HTTP API."""

    def __init__(self, name, bin_path, ports, work, peers=(), extra=()):
        self.name = name
        for attempt in range(10):
            self.port, self.http = ports.take(), ports.take()
            self.log_path = os.path.join(work, "%s.log" % name)
            self.proc = subprocess.Popen(
                [bin_path, "--wire=py2p", "--host=127.0.0.1",
                 "--port=%d" % self.port, "--http=127.0.0.1:%d" % self.http,
                 "--peers=" + ",".join("127.0.0.1:%d" % p for p in peers),
                 "--log-level=info"] + list(extra),
                stdout=subprocess.PIPE, stderr=open(self.log_path, "w"),
                text=True)
            line = self.proc.stdout.readline()  # "ready" or EOF on failure
            if "ready" in line:
                log("%s: syncmesh on %d (http %d)" % (name, self.port, self.http))
                return
            self.proc.wait(timeout=10)
            with open(self.log_path) as f:
                err = f.read()
            if "in use" not in err and "cannot listen" not in err \
                    and "bind" not in err:
                raise AssertionError("%s did not start: %s" % (name, err[-500:]))
        raise AssertionError("%s: no free port" % name)

    def _req(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (self.http, path), data=data,
            method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                raw = res.read()
                return res.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def _path(self, key):
        return "/v1/kv/" + urllib.parse.quote(as_key(key), safe="")

    def set(self, key, value):
        status, body = self._req("PUT", self._path(key), to_json(value))
        if status == 409:
            raise LeaseRefused(body)
        if status != 204:
            raise AssertionError("%s PUT %r: %s %s" % (self.name, key, status, body))

    def delta(self, key, fields):
        status, body = self._req("POST", self._path(key) + "/delta",
                                 to_json(fields))
        if status != 204:
            raise AssertionError("%s delta: %s %s" % (self.name, status, body))

    def delete(self, key):
        return self._req("DELETE", self._path(key))

    def items(self):
        status, body = self._req("GET", "/v1/kv?limit=10000")
        assert status == 200, (status, body)
        out = {}
        for it in body["items"]:
            k = (base64.b64decode(it["key_base64"]) if "key_base64" in it
                 else it["key"].encode())
            out[k] = norm(from_json(it["value"]))
        return out

    def peers(self):
        status, body = self._req("GET", "/v1/peers")
        assert status == 200, (status, body)
        return len(body["peers"])

    def node_id(self):
        status, body = self._req("GET", "/v1/status")
        assert status == 200, (status, body)
        return body["node_id"]

    def alive(self):
        return self.proc.poll() is None and self._req("GET", "/healthz")[0] == 200

    def send(self, packets, to=None, whisper=False):
        """POST /v1/messages; returns the message id (hex)."""
        body = {"packets": [to_json(p) for p in packets]}
        if to is not None:
            body["to"] = as_key(to).hex()
        if whisper:
            body["whisper"] = True
        status, res = self._req("POST", "/v1/messages", body)
        if status != 202:
            raise AssertionError("%s send: %s %s" % (self.name, status, res))
        return res["id"]

    def watch_messages(self):
        """Starts reading `message` events from /v1/watch; returns a
        MessageWatch once the stream is open."""
        return MessageWatch(self)

    def metric(self, name, **labels):
        """The value of one counter of /metrics (0 when absent)."""
        req = urllib.request.Request("http://127.0.0.1:%d/metrics" % self.http)
        with urllib.request.urlopen(req, timeout=10) as res:
            text = res.read().decode()
        want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(name + ("{" + want + "}" if want else " ")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("%s did not stop within 15 s" % self.name)


class MessageWatch:
    """`message` events of a syncmesh node's /v1/watch, read by a thread:
    each a dict with sender (bytes), packets (Python values), whisper,
    direct and id."""

    def __init__(self, node):
        self.messages = []
        self.lock = threading.Lock()
        self.res = urllib.request.urlopen(
            "http://127.0.0.1:%d/v1/watch" % node.http, timeout=600)
        first = self.res.readline().decode()
        assert first.startswith(": watching"), first
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        event = None
        try:
            for raw in self.res:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[len("event: "):]
                elif line.startswith("data: ") and event == "message":
                    d = json.loads(line[len("data: "):])
                    m = {"sender": bytes.fromhex(d["sender"]),
                         "packets": norm(from_json(d["packets"])),
                         "whisper": d["whisper"], "direct": d["direct"],
                         "id": d["id"]}
                    with self.lock:
                        self.messages.append(m)
                elif not line:
                    event = None
        except Exception:
            pass  # the node stopped

    def find(self, packets):
        with self.lock:
            return [m for m in self.messages if m["packets"] == packets]

    def wait(self, packets, what):
        return wait_until(lambda: self.find(packets),
                          "syncmesh to receive %s" % what, timeout=20)[0]

    def close(self):
        # Shut the socket down rather than close the response: the reader
        # thread holds the response's buffer while it waits for a line.
        import socket
        try:
            self.res.fp.raw._sock.shutdown(socket.SHUT_RDWR)
        except Exception:
            pass


class Py2pNode:
    """A py2p 0.7.870 SyncSocket in this process."""

    def __init__(self, name, ports, leasing=True):
        from py2p import sync
        self.name = name
        for attempt in range(20):
            self.port = ports.take()
            try:
                self.sock = sync.SyncSocket("127.0.0.1", self.port,
                                            leasing=leasing)
                log("%s: py2p on %d" % (name, self.port))
                return
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
        raise AssertionError("%s: no free port" % name)

    def set(self, key, value):
        try:
            self.sock.set(as_key(key), value)
        except KeyError as e:
            raise LeaseRefused(str(e))

    def delta(self, key, fields):
        self.sock.apply_delta(as_key(key), fields)

    def delete(self, key):
        del self.sock[as_key(key)]

    def connect(self, port):
        self.sock.connect("127.0.0.1", port)

    def items(self):
        return {as_key(k): norm(v) for k, v in list(self.sock.data.items())}

    def peers(self):
        return len(self.sock.routing_table)

    def send(self, *packets, **kwargs):
        """py2p's MeshSocket.send (flag/type keywords as py2p takes them)."""
        self.sock.send(*packets, **kwargs)

    def recv_all(self):
        """Drains py2p's receive queue into self.received (py2p Message
        objects: packets[0] is the sub-flag, msg.msg_type the main flag)."""
        if not hasattr(self, "received"):
            self.received = []
        while True:
            m = self.sock.recv()
            if m is None:
                return self.received
            self.received.append(m)

    def wait_message(self, packets, what):
        """Waits for a received message whose user packets (after the
        sub-flag) are `packets`."""
        def found():
            return [m for m in self.recv_all()
                    if norm(list(m.packets[1:])) == packets]
        return wait_until(found, "%s to receive %s" % (self.name, what),
                          timeout=20)[0]

    def close(self):
        self.sock.close()


class Js2pNode:
    """A js2p 0.7.870 SyncSocket in `node js2p_node.js`."""

    def __init__(self, name, ports, modules, work, leasing="default"):
        import umsgpack
        self.umsgpack = umsgpack
        self.name = name
        env = dict(os.environ, NODE_PATH=modules)
        for attempt in range(20):
            self.port = ports.take()
            self.proc = subprocess.Popen(
                ["node", os.path.join(HERE, "js2p_node.js"), str(self.port),
                 leasing], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=open(os.path.join(work, "%s.log" % name), "w"),
                text=True, env=env)
            first = json.loads(self.proc.stdout.readline() or "{}")
            if first.get("ready"):
                self.id = first["id"]
                log("%s: js2p on %d" % (name, self.port))
                return
            self.proc.wait(timeout=10)
            if first.get("error") != "EADDRINUSE":
                raise AssertionError("%s did not start: %r" % (name, first))
        raise AssertionError("%s: no free port" % name)

    def call(self, **req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("%s exited" % self.name)
        res = json.loads(line)
        if "error" in res:
            if "permission" in res["error"]:
                raise LeaseRefused(res["error"])
            raise AssertionError("%s %s: %s" % (self.name, req["op"], res["error"]))
        return res

    def _pack(self, v):
        return self.umsgpack.packb(v).hex()

    def set(self, key, value):
        self.call(op="set", key=as_key(key).hex(), value=self._pack(value))

    def delta(self, key, fields):
        self.call(op="delta", key=as_key(key).hex(), value=self._pack(fields))

    def delete(self, key):
        self.call(op="del", key=as_key(key).hex())

    def connect(self, port):
        self.call(op="connect", host="127.0.0.1", port=port)

    def items(self):
        pairs = self.umsgpack.unpackb(bytes.fromhex(self.call(op="items")["items"]))
        return {as_key(k): norm(v) for k, v in pairs}

    def peers(self):
        return self.call(op="peers")["peers"]

    def send(self, *packets):
        """js2p's MeshSocket.send(packets): a broadcast."""
        self.call(op="send", packets=self._pack(list(packets)))

    def recv_all(self):
        """Drains js2p's receive queue into self.received: dicts with index
        (for reply), sender (bytes), whisper and packets (with the
        sub-flag first, as js2p shows them)."""
        if not hasattr(self, "received"):
            self.received = []
        for m in self.call(op="recv")["messages"]:
            self.received.append({
                "index": m["index"], "sender": bytes.fromhex(m["sender"]),
                "whisper": m["whisper"],
                "packets": norm(self.umsgpack.unpackb(bytes.fromhex(m["packets"])))})
        return self.received

    def wait_message(self, packets, what):
        def found():
            return [m for m in self.recv_all() if m["packets"][1:] == packets]
        return wait_until(found, "%s to receive %s" % (self.name, what),
                          timeout=20)[0]

    def reply(self, msg, packets):
        """js2p's Message.reply(packets)."""
        self.call(op="reply", index=msg["index"], packets=self._pack(packets))

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call(op="quit")
            except Exception:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- checks ---------------------------------------------------------------------

SAMPLES = {
    b"bytes": b"\x00\x01\xfe\xff",
    b"text": "plain text",
    b"unicode": "ünïcødé ✓ 日本",
    b"int": 1234567,
    b"negative": -42,
    b"list": [1, "two", b"\x03"],
    b"map": {"a": 1, "b": [2, 3], "c": "x"},
}


def prefixed(prefix):
    return {prefix + k: v for k, v in SAMPLES.items()}


def has_all(node, expected):
    items = node.items()
    missing = {k: v for k, v in expected.items() if items.get(k) != v}
    return not missing or (False, {k: (items.get(k), v)
                                   for k, v in list(missing.items())[:3]})


def wait_has(node, expected, what):
    wait_until(lambda: has_all(node, expected) is True,
               "%s to hold %s" % (node.name, what), timeout=20)


def wait_same(nodes, what):
    def same():
        views = [n.items() for n in nodes]
        return all(v == views[0] for v in views[1:])
    wait_until(same, "%s to hold the same dictionary (%s)" %
               (", ".join(n.name for n in nodes), what), timeout=20)


# -- scenarios ------------------------------------------------------------------


def scenario_join(ctx, kind):
    """syncmesh joins a reference node that already holds keys: it receives
    everything; what it sets appears there with the same value; deltas
    merge alike in both directions."""
    ref = ctx.js2p("J") if kind == "js2p" else ctx.py2p("P")
    for k, v in prefixed(b"ref_").items():
        ref.set(k, v)
    s = ctx.syncmesh("S", peers=[ref.port])
    wait_has(s, prefixed(b"ref_"), "the reference node's keys")
    for k, v in prefixed(b"sm_").items():
        s.set(k, v)
    wait_has(ref, prefixed(b"sm_"), "syncmesh's keys")
    # apply_delta from syncmesh, then from the reference node, on maps that
    # each side created.
    s.delta(b"sm_map", {"d": "from syncmesh", "a": 10})
    merged = {"a": 10, "b": [2, 3], "c": "x", "d": "from syncmesh"}
    wait_has(ref, {b"sm_map": merged}, "syncmesh's delta")
    wait_has(s, {b"sm_map": merged}, "its own delta")
    ref.delta(b"ref_map", {"e": [1], "c": "y"})
    wait_has(s, {b"ref_map": {"a": 1, "b": [2, 3], "c": "y", "e": [1]}},
             "the reference node's delta")
    # A later write by the owner replaces the value everywhere.
    s.set(b"sm_text", "second value")
    wait_has(ref, {b"sm_text": "second value"}, "a rewrite")
    wait_same([s, ref], "after the join")


def scenario_chain_js2p_syncmesh_py2p(ctx):
    """js2p - syncmesh - py2p: syncmesh relays between them."""
    j = ctx.js2p("J")
    for k, v in prefixed(b"early_").items():
        j.set(k, v)
    s = ctx.syncmesh("S", peers=[j.port])
    wait_has(s, prefixed(b"early_"), "js2p's keys")
    p = ctx.py2p("P")
    p.connect(s.port)  # py2p dials syncmesh; syncmesh's initial sync follows
    wait_has(p, prefixed(b"early_"), "js2p's keys through syncmesh")
    j.set(b"from_js2p", {"who": "js2p", "n": 1})
    p.set(b"from_py2p", [b"\x00", "py2p"])
    s.set(b"from_syncmesh", "syncmesh ✓")
    for n in (j, s, p):
        wait_has(n, {b"from_js2p": {"who": "js2p", "n": 1},
                     b"from_py2p": [b"\x00", "py2p"],
                     b"from_syncmesh": "syncmesh ✓"}, "live writes")
    j.delta(b"from_js2p", {"n": 2})
    wait_has(p, {b"from_js2p": {"who": "js2p", "n": 2}}, "js2p's delta")
    wait_same([j, s, p], "chain js2p - syncmesh - py2p")
    # Really a chain: js2p and py2p never met.
    assert j.peers() == 1 and p.peers() == 1, (j.peers(), p.peers())


def scenario_chain_syncmesh_js2p_syncmesh(ctx):
    """syncmesh - js2p - syncmesh: js2p relays between two syncmesh nodes."""
    j = ctx.js2p("J")
    one = ctx.syncmesh("S1", peers=[j.port], extra=["--max-peers=1"])
    two = ctx.syncmesh("S2", peers=[j.port], extra=["--max-peers=1"])
    wait_until(lambda: j.peers() == 2, "js2p to see both syncmesh nodes")
    for k, v in prefixed(b"one_").items():
        one.set(k, v)
    for k, v in prefixed(b"two_").items():
        two.set(k, v)
    j.set(b"from_js2p", "hi")
    wait_has(two, prefixed(b"one_"), "S1's keys through js2p")
    wait_has(one, prefixed(b"two_"), "S2's keys through js2p")
    one.delta(b"one_map", {"z": True})
    wait_has(two, {b"one_map": dict(SAMPLES[b"map"], z=True)}, "S1's delta")
    wait_same([one, j, two], "chain syncmesh - js2p - syncmesh")
    assert one.peers() == 1 and two.peers() == 1, (one.peers(), two.peers())


def scenario_leases(ctx):
    """py2p owns a key: syncmesh's write fails with a lease error; syncmesh
    owns a key: py2p refuses to write it."""
    p = ctx.py2p("P", leasing=True)
    s = ctx.syncmesh("S", peers=[p.port])
    wait_until(lambda: s.peers() == 1, "syncmesh to connect to py2p")
    p.set(b"py2p_owned", "py2p's")
    t_py2p = int(time.time())
    s.set(b"sm_owned", "syncmesh's")
    t_sm = int(time.time())
    wait_has(s, {b"py2p_owned": "py2p's"}, "py2p's key")
    wait_has(p, {b"sm_owned": "syncmesh's"}, "syncmesh's key")
    # The whole seconds the owners' writes carry, as py2p recorded them: a
    # write in the same second would be settled by comparing ids (rule 5),
    # and py2p 0.7.870 raises TypeError comparing its bytes id with our str
    # id (bug P4), so the stolen writes come in a later second.
    meta = p.sock.metadata
    stamps = (meta[b"py2p_owned"].timestamp, meta[b"sm_owned"].timestamp)
    log("owner seconds %s, local clock %d/%d" % (stamps, t_py2p, t_sm))
    wait_next_second(max(stamps + (t_py2p, t_sm)))
    try:
        s.set(b"py2p_owned", "stolen")
        raise AssertionError("syncmesh overwrote a key py2p holds the lease of")
    except LeaseRefused as e:
        log("syncmesh refused as expected:", e)
    for attempt in range(3):
        try:
            p.set(b"sm_owned", "stolen")
            raise AssertionError(
                "py2p overwrote a key syncmesh holds the lease of")
        except LeaseRefused as e:
            log("py2p refused as expected:", e)
            break
        except TypeError as e:
            # Bug P4 again: py2p still saw a same-second tie (about one run
            # in ten under parallel ctest). Its lease check crashed before
            # deciding; ask again in a later second, where it must refuse.
            log("py2p hit bug P4 (%s); its metadata: %s; retrying" %
                (e, p.sock.metadata.get(b"sm_owned")))
            if attempt == 2:
                raise
            wait_next_second(int(time.time()))
    # The owners may still write.
    p.set(b"py2p_owned", "py2p's again")
    s.set(b"sm_owned", "syncmesh's again")
    expected = {b"py2p_owned": "py2p's again", b"sm_owned": "syncmesh's again"}
    wait_has(s, expected, "the owners' rewrites")
    wait_has(p, expected, "the owners' rewrites")


def raw_frame(msgpack_bytes):
    import hashlib
    body = hashlib.sha256(msgpack_bytes).digest() + msgpack_bytes
    return len(body).to_bytes(4, "big") + body


def hostile_client(s, payload_frames, what, wait=5.0):
    """Connects to syncmesh like a peer, sends `payload_frames`, and returns
    True when syncmesh closed the connection within `wait` seconds."""
    import socket
    import umsgpack
    c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    my_id = "RawClient" + "1" * 57
    hs = umsgpack.packb([2, my_id, int(time.time()), 5, my_id,
                         "p7sAnBsK3n5enFXH7vEGQjzS6t6RH1CeEoYekNjr5Jn",
                         ["127.0.0.1", 1], []])
    c.sendall(raw_frame(hs))
    for f in payload_frames:
        c.sendall(f)
    c.settimeout(0.2)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            if c.recv(65536) == b"":
                c.close()
                log("hostile client (%s): syncmesh closed the link" % what)
                return True
        except socket.timeout:
            continue
        except ConnectionResetError:
            return True
    c.close()
    log("hostile client (%s): link stayed open" % what)
    return False


def scenario_misbehaving_peers(ctx):
    """js2p - syncmesh - py2p where py2p deletes a key: syncmesh relays the
    nil store, js2p throws on it (bug J2); syncmesh stays up with its data.
    syncmesh's own delete refuses in py2p mode. Hostile frames close only
    the link that sent them."""
    import umsgpack
    j = ctx.js2p("J")
    p = ctx.py2p("P")
    s = ctx.syncmesh("S", peers=[j.port, p.port])
    wait_until(lambda: s.peers() == 2, "syncmesh to connect to both")
    s.set(b"keep", "kept")
    p.set(b"doomed", "x")
    wait_has(j, {b"keep": "kept", b"doomed": "x"}, "the keys")
    wait_has(p, {b"keep": "kept"}, "syncmesh's key")
    # syncmesh's own delete: refused with a clear error, nothing sent.
    status, body = s.delete(b"keep")
    assert status == 400 and "py2p mode refuses deletes" in body["message"], \
        (status, body)
    # py2p deletes: its nil store reaches syncmesh, which applies it and
    # relays the same bytes to js2p.
    p.delete(b"doomed")
    wait_until(lambda: b"doomed" not in s.items(), "syncmesh to apply the delete")
    log("js2p after the nil store: %d peer(s), holds 'doomed': %s" %
        (j.peers(), b"doomed" in j.items()))
    assert s.alive(), "syncmesh died"
    wait_has(s, {b"keep": "kept"}, "its data after the nil store")
    # Hostile frames: a bad checksum, an oversized length, garbage msgpack.
    bad = bytearray(raw_frame(umsgpack.packb([0, "x" * 66, 1, 11, b"k", 1])))
    bad[10] ^= 0xFF
    assert hostile_client(s, [bytes(bad)], "bad checksum")
    assert hostile_client(s, [b"\xff\xff\xff\xff"], "4 GiB frame")
    assert hostile_client(s, [raw_frame(b"\x93\x00\xc1\x01")], "bad msgpack")
    # py2p's answer to a misread request (bug P1/P10): renegotiate [] and
    # resend. syncmesh takes the (empty) list and ignores the resend.
    me = "RawClient" + "1" * 57
    frames = [raw_frame(umsgpack.packb([1, me, int(time.time()), 1, []])),
              raw_frame(umsgpack.packb([1, me, int(time.time()), 9]))]
    assert not hostile_client(s, frames, "renegotiate [] + resend", wait=1.5)
    assert s.alive(), "syncmesh died"
    # Still serving: a new write reaches py2p (and js2p if its link
    # survived or was redialled).
    s.set(b"after", [1, 2, 3])
    wait_has(p, {b"after": [1, 2, 3], b"keep": "kept"}, "a write after all that")
    wait_has(s, {b"keep": "kept", b"after": [1, 2, 3]}, "its data")


def scenario_allowed_deletes(ctx):
    """With --py2p-allow-delete (a mesh without js2p) syncmesh's deletes go
    out as nil stores: py2p and another syncmesh node (both directly
    connected, py2p mode on both ends) remove the key and its lease."""
    p = ctx.py2p("P")
    one = ctx.syncmesh("S1", peers=[p.port], extra=["--py2p-allow-delete"])
    two = ctx.syncmesh("S2", peers=[one.port])
    wait_until(lambda: one.peers() == 2, "S1 to see py2p and S2")
    one.set(b"gone", "soon")
    one.set(b"stays", "here")
    wait_has(p, {b"gone": "soon", b"stays": "here"}, "S1's keys")
    wait_has(two, {b"gone": "soon", b"stays": "here"}, "S1's keys")
    status, body = one.delete(b"gone")
    assert status == 204, (status, body)
    for n in (p, two, one):
        wait_until(lambda: b"gone" not in n.items(),
                   "%s to drop the deleted key" % n.name)
    # The delete released the lease: another node may now set the key.
    p.set(b"gone", "py2p's now")
    wait_has(two, {b"gone": "py2p's now", b"stays": "here"}, "py2p's claim")
    # S2 was started without the flag: its own deletes are refused.
    status, body = two.delete(b"stays")
    assert status == 400, (status, body)
    wait_same([p, one, two], "after the deletes")


def message_exchange(ctx, ref):
    """The mesh_socket half between syncmesh S and a direct reference peer
    `ref` (js2p or py2p), with a py2p node P2 behind S: broadcasts both
    ways (relayed by S byte for byte), whispers both ways, replies to each
    other's messages. Returns S."""
    p2 = ctx.py2p("P2")
    s = ctx.syncmesh("S", peers=[ref.port, p2.port])
    wait_until(lambda: s.peers() == 2 and ref.peers() >= 1 and p2.peers() >= 1,
               "syncmesh to connect to both")
    watch = s.watch_messages()
    # ref broadcasts (its send()): S's users get the packets without the
    # sub-flag, sender = ref's id; S relays it to P2 unchanged.
    ref.send("broadcast from " + ref.name, b"\x00\x01", 42, [1, {"a": 2}])
    got = watch.wait(["broadcast from " + ref.name, b"\x00\x01", 42,
                      [1, {"a": 2}]], "ref's broadcast")
    ref_id = as_key(ref.id if isinstance(ref, Js2pNode) else ref.sock.id)
    assert got["sender"] == ref_id, (got["sender"], ref_id)
    assert not got["whisper"] and not got["direct"], got
    relayed = p2.wait_message(["broadcast from " + ref.name, b"\x00\x01", 42,
                               [1, {"a": 2}]], "ref's broadcast through S")
    assert as_key(relayed.sender) == ref_id
    # S broadcasts (HTTP): both peers get py2p's send() format.
    s.send(["broadcast from syncmesh", 7])
    m = ref.wait_message(["broadcast from syncmesh", 7], "S's broadcast")
    s_id = as_key(m["sender"] if isinstance(m, dict) else m.sender)
    if isinstance(m, dict):
        assert m["packets"][0] == 0 and not m["whisper"], m
    else:
        assert m.packets[0] == 0 and m.msg.msg_type == 0, m
    p2.wait_message(["broadcast from syncmesh", 7], "S's broadcast")
    # ref replies to S's message (Message.reply): a whisper S shows as
    # direct, from ref.
    if isinstance(ref, Js2pNode):
        ref.reply(m, ["reply from " + ref.name])
    else:
        m.reply("reply from " + ref.name)
    got = watch.wait(["reply from " + ref.name], "ref's reply")
    assert got["whisper"] and got["direct"] and got["sender"] == ref_id, got
    # S replies to ref's broadcast (to = its sender): a whisper as py2p's
    # reply() sends it, to ref only.
    s.send(["reply from syncmesh"], to=ref_id)
    m = ref.wait_message(["reply from syncmesh"], "S's reply")
    if isinstance(m, dict):
        assert m["whisper"] and m["packets"][0] == 2 and m["sender"] == s_id, m
    else:
        assert m.msg.msg_type == 2 and m.packets[0] == 2, m
        assert as_key(m.sender) == s_id
    # S whispers (to its direct peers only): both get it, nobody relays.
    s.send(["whisper from syncmesh"], whisper=True)
    ref.wait_message(["whisper from syncmesh"], "S's whisper")
    p2.wait_message(["whisper from syncmesh"], "S's whisper")
    # P2 (behind S) broadcasts: S delivers it and relays it to ref.
    p2.send("from behind", 3)
    got = watch.wait(["from behind", 3], "P2's broadcast")
    assert got["sender"] == as_key(p2.sock.id), got
    ref.wait_message(["from behind", 3], "P2's broadcast through S")
    # Nothing was shown twice (the waterfall de-duplicates).
    assert len(watch.find(["from behind", 3])) == 1
    assert len(watch.find(["broadcast from " + ref.name, b"\x00\x01", 42,
                           [1, {"a": 2}]])) == 1
    watch.close()
    return s


def scenario_messages_py2p(ctx):
    """py2p <-> syncmesh messages (see message_exchange), then hostile user
    messages from a raw client: dropped, counted, the link stays."""
    import umsgpack
    ref = ctx.py2p("P")
    s = message_exchange(ctx, ref)
    watch = s.watch_messages()
    deep = "leaf"
    for _ in range(70):  # beyond the default max_value_depth (64)
        deep = [deep]
    now = int(time.time())
    me = "RawClient" + "2" * 57
    frames = [raw_frame(umsgpack.packb([0, me, now, 0, deep])),
              raw_frame(umsgpack.packb([0, me, now, 0] + [1] * 5000)),
              raw_frame(umsgpack.packb([2, me, now, 2, "fine"]))]
    assert not hostile_client(s, frames, "too deep / too many packets",
                              wait=1.5)
    got = watch.wait(["fine"], "the raw client's whisper")
    assert got["whisper"] and got["sender"] == me.encode(), got
    name = "syncmesh_py2p_messages_dropped_total"
    wait_until(lambda: s.metric(name, reason="invalid_packet") >= 1 and
               s.metric(name, reason="too_many_packets") >= 1,
               "the drops to be counted")
    assert not watch.find([deep]) and not watch.find([1] * 5000)
    watch.close()


def scenario_messages_js2p(ctx):
    """js2p <-> syncmesh messages (see message_exchange)."""
    message_exchange(ctx, ctx.js2p("J"))


def scenario_message_lookups(ctx):
    """Replies through the mesh with py2p's id lookups: P - Q - S - J
    (py2p, py2p, syncmesh, js2p). syncmesh replies to P, which is not a
    neighbour: it broadcasts a lookup, Q answers with P's address, S dials
    P and whispers the reply. Then P looks J up with py2p's own request
    machinery: S answers for its neighbour J, P dials J and whispers."""
    from py2p import flags
    q = ctx.py2p("Q")
    p = ctx.py2p("P")
    j = ctx.js2p("J")
    s = ctx.syncmesh("S", peers=[q.port, j.port])
    wait_until(lambda: s.peers() == 2 and q.peers() == 1, "S to connect")
    # P joins after S: the peers list S got from Q does not name P, so S
    # does not dial it on its own (P does not dial S: max_outgoing is 0).
    p.connect(q.port)
    wait_until(lambda: q.peers() == 2 and p.peers() == 1,
               "P - Q - S - J to connect")
    assert s.peers() == 2
    watch = s.watch_messages()
    p.send("hello from afar")
    got = watch.wait(["hello from afar"], "P's broadcast through Q")
    assert got["sender"] == as_key(p.sock.id)
    s.send(["reply through the mesh"], to=got["sender"])
    m = p.wait_message(["reply through the mesh"], "S's reply")
    assert m.msg.msg_type == 2 and m.packets[0] == 2, m
    wait_until(lambda: s.peers() == 3, "S to have dialled P")
    # P's lookup for J (js2p's id is str): S holds J, so S answers.
    request_id = "lookup-from-P-%d" % time.time()
    p.sock.requests[request_id] = (flags.whisper, flags.whisper,
                                   "found you through syncmesh")
    p.send(request_id, j.id, type=flags.request)
    m = j.wait_message(["found you through syncmesh"], "P's deferred whisper")
    assert m["whisper"] and m["sender"] == as_key(p.sock.id), m
    wait_until(lambda: s.metric("syncmesh_link_bounds_total",
                                kind="py2p_lookups_answered") >= 1,
               "the answer to be counted")
    watch.close()
def scenario_value_limits(ctx):
    """py2p - syncmesh - js2p: syncmesh stores the values py2p and js2p
    relay (a 2 MiB value was relayed but not stored under the native 1 MiB
    limit), and a frame over py2p mode's 8 MiB limit closes only that link,
    with a reason that names the size (it once read "checksum mismatch")."""
    p = ctx.py2p("P")
    s = ctx.syncmesh("S", peers=[p.port])
    j = ctx.js2p("J")
    j.connect(s.port)
    wait_until(lambda: s.peers() == 2, "S to see py2p and js2p")
    big = os.urandom(2 << 20)  # incompressible: the frame is as large
    p.set(b"two-mib", big)
    for n in (s, j):
        wait_until(lambda: n.items().get(b"two-mib") == big,
                   "%s to hold the 2 MiB value" % n.name, timeout=90,
                   interval=0.5)
    p.set(b"nine-mib", os.urandom(9 << 20))

    def closed_for_size():
        with open(s.log_path) as f:
            log_text = f.read()
        return ("frame exceeds" in log_text
                or "decompresses to more than" in log_text)
    wait_until(closed_for_size, "S to close py2p's link naming the size",
               timeout=60, interval=0.5)
    with open(s.log_path) as f:
        assert "checksum mismatch" not in f.read()
    assert s.alive()
    assert b"nine-mib" not in s.items()
    # Only that link closed: js2p still gets S's writes.
    s.set(b"after", "still here")
    wait_until(lambda: j.items().get(b"after") == "still here",
               "js2p to get S's write after the close", timeout=30,
               interval=0.5)


def refused_by_py2p(p, key, value):
    """True when py2p refuses to write `key` (a lease error). py2p 0.7.870
    raises TypeError instead when it sees a same-second tie between its
    bytes ids and a str id (bug P4): ask again in a later second."""
    for attempt in range(3):
        try:
            p.set(key, value)
            return False
        except LeaseRefused as e:
            log("%s refused as expected: %s" % (p.name, e))
            return True
        except TypeError as e:
            log("%s hit bug P4 (%s); retrying" % (p.name, e))
            if attempt == 2:
                raise
            wait_next_second(int(time.time()))
    return False


def refused_by(node, key, value):
    """True when `node` refuses to write `key` with a lease error."""
    if isinstance(node, Py2pNode):
        return refused_by_py2p(node, key, value)
    try:
        node.set(key, value)
        return False
    except LeaseRefused as e:
        log("%s refused as expected: %s" % (node.name, e))
        return True


def scenario_falsy_owned_values(ctx):
    """Owner ids go back in the msgpack type they arrived in (py2p's are
    bin, and py2p compares owners type-sensitively): a py2p node owning keys
    with falsy values keeps its link to syncmesh when syncmesh's initial
    sync answers it (before: syncmesh echoed the owner as str, py2p raised
    TypeError comparing it with its bytes id and dropped syncmesh for
    good)."""
    p1 = ctx.py2p("P1")
    falsy = {b"zero": 0, b"empty": "", b"false": False, b"nolist": [],
             b"nomap": {}}
    for k, v in falsy.items():
        p1.set(k, v)
    p1.set(b"owned", "first")
    s = ctx.syncmesh("S", peers=[p1.port])
    wait_has(s, dict(list(falsy.items()) + [(b"owned", "first")]),
             "P1's keys, falsy values included")
    # py2p asks for peers whenever a neighbour leaves; syncmesh answers with
    # its keys, P1's falsy ones among them, owned by P1. py2p takes a
    # record for a falsy value as a gap and runs its lease check on it (an
    # 'update' event), which raised TypeError on a str owner.
    answered = []
    p1.sock.on("update", lambda sock, key, value, meta: answered.append(key))
    p1.sock.request_peers()
    wait_until(lambda: set(falsy) <= set(answered),
               "P1 to take syncmesh's records of its falsy keys")
    s.set(b"after_sync", "from syncmesh")
    wait_has(p1, {b"after_sync": "from syncmesh"},
             "a write sent after syncmesh's answer (the link survived)")
    assert p1.peers() == 1 and s.peers() == 1, (p1.peers(), s.peers())
    for k in falsy:
        owner = p1.sock.metadata[k].owner
        assert isinstance(owner, bytes), (k, owner)


def scenario_py2p_owner_through_syncmesh(ctx):
    """A py2p node that joined through syncmesh accepts later writes by the
    real py2p owner: syncmesh passed the owner on in its msgpack type (bin).
    Before, it went out as str, which py2p took for another owner and
    refused the owner's writes for an hour."""
    p1 = ctx.py2p("P1")
    p1.set(b"owned", "first")
    s = ctx.syncmesh("S", peers=[p1.port])
    wait_has(s, {b"owned": "first"}, "P1's key")
    # P2 joins through syncmesh and learns P1's key from syncmesh.
    p2 = ctx.py2p("P2")
    p2.connect(s.port)
    wait_has(p2, {b"owned": "first"}, "P1's key through syncmesh")
    log("P2 holds 'owned' with owner %r" % (p2.sock.metadata[b"owned"].owner,))
    wait_next_second(max(int(time.time()),
                         p2.sock.metadata[b"owned"].timestamp))
    p1.set(b"owned", "second")
    wait_has(s, {b"owned": "second"}, "the real owner's later write")
    wait_has(p2, {b"owned": "second"}, "the real owner's later write")
    owner = p2.sock.metadata[b"owned"].owner
    assert owner == p1.sock.id and isinstance(owner, bytes), owner
    # syncmesh still may not write it (in a later second: within the same
    # second py2p's rule lets the smaller id win).
    wait_next_second(max(int(time.time()),
                         p1.sock.metadata[b"owned"].timestamp))
    try:
        s.set(b"owned", "stolen")
        raise AssertionError("syncmesh overwrote a key py2p holds the lease of")
    except LeaseRefused:
        pass
    assert p1.peers() == 1 and p2.peers() == 1 and s.peers() == 2, \
        (p1.peers(), p2.peers(), s.peers())


def scenario_restart_data_dir(ctx):
    """A py2p-mode node restarted with its data dir keeps its (65-66
    character) ID and its leases: it may still write its own keys, and js2p
    (leasing on) and py2p peers still refuse others' writes to them."""
    j = ctx.js2p("J", leasing="true")
    p = ctx.py2p("P")
    data = os.path.join(ctx.work, "S-data")
    s = ctx.syncmesh("S", peers=[j.port, p.port],
                     extra=["--data-dir=" + data])
    wait_until(lambda: s.peers() == 2, "syncmesh to connect to both")
    first_id = s.node_id()
    assert len(bytes.fromhex(first_id)) in (65, 66), first_id
    s.set(b"sm_owned", "before")
    wait_has(j, {b"sm_owned": "before"}, "syncmesh's key")
    wait_has(p, {b"sm_owned": "before"}, "syncmesh's key")
    s.close()
    wait_until(lambda: j.peers() == 0 and p.peers() == 0,
               "the peers to see syncmesh go")
    again = ctx.syncmesh("S-again", peers=[j.port, p.port],
                         extra=["--data-dir=" + data])
    assert again.node_id() == first_id, (again.node_id(), first_id)
    wait_until(lambda: again.peers() == 2, "the restarted node to reconnect")
    wait_has(again, {b"sm_owned": "before"}, "its own key from its data dir")
    # Still its lease: its write is no lease error, and the peers take it.
    again.set(b"sm_owned", "after")
    wait_has(j, {b"sm_owned": "after"}, "the restarted owner's write")
    wait_has(p, {b"sm_owned": "after"}, "the restarted owner's write")
    wait_next_second(max(int(time.time()),
                         p.sock.metadata[b"sm_owned"].timestamp))
    assert refused_by(p, b"sm_owned", "stolen by py2p"), \
        "py2p overwrote the restarted node's key"
    assert refused_by(j, b"sm_owned", "stolen by js2p"), \
        "js2p overwrote the restarted node's key"
    wait_has(again, {b"sm_owned": "after"}, "its key, unchanged")


def scenario_islands(ctx):
    """Two js2p islands (two nodes each, each holding keys) joined through
    one syncmesh node end identical: what one island's initial sync brings
    is handed on to the other as 5-packet store broadcasts that its nodes
    flood among themselves (also when that island's link comes up after the
    first island's keys arrived: tests/actor/py2p_link_tests.cpp checks that
    path deterministically). syncmesh keeps to one link per island
    (--max-peers=2)."""
    a1, a2 = ctx.js2p("A1"), ctx.js2p("A2")
    b1, b2 = ctx.js2p("B1"), ctx.js2p("B2")
    a2.connect(a1.port)
    b2.connect(b1.port)
    for name, node in (("a1_", a1), ("a2_", a2), ("b1_", b1), ("b2_", b2)):
        for k, v in prefixed(name.encode()).items():
            node.set(k, v)
    wait_same([a1, a2], "island A")
    wait_same([b1, b2], "island B")
    # js2p refuses to connect to a host already in its routing table (bug
    # J4 applies to its connect() too), so syncmesh dials both islands.
    s = ctx.syncmesh("S", peers=[a1.port, b1.port], extra=["--max-peers=2"])
    wait_same([a1, a2, s, b1, b2], "both islands through syncmesh")
    assert len(a1.items()) == 4 * len(SAMPLES), len(a1.items())
    assert s.peers() == 2 and a2.peers() == 1 and b2.peers() == 1, \
        (s.peers(), a2.peers(), b2.peers())


def scenario_restart_between(ctx):
    """js2p - syncmesh - js2p: writes made on either side while the syncmesh
    node was down cross it once it is back, in both directions; first
    restarted with its data dir, then started afresh without one."""
    j1, j2 = ctx.js2p("J1"), ctx.js2p("J2")
    data = os.path.join(ctx.work, "S-data")
    s = ctx.syncmesh("S", peers=[j1.port, j2.port],
                     extra=["--data-dir=" + data, "--max-peers=2"])
    wait_until(lambda: s.peers() == 2, "syncmesh to connect to both")
    j1.set(b"j1_first", "one")
    j2.set(b"j2_first", "two")
    wait_same([j1, s, j2], "live writes before the restart")
    steps = [("S-again", ["--data-dir=" + data], b"dd_"),
             ("S-fresh", [], b"fresh_")]
    for name, extra, prefix in steps:
        s.close()
        wait_until(lambda: j1.peers() == 0 and j2.peers() == 0,
                   "the js2p nodes to see syncmesh go")
        j1.set(prefix + b"from_j1", {"side": "j1"})
        j2.set(prefix + b"from_j2", [prefix.decode(), 2])
        s = ctx.syncmesh(name, peers=[j1.port, j2.port],
                         extra=extra + ["--max-peers=2"])
        wait_has(j2, {prefix + b"from_j1": {"side": "j1"}},
                 "J1's write while syncmesh was down")
        wait_has(j1, {prefix + b"from_j2": [prefix.decode(), 2]},
                 "J2's write while syncmesh was down")
        wait_same([j1, s, j2], "after %s" % name)
    assert j1.peers() == 1 and j2.peers() == 1, (j1.peers(), j2.peers())


class Context:
    def __init__(self, args, scenario, modules):
        self.args = args
        self.ports = Ports(scenario)
        self.modules = modules
        self.work = os.path.join(args.work, scenario)
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)
        self.nodes = []

    def syncmesh(self, name, peers=(), extra=()):
        n = SyncmeshNode(name, self.args.node_bin, self.ports, self.work,
                         peers, extra)
        self.nodes.append(n)
        return n

    def py2p(self, name, leasing=True):
        n = Py2pNode(name, self.ports, leasing)
        self.nodes.append(n)
        return n

    def js2p(self, name, leasing="default"):
        n = Js2pNode(name, self.ports, self.modules, self.work, leasing)
        self.nodes.append(n)
        return n

    def close(self):
        errors = []
        for n in reversed(self.nodes):
            try:
                n.close()
            except Exception as e:
                errors.append("%s: %s" % (n.name, e))
        return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", required=True, choices=SCENARIOS)
    ap.add_argument("--node-bin", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    try:
        modules, _ = setup(args.work)
    except Skip as e:
        print("SKIP interop_%s: %s" % (args.scenario, e), flush=True)
        return SKIP
    ctx = Context(args, args.scenario, modules)
    started = time.monotonic()
    rc = 0
    try:
        if args.scenario == "js2p_join":
            scenario_join(ctx, "js2p")
        elif args.scenario == "py2p_join":
            scenario_join(ctx, "py2p")
        else:
            globals()["scenario_" + args.scenario](ctx)
        log("PASS %s in %.1f s" % (args.scenario, time.monotonic() - started))
    except Exception:
        traceback.print_exc()
        log("FAIL %s; node logs in %s" % (args.scenario, ctx.work))
        rc = 1
    errors = ctx.close()
    for e in errors:
        log("shutdown:", e)
    return rc or (1 if errors else 0)


if __name__ == "__main__":
    sys.exit(main())

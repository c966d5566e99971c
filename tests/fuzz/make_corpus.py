#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus: valid and nearly valid frames, encoded by
hand from wire.proto so no protobuf runtime is needed."""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, payload):  # length-delimited
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def vfield(num, n):  # varint
    return varint(num << 3) + varint(n)


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


# Protocol versions 3..3 and the default value limits (Hello fields 7-12).
terms = vfield(7, 3) + vfield(8, 3) + vfield(9, 4096) + vfield(10, 1 << 20) \
    + vfield(11, 64) + vfield(12, 86_400_000_000)
hello = field(1, b"syncmesh subnet= leasing=1") + field(2, b"node-b") \
    + field(3, b"127.0.0.1") + vfield(4, 7000) + field(5, b"batch") + terms
hello_env = field(10, hello)
bad_hello_env = field(10, field(1, b"syncmesh subnet=x leasing=0") + field(2, b"n")
                      + terms)
# A release-2 hello: the version in the protocol ID, no range, no limits.
syncmesh2_hello_env = field(10, field(1, b"syncmesh/2 subnet= leasing=1")
                            + field(2, b"node-b") + field(5, b"batch"))

stamp = vfield(1, 1_700_000_000_000_000) + field(3, b"node-b")
version = vfield(2, 1_700_000_000_000_000) + field(3, b"node-b") + field(4, stamp)
value_text = field(6, b"hello")
record = field(1, b"key") + field(2, version) + field(3, value_text)
write_env = field(12, field(1, record))
fields = field(1, field(1, field(1, b"seven")) + field(2, vfield(3, 14)))
delta_record = field(1, b"map") + field(2, version) + field(5, fields)
delta_env = field(13, field(1, delta_record))
ping_env = field(14, vfield(1, 1) + vfield(2, 5))

frames = {
    "hello": b"\x07" + frame(hello_env),
    "hello_then_write": b"\x03" + frame(hello_env) + frame(write_env),
    "delta": b"\x10" + frame(delta_env),
    "ping_split": b"\x01" + frame(ping_env) + frame(ping_env)[:3],
    "oversize": b"\x02" + b"\xff\xff\xff\xff",
    "empty_frame": b"\x05" + frame(b""),
}
handshake = {
    "hello": hello_env,
    "other_protocol": bad_hello_env,
    "self": field(10, field(1, b"syncmesh subnet= leasing=1") + field(2, b"fuzz-node")
                  + terms),
    "syncmesh2": syncmesh2_hello_env,
    "other_limits": field(10, field(1, b"syncmesh subnet= leasing=1")
                          + field(2, b"node-b") + vfield(7, 3) + vfield(8, 9)
                          + vfield(9, 4096) + vfield(10, 65536)),
}
def f64(num, n):  # fixed64
    return varint(num << 3 | 1) + struct.pack("<Q", n)


digest_head = lambda stage: vfield(1, stage) + vfield(2, 4096)
mask = bytearray(512)
mask[0] = 0x0F
mask[100] = 0x81
compact = vfield(4, 99999) + vfield(6, 1)
anti_entropy = {
    # The first byte picks the method: auto, sketch, keys.
    "summary": b"\x00" + digest_head(0)
    + field(3, vfield(1, 7) + f64(2, 12345) + vfield(3, 2)),
    "summary_dense": b"\x01" + digest_head(0) + field(7, bytes(8 * 4096)),
    "keys": b"\x02" + digest_head(1) + field(3, vfield(1, 7))
    + field(4, field(1, b"key5") + f64(2, 1)) + vfield(5, 1),
    "sketch": b"\x01" + digest_head(2) + field(8, bytes(mask))
    + vfield(9, 30) + field(10, bytes(30 * 14)),
    "offers": b"\x00" + digest_head(3) + field(11, b"node-a")
    + field(12, field(1, b"key5") + field(2, compact))
    + field(13, struct.pack("<Q", 0xDEADBEEF)),
    "want": b"\x00" + digest_head(4) + field(14, b"key7"),
}
os.makedirs(os.path.join(here, "corpus", "anti_entropy"), exist_ok=True)
for name, data in anti_entropy.items():
    with open(os.path.join(here, "corpus", "anti_entropy", name), "wb") as f:
        f.write(data)
for name, data in frames.items():
    with open(os.path.join(here, "corpus", "frames", name), "wb") as f:
        f.write(data)
for name, data in handshake.items():
    with open(os.path.join(here, "corpus", "handshake", name), "wb") as f:
        f.write(data)

"""Shim: py2p 0.7.870 was written against base58 0.2.x, whose encoders
return str. Debian ships base58 1.0 (python3-base58), whose encoders return
bytes; then py2p's protocol and node ids go out as msgpack bin and py2p
0.7.870 and js2p refuse the handshake. Same functions, str results."""
from _real import load_real

_base58 = load_real("base58")
alphabet = _base58.alphabet


def _text(x):
    return x.decode("ascii") if isinstance(x, bytes) else x


def b58encode_int(*args, **kwargs):
    return _text(_base58.b58encode_int(*args, **kwargs))


def b58encode(*args, **kwargs):
    return _text(_base58.b58encode(*args, **kwargs))


b58decode_int = _base58.b58decode_int
b58decode = _base58.b58decode

"""Shim: Debian's u-msgpack-python 2.3.0 (python3-u-msgpack) refers to
collections.Hashable, which Python 3.10 removed, so unpacking any map fails.
Give collections its Hashable back, then hand out the real module."""
import collections
import collections.abc
import sys

from _real import load_real

if not hasattr(collections, "Hashable"):
    collections.Hashable = collections.abc.Hashable

sys.modules[__name__] = load_real("umsgpack")

"""Loads the real (Debian) module that a shim in this directory stands in
for, by searching sys.path past this directory."""
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def load_real(name):
    """Returns the module `name` found on sys.path outside this directory."""
    for entry in sys.path:
        if os.path.abspath(entry or os.curdir) == _HERE:
            continue
        for candidate in (os.path.join(entry, name + ".py"),
                          os.path.join(entry, name, "__init__.py")):
            if os.path.isfile(candidate):
                spec = importlib.util.spec_from_file_location(
                    "_debian_" + name, candidate)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                return module
    raise ImportError("no Debian module %r behind the shim (install the "
                      "python3-%s package)" % (name, name))

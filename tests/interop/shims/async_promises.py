"""Shim: py2p 0.7.870 imports Promise from async_promises (no Debian
package). Only the chord socket uses it; mesh and sync sockets never do, so
the name is enough. Using it fails loudly instead of doing nothing."""


class Promise(object):
    """Not available: py2p's mesh and sync sockets never create one."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError(
            "async_promises is not installed; py2p's chord socket is not "
            "supported in the syncmesh interop tests")

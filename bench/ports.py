"""A free TCP port, for the servers the benchmarks and the tests start on this machine."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (the OS's pick): the caller binds it soon after, so
    another process taking it in between is possible but rare on a test machine."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])

"""The stand-ins' HTTP server: a stopped provider refuses connections for as long as the
test needs it stopped, even while other tests start stand-ins on ports of the OS's choosing
(CI once saw a stopped Kavenegar stand-in's port taken over by a parallel worker's)."""

from __future__ import annotations

import errno
import socket
from http.server import BaseHTTPRequestHandler

import pytest

from channels.standin_http import LoopbackServer


def _port(server: LoopbackServer) -> int:
    return int(server.origin.rsplit(":", 1)[1])


def test_a_stopped_server_keeps_its_port_and_refuses_connections() -> None:
    server = LoopbackServer("t")
    server.serve(BaseHTTPRequestHandler)
    port = _port(server)
    server.stop()
    # The port is still bound: nobody else can take it ...
    other = socket.socket()
    with pytest.raises(OSError) as taken:
        other.bind(("127.0.0.1", port))
    other.close()
    assert taken.value.errno == errno.EADDRINUSE
    # ... and nothing listens on it
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    # Serving again lets the old port go
    server.serve(BaseHTTPRequestHandler)
    again = socket.socket()
    again.bind(("127.0.0.1", port))
    again.close()
    server.stop()

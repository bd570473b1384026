"""The HTTP server under every provider stand-in (Kavenegar, the Bot API, and those to
come): a loopback port of the OS's choosing, served from a daemon thread, stopped cleanly.
The stand-ins themselves speak each provider's documented wire protocol; this is only
where they listen."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    def __init__(self, name: str) -> None:
        self.name = name  # the serving thread's name, for stack dumps and logs
        self._server: ThreadingHTTPServer | None = None
        self._held: socket.socket | None = None

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._release()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name=self.name,
                         daemon=True).start()

    def serve_for(self, state: object, handler: type[BaseHTTPRequestHandler],
                  attr: str = "state") -> None:
        """Serve ``handler`` with ``state`` (the stand-in it answers for) as its class
        attribute ``attr``, on a subclass of its own: two stand-ins never share state."""
        self.serve(type(handler.__name__, (handler,), {attr: state}))

    def stop(self) -> None:
        """Stop serving. The port stays bound, not listening, until the next ``serve``: a
        stopped provider must refuse connections, and a freed port would soon be handed by
        the OS to another test's stand-in, which would answer in its place (CI saw
        `kartabl sms poll` reach a parallel worker's Kavenegar stand-in)."""
        if self._server is not None:
            port = self._server.server_address[1]
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._held = _hold(port)

    def _release(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"


def _hold(port: int) -> socket.socket | None:
    """Bind ``port`` without listening, so a connection to it is refused. SO_REUSEADDR lets
    the bind succeed beside the server's connections in TIME_WAIT; the OS never hands a
    bound port to a bind of port 0, which is how every stand-in takes its port."""
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        held.bind(("127.0.0.1", port))
    except OSError:  # taken already, in the instant since close: nothing to hold
        held.close()
        return None
    return held

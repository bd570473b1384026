"""Serving the console: one way, for ``kartabl web`` and for ``kartabl run``."""

from __future__ import annotations

import contextlib
import sys
from types import FrameType

from config.settings import Settings


def serve(settings: Settings, *, host: str = "", port: int = 0) -> None:
    """Run uvicorn with the console until SIGTERM or SIGINT (it drains requests first);
    with ``KARTABL_METRICS_ADDRESS``, /metrics on a listener of its own beside it."""
    import uvicorn
    from uvicorn.main import STARTUP_FAILURE

    class Server(uvicorn.Server):
        """uvicorn, ending the live streams first when told to stop: it drains every
        response before it exits, and a server-sent stream never ends on its own (the
        browsers reconnect to another process and resume from their last event)."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            from console.app import app  # the app uvicorn serves, imported by then

            app.state.live.close_soon()
            waker = getattr(app.state, "webchat_waker", None)  # the website widget's streams
            if waker is not None:
                waker.close_soon()
            super().handle_exit(sig, frame)

    if settings.metrics_address:
        serve_metrics(settings.metrics_address)

    config = uvicorn.Config(
        "console.app:app",
        host=host or settings.web_host,
        port=port or settings.web_port,
        log_config=None,
        # X-Forwarded-For decides the address the login limits count by: trusted only from
        # the proxies named (uvicorn's own default trusts 127.0.0.1, i.e. any local process).
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
    )
    server = Server(config)
    # As uvicorn.run: it re-raises the SIGINT it caught once it has stopped.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def serve_metrics(address: str) -> None:
    """Prometheus' text format at ``http://<address>/metrics`` from a daemon thread
    (prometheus_client's own server): for an interface only the monitoring can reach, so the
    console's port need not carry it."""
    from prometheus_client import start_http_server

    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host.strip("[]"))

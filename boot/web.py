"""Serving the console: one way, for ``kartabl web`` and for ``kartabl run``."""

from __future__ import annotations

from config.settings import Settings


def serve(settings: Settings, *, host: str = "", port: int = 0) -> None:
    """Run uvicorn with the console until SIGTERM or SIGINT (it drains requests first)."""
    import uvicorn

    uvicorn.run(
        "console.app:app",
        host=host or settings.web_host,
        port=port or settings.web_port,
        log_config=None,
        # X-Forwarded-For decides the address the login limits count by: trusted only from
        # the proxies named (uvicorn's own default trusts 127.0.0.1, i.e. any local process).
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
    )

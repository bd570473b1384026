"""python-telegram-bot's ``Bot`` for one configured bot, and keeping its token out of logs.

A ``Bot`` (with its httpx client) belongs to one event loop and a closed loop cannot be
reused: callers create one per ``asyncio.run`` with :func:`open_bot` and it is shut down on
the way out. The sender and the poller are synchronous (dramatiq threads, a CLI loop), so
each call runs its own short loop: a reply or a poll pass costs one fresh connection, which
also never inherits a half-broken one (as the SMTP sender does).

A 5xx answer raises :class:`ServerAnswered` (a ``NetworkError`` carrying the HTTP status),
whatever its body: python-telegram-bot turns a 5xx with Telegram's JSON error body into a
plain ``NetworkError`` and one with an HTML body (a proxy's) into a ``NetworkError`` caused
by a parsing error, and neither keeps the status. The sender needs it: a 5xx comes after
the request left, so the message may have been sent (:mod:`responders.outcomes`).

The token is part of every request URL (``.../bot<TOKEN>/sendMessage``), and httpx logs
request URLs at INFO: :func:`quiet_http_logs` raises httpx's logger to WARNING and filters
any token out of what it still logs (:func:`kartabl.logs.hide_secret`); :func:`redact`
(:func:`kartabl.logs.redact`, re-exported here) cleans error texts we build.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

from telegram import Bot
from telegram.error import NetworkError
from telegram.request import HTTPXRequest

from config.telegram import BotConfig
from kartabl.logs import hide_secret
from kartabl.logs import redact as redact  # re-exported: the poller and the CLI use it

MASK = "<bot-token>"


def quiet_http_logs(token: str) -> None:
    """Remember ``token`` as a secret and keep it out of httpx's and the library's logs."""
    # A logger's filters see only its own records, not its children's: filter every
    # logger of these libraries (the library logs "Set Bot API URL: <url>" on
    # telegram.Bot at DEBUG). They are all created when the modules are imported.
    names = [n for n in logging.root.manager.loggerDict
             if n.split(".")[0] in ("httpx", "httpcore", "telegram")]
    hide_secret(token, MASK, loggers={"httpx", "httpcore", "telegram", "telegram.Bot", *names})
    # Its INFO line is "HTTP Request: POST <url with the token>": nothing we need.
    logging.getLogger("httpx").setLevel(logging.WARNING)


class ServerAnswered(NetworkError):
    """The Bot API server (or a proxy before it) answered with a 5xx status."""

    def __init__(self, status: int, description: str) -> None:
        self.status = status
        super().__init__(f"HTTP {status} {description}".strip())


def _describe(status: int, payload: bytes) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    try:
        body = json.loads(payload.decode("utf-8", "replace"))
    except ValueError:
        return f"{phrase} (not a Bot API answer)".strip()
    description = body.get("description") if isinstance(body, dict) else None
    return f"{phrase}: {str(description)[:200]}" if description else phrase


class StatusKeepingRequest(HTTPXRequest):
    """python-telegram-bot's httpx transport, raising :class:`ServerAnswered` on a 5xx."""

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        code, payload = await super().do_request(*args, **kwargs)
        if code >= 500:
            raise ServerAnswered(code, _describe(code, payload))
        return code, payload


@asynccontextmanager
async def open_bot(cfg: BotConfig, *, read_timeout_s: float | None = None
                   ) -> AsyncIterator[Bot]:
    """A ``Bot`` for ``cfg`` on the running loop, with the configured timeouts (no
    ``getMe`` first: one request per call, and nothing to fail before the real one)."""
    token = cfg.token.get_secret_value()
    quiet_http_logs(token)
    timeout = cfg.timeout_s

    def request(read: float) -> HTTPXRequest:
        return StatusKeepingRequest(connection_pool_size=2, connect_timeout=timeout,
                            read_timeout=read, write_timeout=timeout, pool_timeout=timeout)

    updates_read = read_timeout_s if read_timeout_s is not None else timeout
    bot = Bot(token, base_url=cfg.effective_base_url,
              base_file_url=cfg.effective_base_file_url,
              request=request(timeout), get_updates_request=request(updates_read))
    try:
        yield bot
    finally:
        await bot.shutdown()

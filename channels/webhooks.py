"""The webhooks of every channel: one helper for the steps they share, and the routes found
by name.

:class:`Webhook` owns verify → size limit → parse → store, in that order: the secret is
compared in constant time before the body is even read (403, nothing stored), a body over
the limit is 413, input the adapter cannot parse is 400 (``not a <what>: <why>``), and the
message is committed (:func:`kartabl.ingest.store`) before the adapter answers 200, so a
provider's retry after any error is safe (one row per external id). The adapter keeps its
protocol: which secret it expects, how to parse, and its answer's body.

A channel that takes webhooks has a ``channels/<name>/webhook.py`` module with a FastAPI
``router``; the console app mounts each one under ``/webhooks/<name>``. Nothing to register
by hand, so nothing to forget. The work happens in the workers.

The app that mounts them hands over the process's channels once, as
``app.state.channels`` (a :class:`config.channels.ChannelsConfig`); a webhook reads its
channel's part with :func:`app_channels`, never the channels file itself."""

from __future__ import annotations

import hmac
import importlib
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

import channels
from config.channels import ChannelsConfig
from kartabl.ingest import store
from kartabl.messages import InboundMessage

log = logging.getLogger(__name__)


def app_channels(request: Request) -> ChannelsConfig:
    """The channels the app was made with (the process edge read them once)."""
    return cast(ChannelsConfig, request.app.state.channels)


async def read_capped(request: Request, limit: int, too_large: str = "too large") -> bytes:
    """The request's body, 413 as soon as it is over ``limit`` bytes: by its declared
    ``Content-Length`` before reading any of it, else while it streams in. Never more than
    ``limit`` bytes are held: ``request.body()`` would take a chunked body of any size
    into memory before its length could be checked."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, too_large)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, too_large)
    return bytes(body)


@dataclass(frozen=True, slots=True)
class Webhook:
    """The shared steps of one channel's webhook. ``what`` names its input in a 400
    ("Bot API update"); ``forbidden`` and ``too_large`` are the 403 and 413 details."""

    what: str
    max_body: int
    forbidden: str = "forbidden"
    too_large: str = "too large"

    def verify(self, given: str, expected: str, refused: str) -> None:
        """403 unless ``given`` is ``expected`` (constant time); ``refused`` is logged,
        never the secret."""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            log.warning("%s", refused)
            raise HTTPException(403, self.forbidden)

    async def receive(
        self, request: Request, sessions: sessionmaker[Session],
        parse: Callable[[bytes], InboundMessage | None],
    ) -> bool | None:
        """Size limit → parse → store, after :meth:`verify`. Returns whether the message
        is new (None: the input is valid but not for us, nothing stored); any problem is
        raised as the HTTP error to answer."""
        body = await read_capped(request, self.max_body, self.too_large)
        try:
            msg = parse(body)
        except ValueError as exc:  # InputError, json's and UTF-8's errors are ValueErrors
            raise HTTPException(400, f"not a {self.what}: {exc}") from None
        if msg is None:
            return None
        return await run_in_threadpool(store_one, sessions, msg)


def store_one(sessions: sessionmaker[Session], msg: InboundMessage) -> bool:
    """Commit ``msg`` (idempotently); whether it is new."""
    with sessions() as session:
        return store(session, msg).created


def routers() -> dict[str, APIRouter]:
    """``{channel package name: its router}`` for every channel with a webhook module."""
    found: dict[str, APIRouter] = {}
    for info in sorted(pkgutil.iter_modules(channels.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        try:
            module = importlib.import_module(f"channels.{info.name}.webhook")
        except ModuleNotFoundError as exc:
            if exc.name != f"channels.{info.name}.webhook":
                raise  # the module exists but something it imports is missing: a real error
            continue
        router = getattr(module, "router", None)
        if not isinstance(router, APIRouter):
            raise TypeError(f"channels.{info.name}.webhook.router is not a FastAPI APIRouter")
        found[info.name] = router
    return found

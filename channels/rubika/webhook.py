"""The Rubika webhook: ``POST /webhooks/rubika/<bot name>/<secret>`` (and the same URL
followed by ``/receiveUpdate``; ``/receiveInlineMessage`` for keypad taps).

Rubika posts each update to the endpoint registered with ``updateBotEndpoints`` (``kartabl
rubika set-webhook``) as ``{"update": {...}}``, unsigned; the path carries the bot's
secret (compared in constant time). Rubika's documentation has described the endpoint both
as the URL itself and as ``<URL>/receiveUpdate``: both are served. Inline-keypad taps
(``/receiveInlineMessage``, ``{"inline_message": ...}``) are answered and ignored: this bot
shows no keypads.

Verify, store, answer (docs/style.md 5), with :class:`channels.webhooks.Webhook`'s steps: an
unknown bot, or one configured for polling, is 404; a wrong secret 403, nothing stored; a
body that is not JSON or not an update 400, nothing stored; otherwise the message's file is
fetched (within the size cap; on an outage it is listed without its bytes: Rubika is not
known to resend, so the message must not wait) and the message committed before 200 is
answered. The same update again is one row (``<bot>:<chat>:<message_id>``).

The secret is in the path, and access logs print paths: importing this module masks it
(:func:`kartabl.logs.hide_pattern`) in uvicorn's access and error lines.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from channels.rubika import files
from channels.rubika.api import RubikaApi
from channels.rubika.updates import to_message
from channels.webhooks import Webhook, app_channels, read_capped, store_one
from config.rubika import RubikaBot, RubikaConfig
from config.settings import Settings
from kartabl import db
from kartabl.errors import InputError
from kartabl.logs import hide_pattern
from kartabl.messages import InboundMessage

log = logging.getLogger(__name__)
router = APIRouter()
MAX_BODY = 1_000_000  # an update is a few KB
HOOK = Webhook("Rubika update", MAX_BODY, forbidden="wrong secret", too_large="update too large")
_SECRET_PATH = re.compile(r"(/webhooks/rubika/[^/?\s\"]+/)[^/?\s\"]+")

hide_pattern(_SECRET_PATH, r"\1***", loggers=("uvicorn.access", "uvicorn.error"))


def rubika_config(request: Request) -> RubikaConfig:
    return app_channels(request).rubika


def app_settings(request: Request) -> Settings:
    settings = getattr(request.app.state, "settings", None)
    if not isinstance(settings, Settings):
        raise HTTPException(503, "the app has no settings")
    return settings


def session_factory() -> sessionmaker[Session]:
    return db.session_factory()


def parse(body: bytes) -> dict[str, Any] | None:
    """The update in a ReceiveUpdate body; None for an inline-keypad tap."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise InputError("the body is not a JSON object")
    if "update" not in data:
        if "inline_message" in data:
            return None
        raise InputError("no update in the body")
    return data["update"] if isinstance(data["update"], dict) else {"type": None}


@router.post("/{bot_name}/{secret}")
@router.post("/{bot_name}/{secret}/receiveUpdate")
async def receive(
    bot_name: str, secret: str, request: Request,
    config: Annotated[RubikaConfig, Depends(rubika_config)],
    settings: Annotated[Settings, Depends(app_settings)],
    sessions: Annotated[sessionmaker[Session], Depends(session_factory)],
) -> dict[str, Any]:
    bot = _verified(config, bot_name, secret)
    body = await read_capped(request, MAX_BODY, HOOK.too_large)
    try:
        update = parse(body)
        msg = to_message(update, bot) if update is not None else None
    except ValueError as exc:  # InputError, json's and UTF-8's errors are ValueErrors
        raise HTTPException(400, f"not a {HOOK.what}: {exc}") from None
    if msg is None:
        return {"status": "OK", "stored": False}

    def fetch_and_store(m: InboundMessage) -> bool:
        if m.meta.get("files"):
            with RubikaApi(bot) as api:
                m = files.fetch(api, m, settings.attachments_dir,
                                settings.attachment_max_bytes, outage_lists=True)
        return store_one(sessions, m)

    created = await run_in_threadpool(fetch_and_store, msg)
    return {"status": "OK", "stored": True, "created": created}


@router.post("/{bot_name}/{secret}/receiveInlineMessage")
async def inline_tap(
    bot_name: str, secret: str, config: Annotated[RubikaConfig, Depends(rubika_config)],
) -> dict[str, Any]:
    """An inline-keypad tap: verified, answered, ignored (this bot shows no keypads)."""
    _verified(config, bot_name, secret)
    return {"status": "OK", "stored": False}


def _verified(config: RubikaConfig, bot_name: str, secret: str) -> RubikaBot:
    bot = config.bot(bot_name)
    if bot is None or bot.mode != "webhook":
        raise HTTPException(404, "not found")
    HOOK.verify(secret, bot.webhook_secret.get_secret_value(),
                f"rubika bot {bot.name}: webhook with a wrong secret refused")
    return bot

"""The Telegram / Bale webhook: ``POST /webhooks/telegram/<bot name>``.

Verify, store, answer (docs/style.md 5) on the shared :class:`channels.webhooks.Webhook`: an
unknown bot (or one configured for polling) is
404; a wrong or missing ``X-Telegram-Bot-Api-Secret-Token`` is 403 (compared in constant
time) and nothing is stored; a body that is not JSON or not an update is 400 and nothing is
stored; otherwise the message is committed (:func:`kartabl.ingest.store`) and only then is
200 answered. Telegram resends on any non-2xx, so an error while storing (500) is retried
by Telegram, and a resent update is one row (its external id is ``<bot>:<update_id>``).
Updates we ignore (groups, edits, callbacks) are answered 200 so they are not resent.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from sqlalchemy.orm import Session, sessionmaker

from channels.telegram.updates import to_message
from channels.webhooks import Webhook, app_channels
from config.telegram import TelegramConfig
from kartabl import db

log = logging.getLogger(__name__)
router = APIRouter()
MAX_BODY = 1_000_000  # an update is a few KB; refuse to parse anything huge
HOOK = Webhook("Bot API update", MAX_BODY, forbidden="wrong secret", too_large="update too large")


def telegram_config(request: Request) -> TelegramConfig:
    return app_channels(request).telegram


def session_factory() -> sessionmaker[Session]:
    return db.session_factory()


@router.post("/{bot_name}")
async def receive(
    bot_name: str, request: Request,
    config: Annotated[TelegramConfig, Depends(telegram_config)],
    sessions: Annotated[sessionmaker[Session], Depends(session_factory)],
    secret: Annotated[str, Header(alias="X-Telegram-Bot-Api-Secret-Token")] = "",
) -> dict[str, Any]:
    bot = config.bot(bot_name)
    if bot is None or bot.mode != "webhook":
        raise HTTPException(404, "no such bot")
    HOOK.verify(secret, bot.webhook_secret.get_secret_value(),
                f"bot {bot.name}: webhook with a wrong secret refused")
    created = await HOOK.receive(request, sessions, lambda body: to_message(json.loads(body), bot))
    if created is None:
        return {"ok": True, "stored": False}
    return {"ok": True, "stored": True, "created": created}

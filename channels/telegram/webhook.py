"""The Telegram / Bale webhook: ``POST /webhooks/telegram/<bot name>``.

Verify, store, answer (docs/style.md 5): an unknown bot (or one configured for polling) is
404; a wrong or missing ``X-Telegram-Bot-Api-Secret-Token`` is 403 (compared in constant
time) and nothing is stored; a body that is not JSON or not an update is 400 and nothing is
stored; otherwise the message is committed (:func:`kartabl.ingest.store`) and only then is
200 answered. Telegram resends on any non-2xx, so an error while storing (500) is retried
by Telegram, and a resent update is one row (its external id is ``<bot>:<update_id>``).
Updates we ignore (groups, edits, callbacks) are answered 200 so they are not resent.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from channels.telegram.updates import to_message
from config.channels import get_channels
from config.telegram import TelegramConfig
from kartabl import db
from kartabl.errors import InputError
from kartabl.ingest import store
from kartabl.messages import InboundMessage

log = logging.getLogger(__name__)
router = APIRouter()
MAX_BODY = 1_000_000  # an update is a few KB; refuse to parse anything huge


def telegram_config() -> TelegramConfig:
    return get_channels().telegram


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
    expected = bot.webhook_secret.get_secret_value().encode()
    if not hmac.compare_digest(secret.encode(), expected):
        log.warning("bot %s: webhook with a wrong secret refused", bot.name)
        raise HTTPException(403, "wrong secret")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, "update too large")
    try:
        msg = to_message(json.loads(body), bot)
    except (ValueError, InputError) as exc:  # json's errors are ValueErrors
        raise HTTPException(400, f"not a Bot API update: {exc}") from None
    if msg is None:
        return {"ok": True, "stored": False}
    created = await run_in_threadpool(_store, sessions, msg)
    return {"ok": True, "stored": True, "created": created}


def _store(sessions: sessionmaker[Session], msg: InboundMessage) -> bool:
    with sessions() as session:
        return store(session, msg).created

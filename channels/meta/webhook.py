"""The Meta webhook, for Instagram and WhatsApp alike: ``/webhooks/meta``.

``GET``: the verification Meta sends when the callback URL is set (``hub.mode=subscribe``,
``hub.verify_token``, ``hub.challenge``): the challenge is echoed as plain text when the
token is ours (compared in constant time), 403 otherwise.

``POST``: every event, signed by Meta with the app secret: ``X-Hub-Signature-256:
sha256=<hex HMAC-SHA256 of the raw body>``. The order is the guarantee:

1. the body is read whole (413 over :data:`MAX_BODY`) and its signature checked, in
   constant time, over the raw bytes **before anything parses them** (403 when missing or
   wrong: nothing parsed, nothing fetched, nothing stored);
2. parsed (400 ``not a Meta webhook: <why>`` and nothing stored); ``object`` says which
   product (``instagram``, ``whatsapp_business_account``); others are answered 200 and
   ignored;
3. the files of the messages not stored yet are fetched and written
   (:mod:`channels.meta.media`);
4. every message of the POST (one POST may hold many entries and messages) is committed in
   one transaction, idempotently by (channel, mid / wamid): a resent webhook is stored
   once; WhatsApp's statuses are applied to their replies (:mod:`channels.meta.statuses`);
5. only then 200. Meta resends on anything else, so an error while storing is retried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.meta import graph, instagram, statuses, whatsapp
from channels.meta.media import with_media
from channels.meta.payload import Payload
from channels.webhooks import Webhook, app_channels, read_capped
from config.meta import MetaConfig
from config.settings import Settings
from kartabl import db
from kartabl.ingest import store_many
from kartabl.models import Message

log = logging.getLogger(__name__)
router = APIRouter()
MAX_BODY = 2_000_000  # a batch of events is tens of KB; the files come by URL
HOOK = Webhook("Meta webhook", MAX_BODY, forbidden="wrong signature")
PARSERS = {"instagram": instagram.parse, "whatsapp_business_account": whatsapp.parse}


def meta_config(request: Request) -> MetaConfig | None:
    return app_channels(request).meta


def meta_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def session_factory() -> sessionmaker[Session]:
    return db.session_factory()


def signature(body: bytes, secret: str) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@router.get("", response_class=PlainTextResponse)
def verify(
    config: Annotated[MetaConfig | None, Depends(meta_config)],
    mode: Annotated[str, Query(alias="hub.mode", max_length=40)] = "",
    token: Annotated[str, Query(alias="hub.verify_token", max_length=500)] = "",
    challenge: Annotated[str, Query(alias="hub.challenge", max_length=500)] = "",
) -> PlainTextResponse:
    if config is None:
        raise HTTPException(404, "not found")
    HOOK.verify(token, config.verify_token.get_secret_value(),
                "meta webhook verification with a wrong verify token refused")
    if mode != "subscribe" or not challenge:
        raise HTTPException(400, "expected hub.mode=subscribe and a hub.challenge")
    return PlainTextResponse(challenge)


@router.post("")
async def receive(
    request: Request,
    config: Annotated[MetaConfig | None, Depends(meta_config)],
    settings: Annotated[Settings, Depends(meta_settings)],
    sessions: Annotated[sessionmaker[Session], Depends(session_factory)],
) -> dict[str, Any]:
    if config is None:
        raise HTTPException(404, "not found")
    body = await read_capped(request, MAX_BODY, HOOK.too_large)
    given = request.headers.get("X-Hub-Signature-256", "")
    HOOK.verify(given, signature(body, config.app_secret.get_secret_value()),
                "meta webhook with a missing or wrong signature refused")
    try:
        event = json.loads(body)
        if not isinstance(event, dict):
            raise ValueError("the body is not a JSON object")
        parse = PARSERS.get(str(event.get("object")))
        if parse is None:
            return {"ok": True, "object": str(event.get("object"))[:40], "stored": 0}
        payload = parse(event, config)
    except ValueError as exc:  # InputError and json's errors are ValueErrors
        raise HTTPException(400, f"not a {HOOK.what}: {exc}") from None
    return await run_in_threadpool(_store, payload, config, settings, sessions)


def _store(payload: Payload, config: MetaConfig, settings: Settings,
           sessions: sessionmaker[Session]) -> dict[str, Any]:
    with sessions() as session:
        known = {(str(c), e) for c, e in session.execute(
            select(Message.channel, Message.external_id).where(
                Message.external_id.in_([i.message.external_id for i in payload.messages])))}
    fresh = [i for i in payload.messages
             if (str(i.message.channel), i.message.external_id) not in known]
    msgs = []
    if any(i.media for i in fresh):
        with graph.client(config) as http:
            msgs = [with_media(i, http, config, Path(settings.attachments_dir),
                               settings.attachment_max_bytes) for i in fresh]
    else:
        msgs = [i.message for i in fresh]
    with sessions() as session:
        stored = store_many(session, msgs)
    try:
        changed = statuses.apply(sessions, payload.statuses)
    except statuses.TooEarly as exc:
        # Meta sends the whole POST again later; its messages are stored once, its applied
        # statuses change nothing twice.
        raise HTTPException(503, str(exc), headers={"Retry-After": "10"}) from None
    return {"ok": True, "created": sum(s.created for s in stored),
            "duplicates": len(payload.messages) - len(fresh) + sum(
                not s.created for s in stored),
            "statuses": changed, "ignored": payload.ignored, "refused": payload.refused}

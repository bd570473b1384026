"""The generic API channel's two webhooks: ``POST /webhooks/api/<name>`` (a user's message)
and ``POST /webhooks/api/<name>/status`` (a reply's delivery status).

Both are signed (:mod:`channels.api.signing`): HMAC-SHA256 over ``<timestamp>.<raw body>``
with the channel's secret. The order, so a refusal never costs more than it must and never
stores anything:

1. no such channel → 404;
2. a ``Content-Length`` or a body over the channel's ``max_body_bytes`` → 413;
3. a missing or wrong signature, or a timestamp more than five minutes off → 403 (the
   signature is checked before the clock);
4. a body that is not the JSON the README's contract describes → 400 ``not a <what>:
   <why>``; an attachment over ``KARTABL_ATTACHMENT_MAX_BYTES`` → 413;
5. an ``idempotency_key`` already used for a *different* message (another user or text) →
   409, the first one kept;
6. the attachments are written (content-addressed), the message committed
   (:func:`kartabl.ingest.store`), and only then 200 ``{"ok": true, "created": ...}``;
   a resent message answers 200 with ``created: false``, and is stored once.

The same steps as :class:`channels.webhooks.Webhook` (whose constants and wording it uses),
but the signature needs the body, and parsing and writing a body of up to
``max_body_bytes`` of base64 runs in the thread pool, not on the event loop.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.api import signing
from channels.api.inbound import TooLarge, parse
from channels.email.attachments import store_payloads
from channels.webhooks import Webhook, app_channels, read_capped
from config.api_channel import ApiChannelConfig
from config.settings import Settings
from kartabl import db
from kartabl.errors import InputError
from kartabl.ingest import store
from kartabl.models import Channel, Message, Reply
from responders.delivery_reports import NOT_YET, UNKNOWN, apply_report
from responders.outbound import latest_inbound

log = logging.getLogger(__name__)
router = APIRouter()
STATUS_BODY_MAX = 16_000  # a status is a few hundred bytes
STATUSES = ("delivered", "read", "failed")
MAX_REASON = 500


def api_channels(request: Request) -> list[ApiChannelConfig]:
    return app_channels(request).api


def app_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def session_factory() -> sessionmaker[Session]:
    return db.session_factory()


Channels = Annotated[list[ApiChannelConfig], Depends(api_channels)]
Sessions = Annotated[sessionmaker[Session], Depends(session_factory)]


def _channel(channels: list[ApiChannelConfig], name: str) -> ApiChannelConfig:
    config = next((c for c in channels if c.name == name), None)
    if config is None:
        raise HTTPException(404, "no such API channel")
    return config


async def _signed_body(request: Request, config: ApiChannelConfig, hook: Webhook) -> bytes:
    """The body, once it is within the limit and signed by the channel's secret."""
    body = await read_capped(request, hook.max_body, hook.too_large)
    try:
        signing.verify(config.secret.get_secret_value(),
                       request.headers.get(signing.TIMESTAMP_HEADER),
                       request.headers.get(signing.SIGNATURE_HEADER), body)
    except signing.SignatureRefused as exc:
        log.warning("api channel %s: %s refused: %s", config.name, hook.what, exc)
        raise HTTPException(403, f"{hook.forbidden}: {exc}") from None
    return body


@router.post("/{name}")
async def receive(name: str, request: Request, channels: Channels, sessions: Sessions,
                  settings: Annotated[Settings, Depends(app_settings)]) -> dict[str, Any]:
    config = _channel(channels, name)
    hook = Webhook("generic API message", config.max_body_bytes, forbidden="signature refused",
                   too_large=f"the body is larger than {config.max_body_bytes} bytes")
    body = await _signed_body(request, config, hook)

    def ingest() -> dict[str, Any]:
        try:
            parsed = parse(body, config, attachment_max_bytes=settings.attachment_max_bytes)
        except TooLarge as exc:
            raise HTTPException(413, str(exc)) from None
        except InputError as exc:
            raise HTTPException(400, f"not a {hook.what}: {exc}") from None
        with sessions() as session:
            first = _first_with_key(session, parsed.message.external_id)
            if first is not None:
                if (first.sender, first.text) != (parsed.message.sender, parsed.message.text):
                    raise HTTPException(409, "idempotency_key already used for another "
                                             "message (another user or text); the first kept")
                return {"ok": True, "created": False}
            # Before the commit: a committed message must never point at files not written.
            store_payloads(parsed.payloads, Path(settings.attachments_dir))
            stored = store(session, parsed.message)
            return {"ok": True, "created": stored.created}

    return await run_in_threadpool(ingest)


def _first_with_key(session: Session, external_id: str) -> Message | None:
    return session.scalar(select(Message).where(Message.channel == Channel.API,
                                                Message.external_id == external_id))


@router.post("/{name}/status")
async def status(name: str, request: Request, channels: Channels,
                 sessions: Sessions) -> JSONResponse:
    config = _channel(channels, name)
    hook = Webhook("generic API status", STATUS_BODY_MAX, forbidden="signature refused")
    body = await _signed_body(request, config, hook)
    try:
        reply_id, reported, reason = _status_fields(body)
    except InputError as exc:
        raise HTTPException(400, f"not a {hook.what}: {exc}") from None
    said = f"the API channel {config.name} reported that delivery failed" + (
        f": {reason}" if reason else "")

    def belongs(session: Session, reply: Reply) -> bool:
        return _belongs(session, reply, config.name)

    applied = await run_in_threadpool(apply_report, sessions, reply_id, reported,
                                      reason=said, belongs=belongs)
    if applied.outcome == UNKNOWN:
        raise HTTPException(404, "no such reply on this channel")
    if applied.outcome == NOT_YET:
        return JSONResponse({"detail": "the reply is not recorded as sent yet; retry"},
                            status_code=409, headers={"Retry-After": "1"})
    return JSONResponse({"ok": True, "reply_id": reply_id, "state": applied.outcome,
                         "changed": applied.changed})


def _status_fields(body: bytes) -> tuple[int, Any, str]:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"the body is not UTF-8 JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError("the body must be a JSON object")
    unknown = sorted(str(k)[:40] for k in data if k not in ("reply_id", "status", "reason"))
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(map(repr, unknown[:5]))}")
    reply_id = data.get("reply_id")
    if isinstance(reply_id, str) and reply_id.isascii() and reply_id.isdigit():
        reply_id = int(reply_id)  # the Idempotency-Key header of our callback is this, as text
    if not isinstance(reply_id, int) or isinstance(reply_id, bool) or not 0 < reply_id < 2**63:
        raise InputError("reply_id must be the reply's id (a positive integer)")
    reported = data.get("status")
    if reported not in STATUSES:
        raise InputError(f"status must be one of {', '.join(STATUSES)}")
    reason = data.get("reason") or ""
    if not isinstance(reason, str):
        raise InputError("reason must be a string")
    return reply_id, reported, " ".join(reason.split())[:MAX_REASON]


def _belongs(session: Session, reply: Reply, name: str) -> bool:
    """Whether ``reply`` went (or goes) out by API channel ``name``: a channel may report on
    its own replies only."""
    if reply.channel != Channel.API:
        return False
    if reply.provider_id:
        return reply.provider_id.startswith(f"{name}:")
    inbound = latest_inbound(session, reply.conversation_id, Channel.API)
    return inbound is not None and inbound.recipient == name

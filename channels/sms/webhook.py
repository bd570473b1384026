"""The Kavenegar receive callback: ``POST /webhooks/sms/receive/<secret>``.

Kavenegar does not sign the callback, so the URL carries a secret path segment (compared in
constant time). Verify, store, answer (docs/style.md 5) on the shared
:class:`channels.webhooks.Webhook`: no ``[sms]`` section or no secret
configured → 404; a wrong secret → 403, nothing stored; a form without ``from`` / ``message``
or whose sender is not a phone number → 400, nothing stored; otherwise the SMS is committed
(:func:`kartabl.ingest.store_many`) and only then is 200 answered. A retried callback, or
the same SMS fetched by the poller, is one message (:mod:`channels.sms.inbound`).

The secret is in the path, and access logs print paths: importing this module registers a
mask (:func:`kartabl.logs.hide_pattern`) on uvicorn's access and error loggers, which then
print ``/webhooks/sms/receive/***`` instead. A reverse proxy's own access log needs the same
care.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy.orm import Session, sessionmaker

from channels.sms.inbound import to_message
from channels.webhooks import Webhook, app_channels
from config.sms import SmsConfig
from kartabl import db
from kartabl.logs import hide_pattern
from kartabl.messages import InboundMessage

log = logging.getLogger(__name__)
router = APIRouter()
MAX_BODY = 64_000  # a callback is a few hundred bytes
HOOK = Webhook("Kavenegar receive callback", MAX_BODY)
_SECRET_PATH = re.compile(r"(/receive/)[^/?\s\"]+")


# Access and error lines print the request path: the secret segment becomes ***.
hide_pattern(_SECRET_PATH, r"\1***", loggers=("uvicorn.access", "uvicorn.error"))


def sms_config(request: Request) -> SmsConfig | None:
    return app_channels(request).sms


def session_factory() -> sessionmaker[Session]:
    return db.session_factory()


@router.post("/receive/{secret}")
async def receive(
    secret: str, request: Request,
    config: Annotated[SmsConfig | None, Depends(sms_config)],
    sessions: Annotated[sessionmaker[Session], Depends(session_factory)],
) -> dict[str, Any]:
    expected = config.webhook_secret.get_secret_value() if config is not None else ""
    if config is None or not expected:
        raise HTTPException(404, "not found")
    # never the path itself in the log: it is the secret
    HOOK.verify(secret, expected, "SMS callback with a wrong secret refused")

    def parse(body: bytes) -> InboundMessage:
        return to_message(dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)), config)

    created = await HOOK.receive(request, sessions, parse)
    return {"ok": True, "created": created}

"""The Kavenegar receive callback: ``POST /webhooks/sms/receive/<secret>``.

Kavenegar does not sign the callback, so the URL carries a secret path segment (compared in
constant time). Verify, store, answer (docs/style.md 5): no ``[sms]`` section or no secret
configured → 404; a wrong secret → 403, nothing stored; a form without ``from`` / ``message``
or whose sender is not a phone number → 400, nothing stored; otherwise the SMS is committed
(:func:`kartabl.ingest.store_many`) and only then is 200 answered. A retried callback, or
the same SMS fetched by the poller, is one message (:mod:`channels.sms.inbound`).

The secret is in the path, and access logs print paths: importing this module installs a
filter on uvicorn's access logger that prints ``/webhooks/sms/receive/***`` instead. A
reverse proxy's own access log needs the same care.
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from channels.sms.inbound import to_message
from config.channels import get_channels
from config.sms import SmsConfig
from kartabl import db
from kartabl.errors import InputError
from kartabl.ingest import store_many
from kartabl.messages import InboundMessage

log = logging.getLogger(__name__)
router = APIRouter()
MAX_BODY = 64_000  # a callback is a few hundred bytes
_SECRET_PATH = re.compile(r"(/receive/)[^/?\s\"]+")


class _HideSecretPath(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, str) and "/receive/" in a
                                           for a in args):
            record.args = tuple(_SECRET_PATH.sub(r"\1***", a) if isinstance(a, str) else a
                                for a in args)
        return True


_FILTER = _HideSecretPath()
for _name in ("uvicorn.access", "uvicorn.error"):
    if _FILTER not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_FILTER)


def sms_config() -> SmsConfig | None:
    return get_channels().sms


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
    if not hmac.compare_digest(secret.encode(), expected.encode()):
        log.warning("SMS callback with a wrong secret refused")  # never the path itself
        raise HTTPException(403, "forbidden")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, "too large")
    try:
        fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        msg = to_message(fields, config)
    except (UnicodeDecodeError, InputError) as exc:
        raise HTTPException(400, f"not a Kavenegar receive callback: {exc}") from None
    created = await run_in_threadpool(_store, sessions, msg)
    return {"ok": True, "created": created}


def _store(sessions: sessionmaker[Session], msg: InboundMessage) -> bool:
    with sessions() as session:
        return store_many(session, [msg])[0].created

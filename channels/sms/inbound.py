"""One received SMS as an :class:`InboundMessage`, the same whichever way it came.

The receive callback (a form: ``from``, ``message``, ``to``, ``messageid``) and the receive
API (entries: ``sender``, ``message``, ``receptor``, ``messageid``, ``date``) carry the same
SMS with the same Kavenegar ``messageid``: ``kv:<messageid>`` is the external id, so an SMS
that arrives by both paths, or by a retried callback, is one message (``store_many`` is
idempotent on (channel, external_id)). A callback without a messageid gets a stable hash of
what it has.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from channels.dates import iso, received_now, unix_time
from config.sms import SmsConfig
from kartabl.errors import InputError
from kartabl.messages import InboundMessage
from kartabl.models import Channel
from router.identity import normalize_phone

log = logging.getLogger(__name__)

MAX_TEXT = 5_000  # a long concatenated SMS is ~1,000 characters; refuse anything absurd


def to_message(fields: dict[str, Any], config: SmsConfig, *, strict_date: bool = True,
               received_at: datetime | None = None) -> InboundMessage:
    """``fields`` from a callback form or a receive entry. Raises :class:`InputError` when
    it is not an SMS we can store (no sender, no text, a sender that is not a phone, a
    ``date`` that is not Unix seconds in range when ``strict_date``). The message's time is
    ``received_at`` (ours), by default now; Kavenegar's ``date`` is ``meta["sent_at"]``.
    The poller passes ``strict_date=False``: the SMS is already marked read by Kavenegar,
    so a bad date only leaves ``sent_at`` out."""
    raw_from = str(fields.get("from") or fields.get("sender") or "").strip()
    text = str(fields.get("message") or "")
    to = str(fields.get("to") or fields.get("receptor") or "").strip()
    if not raw_from or not text.strip():
        raise InputError("an SMS needs 'from' and 'message'")
    if len(text) > MAX_TEXT:
        raise InputError(f"the message is longer than {MAX_TEXT} characters")
    try:
        sender = normalize_phone(raw_from)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    date = str(fields.get("date") or "").strip()
    messageid = str(fields.get("messageid") or "").strip()
    if messageid and not messageid.isdigit():
        raise InputError("messageid must be a number")
    if messageid and messageid != "0":
        # Prefixed: a reply's outbound row uses its bare id (the localid) as external id.
        external_id = f"kv:{messageid}"
    else:
        digest = hashlib.sha256("\x1f".join((sender, to, text, date)).encode()).hexdigest()
        external_id = f"h:{digest[:40]}"
    line = to if to else config.line
    meta: dict[str, Any] = {"line": line, "default_team": config.team,
                            "kavenegar_messageid": messageid}
    if date:
        try:
            meta["sent_at"] = iso(unix_time(date, text=True))
        except InputError as exc:
            if strict_date:
                raise InputError(f"date: {exc}") from None
            log.warning("SMS %s: unusable date %r left out", external_id, date[:40])
    return InboundMessage(
        channel=Channel.SMS, external_id=external_id, sender=sender, text=text,
        recipient=line, received_at=received_now(received_at), meta=meta,
    )

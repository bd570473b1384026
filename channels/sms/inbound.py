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
from datetime import UTC, datetime
from typing import Any

from config.sms import SmsConfig
from kartabl.errors import InputError
from kartabl.messages import InboundMessage
from kartabl.models import Channel
from router.identity import normalize_phone

MAX_TEXT = 5_000  # a long concatenated SMS is ~1,000 characters; refuse anything absurd


def to_message(fields: dict[str, Any], config: SmsConfig) -> InboundMessage:
    """``fields`` from a callback form or a receive entry. Raises :class:`InputError` when
    it is not an SMS we can store (no sender, no text, a sender that is not a phone)."""
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
    received = datetime.now(UTC)
    if date.isdigit():
        received = datetime.fromtimestamp(int(date), UTC)
    line = to if to else config.line
    return InboundMessage(
        channel=Channel.SMS, external_id=external_id, sender=sender, text=text,
        recipient=line, received_at=received,
        meta={"line": line, "default_team": config.team, "kavenegar_messageid": messageid},
    )

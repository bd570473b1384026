"""An Instagram messaging webhook (``object: "instagram"``) as messages.

``entry[].id`` is our professional account, ``entry[].messaging[]`` its events: a message
is ``{"sender": {"id": IGSID}, "recipient": {"id": <account>}, "timestamp": <ms>,
"message": {"mid", "text", "attachments": [{"type": "image" | "file" | "video" | "audio"
| ..., "payload": {"url"}}]}}``. The external id is the ``mid``, so a resent webhook is the
same row. Ignored (counted): echoes of our own messages (``is_echo``), deleted and
unsupported messages, reactions, reads, postbacks, and accounts not in the channels file.

``meta["human_agent"]`` records whether the account may answer with the ``HUMAN_AGENT``
tag: the reply window (:mod:`kartabl.workflow.windows`) is 7 days then, 24 h otherwise.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from channels.dates import iso, received_now, unix_time
from channels.email.attachments import safe_content_type
from channels.meta.payload import (
    Incoming,
    MediaRef,
    Payload,
    as_dict,
    as_list,
    id_of,
    text_of,
)
from config.meta import InstagramAccount, MetaConfig
from kartabl.errors import InputError
from kartabl.messages import InboundMessage
from kartabl.models import Channel

log = logging.getLogger(__name__)
_TYPES = {"image": "image/jpeg", "video": "video/mp4", "audio": "audio/mp4",
          "file": "application/octet-stream"}


def parse(body: dict[str, Any], config: MetaConfig, received_at: datetime | None = None
          ) -> Payload:
    out = Payload()
    for n, raw_entry in enumerate(as_list(body.get("entry"), "entry")):
        entry = as_dict(raw_entry, f"entry[{n}]")
        account = config.instagram_account(id_of(entry.get("id"), f"entry[{n}].id"))
        events = as_list(entry.get("messaging"), f"entry[{n}].messaging")
        if account is None:
            log.warning("instagram: %d event(s) for an account not in the channels file "
                        "ignored", len(events))
            out.ignored += len(events)
            continue
        for m, raw in enumerate(events):
            where = f"entry[{n}].messaging[{m}]"
            try:
                _event(out, raw, where, account, received_at)
            except InputError as exc:
                out.refuse(where, exc)
    return out


def _event(out: Payload, raw: Any, where: str, account: InstagramAccount,
           received_at: datetime | None) -> None:
    """One messaging event into ``out`` (raises InputError for one that cannot be read)."""
    event = as_dict(raw, where)
    msg = event.get("message")
    if not isinstance(msg, dict) or msg.get("is_echo") or msg.get("is_deleted") \
            or msg.get("is_unsupported"):
        out.ignored += 1
        return
    mid = msg.get("mid")
    if not isinstance(mid, str) or not mid.strip() or len(mid) > 400:
        raise InputError(f"{where}.message.mid is missing")
    sender = id_of(as_dict(event.get("sender"), f"{where}.sender").get("id"),
                   f"{where}.sender.id")
    media, placeholders = _media(msg, where)
    text = text_of(msg.get("text")) or " ".join(placeholders)
    meta: dict[str, Any] = {"account": account.id, "human_agent": account.human_agent}
    if account.team:
        meta["default_team"] = account.team
    stamp = event.get("timestamp")
    if isinstance(stamp, int) and not isinstance(stamp, bool):
        meta["sent_at"] = iso(unix_time(stamp // 1000))  # milliseconds
    out.messages.append(Incoming(InboundMessage(
        channel=Channel.INSTAGRAM, external_id=mid.strip(), sender=sender,
        text=text or "[empty]", recipient=account.id,
        received_at=received_now(received_at), meta=meta), tuple(media)))


def _media(msg: dict[str, Any], where: str) -> tuple[list[MediaRef], list[str]]:
    refs, placeholders = [], []
    for k, raw in enumerate(as_list(msg.get("attachments"), f"{where}.message.attachments")):
        att = as_dict(raw, f"{where}.message.attachments[{k}]")
        kind = str(att.get("type") or "unknown")[:30]
        payload = att.get("payload")
        url = payload.get("url") if isinstance(payload, dict) else None
        if kind in _TYPES and isinstance(url, str) and url:
            refs.append(MediaRef(kind=kind, content_type=safe_content_type(_TYPES[kind]),
                                 url=url))
        else:  # a shared post, a story mention, a reel: no file of its own to keep
            placeholders.append(f"[{kind}]")
    return refs, placeholders

"""A WhatsApp Cloud API webhook (``object: "whatsapp_business_account"``) as messages and
statuses.

``entry[].changes[]`` with ``field: "messages"`` carry ``value``: ``metadata``
(``phone_number_id``: our number), ``contacts[]`` (``wa_id``, ``profile.name``),
``messages[]`` (``id``: the wamid, ``from``: the customer's wa_id, ``timestamp``: Unix
seconds as a string, ``type``: text / image / document / audio / video / sticker / ...,
with ``text.body`` or ``<type>.id``, ``mime_type``, ``filename``, ``caption``) and
``statuses[]`` (``id``: the wamid of our message, ``status``: sent / delivered / read /
failed, ``errors[]`` with ``code``, ``title``, ``error_data.details``).

``meta["template"]`` names the number's re-engagement template, when it has one: the reply
window (:mod:`kartabl.workflow.windows`) then lets a late reply go as that template.

The external id is the wamid (a resent webhook is one row); the sender is the wa_id as
E.164 (``+`` and the digits): the customer's phone identity, the one their SMS use. Media
are looked up by id (``GET /<media-id>``) and fetched with the number's token
(:mod:`channels.meta.webhook`). Location, contacts, interactive answers, reactions and
unsupported messages are stored as a placeholder text (``[location]``), never dropped.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from channels.dates import iso, received_now, unix_time
from channels.email.attachments import display_filename, safe_content_type
from channels.meta.payload import (
    Incoming,
    MediaRef,
    Payload,
    Status,
    as_dict,
    as_list,
    id_of,
    text_of,
)
from config.meta import MetaConfig, WhatsAppNumber
from kartabl.errors import InputError
from kartabl.messages import InboundMessage
from kartabl.models import Channel
from router.identity import normalize_phone

log = logging.getLogger(__name__)
_MEDIA = ("image", "document", "audio", "video", "sticker")
STATUSES = frozenset({"sent", "delivered", "read", "failed"})


def parse(body: dict[str, Any], config: MetaConfig, received_at: datetime | None = None
          ) -> Payload:
    out = Payload()
    for n, raw_entry in enumerate(as_list(body.get("entry"), "entry")):
        entry = as_dict(raw_entry, f"entry[{n}]")
        for c, raw_change in enumerate(as_list(entry.get("changes"), f"entry[{n}].changes")):
            where = f"entry[{n}].changes[{c}]"
            change = as_dict(raw_change, where)
            if change.get("field") != "messages":
                out.ignored += 1
                continue
            value = as_dict(change.get("value"), f"{where}.value")
            metadata = as_dict(value.get("metadata"), f"{where}.value.metadata")
            number = config.whatsapp_number(
                id_of(metadata.get("phone_number_id"), f"{where}.value.metadata"))
            if number is None:
                log.warning("whatsapp: a change for a number not in the channels file ignored")
                out.ignored += 1
                continue
            names = _names(value.get("contacts"), where)
            for m, raw in enumerate(as_list(value.get("messages"), f"{where}.value.messages")):
                at = f"{where}.value.messages[{m}]"
                try:
                    incoming = _message(as_dict(raw, at), number, names, at, received_at)
                except InputError as exc:
                    out.refuse(at, exc)
                    continue
                out.messages.append(incoming)
            for s, raw in enumerate(as_list(value.get("statuses"), f"{where}.value.statuses")):
                status = _status(as_dict(raw, f"{where}.value.statuses[{s}]"))
                if status is None:
                    out.ignored += 1
                else:
                    out.statuses.append(status)
    return out


def _names(contacts: Any, where: str) -> dict[str, str]:
    names: dict[str, str] = {}
    for raw in as_list(contacts, f"{where}.value.contacts"):
        if isinstance(raw, dict) and isinstance(raw.get("wa_id"), str):
            profile = raw.get("profile")
            name = profile.get("name") if isinstance(profile, dict) else None
            if isinstance(name, str):
                names[raw["wa_id"]] = name.strip()[:200]
    return names


def _message(msg: dict[str, Any], number: WhatsAppNumber, names: dict[str, str], where: str,
             received_at: datetime | None) -> Incoming:
    wamid = msg.get("id")
    if not isinstance(wamid, str) or not wamid.strip() or len(wamid) > 400:
        raise InputError(f"{where}.id (the wamid) is missing")
    wa_id = msg.get("from")
    if not isinstance(wa_id, str) or not wa_id.strip():
        raise InputError(f"{where}.from is missing")
    try:
        sender = normalize_phone("+" + wa_id.strip().lstrip("+"))
    except ValueError as exc:
        raise InputError(f"{where}.from: {exc}") from None
    kind = str(msg.get("type") or "unknown")[:30]
    media: list[MediaRef] = []
    text = ""
    if kind == "text":
        text = text_of(as_dict(msg.get("text"), f"{where}.text").get("body"))
    elif kind in _MEDIA:
        obj = as_dict(msg.get(kind), f"{where}.{kind}")
        ctype = safe_content_type(str(obj.get("mime_type") or "application/octet-stream")
                                  .split(";")[0])
        name = obj.get("filename") if isinstance(obj.get("filename"), str) else ""
        media.append(MediaRef(kind=kind, content_type=ctype,
                              filename=display_filename(name, ctype) if name else "",
                              media_id=id_of(obj.get("id"), f"{where}.{kind}.id"),
                              token=number.access_token.get_secret_value()))
        text = text_of(obj.get("caption"))
    else:
        text = f"[{kind}]"
    meta: dict[str, Any] = {"phone_number_id": number.phone_number_id, "wa_id": wa_id.strip(),
                            "type": kind}
    if number.team:
        meta["default_team"] = number.team
    if number.reengagement_template:  # outside 24 h a reply goes as this template
        meta["template"] = number.reengagement_template
    if "timestamp" in msg:
        try:
            meta["sent_at"] = iso(unix_time(msg["timestamp"], text=True))
        except InputError as exc:
            raise InputError(f"{where}.timestamp: {exc}") from None
    return Incoming(InboundMessage(
        channel=Channel.WHATSAPP, external_id=wamid.strip(), sender=sender,
        sender_name=names.get(wa_id.strip(), ""), text=text or ("" if media else "[empty]"),
        recipient=number.phone_number_id, received_at=received_now(received_at), meta=meta),
        tuple(media))


def _status(raw: dict[str, Any]) -> Status | None:
    wamid, status = raw.get("id"), raw.get("status")
    if not isinstance(wamid, str) or status not in STATUSES:
        return None  # "deleted", "warning" ...: nothing for a reply
    reasons = []
    for err in as_list(raw.get("errors"), "statuses[].errors"):
        if isinstance(err, dict):
            details = err.get("error_data", {}).get("details") if isinstance(
                err.get("error_data"), dict) else None
            words = str(err.get("title") or err.get("message") or "")
            reasons.append(f"{err.get('code')}: {words}" + (f" ({details})" if details else ""))
    return Status(wamid=wamid.strip(), status=str(status), reason="; ".join(reasons)[:500])

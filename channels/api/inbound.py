"""One signed POST of a generic API channel (a JSON object) as an :class:`InboundMessage`.

The shape (the README's "The generic API channel" is the contract)::

    {"idempotency_key": "order-77-msg-3",            required, the message's own key
     "user": {"id": "u-1042",                        required, the user's id in that system
              "name": "Sara",                        optional display name
              "phone": "09121234567",                optional hint (normalised to E.164)
              "email": "sara@example.ir"},           optional hint
     "text": "...",                                  text, or attachments, or both
     "attachments": [{"filename": "a.pdf", "content_type": "application/pdf",
                      "data": "<base64>"}],          optional, at most MAX_ATTACHMENTS
     "sent_at": 1764806400}                          optional Unix seconds (metadata only)

- ``external_id`` is ``<channel>:<idempotency_key>``, so a resent message is one row
  (ingest's unique ``(channel, external_id)``), and two API channels' keys never collide.
  It always holds a ``:``; a sent reply's outbound row is keyed by its bare reply id.
- ``sender`` is ``<channel>:<user id>``, the ``api`` identity (``router.identity``): the
  same user id in two API channels is two customers, as a Telegram and a Bale user are.
- ``recipient`` is the channel's name, so the reply leaves by the channel the user wrote to.
- The phone and email are **hints** (``meta["hints"]``), never linked by themselves: the
  external system vouches for them, not the user, and linking by an unverified address is
  the takeover threats.md describes. A coordinator links them (``kartabl customer link``).
- Attachments are base64 in the body, not URLs: fetching a URL the body names would let
  anyone who holds the secret make Kartabl request any address (SSRF, threats.md). Each is
  treated as a mail attachment is (:mod:`channels.email.attachments`): the name is display
  text only, the content type checked, the bytes stored under their SHA-256; one larger
  than ``attachment_max_bytes`` is refused (413) rather than listed without its bytes, since
  unlike a mail's sender this one can be told and can send it smaller.
- Anything else wrong is :class:`~kartabl.errors.InputError` (400): an unknown field, a
  wrong type, an id of the wrong shape, an invalid phone or email, no text and no file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Final

from channels.dates import iso, received_now, unix_time
from channels.email.attachments import display_filename, safe_content_type
from config.api_channel import ApiChannelConfig
from kartabl.errors import InputError
from kartabl.messages import Attachment, InboundMessage
from kartabl.models import Channel
from router.identity import normalize_email, normalize_phone

MAX_TEXT: Final = 20_000  # characters
MAX_NAME: Final = 200  # the sender_name column
MAX_ATTACHMENTS: Final = 10
MAX_USER_ID: Final = 64  # "<channel>:<id>" stays within the identity's 128 characters
KEY = re.compile(r"[A-Za-z0-9_.:=+/-]{1,200}")
USER_ID = re.compile(r"[A-Za-z0-9_.:@=+/-]{1,64}")
TOP_FIELDS: Final = frozenset({"idempotency_key", "user", "text", "attachments", "sent_at"})
USER_FIELDS: Final = frozenset({"id", "name", "phone", "email"})
FILE_FIELDS: Final = frozenset({"filename", "content_type", "data"})


class TooLarge(InputError):
    """An attachment over the size limit: 413, nothing stored."""


@dataclass(frozen=True, slots=True)
class Parsed:
    message: InboundMessage
    payloads: dict[str, bytes] = field(default_factory=dict)  # storage key -> bytes


def parse(body: bytes, config: ApiChannelConfig, *, attachment_max_bytes: int) -> Parsed:
    """``body`` as a message of channel ``config``; :class:`InputError` (or
    :class:`TooLarge`) saying what is wrong."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"the body is not UTF-8 JSON ({exc})") from None
    obj = _object(data, "the body", TOP_FIELDS)
    key = _text(obj.get("idempotency_key"), "idempotency_key", required=True)
    if not KEY.fullmatch(key):
        raise InputError("idempotency_key must be 1-200 characters of A-Z a-z 0-9 _ . : = + / -")
    user = _object(obj.get("user"), "user", USER_FIELDS)
    raw_id = user.get("id")
    user_id = str(raw_id) if isinstance(raw_id, int) and not isinstance(raw_id, bool) \
        else _text(raw_id, "user.id", required=True)
    if not USER_ID.fullmatch(user_id):
        raise InputError(f"user.id must be 1-{MAX_USER_ID} characters of "
                         "A-Z a-z 0-9 _ . : @ = + / -")
    name = _clean_name(_text(user.get("name"), "user.name"))
    hints = _hints(user)
    text = _text(obj.get("text"), "text")
    if len(text) > MAX_TEXT:
        raise InputError(f"text is longer than {MAX_TEXT} characters")
    attachments, payloads = _attachments(obj.get("attachments"), attachment_max_bytes)
    if not text.strip() and not attachments:
        raise InputError("a message needs text or attachments")
    meta: dict[str, Any] = {"api_channel": config.name, "user_id": user_id,
                            "idempotency_key": key, "default_team": config.team}
    if hints:
        meta["hints"] = hints
    if obj.get("sent_at") is not None:
        meta["sent_at"] = iso(unix_time(obj["sent_at"]))  # InputError when not Unix seconds
    msg = InboundMessage(
        channel=Channel.API, external_id=f"{config.name}:{key}",
        sender=f"{config.name}:{user_id}", sender_name=name, text=text,
        attachments=tuple(attachments), recipient=config.name,
        received_at=received_now(), meta=meta,
    )
    return Parsed(msg, payloads)


def _object(value: object, what: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{what} must be a JSON object")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise InputError(f"{what}: unknown field(s) {', '.join(repr(u[:40]) for u in unknown[:5])}")
    return value


def _text(value: object, what: str, *, required: bool = False) -> str:
    if value is None or (value == "" and not required):
        if required:
            raise InputError(f"{what} is required")
        return ""
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string")
    if required and not value.strip():
        raise InputError(f"{what} must not be empty")
    return value


def _clean_name(name: str) -> str:
    # display text: no control characters (line breaks, ESC); bidi isolation is the page's
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in name)
    return re.sub(r"\s+", " ", text).strip()[:MAX_NAME]


def _hints(user: dict[str, Any]) -> dict[str, str]:
    hints: dict[str, str] = {}
    phone = _text(user.get("phone"), "user.phone")
    if phone:
        try:
            hints["phone"] = normalize_phone(phone)
        except ValueError as exc:
            raise InputError(f"user.phone: {exc}") from None
    email = _text(user.get("email"), "user.email")
    if email:
        try:
            hints["email"] = normalize_email(email)
        except ValueError as exc:
            raise InputError(f"user.email: {exc}") from None
    return hints


def _attachments(value: object, max_bytes: int) -> tuple[list[Attachment], dict[str, bytes]]:
    if value is None:
        return [], {}
    if not isinstance(value, list):
        raise InputError("attachments must be a JSON array")
    if len(value) > MAX_ATTACHMENTS:
        raise InputError(f"at most {MAX_ATTACHMENTS} attachments")
    found: list[Attachment] = []
    payloads: dict[str, bytes] = {}
    for n, item in enumerate(value):
        what = f"attachments[{n}]"
        obj = _object(item, what, FILE_FIELDS)
        encoded = _text(obj.get("data"), f"{what}.data", required=True)
        # the size before decoding: never decode a body's worth of base64 to refuse it
        if len(encoded) > (max_bytes + 2) // 3 * 4 + 4:
            raise TooLarge(f"{what} is larger than {max_bytes} bytes")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"{what}.data is not base64") from None
        if not data:
            raise InputError(f"{what}.data is empty")
        if len(data) > max_bytes:
            raise TooLarge(f"{what} is larger than {max_bytes} bytes")
        content_type = safe_content_type(_text(obj.get("content_type"), f"{what}.content_type")
                                         or "application/octet-stream")
        key = hashlib.sha256(data).hexdigest()
        payloads[key] = data
        found.append(Attachment(
            filename=display_filename(_text(obj.get("filename"), f"{what}.filename"),
                                      content_type),
            content_type=content_type, size=len(data), storage_key=key))
    return found, payloads

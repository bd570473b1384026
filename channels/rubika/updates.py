"""One Rubika Bot API update (a JSON object) as an :class:`InboundMessage`, the same for
webhook and polling.

An update is ``{"type": "NewMessage", "chat_id": "b0...", "new_message": {...}}``; the
message carries ``message_id``, ``text``, ``time`` (Unix seconds, as a string),
``sender_type`` (``User`` or ``Bot``), ``sender_id`` (``u0...``), and maybe ``file``
(``file_id``, ``file_name``, ``size``), ``contact_message`` (``phone_number``,
``first_name``, ``last_name``), ``reply_to_message_id``.

- Rubika's updates have no id of their own: ``external_id`` is
  ``"<bot name>:<chat_id>:<message_id>"``, so a resent webhook, a page of getUpdates read
  twice, or the same message by webhook and by polling is one row.
- The channel is ``rubika``: user ``u0abc`` on Rubika is another customer than any
  Telegram or Bale user (:func:`router.identity.identity_for`, an opaque id of its own).
  ``sender`` is the user's id (``sender_id``), which is the same whichever of our bots
  they write to; the chat (``chat_id``, which a reply must name) is kept in
  ``meta["chat_id"]`` and found again by the sender (:mod:`responders.rubika`).
- ``recipient`` is the bot's name, so the reply leaves by the bot the customer wrote to.
- ``received_at`` is ours; the message's own ``time`` is only ``meta["sent_at"]``.
- A file is an attachment (``meta["files"]`` keeps its ``file_id``); :mod:`.files`
  fetches its bytes (``getFile``) within the size cap before the message is stored.
- A shared contact is kept as ``meta["contact"] = {"phone", "own": None}``, the number
  normalised: a hint for a person, never a link (anyone can send any number). Rubika does
  not say whose number it is (Telegram does), hence ``own`` None.
- ``reply_to_message_id`` becomes ``in_reply_to = "<bot>:<chat>:<message_id>"``, the form
  our sent replies' provider ids take, for threading.

Ignored (None, and acknowledged all the same): every type but ``NewMessage`` (edits,
removals, StartedBot, StoppedBot, payments), messages from bots, and chats that are not a
private chat with the bot (a chat id not starting with ``b``: groups, channels), for the
reasons Telegram's are (:mod:`channels.telegram.updates`).
"""

from __future__ import annotations

import logging
import mimetypes
from datetime import datetime
from typing import Any

from channels.dates import iso, received_now, unix_time
from channels.email.attachments import display_filename, safe_content_type
from config.rubika import RubikaBot
from kartabl.errors import InputError
from kartabl.messages import Attachment, InboundMessage
from kartabl.models import Channel
from router.identity import normalize_opaque_id, normalize_phone

log = logging.getLogger(__name__)

_OTHER_CONTENT = ("sticker", "location", "live_location", "poll", "contact_message")


def _id(value: Any, what: str) -> str:
    """An id Rubika sends as a string (or, in some answers, a number)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(f"{what} is missing")
    try:
        return normalize_opaque_id("rubika", str(value))
    except ValueError:
        raise InputError(f"{what} is not an id") from None


def key_of(update: Any) -> str:
    """``"<chat_id>:<message_id>"`` of an update, for the log lines of a skipped one."""
    if not isinstance(update, dict):
        return "?"
    msg = update.get("new_message") or update.get("updated_message") or {}
    mid = msg.get("message_id") if isinstance(msg, dict) else None
    return f"{update.get('chat_id')}:{mid or update.get('removed_message_id') or '?'}"


def to_message(update: Any, bot: RubikaBot, *, strict_date: bool = True,
               received_at: datetime | None = None) -> InboundMessage | None:
    """The message in ``update``, or None for a kind we ignore (logged). Raises
    :class:`InputError` when ``update`` is malformed; with ``strict_date`` (a webhook) a
    ``time`` out of range too, while a poller leaves such a time out of ``meta``."""
    if not isinstance(update, dict):
        raise InputError("an update is a JSON object")
    kind = update.get("type")
    if not isinstance(kind, str):
        raise InputError("update.type is missing")
    chat_id = _id(update.get("chat_id"), "update.chat_id")
    if kind != "NewMessage":
        log.info("rubika bot %s: %s update in %s ignored", bot.name, kind[:40], chat_id)
        return None
    msg = update.get("new_message")
    if not isinstance(msg, dict):
        raise InputError("update.new_message is not an object")
    message_id = _id(msg.get("message_id"), "new_message.message_id")
    sender_id = _id(msg.get("sender_id"), "new_message.sender_id")
    if not chat_id.startswith("b"):
        log.info("rubika bot %s: message %s ignored: not a private chat", bot.name, chat_id)
        return None
    if msg.get("sender_type", "User") != "User":
        log.info("rubika bot %s: message in %s ignored: sent by a %s", bot.name, chat_id,
                 str(msg.get("sender_type"))[:20])
        return None
    attachments, files = _file(msg.get("file"))
    text = _str(msg.get("text"))
    meta: dict[str, Any] = {"chat_id": chat_id, "bot": bot.name, "message_id": message_id}
    if files:
        meta["files"] = files
    if bot.team:
        meta["default_team"] = bot.team  # router.placement's fallback team
    if msg.get("time") is not None:
        try:
            meta["sent_at"] = iso(unix_time(msg["time"], text=True))
        except InputError as exc:
            if strict_date:
                raise InputError(f"new_message.time: {exc}") from None
            log.warning("rubika bot %s: message %s:%s has an unusable time (%s)", bot.name,
                        chat_id, message_id, exc)
    contact = _contact(msg.get("contact_message"))
    if contact is not None:
        meta["contact"] = contact
        text = text or f"[contact: {contact['phone']}]"
    if not text and not attachments:
        other = next((k for k in _OTHER_CONTENT if msg.get(k)), "unsupported content")
        text = f"[{other.replace('_message', '')}]"
    reply_to = msg.get("reply_to_message_id")
    in_reply_to = None
    if isinstance(reply_to, (str, int)) and not isinstance(reply_to, bool) and str(reply_to):
        in_reply_to = f"{bot.name}:{chat_id}:{reply_to}"
    return InboundMessage(
        channel=Channel.RUBIKA, external_id=f"{bot.name}:{chat_id}:{message_id}",
        sender=sender_id, text=text, attachments=tuple(attachments), in_reply_to=in_reply_to,
        received_at=received_now(received_at), recipient=bot.name, meta=meta,
    )


def _file(obj: Any) -> tuple[list[Attachment], list[dict[str, Any]]]:
    if not isinstance(obj, dict) or not isinstance(obj.get("file_id"), (str, int)) \
            or isinstance(obj.get("file_id"), bool) or not str(obj.get("file_id")):
        return [], []
    name = _str(obj.get("file_name"))
    ctype = safe_content_type(mimetypes.guess_type(name)[0] or "application/octet-stream")
    size = obj.get("size")  # a string of digits in Rubika's answers
    declared = int(size) if isinstance(size, (str, int)) and str(size).isdigit() else 0
    attachment = Attachment(filename=display_filename(name, ctype), content_type=ctype,
                            size=declared)
    return [attachment], [{"file_id": str(obj["file_id"]), "size": declared}]


def _contact(contact: Any) -> dict[str, Any] | None:
    if not isinstance(contact, dict) or not isinstance(contact.get("phone_number"), str):
        return None
    try:
        phone = normalize_phone(contact["phone_number"])
    except ValueError:
        return None  # not a number we could ever link; the text still says [contact]
    return {"phone": phone, "own": None}


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""

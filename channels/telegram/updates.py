"""One Bot API update (a JSON object) as an :class:`InboundMessage`, the same for webhook
and polling, Telegram and Bale.

- ``external_id`` is ``"<bot name>:<update_id>"``: unique per bot, so a retried webhook, a
  replayed update or the same update by webhook and by polling is one row (ingest's unique
  ``(channel, external_id)``). ``update_id`` is never assumed to be sequential.
- The channel is the bot's (``telegram`` or ``bale``): the same user id on the two is two
  customers (``router.identity`` namespaces messenger ids by channel).
- ``sender`` is the user id; ``recipient`` is the bot's name, so the reply leaves by the bot
  the customer wrote to; ``meta`` keeps ``chat_id``, ``bot``, ``update_id``, ``message_id``
  and the bot's ``default_team``.
- ``received_at`` is when we received the update; the message's ``date`` is only
  ``meta["sent_at"]`` (:mod:`channels.dates`).
- Text, or a caption; photos, documents, voice, audio and video as attachment metadata only
  (nothing downloaded): file ids in ``meta["files"]``, names cleaned for display.
- ``reply_to_message`` becomes ``in_reply_to = "<bot>:<chat>:<message_id>"``, the form our
  sent replies' provider ids take (``<bot>:<chat>:<id>,<id>``), for threading.
- A shared contact is kept as ``meta["contact"] = {"phone", "own"}`` (the number
  normalised; ``own`` when it is the sender's own, Telegram's "share my phone number").
  It is a hint for a person, never a link: the customer gets the phone identity only by the
  explicit, audited ``router.identity.link_identity`` (``kartabl customer link``), because
  anyone can send any number as a contact.

Ignored (``None``, and still acknowledged so Telegram stops resending): group, supergroup
and channel chats (a support bot answers people one to one; a group message is not a
request addressed to us, and answering into a group would expose the reply), messages from
bots, edited messages, callback queries and every other kind of update.
"""

from __future__ import annotations

import logging
import mimetypes
from datetime import datetime
from typing import Any

from channels.dates import iso, received_now, unix_time
from channels.email.attachments import display_filename, safe_content_type
from config.telegram import BotConfig
from kartabl.errors import InputError
from kartabl.messages import Attachment, InboundMessage
from kartabl.models import Channel
from router.identity import normalize_phone

log = logging.getLogger(__name__)

_FILE_KINDS = ("document", "voice", "audio", "video", "video_note")
_DEFAULT_TYPES = {"photo": "image/jpeg", "voice": "audio/ogg", "video_note": "video/mp4"}
_OTHER_CONTENT = ("sticker", "location", "contact", "animation", "poll", "venue", "dice")


def update_id_of(update: Any) -> int:
    """The update's id; :class:`InputError` when ``update`` is not an update at all."""
    if not isinstance(update, dict):
        raise InputError("an update is a JSON object")
    uid = update.get("update_id")
    if not isinstance(uid, int) or isinstance(uid, bool) or uid < 0:
        raise InputError("an update needs a non-negative integer update_id")
    return uid


def to_message(update: Any, bot: BotConfig, *, strict_date: bool = True,
               received_at: datetime | None = None) -> InboundMessage | None:
    """The message in ``update``, or ``None`` when it is a kind we ignore (logged).
    Raises :class:`InputError` when ``update`` is malformed, including a ``date`` out of
    range when ``strict_date`` (a webhook); a poller passes False, since the update is
    already taken from Telegram: such a date is then left out of ``meta``. The message's
    time is ``received_at`` (ours: the webhook's arrival, the poll), by default now."""
    uid = update_id_of(update)
    msg = update.get("message")
    if msg is None:
        kinds = sorted(k for k in update if k != "update_id")
        log.info("bot %s: update %s ignored (%s)", bot.name, uid, ", ".join(kinds) or "empty")
        return None
    if not isinstance(msg, dict):
        raise InputError("update.message is not an object")
    chat, user = msg.get("chat"), msg.get("from")
    if not isinstance(chat, dict) or not isinstance(chat.get("id"), int):
        raise InputError("update.message.chat.id is missing")
    if chat.get("type") != "private":
        log.info("bot %s: update %s ignored: a %s chat (only private chats are handled)",
                 bot.name, uid, chat.get("type"))
        return None
    if not isinstance(user, dict) or not isinstance(user.get("id"), int):
        raise InputError("update.message.from.id is missing")
    if user.get("is_bot"):
        log.info("bot %s: update %s ignored: sent by a bot", bot.name, uid)
        return None
    attachments, files = _attachments(msg)
    text = _str(msg.get("text")) or _str(msg.get("caption"))
    if not text and not attachments:
        other = next((k for k in _OTHER_CONTENT if k in msg), "unsupported content")
        text = f"[{other}]"
    meta: dict[str, Any] = {
        "chat_id": chat["id"], "bot": bot.name, "update_id": uid,
        "message_id": msg.get("message_id"),
    }
    if files:
        meta["files"] = files
    if user.get("username"):
        meta["username"] = _str(user.get("username"))
    if bot.team:
        meta["default_team"] = bot.team  # router.placement's fallback team
    if "date" in msg:
        try:
            meta["sent_at"] = iso(unix_time(msg["date"]))
        except InputError as exc:
            if strict_date:
                raise InputError(f"update.message.date: {exc}") from None
            log.warning("bot %s: update %s has an unusable date (%s)", bot.name, uid, exc)
    contact = _contact(msg.get("contact"), user["id"])
    if contact is not None:
        meta["contact"] = contact
        if text == "[contact]":
            text = f"[contact: {contact['phone']}]"
    reply_to = msg.get("reply_to_message")
    in_reply_to = None
    if isinstance(reply_to, dict) and isinstance(reply_to.get("message_id"), int):
        in_reply_to = f"{bot.name}:{chat['id']}:{reply_to['message_id']}"
    return InboundMessage(
        channel=Channel(bot.channel), external_id=f"{bot.name}:{uid}", sender=str(user["id"]),
        sender_name=_name(user), text=text, attachments=tuple(attachments),
        in_reply_to=in_reply_to, received_at=received_now(received_at), recipient=bot.name,
        meta=meta,
    )


def _attachments(msg: dict[str, Any]) -> tuple[list[Attachment], list[dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    photos = msg.get("photo")
    if isinstance(photos, list) and photos and isinstance(photos[-1], dict):
        found.append(("photo", photos[-1]))  # sizes come smallest first: keep the largest
    found += [(k, msg[k]) for k in _FILE_KINDS if isinstance(msg.get(k), dict)]
    attachments, files = [], []
    for kind, obj in found:
        if not isinstance(obj.get("file_id"), str):
            continue
        ctype = safe_content_type(_str(obj.get("mime_type")) or
                                  _DEFAULT_TYPES.get(kind, "application/octet-stream"))
        size = obj.get("file_size")
        attachments.append(Attachment(
            filename=display_filename(
                _str(obj.get("file_name")) or kind + (mimetypes.guess_extension(ctype) or ""),
                ctype),
            content_type=ctype, size=size if isinstance(size, int) and size >= 0 else 0))
        files.append({"kind": kind, "file_id": obj["file_id"],
                      "file_unique_id": _str(obj.get("file_unique_id"))})
    return attachments, files


def _contact(contact: Any, sender_id: int) -> dict[str, Any] | None:
    if not isinstance(contact, dict) or not isinstance(contact.get("phone_number"), str):
        return None
    try:
        phone = normalize_phone(contact["phone_number"])
    except ValueError:
        return None  # not a phone number we could ever link; the text still says [contact]
    return {"phone": phone, "own": contact.get("user_id") == sender_id}


def _name(user: dict[str, Any]) -> str:
    name = " ".join(p for p in (_str(user.get("first_name")), _str(user.get("last_name"))) if p)
    if not name and user.get("username"):
        name = "@" + _str(user.get("username"))
    return name[:200]


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


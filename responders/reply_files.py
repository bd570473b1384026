"""Files attached to replies: checked and stored when the author adds them, listed for the
approver, read back by the senders.

- **Where they may go.** Email (MIME parts), Telegram and Bale (documents, or photos).
  SMS cannot carry a file: adding one to a reply on an SMS conversation is refused at once
  (``reply_file.sms``), and :mod:`responders.sms` refuses a reply with files permanently,
  should one reach it anyway.
- **Limits**, from the settings (:class:`Limits`): one file at most
  ``KARTABL_REPLY_FILE_MAX_BYTES`` (on Telegram and Bale never over the Bot API's 50 MB
  for a document), all the files of a reply together ``KARTABL_REPLY_FILES_MAX_BYTES``, at
  most :data:`MAX_FILES` files (each is one chat message; the sender's worst case is
  bounded by it). An empty file is refused (the Bot API refuses one too).
- **Names and types.** The name is the uploader's, made safe for display and for a
  download's Content-Disposition (:func:`channels.email.attachments.display_filename`: last
  path component, no control or bidi characters); it is never a path. The type is what the
  bytes are (:func:`sniff`), never what the browser claimed: HTML or SVG goes out as
  ``application/octet-stream``.
- **Storage** as inbound attachments: ``<attachments dir>/<key[:2]>/<key>``, the key the
  SHA-256 of the bytes (:func:`channels.email.attachments.store_payloads`); a row
  (:class:`~kartabl.models.ReplyAttachment`) links the file to its reply. Removing a file
  from a draft removes the row; the bytes stay (another reply or message may share them).
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from channels.email.attachments import display_filename, store_payloads
from config.settings import Settings
from kartabl import audit
from kartabl.errors import IllegalTransition, InputError, PermanentDeliveryError
from kartabl.messages import OutboundAttachment
from kartabl.models import Channel, Person, Reply, ReplyAttachment, ReplyState
from kartabl.workflow.access import load_reply, require_access, require_author

MAX_FILES: Final = 10
MB: Final = 1024 * 1024
# The Bot API's limits for a bot's multipart upload (core.telegram.org/bots/api#sending-files):
# 50 MB for other files, 10 MB for photos. Bale's Bot API follows Telegram's.
BOT_API_DOCUMENT_MAX: Final = 50 * MB
BOT_API_PHOTO_MAX: Final = 10 * MB
CHAT_CHANNELS: Final = frozenset({Channel.TELEGRAM, Channel.BALE, Channel.RUBIKA})

# Types recognised by their first bytes (the declared type and the name decide nothing).
_MAGIC: Final = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
)
# Containers whose real kind only the name tells (the bytes agree it is such a container).
_ZIP_KINDS: Final = frozenset({
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
})
_OLE_KINDS: Final = frozenset({"application/msword", "application/vnd.ms-excel",
                               "application/vnd.ms-powerpoint"})
_TEXT_KINDS: Final = frozenset({"text/plain", "text/csv"})


@dataclass(frozen=True, slots=True)
class Limits:
    per_file: int = 10 * MB
    per_reply: int = 20 * MB
    max_files: int = MAX_FILES

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.reply_file_max_bytes, settings.reply_files_max_bytes)

    def per_file_on(self, channel: Channel) -> int:
        return min(self.per_file, BOT_API_DOCUMENT_MAX) if channel in CHAT_CHANNELS \
            else self.per_file


@dataclass(frozen=True, slots=True)
class Upload:
    """One file as the browser sent it: ``size`` as received, ``data`` its bytes (empty
    when it was too large to be worth reading)."""

    filename: str
    size: int
    data: bytes


def sniff(data: bytes, filename: str) -> str:
    """The content type of ``data``: from its first bytes, or, for a ZIP or OLE container
    and for text, the type the name suggests when the bytes agree; otherwise
    ``application/octet-stream``."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    guessed = (mimetypes.guess_type(filename, strict=False)[0] or "").lower()
    if data.startswith(b"PK\x03\x04"):
        return guessed if guessed in _ZIP_KINDS else "application/zip"
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return guessed if guessed in _OLE_KINDS else "application/octet-stream"
    if guessed in _TEXT_KINDS and b"\x00" not in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return "application/octet-stream"
        return guessed
    return "application/octet-stream"


def _mb(n: int) -> int:
    return max(1, round(n / MB))


def check(channel: Channel, uploads: Sequence[Upload], existing: Sequence[ReplyAttachment],
          limits: Limits) -> None:
    """Refuse files ``channel`` cannot carry or the limits do not allow, before anything is
    stored (:class:`InputError` with a ``reply_file.*`` code the console words)."""
    if not uploads:
        return
    if channel is Channel.SMS:
        raise InputError("an SMS cannot carry files: remove them, or answer on another "
                         "channel", code="reply_file.sms")
    if channel in (Channel.INSTAGRAM, Channel.WHATSAPP):  # responders.meta: text only
        raise InputError(f"Kartabl sends no files on {channel.value} yet: remove them, or "
                         "answer on another channel", code="meta_window.files")
    per_file = limits.per_file_on(channel)
    for u in uploads:
        name = display_filename(u.filename, "application/octet-stream")
        if u.size == 0:
            raise InputError(f"the file {name!r} is empty", code="reply_file.empty",
                             params={"filename": name})
        if u.size > per_file:
            raise InputError(
                f"the file {name!r} is {u.size} bytes; at most {per_file} per file",
                code="reply_file.too_large",
                params={"filename": name, "size_mb": _mb(u.size), "limit_mb": _mb(per_file)})
    if len(existing) + len(uploads) > limits.max_files:
        raise InputError(f"at most {limits.max_files} files per reply",
                         code="reply_file.too_many", params={"limit": limits.max_files})
    total = sum(a.size for a in existing) + sum(u.size for u in uploads)
    if total > limits.per_reply:
        raise InputError(
            f"the reply's files come to {total} bytes; at most {limits.per_reply} together",
            code="reply_file.total_too_large",
            params={"size_mb": _mb(total), "limit_mb": _mb(limits.per_reply)})


def editable(session: Session, actor: Person | None, reply_id: int) -> Reply:
    """The reply, if ``actor`` may change its files: its author, while it is a draft (a
    rejected reply is edited back into one first)."""
    reply, conv = load_reply(session, reply_id)
    require_author("edit", actor, reply)
    require_access("edit", actor, conv)
    if reply.state is not ReplyState.DRAFT:  # sent, pending, approved...: the files are fixed
        raise IllegalTransition("edit", ReplyState(reply.state).value, f"reply {reply.id}",
                                params={"item": "reply", "id": reply.id})
    return reply


def add(session: Session, actor: Person | None, reply_id: int, uploads: Sequence[Upload], *,
        limits: Limits, directory: Path) -> list[ReplyAttachment]:
    """Attach ``uploads`` to draft ``reply_id`` (checked, stored, audited). The same bytes
    twice on a reply are kept once."""
    if not uploads:
        return []
    reply = editable(session, actor, reply_id)
    existing = files_of(session, [reply.id]).get(reply.id, [])
    check(Channel(reply.channel), uploads, existing, limits)
    known = {a.storage_key for a in existing}
    rows: list[ReplyAttachment] = []
    for u in uploads:
        key = hashlib.sha256(u.data).hexdigest()
        if key in known or len(u.data) != u.size:
            continue  # a repeat; (a short read cannot happen: Upload carries what came)
        known.add(key)
        store_payloads({key: u.data}, directory)
        kind = sniff(u.data, u.filename)
        rows.append(ReplyAttachment(
            reply_id=reply.id, filename=display_filename(u.filename, kind), content_type=kind,
            size=u.size, storage_key=key, added_by_id=actor.id if actor else None))
    session.add_all(rows)
    session.flush()
    if rows:
        audit.record(session, "reply.files_added", actor=actor,
                     conversation_id=reply.conversation_id, reply_id=reply.id,
                     files=[{"name": r.filename, "type": r.content_type, "size": r.size}
                            for r in rows])
    return rows


def remove(session: Session, actor: Person | None, reply_id: int,
           attachment_ids: Iterable[int]) -> int:
    """Take files off draft ``reply_id``; returns how many were removed."""
    ids = sorted(set(attachment_ids))
    if not ids:
        return 0
    reply = editable(session, actor, reply_id)
    gone = session.scalars(select(ReplyAttachment.filename).where(
        ReplyAttachment.reply_id == reply.id, ReplyAttachment.id.in_(ids))).all()
    if gone:
        session.execute(delete(ReplyAttachment).where(
            ReplyAttachment.reply_id == reply.id, ReplyAttachment.id.in_(ids)))
        audit.record(session, "reply.files_removed", actor=actor,
                     conversation_id=reply.conversation_id, reply_id=reply.id,
                     files=list(gone))
    return len(gone)


def files_of(session: Session, reply_ids: Iterable[int]) -> dict[int, list[ReplyAttachment]]:
    """Each reply's files, in the order they were added: one query."""
    ids = sorted(set(reply_ids))
    out: dict[int, list[ReplyAttachment]] = {}
    if not ids:
        return out
    for a in session.scalars(select(ReplyAttachment).where(ReplyAttachment.reply_id.in_(ids))
                             .order_by(ReplyAttachment.id)):
        out.setdefault(a.reply_id, []).append(a)
    return out


def outbound(session: Session, reply_id: int) -> tuple[OutboundAttachment, ...]:
    return tuple(OutboundAttachment(a.filename, a.content_type, a.size, a.storage_key)
                 for a in files_of(session, [reply_id]).get(reply_id, []))


def read(directory: Path | str, att: OutboundAttachment) -> bytes:
    """The stored bytes of ``att``, checked against their key. Raises
    :class:`PermanentDeliveryError` (before any provider call: nothing was sent) when the
    file is gone or changed: a retry would not bring it back."""
    key = att.storage_key
    path = Path(directory) / key[:2] / key
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PermanentDeliveryError(
            f"the attached file {att.filename!r} is no longer stored ({type(exc).__name__})"
        ) from exc
    if hashlib.sha256(data).hexdigest() != key:
        raise PermanentDeliveryError(f"the attached file {att.filename!r} was altered in "
                                     "storage")
    return data


def read_all(directory: Path | str | None, atts: Sequence[OutboundAttachment]
             ) -> list[tuple[OutboundAttachment, bytes]]:
    """A reply's files with their bytes, read before anything is sent, so a missing file (or
    a process without an attachments directory) fails the reply with nothing sent."""
    if not atts:
        return []
    if directory is None:
        raise PermanentDeliveryError("this process has no attachments directory to read "
                                     "the reply's files from")
    return [(a, read(directory, a)) for a in atts]

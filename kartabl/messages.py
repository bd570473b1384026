"""The normalised shapes every channel speaks: :class:`InboundMessage` in, and
:class:`OutboundMessage` out. Channels build them; nothing downstream sees raw input."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kartabl.models import Channel, MessageKind, utcnow


class SafeHtml(str):
    """HTML the ingest sanitiser made safe for a page (:func:`channels.email.html.sanitize`
    is the only code that constructs one). Ingest stores an :class:`InboundMessage`'s
    ``html`` in ``Message.safe_html``, the one column a page renders as HTML, only when it
    is a SafeHtml; any other string is kept in ``Message.html`` and never rendered."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str  # as the customer named it: untrusted, display only, never a path
    content_type: str
    size: int
    storage_key: str | None = None  # our generated name, when the bytes are stored
    content_id: str | None = None  # for inline cid: images

    def to_json(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "storage_key": self.storage_key,
            "content_id": self.content_id,
        }


@dataclass(frozen=True, slots=True)
class InboundMessage:
    channel: Channel
    external_id: str  # unique per channel: Message-ID, Kavenegar messageid, update_id ...
    sender: str  # normalised address: email, E.164 phone, messenger user id
    text: str  # the new text only, quoted history removed
    sender_name: str = ""
    subject: str = ""
    html: str | None = None  # sanitised: a SafeHtml, or it is never shown as HTML
    attachments: tuple[Attachment, ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    kind: MessageKind = MessageKind.MESSAGE
    received_at: datetime = field(default_factory=utcnow)
    recipient: str = ""  # which of our addresses / lines / bots it was sent to
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.external_id:
            raise ValueError("InboundMessage.external_id must not be empty")
        if not self.sender:
            raise ValueError("InboundMessage.sender must not be empty")
        object.__setattr__(self, "channel", Channel(self.channel))
        object.__setattr__(self, "kind", MessageKind(self.kind))
        # U+0000 is no text anyone wrote, and PostgreSQL refuses it in a text column: kept,
        # it made the insert fail (a 500, and a provider resending for ever)
        for name in ("text", "sender_name", "subject"):
            value = getattr(self, name)
            if "\x00" in value:
                object.__setattr__(self, name, value.replace("\x00", ""))


@dataclass(frozen=True, slots=True)
class OutboundAttachment:
    """A file that goes out with a reply: its bytes are read from the attachment store by
    the sender (``<attachments dir>/<key[:2]>/<key>``), never carried through the queue."""

    filename: str  # sanitised at upload: display only, never a path
    content_type: str  # sniffed from the bytes at upload
    size: int
    storage_key: str  # the SHA-256 of the bytes

    def to_json(self) -> dict[str, Any]:
        return {"filename": self.filename, "content_type": self.content_type,
                "size": self.size, "storage_key": self.storage_key, "content_id": None}


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One approved reply, rendered for its channel, as a sender receives it."""

    reply_id: int
    conversation_id: int
    channel: Channel
    recipient: str
    text: str
    idempotency_key: str  # fixed at approval: Message-ID, Kavenegar localid ...
    subject: str = ""
    html: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    # the files of the reply, in the order they were added (sent after or with the text)
    attachments: tuple[OutboundAttachment, ...] = ()

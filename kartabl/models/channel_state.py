"""Where the channels stand (pollers' cursors, mailboxes, mail kept aside) and what the
sandbox sender recorded: the state of the edges, beside the domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kartabl.models.base import Base, utcnow


class SandboxDelivery(Base):
    """What the sandbox sender 'sent'. It stands in for a provider's own records, so the
    outbox can reconcile a crash between send and record exactly as with a real provider."""

    __tablename__ = "sandbox_delivery"
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(500), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(1000), default="")
    body: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


# -- channels ---------------------------------------------------------------------------------


class ChannelCursor(Base):
    """Where a channel's poller stands, for channels whose position is one number (a
    Telegram bot's update offset, ...). Advanced only after what it covers is committed."""

    __tablename__ = "channel_cursor"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)  # e.g. "telegram:mybot"
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # -- rubika --
    # A position that is no number: Rubika's getUpdates answers an opaque string
    # (``next_offset_id``), kept exactly as given; ``value`` stays 0 for such a cursor.
    text_value: Mapped[str | None] = mapped_column(Text)


class PollerState(Base):
    """The health of one polled source (a mailbox, a bot, an SMS line), written by the
    poller runner (:mod:`channels.runner`): ``kartabl status`` and ``/readyz`` list the
    sources in an outage."""

    __tablename__ = "poller_state"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)  # e.g. "email:support"
    last_ok_at: Mapped[datetime | None]  # last successful pass
    failing_since: Mapped[datetime | None]  # first failure of the current outage, else NULL
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# -- channels: email ---------------------------------------------------------------------------


class MailboxState(Base):
    """Where the IMAP poller of one configured mailbox stands. UIDs are only meaningful
    under their UIDVALIDITY: when the server reports another one, every stored UID is void,
    the folder is read again from the start, and ingest's unique (channel, external_id)
    (Message-ID plus a content hash) drops what was already stored. Its health (last good
    pass, outage) is the poller runner's, in :class:`PollerState` (``email:<name>``)."""

    __tablename__ = "mailbox_state"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # the mailbox's config name
    folder: Mapped[str] = mapped_column(String(200), default="INBOX")
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class QuarantinedMail(Base):
    """A mail that could not be ingested (unparseable, oversized), or was stored without its
    body (``message_id`` set, the parser could not read the body): kept aside with its raw
    bytes so nothing is lost, counted in status and /readyz, and re-imported on demand
    (``kartabl email reimport``, which repairs the stored message). The poller moves on."""

    __tablename__ = "quarantined_mail"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_quarantined_mail_mailbox"),
        Index("ix_quarantined_mail_open", "reimported_at", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    # The IMAP folder the UID belongs to (the account's folder may be changed later).
    folder: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger, default=0)  # the whole mail's size
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    # Oversized mail keeps only its header here (the rows must stay small); the re-import
    # fetches the whole mail from the server by (folder, uidvalidity, uid).
    headers_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reimported_at: Mapped[datetime | None]
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))

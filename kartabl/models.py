"""The domain model: customers and identities, conversations, messages, replies,
people and teams, and the audit trail.

Conventions:
- every timestamp is stored as naive UTC and read back as aware UTC (:class:`UTCDateTime`),
  so SQLite and PostgreSQL compare alike;
- enums are stored as short strings with a CHECK constraint (portable, readable in SQL);
- constraints are named, so Alembic's batch mode can alter them on SQLite.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use kartabl.models.utcnow()")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda e: [m.value for m in e],
    )


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    TELEGRAM = "telegram"
    BALE = "bale"


class Role(enum.StrEnum):
    ADMIN = "admin"
    COORDINATOR = "coordinator"
    AGENT = "agent"


class ConversationStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"


class MessageKind(enum.StrEnum):
    MESSAGE = "message"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"


class ReplyState(enum.StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    REJECTED = "rejected"


# -- people -----------------------------------------------------------------------------------


class Team(Base):
    __tablename__ = "team"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    members: Mapped[list[TeamMember]] = relationship(back_populates="team")


class Person(Base):
    __tablename__ = "person"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    # How many open conversations the router may give this person at once.
    capacity: Mapped[int] = mapped_column(Integer, default=20)
    locale: Mapped[str] = mapped_column(String(8), default="fa")
    # Merging two customers moves conversations between them: a permission of its own.
    can_merge: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    teams: Mapped[list[TeamMember]] = relationship(back_populates="person")

    def __repr__(self) -> str:  # never show the password hash
        return f"<Person {self.id} {self.username!r} {self.role}>"


class TeamMember(Base):
    __tablename__ = "team_member"
    team_id: Mapped[int] = mapped_column(
        ForeignKey("team.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    team: Mapped[Team] = relationship(back_populates="members")
    person: Mapped[Person] = relationship(back_populates="teams")


# -- customers --------------------------------------------------------------------------------


class Customer(Base):
    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    tags: Mapped[list[Any]] = mapped_column(default=list)
    # Set when this customer was merged into another; the row stays for the audit trail.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    identities: Mapped[list[Identity]] = relationship(back_populates="customer")


class Identity(Base):
    """One way to reach a customer: (kind, normalised address), unique across customers.

    kind is 'email', 'phone' or a messenger name ('telegram', 'bale'): messenger ids are
    namespaced by messenger, so Telegram user 42 and Bale user 42 are different people.
    """

    __tablename__ = "identity"
    __table_args__ = (UniqueConstraint("kind", "address", name="uq_identity_kind_address"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    display: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    customer: Mapped[Customer] = relationship(back_populates="identities")


# -- conversations and messages --------------------------------------------------------------


class Conversation(Base):
    __tablename__ = "conversation"
    __table_args__ = (
        Index("ix_conversation_customer_channel_status", "customer_id", "channel", "status"),
        # The console's queues page by (last_message_at DESC, id DESC): each queue reads one
        # of these in order and stops at the page size (console/queues.py; measured on a
        # million conversations, README Performance).
        Index("ix_conversation_assignee_status", "assignee_id", "status", "last_message_at", "id"),
        Index("ix_conversation_team_status", "team_id", "status", "last_message_at", "id"),
        Index("ix_conversation_status_last", "status", "last_message_at", "id"),
        # overdue, open counts and the age filters: read from the index alone
        Index("ix_conversation_status_opened", "status", "opened_at", "first_response_at"),
        # every queue count of the page in one pass over the open rows, from the index alone
        # (console.queues.queue_counts groups by team with a FILTER per queue)
        Index("ix_conversation_counts", "status", "team_id",
              postgresql_include=["assignee_id", "opened_at", "first_response_at", "channel"]),
        # an agent's scope tested on a conversation reached by id (their approval queue and
        # its count join each pending reply to its conversation): no heap visit per reply
        Index("ix_conversation_scope", "id", postgresql_include=["assignee_id", "team_id"]),
        # triage is small and the coordinator's main screen: a partial index of it alone
        Index(
            "ix_conversation_triage", "last_message_at", "id",
            postgresql_where=text("status = 'open' AND assignee_id IS NULL"),
            sqlite_where=text("status = 'open' AND assignee_id IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "channel"))
    status: Mapped[ConversationStatus] = mapped_column(
        _enum(ConversationStatus, "conversation_status"), default=ConversationStatus.OPEN
    )
    subject: Mapped[str] = mapped_column(String(500), default="")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    # A conversation opened by a reply that came after the reopen window points to the old one.
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)
    customer: Mapped[Customer] = relationship()
    assignee: Mapped[Person | None] = relationship()
    team: Mapped[Team | None] = relationship()


class Message(Base):
    """A message in or out. Inbound rows are written before routing (conversation_id NULL,
    routed_at NULL) under the unique (channel, external_id) that makes ingest idempotent."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_message_channel_external_id"),
        Index("ix_message_unrouted", "routed_at", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "channel"))
    external_id: Mapped[str] = mapped_column(String(500))
    direction: Mapped[Direction] = mapped_column(_enum(Direction, "direction"))
    kind: Mapped[MessageKind] = mapped_column(
        _enum(MessageKind, "message_kind"), default=MessageKind.MESSAGE
    )
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    sender: Mapped[str] = mapped_column(String(320))
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    recipient: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(String(1000), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text)  # as given: never rendered as HTML
    # Written only from a kartabl.messages.SafeHtml (kartabl.ingest.html_columns): the mail's
    # HTML sanitised once at ingest, which pages serve as it is.
    safe_html: Mapped[str | None] = mapped_column(Text)
    in_reply_to: Mapped[str | None] = mapped_column(String(1000))
    references: Mapped[list[Any]] = mapped_column(default=list)
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    routed_at: Mapped[datetime | None]


class Reply(Base):
    """An answer drafted by a person, reviewed, then sent through the outbox."""

    __tablename__ = "reply"
    __table_args__ = (
        # the outbox and the approval queue by state; conversation_id included so that
        # counting an agent's pending replies joins from the index alone (console.queues)
        Index("ix_reply_state", "state", "updated_at", postgresql_include=["conversation_id"]),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    state: Mapped[ReplyState] = mapped_column(_enum(ReplyState, "reply_state"))
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "channel"))
    body: Mapped[str] = mapped_column(Text)
    # The text as the author submitted it, kept when the approver edits ``body``.
    original_body: Mapped[str | None] = mapped_column(Text)
    template: Mapped[str | None] = mapped_column(String(100))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    review_comment: Mapped[str | None] = mapped_column(Text)
    # Fixed at approval, so a resend after a crash is recognisable by the provider or by us:
    # the email Message-ID, Kavenegar's localid, the sandbox key.
    idempotency_key: Mapped[str | None] = mapped_column(String(500), unique=True)
    provider_id: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    approved_at: Mapped[datetime | None]
    sending_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    conversation: Mapped[Conversation] = relationship()


class Event(Base):
    """The audit trail: one row for every change, by whom (NULL actor = the system)."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_conversation", "conversation_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("reply.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


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
    (Message-ID plus a content hash) drops what was already stored."""

    __tablename__ = "mailbox_state"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # the mailbox's config name
    folder: Mapped[str] = mapped_column(String(200), default="INBOX")
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_ok_at: Mapped[datetime | None]  # last successful poll
    failing_since: Mapped[datetime | None]  # first failure of the current outage, else NULL
    last_error: Mapped[str | None] = mapped_column(Text)
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


# The console's sign-in tables live in their own module; importing it here registers them on
# Base.metadata wherever the models are loaded (Alembic, the tests' truncation).
from kartabl import auth_models as _auth_models  # noqa: E402,F401

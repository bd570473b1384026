"""Customers and their identities, conversations, messages, replies, and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kartabl.models.base import (
    Base,
    Channel,
    ConversationStatus,
    Direction,
    MessageKind,
    ReplyState,
    enum_column,
    utcnow,
)
from kartabl.models.people import Person, Team

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
              postgresql_include=["assignee_id", "opened_at", "first_response_at", "channel",
                                  # the service clock's due times: overdue counted from here
                                  "first_response_due_at", "resolution_due_at"]),
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
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, "channel"))
    status: Mapped[ConversationStatus] = mapped_column(
        enum_column(ConversationStatus, "conversation_status"), default=ConversationStatus.OPEN
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
    # Set while status is 'snoozed': when the conversation comes back to the queues.
    snoozed_until: Mapped[datetime | None]
    # -- started by us --
    # A conversation a person opened by writing first (kartabl.workflow.start): who, to which
    # of the customer's identities (the outbox's recipient until the customer writes), and
    # from which of our addresses (mailbox address, SMS line or bot name; None: the
    # channel's default).
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    to_identity_id: Mapped[int | None] = mapped_column(ForeignKey("identity.id"))
    from_address: Mapped[str | None] = mapped_column(String(320))
    customer: Mapped[Customer] = relationship()
    assignee: Mapped[Person | None] = relationship(foreign_keys=[assignee_id])  # started_by_id too
    team: Mapped[Team | None] = relationship()
    # -- merge --
    # Set when this conversation was merged into another (kartabl.workflow.merge): the row
    # stays, closed, for its page and audit trail; what would have come here goes there.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    # -- service clock --
    # The targets as moments, counted in the team's business time with the pauses left out
    # (kartabl.service_clock.refresh). NULL: not computed (a row older than the clock: the
    # queues fall back to wall time from opened_at) or, for resolution, paused right now.
    # The *_warn_at: when 80% of the target's business time has run (breach warnings).
    first_response_due_at: Mapped[datetime | None] = mapped_column(index=True)
    resolution_due_at: Mapped[datetime | None] = mapped_column(index=True)
    first_response_warn_at: Mapped[datetime | None]
    resolution_warn_at: Mapped[datetime | None]
    # -- satisfaction --
    # The customer's rating at close, 1-5, and their optional comment (the website widget:
    # channels.webchat.rating); once per conversation, a second one is refused.
    satisfaction_score: Mapped[int | None]
    satisfaction_comment: Mapped[str | None] = mapped_column(Text)
    satisfaction_at: Mapped[datetime | None]


class ConversationPause(Base):
    """A span during which the conversation's resolution clock stood still (waiting on the
    customer). ``ended_at`` is NULL while the pause lasts. The service clock
    (business-time targets) is computed from these rows, so a change of a team's hours can
    recompute every due time from scratch."""

    __tablename__ = "conversation_pause"
    __table_args__ = (Index("ix_conversation_pause_conversation", "conversation_id", "started_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


class Message(Base):
    """A message in or out. Inbound rows are written before routing (conversation_id NULL,
    routed_at NULL) under the unique (channel, external_id) that makes ingest idempotent."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_message_channel_external_id"),
        Index("ix_message_unrouted", "routed_at", "id"),
        # A conversation's messages newest first, a window at a time (console.timeline_rows);
        # also every other lookup by conversation (no index on conversation_id alone: with
        # one, the planner sorted a long conversation's every row rather than stop early).
        Index("ix_message_conversation_time", "conversation_id", "received_at", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, "channel"))
    external_id: Mapped[str] = mapped_column(String(500))
    direction: Mapped[Direction] = mapped_column(enum_column(Direction, "direction"))
    kind: Mapped[MessageKind] = mapped_column(
        enum_column(MessageKind, "message_kind"), default=MessageKind.MESSAGE
    )
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
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
    # -- merge --
    # The conversation this row was in before a merge or split moved it (the first one, if
    # moved twice); NULL for a row never moved. No foreign key: conversations are never
    # deleted, and a second key to conversation would make Reply.conversation ambiguous.
    origin_conversation_id: Mapped[int | None]


# The reply states the conversation page's panels show (console.timeline_rows). Written as
# ORs, not IN: PostgreSQL prints an IN list back in a form that reads back differently, and
# bench.console_seed recreates indexes from their printed definitions and compares them.
PANEL_STATES = "state = 'pending_approval' OR state = 'draft' OR state = 'rejected'"


class Reply(Base):
    """An answer drafted by a person, reviewed, then sent through the outbox."""

    __tablename__ = "reply"
    __table_args__ = (
        # the outbox and the approval queue by state; conversation_id included so that
        # counting an agent's pending replies joins from the index alone (console.queues)
        Index("ix_reply_state", "state", "updated_at", postgresql_include=["conversation_id"]),
        # A conversation's replies in timeline order, a window at a time: the sent ones where
        # they went out, the others where they started (console.timeline_rows; two plain
        # indexes, as autogenerate cannot carry one on coalesce(sent_at, created_at)). The
        # first serves every other lookup by conversation too (none on conversation_id
        # alone, which the planner preferred, reading every reply of a long conversation).
        Index("ix_reply_conversation_sent", "conversation_id", "sent_at", "id"),
        Index("ix_reply_conversation_unsent", "conversation_id", "created_at", "id",
              postgresql_where=text("sent_at IS NULL"), sqlite_where=text("sent_at IS NULL")),
        # The conversation page's panels: its replies pending approval, drafts and rejected
        # ones. The query repeats the predicate as a literal (PANEL_STATES in
        # console.timeline_rows), so PostgreSQL matches it even in a generic plan.
        Index("ix_reply_panel", "conversation_id", "id",
              postgresql_where=text(PANEL_STATES), sqlite_where=text(PANEL_STATES)),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    state: Mapped[ReplyState] = mapped_column(enum_column(ReplyState, "reply_state"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, "channel"))
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
    # -- scheduled send --
    # Set: the reply leaves at this instant, never before (the outbox's claim checks it,
    # responders.dispatch); NULL: as soon as it is approved. kartabl.workflow.schedule.
    send_at: Mapped[datetime | None]
    # When the schedule was set: a customer message that came in after it holds the reply.
    scheduled_at: Mapped[datetime | None]
    # Set: held because the customer wrote after it was scheduled; it leaves only once a
    # person sends it now or reschedules it (or it goes back to draft).
    schedule_held_at: Mapped[datetime | None]
    # -- merge --
    origin_conversation_id: Mapped[int | None]  # as Message's
    # -- reply windows (Meta) --
    # Set: the reply goes to this identity of the customer rather than to the sender of
    # their last message: an Instagram or WhatsApp reply re-targeted to SMS once its
    # window closed (kartabl.workflow.windows.to_sms).
    to_identity_id: Mapped[int | None] = mapped_column(ForeignKey("identity.id"))


class Event(Base):
    """The audit trail: one row for every change, by whom (NULL actor = the system)."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_conversation", "conversation_id", "id"),
        # The timeline's activity items (conversation.*) in time order, a window at a time,
        # without stepping over the far more numerous message and reply events; kind
        # included for an index-only count. The query repeats this predicate as a literal
        # (console.timeline_rows.ACTIVITY_INDEX_WHERE): PostgreSQL matches it by its text.
        Index("ix_event_activity", "conversation_id", "at", "id",
              postgresql_where=text("kind LIKE 'conversation.%'"),
              sqlite_where=text("kind LIKE 'conversation.%'"),
              postgresql_include=["kind"]),
        # a reply's history (reply.* events) for the replies a page shows
        Index("ix_event_reply", "reply_id", "id",
              postgresql_where=text("reply_id IS NOT NULL"),
              sqlite_where=text("reply_id IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("reply.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # -- merge --
    origin_conversation_id: Mapped[int | None]  # as Message's

"""What :func:`console.timeline.conversation_view` returns: the conversation, its customer
with their other conversations, and the timeline's items (frozen dataclasses, no queries).

- :class:`MessageItem`: what the customer sent, and outbound rows that belong to no reply.
  ``html`` is the mail's HTML as ingest sanitised it (``Message.safe_html``): pages show
  it as stored, never sanitising again.
- :class:`ReplyItem`: one per reply, with its ``history`` of :class:`ReplyStep`.
- :class:`ActivityItem`: assignment, triage, referral, private note, close, reopen.

``actor`` is a display name; None is the system (router, outbox).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from kartabl.models import Channel, ConversationStatus, Direction, MessageKind, ReplyState
from responders import as_sent

ActivityKind = Literal["assigned", "triaged", "referred", "note", "closed", "reopened",
                       # -- merge -- (kartabl.workflow.merge and split)
                       "merged", "merged_into", "merge_undone", "split", "split_from"]

# -- the view ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdentityInfo:
    kind: str
    address: str
    display: str


@dataclass(frozen=True, slots=True)
class CustomerInfo:
    id: int
    display_name: str
    tags: list[Any]
    identities: list[IdentityInfo]


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    id: int
    customer_id: int
    channel: Channel
    status: ConversationStatus
    subject: str
    team_id: int | None
    team_name: str | None
    assignee_id: int | None
    assignee_name: str | None
    opened_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    last_message_at: datetime
    previous_id: int | None
    # -- merge --
    merged_into_id: int | None = None
    # -- satisfaction --
    satisfaction_score: int | None = None
    satisfaction_comment: str | None = None


@dataclass(frozen=True, slots=True)
class ConversationRef:
    id: int
    channel: Channel
    status: ConversationStatus
    subject: str
    opened_at: datetime
    last_message_at: datetime


@dataclass(frozen=True, slots=True)
class CustomerHistory:
    """The customer's other conversations on every channel that the actor may open.
    ``hidden`` counts those outside the actor's scope (named nowhere else); ``more`` those
    in scope beyond the :data:`~console.timeline.HISTORY_LIMIT` listed."""

    conversations: list[ConversationRef]
    hidden: int
    more: int


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    filename: str  # as the sender named it: display only
    content_type: str
    size: int
    storage_key: str | None  # None: listed, but the bytes were not kept (too large)
    content_id: str | None


@dataclass(frozen=True, slots=True)
class MessageItem:
    kind: Literal["message"]
    at: datetime
    actor: str | None  # the sender's name (inbound); None for our own outbound rows
    message_id: int
    direction: Direction
    message_kind: MessageKind
    channel: Channel
    sender: str
    sender_name: str
    recipient: str
    subject: str
    text: str
    # Message.safe_html: sanitised once at ingest (channels.email.html.sanitize), the only
    # writer of that column; None when the message has no HTML a page may show.
    html: str | None
    attachments: list[AttachmentInfo]
    # -- merge --
    origin: int | None = None  # the conversation it was in before a merge or split moved it

    def safe_html(self) -> str | None:
        """The HTML ready for a page, as ingest stored it (remote images removed there,
        inline ones as ``attachment:<key>`` of this message's own parts)."""
        return self.html or None


@dataclass(frozen=True, slots=True)
class ReplyStep:
    step: str  # the audit event without "reply.": submitted, rejected, approved, sent...
    at: datetime
    actor: str | None
    note: str | None  # the rejection comment, a failure reason, a skipped-review policy


@dataclass(frozen=True, slots=True)
class ReplyItem:
    kind: Literal["reply"]
    at: datetime
    actor: str | None  # the author
    reply_id: int
    state: ReplyState
    channel: Channel
    body: str  # what the customer gets (the approver's edit, if any)
    original_body: str | None  # the author's text when the approver edited it, else None
    template: str | None
    author_id: int
    approver_id: int | None
    approver: str | None
    review_comment: str | None  # the latest rejection's comment
    error: str | None  # why delivery failed (or was retried)
    attempts: int
    created_at: datetime
    approved_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    message_id: int | None  # the outbound message row, once sent
    history: list[ReplyStep] = field(default_factory=list)
    # What the customer received (the outbound row's rendered text, wrapper included), as
    # its channel carried it: SMS parts, chat messages, one mail. Empty until sent.
    sent: list[str] = field(default_factory=list)
    # The files that went with it (the outbound row's list), in the order they went.
    sent_files: list[as_sent.SentFile] = field(default_factory=list)
    # -- scheduled send --
    send_at: datetime | None = None  # it leaves then, not before (kartabl.workflow.schedule)
    schedule_held_at: datetime | None = None  # held: the customer wrote after it was set
    # -- merge --
    origin: int | None = None  # as MessageItem's


@dataclass(frozen=True, slots=True)
class ActivityItem:
    kind: ActivityKind
    at: datetime
    actor: str | None
    event_id: int
    note: str | None = None  # the referral note or the private note's text
    to_person: str | None = None
    to_team: str | None = None
    from_person: str | None = None
    from_team: str | None = None
    reason: str | None = None  # the router's reason (and rule) for its placement, English
    route: tuple[str | None, str | None] | None = None  # the same as (reason, rule)
    message_id: int | None = None  # the customer's message that reopened it
    # -- merge --
    origin: int | None = None  # as MessageItem's
    other_id: int | None = None  # merged/split: the conversation on the other side


TimelineItem = MessageItem | ReplyItem | ActivityItem


@dataclass(frozen=True, slots=True)
class ConversationView:
    conversation: ConversationInfo
    customer: CustomerInfo
    history: CustomerHistory
    timeline: list[TimelineItem]

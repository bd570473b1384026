"""What the console shows of merging and splitting conversations: the conversation page's
panel (the conversations it may be merged into, the undo while possible, whether its
messages may be split out) and the preview of a merge before anyone confirms it.

Every rule is :mod:`kartabl.workflow.merge`'s and :mod:`kartabl.workflow.split`'s; this
module only reads. Candidates are the same customer's conversations the reader may open,
newest first, never a merged one: a conversation of another customer is never offered
(that needs the customers merged first, :mod:`console.customers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console.queues import visible_clause
from kartabl.errors import KartablError
from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Event,
    Message,
    Person,
    Reply,
)
from kartabl.workflow import can_access
from kartabl.workflow import merge as wm

CANDIDATES: Final = 50  # the customer's conversations offered, newest first


@dataclass(frozen=True, slots=True)
class Candidate:
    id: int
    subject: str
    channel: Channel
    status: ConversationStatus
    last_message_at: datetime


@dataclass(frozen=True, slots=True)
class Panel:
    """``candidates``: where this conversation may be merged into; ``merged_into``: the
    conversation it was merged into (its page says so); ``undo``: the merge the reader may
    undo from here, with ``undo_other`` the conversation on its other side."""

    candidates: list[Candidate]
    merged_into: int | None
    undo: int | None
    undo_other: int | None
    may_split: bool


@dataclass(frozen=True, slots=True)
class Preview:
    """What merging ``source`` into ``target`` moves; ``refusal`` when the merge would be
    refused (shown before the confirmation, which is then not offered)."""

    source: Candidate
    target: Candidate
    messages: int
    replies: int
    notes: int
    events: int
    other_channel: bool  # replies will go out on the target's channel
    refusal: KartablError | None


def _candidate(conv: Conversation) -> Candidate:
    return Candidate(conv.id, conv.subject, Channel(conv.channel),
                     ConversationStatus(conv.status), conv.last_message_at)


def candidates(session: Session, actor: Person, conv: Conversation) -> list[Candidate]:
    c = Conversation
    rows = session.scalars(
        select(c).where(c.customer_id == conv.customer_id, c.id != conv.id,
                        c.merged_into_id.is_(None), visible_clause(session, actor))
        .order_by(c.last_message_at.desc(), c.id.desc()).limit(CANDIDATES))
    return [_candidate(r) for r in rows]


def panel(session: Session, actor: Person, cid: int) -> Panel:
    """The page's merge panel for conversation ``cid`` (already known to be in scope)."""
    conv = wm.visible_conversation(session, actor, cid)
    if conv.merged_into_id is not None:
        record, found = wm.merge_of_source(session, conv.id), []
    else:
        record, found = wm.latest_merge(session, conv.id), candidates(session, actor, conv)
    undo = other = None
    if record is not None:
        a = session.get(Conversation, record.target_id)
        b = session.get(Conversation, record.source_id)
        if (a is not None and b is not None and can_access(actor, a) and can_access(actor, b)
                and wm.undo_refusal(session, record, b, a) is None):
            undo, other = record.id, (b.id if a.id == conv.id else a.id)
    return Panel(found, conv.merged_into_id, undo, other,
                 may_split=conv.merged_into_id is None)


def preview(session: Session, actor: Person, source_id: int, target_id: int) -> Preview:
    """Merging ``source_id`` into ``target_id``: NotFound when either is outside the
    reader's scope; otherwise what would move, and the refusal, if any."""
    source = wm.visible_conversation(session, actor, source_id)
    target = wm.visible_conversation(session, actor, target_id)
    refusal: KartablError | None = None
    try:
        wm.check_merge(session, actor, source, target)
    except KartablError as exc:
        refusal = exc

    def count(model: type[Message] | type[Reply] | type[Event], *where: object) -> int:
        return int(session.scalar(select(func.count()).select_from(model).where(
            model.conversation_id == source.id, *where)) or 0)  # type: ignore[arg-type]

    return Preview(
        _candidate(source), _candidate(target), messages=count(Message),
        replies=count(Reply), notes=count(Event, Event.kind == "conversation.note"),
        events=count(Event), other_channel=source.channel != target.channel, refusal=refusal)

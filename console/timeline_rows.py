"""The rows of one window of a conversation's timeline, read by index: the newest ``size``
items before a cursor, and no more (:mod:`console.timeline` makes them items).

The timeline merges three sources, each in its own order, which is the timeline's
(:func:`console.timeline_window.item_key`): messages by ``(received_at, id)``, replies by
``(sent_at, id)`` once sent and ``(created_at, id)`` until then, activity events by
``(at, id)``. Each is read newest first from an index in that order
(``ix_message_conversation_time``, ``ix_reply_conversation_sent``, the partial
``ix_reply_conversation_unsent`` and ``ix_event_activity``), stopping at ``size`` rows (a
keyset: ``WHERE key < cursor ORDER BY key DESC LIMIT size``); they are merged and the
newest ``size`` kept. So a page reads at most ``4 * size`` timeline rows whatever the
conversation's length. ``size`` 0 reads them all (``?all=1``, the JSON API).

An outbound message row that is a reply's (written by responders.outbound.record_outbound
when it was sent) is shown as that reply, not as a bubble of its own. It is recognised by
``(channel, external_id)`` being the reply's ``(channel, idempotency_key)``: the outbox
writes it so (with ``meta.reply_id``), and both pairs are unique and indexed, so the
test costs one index probe (``meta`` is JSON, which no index covers).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    func,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from console.timeline_window import ItemKey
from kartabl.models import Direction, Event, Message, Reply, ReplyState
from kartabl.models.conversations import PANEL_STATES

ACTIVITY_KINDS: Final = ("conversation.assigned", "conversation.triaged",
                         "conversation.referred", "conversation.note", "conversation.closed",
                         "conversation.reopened",
                         # -- merge --
                         "conversation.merged", "conversation.merged_into",
                         "conversation.merge_undone", "conversation.split",
                         "conversation.split_from")
REPLY_EVENT_KINDS: Final = frozenset({
    "reply.drafted", "reply.edited", "reply.submitted", "reply.approved", "reply.rejected",
    "reply.sending", "reply.sent", "reply.retry", "reply.failed", "reply.delivered",
    "reply.bounced",
})
# The predicate of the partial index ix_event_activity, written as the index has it (as a
# literal, not a parameter: the planner proves the index applies from the same text).
ACTIVITY_INDEX_WHERE: Final = "kind LIKE 'conversation.%'"
_ACTIVITY = text("event.kind LIKE 'conversation.%'")
# as ix_reply_panel has it, literally (the column qualified: the query joins message too)
_PANEL = text("(" + PANEL_STATES.replace("state =", "reply.state =") + ")")

# What the timeline reads of each row (attribute access as on the models).
MESSAGE_COLUMNS: Final = (
    Message.id, Message.direction, Message.kind, Message.channel, Message.sender,
    Message.sender_name, Message.recipient, Message.subject, Message.text, Message.safe_html,
    Message.attachments, Message.received_at, Message.origin_conversation_id,
)
REPLY_COLUMNS: Final = (
    Reply.id, Reply.author_id, Reply.approved_by_id, Reply.state, Reply.channel, Reply.body,
    Reply.original_body, Reply.template, Reply.review_comment, Reply.error, Reply.attempts,
    Reply.created_at, Reply.approved_at, Reply.sent_at, Reply.delivered_at,
    Reply.send_at, Reply.schedule_held_at,  # scheduled send (kartabl.workflow.schedule)
    Reply.origin_conversation_id,
    # the outbound row of a sent reply (see _sent_row): its id and what the customer got
    Message.id.label("sent_id"), Message.text.label("sent_text"),
    Message.attachments.label("sent_attachments"),
)
EVENT_COLUMNS: Final = (
    Event.id, Event.kind, Event.at, Event.actor_id, Event.reply_id, Event.message_id,
    Event.data, Event.origin_conversation_id,
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# The largest id an INTEGER column holds on PostgreSQL: a cursor or a page version may name
# a larger one (they are the client's), which must not reach the database as a parameter
# (an out-of-range error, a 500). Every id is at most this, so larger ones compare alike.
MAX_ID: Final = 2**31 - 1


def moment(key: ItemKey) -> datetime:
    return _EPOCH + timedelta(microseconds=key[0])


def before(at: Any, row_id: Any, source: int, key: ItemKey | None) -> ColumnElement[bool]:
    """Rows of ``source`` (0 message, 1 reply, 2 activity) whose item key is below ``key``.
    Written as ``at <= t AND (at < t OR id < i)`` rather than a row comparison: the index
    condition is the plain ``at <= t`` on both databases, the rest filters the few rows
    of that very microsecond."""
    if key is None:
        return true()
    t, (_, src, rid) = moment(key), key
    if source < src:
        return at <= t
    if source > src:
        return at < t
    if rid > MAX_ID:  # above every id: the whole of that microsecond comes before
        return at <= t
    return and_(at <= t, or_(at < t, row_id < rid))


def _replies_q() -> Select[*tuple[Any, ...]]:
    """Reply rows with their outbound message row, if sent (by the unique (channel,
    external_id): an index probe per reply). Built once: building a select of this many
    columns cost more than running it (``where`` copies, leaving this one as it is)."""
    return _REPLIES


_REPLIES: Final = select(*REPLY_COLUMNS).outerjoin(Message, and_(
    Message.channel == Reply.channel, Message.external_id == Reply.idempotency_key,
    Message.conversation_id == Reply.conversation_id, Message.direction == Direction.OUT))
_MESSAGES: Final = select(*MESSAGE_COLUMNS)
_EVENTS: Final = select(*EVENT_COLUMNS)


def _is_reply_row() -> ColumnElement[bool]:
    """The message row is the outbound copy of one of its conversation's replies."""
    return and_(Message.direction == Direction.OUT, exists().where(
        Reply.conversation_id == Message.conversation_id, Reply.channel == Message.channel,
        Reply.idempotency_key == Message.external_id))


def messages(session: Session, cid: int, key: ItemKey | None, size: int) -> Sequence[Any]:
    """The newest ``size`` messages shown as messages before ``key``, newest first."""
    q = (_MESSAGES
         .where(Message.conversation_id == cid, before(Message.received_at, Message.id, 0, key),
                ~_is_reply_row())
         .order_by(Message.received_at.desc(), Message.id.desc()))
    return session.execute(q.limit(size) if size else q).all()


def replies(session: Session, cid: int, key: ItemKey | None, size: int) -> list[Any]:
    """The newest ``size`` replies before ``key``, newest first: the newest sent ones and
    the newest unsent ones (an index each), merged; one statement."""
    parts = []
    for sent in (True, False):
        at = Reply.sent_at if sent else Reply.created_at
        q = _replies_q().where(Reply.conversation_id == cid,
                               Reply.sent_at.is_not(None) if sent else Reply.sent_at.is_(None),
                               before(at, Reply.id, 1, key))
        # each part ordered and cut in a subquery of its own (SQLite takes no ORDER BY in
        # a member of a UNION otherwise)
        parts.append(q.order_by(at.desc(), Reply.id.desc()).limit(size).subquery().select()
                     if size else q)
    found = list(session.execute(union_all(*parts)).all())
    found.sort(key=lambda r: (r.sent_at or r.created_at, r.id), reverse=True)
    return found[:size] if size else found


def activities(session: Session, cid: int, key: ItemKey | None, size: int) -> Sequence[Any]:
    q = (_EVENTS
         .where(Event.conversation_id == cid, _ACTIVITY, Event.kind.in_(ACTIVITY_KINDS),
                before(Event.at, Event.id, 2, key))
         .order_by(Event.at.desc(), Event.id.desc()))
    return session.execute(q.limit(size) if size else q).all()


def count_before(session: Session, cid: int, key: ItemKey) -> int:
    """How many items come before ``key``: one statement of four counts, from the indexes
    the windows are read by (index-only but for outbound rows, which are tested for being
    a reply's). No row leaves the database."""
    c = func.count()
    counts = (
        select(c).select_from(Message).where(
            Message.conversation_id == cid, before(Message.received_at, Message.id, 0, key),
            ~_is_reply_row()).scalar_subquery(),
        select(c).select_from(Reply).where(
            Reply.conversation_id == cid, Reply.sent_at.is_not(None),
            before(Reply.sent_at, Reply.id, 1, key)).scalar_subquery(),
        select(c).select_from(Reply).where(
            Reply.conversation_id == cid, Reply.sent_at.is_(None),
            before(Reply.created_at, Reply.id, 1, key)).scalar_subquery(),
        select(c).select_from(Event).where(
            Event.conversation_id == cid, _ACTIVITY, Event.kind.in_(ACTIVITY_KINDS),
            before(Event.at, Event.id, 2, key)).scalar_subquery(),
    )
    return sum(int(n or 0) for n in session.execute(select(*counts)).one())


def replies_since(session: Session, cid: int, first: ItemKey | None,
                  newest: int) -> list[Any]:
    """Replies with ``id <= newest`` whose key is at or after ``first`` (None: all), oldest
    first: those a page rendered from ``first`` on shows (its status poll)."""
    newest = min(newest, MAX_ID)
    def since(at: Any) -> ColumnElement[bool]:
        return true() if first is None else ~before(at, Reply.id, 1, first)

    found = list(session.execute(union_all(
        _replies_q().where(Reply.conversation_id == cid, Reply.id <= newest,
                           Reply.sent_at.is_not(None), since(Reply.sent_at)),
        _replies_q().where(Reply.conversation_id == cid, Reply.id <= newest,
                           Reply.sent_at.is_(None), since(Reply.created_at)))).all())
    found.sort(key=lambda r: (r.sent_at or r.created_at, r.id))
    return found


def panel_replies(session: Session, cid: int, author_id: int) -> Sequence[Any]:
    """The replies the page's panels show, whatever their place in the timeline: every one
    pending approval, and ``author_id``'s drafts and rejected ones (by the partial index
    ``ix_reply_panel``), oldest first."""
    return session.execute(
        _replies_q()
        .where(Reply.conversation_id == cid, _PANEL, or_(
            Reply.state == ReplyState.PENDING_APPROVAL, Reply.author_id == author_id))
        .order_by(Reply.id)
    ).all()


def reply_events(session: Session, reply_ids: Iterable[int]) -> Sequence[Any]:
    """The ``reply.*`` audit events of these replies, oldest first (by ``ix_event_reply``)."""
    ids = sorted(set(reply_ids))  # none: still asked, so the page's query count is fixed
    return session.execute(
        _EVENTS
        # not by conversation too: the replies are the conversation's, and ANDing in
        # ix_event_conversation would read every event of a long conversation
        .where(Event.reply_id.in_(ids), Event.kind.in_(sorted(REPLY_EVENT_KINDS)))
        .order_by(Event.id)
    ).all()

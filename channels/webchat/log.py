"""The visitor's event log: what the widget shows, in order, each event once.

Every event gets the visitor's next sequence number in the transaction that writes it: the
visitor row is locked (``FOR UPDATE``; SQLite's every transaction is ``BEGIN IMMEDIATE``),
``last_seq`` moves by one and the event takes it, so sequence numbers of one visitor are
committed in order, without gaps, and a reader that has seen ``n`` has seen every event up
to ``n``. Each event also has a key unique per visitor, so writing the same event twice (a
retried POST, a reply sent again after an unknown outcome, two web processes noticing the
same draft) is a no-op that returns the first one's sequence number.

The log is per visitor rather than per conversation: a visitor's message is shown (and gets
its sequence number) before the router has put it in a conversation, and a visitor who
comes back after a close keeps one continuous chat. Each event that belongs to a
conversation knows it through its message or reply.

The notices (:func:`sync_notices`) are derived from the cartable: a reply drafted on a
conversation a visitor wrote in is a "your answer is being prepared" event (never the
draft's text), a close is a "closed" event. Whoever notices first writes them; the keys
make the others' writes no-ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from kartabl import live
from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    Reply,
    ReplyState,
    WebchatEvent,
    WebchatVisitor,
    utcnow,
)

MESSAGE, REPLY, PREPARING, CLOSED = "message", "reply", "preparing", "closed"
UNSENT = (ReplyState.DRAFT, ReplyState.PENDING_APPROVAL, ReplyState.APPROVED,
          ReplyState.SENDING)
NOTICE_HORIZON = timedelta(days=2)  # older drafts and closes are nobody's news any more
READ_BATCH = 500


@dataclass(frozen=True, slots=True)
class Appended:
    seq: int
    created: bool


def append(session: Session, visitor_id: int, kind: str, key: str, *, text: str = "",
           message_id: int | None = None, reply_id: int | None = None,
           conversation_id: int | None = None) -> Appended:
    """Add one event to the visitor's log (the caller commits), or find the one with this
    key. The streams of the visitor are woken after the commit."""
    visitor = session.scalar(
        select(WebchatVisitor).where(WebchatVisitor.id == visitor_id)
        .with_for_update().execution_options(populate_existing=True))
    if visitor is None:
        raise LookupError(f"no webchat visitor {visitor_id}")
    found = session.scalar(select(WebchatEvent.seq).where(
        WebchatEvent.visitor_id == visitor_id, WebchatEvent.key == key))
    if found is not None:
        return Appended(found, False)
    visitor.last_seq += 1
    session.add(WebchatEvent(
        visitor_id=visitor_id, seq=visitor.last_seq, kind=kind, key=key, text=text,
        message_id=message_id, reply_id=reply_id, conversation_id=conversation_id))
    session.flush()
    live.wake_after_commit(session)
    return Appended(visitor.last_seq, True)


def event_json(e: WebchatEvent) -> dict[str, Any]:
    """What the widget receives: the text only for messages and replies."""
    out: dict[str, Any] = {"seq": e.seq, "kind": e.kind, "at": e.created_at.isoformat()}
    if e.kind in (MESSAGE, REPLY):
        out["text"] = e.text
    if e.kind == MESSAGE:
        out["client_id"] = e.key.removeprefix("m:")
    return out


def read_after(session: Session, visitor_id: int, after: int,
               limit: int = READ_BATCH) -> list[WebchatEvent]:
    """The visitor's events with a sequence number above ``after``, in order."""
    return list(session.scalars(
        select(WebchatEvent)
        .where(WebchatEvent.visitor_id == visitor_id, WebchatEvent.seq > after)
        .order_by(WebchatEvent.seq).limit(limit)))


def last_seq(session: Session, visitor_id: int) -> int:
    return int(session.scalar(select(WebchatVisitor.last_seq)
                              .where(WebchatVisitor.id == visitor_id)) or 0)


def visitor_of_conversation(session: Session, conversation_id: int) -> int | None:
    """The visitor whose message is the conversation's latest on the widget."""
    key = session.scalar(
        select(Message.sender).where(
            Message.conversation_id == conversation_id, Message.channel == Channel.WEBCHAT,
            Message.direction == Direction.IN)
        .order_by(Message.id.desc()).limit(1))
    if key is None:
        return None
    return session.scalar(select(WebchatVisitor.id).where(WebchatVisitor.key == key))


def sync_notices(session: Session) -> int:
    """Write the notices not written yet (commits); returns how many were new. Cheap when
    there is nothing to do: two indexed anti-joins over the last days' rows."""
    since = utcnow() - NOTICE_HORIZON
    drafts = session.execute(
        select(Reply.id, Reply.conversation_id).where(
            Reply.channel == Channel.WEBCHAT, Reply.state.in_(UNSENT),
            Reply.created_at > since,
            ~exists().where(WebchatEvent.reply_id == Reply.id,
                            WebchatEvent.kind == PREPARING))
        .order_by(Reply.id).limit(100)).all()
    closes = session.execute(
        select(Conversation.id, Conversation.resolved_at).where(
            Conversation.channel == Channel.WEBCHAT,
            Conversation.status == ConversationStatus.CLOSED,
            Conversation.resolved_at > since,
            ~exists().where(and_(WebchatEvent.conversation_id == Conversation.id,
                                 WebchatEvent.kind == CLOSED,
                                 WebchatEvent.created_at >= Conversation.resolved_at)))
        .order_by(Conversation.id).limit(100)).all()
    session.rollback()  # end the read: each notice is its own short transaction
    new = 0
    for reply_id, conversation_id in drafts:
        visitor_id = visitor_of_conversation(session, conversation_id)
        if visitor_id is not None:
            new += append(session, visitor_id, PREPARING, f"p:{reply_id}",
                          reply_id=reply_id).created
        session.commit()
    for conversation_id, resolved_at in closes:
        visitor_id = visitor_of_conversation(session, conversation_id)
        if visitor_id is not None and resolved_at is not None:
            # The close's hook (the satisfaction rating at close, to come) reads this event.
            new += append(session, visitor_id, CLOSED,
                          f"c:{conversation_id}:{resolved_at.timestamp():.6f}",
                          conversation_id=conversation_id).created
        session.commit()
    return new

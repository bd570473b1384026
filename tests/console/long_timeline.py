"""A long conversation for the timeline-window tests, and the timeline it must show worked
out from the rows with the rule the console had before it read windows (an outbound row
whose ``meta.reply_id`` is one of the conversation's replies is that reply, not a bubble).

Rows are written as the app writes them where it matters: the sent replies' outbound rows
by responders.outbound.record_outbound (the one writer of outbound messages), events as
kartabl.audit does; timestamps are set explicitly so that the order is known."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.timeline import ACTIVITY_KINDS
from console.timeline_window import ItemKey, row_key
from kartabl import audit
from kartabl.messages import OutboundMessage
from kartabl.models import (
    Conversation,
    Direction,
    Event,
    Message,
    MessageKind,
    Person,
    Reply,
    ReplyState,
    utcnow,
)
from responders.outbound import record_outbound


@dataclass(frozen=True)
class Long:
    cid: int
    old_pending: int  # pending approval, older than every message
    rejected: int  # the author's, rejected, in the middle
    draft: int  # the author's draft, in the middle
    others_draft: int  # the approver's own draft: in no one else's drafts panel
    rows: int  # message, reply and event rows of the conversation


def build(s: Session, conv: Conversation, author: Person, approver: Person, n: int) -> Long:
    """``n`` more inbound messages a minute apart, every second one answered by a sent reply
    (its outbound row and a ``reply.sent`` event), a note every 25, an outbound row of no
    reply, and the replies the panels show, one of them older than everything."""
    start = utcnow() - timedelta(days=40)
    first = s.scalars(select(Message).where(Message.conversation_id == conv.id)).one()
    first.received_at = start
    sender = first.sender
    pending = Reply(conversation_id=conv.id, author_id=author.id, channel=conv.channel,
                    state=ReplyState.PENDING_APPROVAL, body="old pending reply",
                    created_at=start + timedelta(seconds=30))
    s.add(pending)
    messages: list[Message] = []
    sent: list[Reply] = []
    for i in range(1, n + 1):
        at = start + timedelta(minutes=2 * i)
        messages.append(Message(
            channel=conv.channel, external_id=f"long-{conv.id}-{i}", direction=Direction.IN,
            kind=MessageKind.MESSAGE, conversation_id=conv.id, customer_id=conv.customer_id,
            sender=sender, text=f"long message {i:03d}", received_at=at, routed_at=at))
        if i % 2 == 0:
            sent.append(Reply(
                conversation_id=conv.id, author_id=author.id, channel=conv.channel,
                state=ReplyState.SENT, body=f"long reply {i:03d}", approved_by_id=approver.id,
                idempotency_key=f"long-key-{conv.id}-{i}", attempts=1,
                created_at=at + timedelta(seconds=10), approved_at=at + timedelta(seconds=20),
                sent_at=at + timedelta(seconds=40)))
    s.add_all([*messages, *sent])
    s.flush()
    for r in sent:
        assert r.idempotency_key is not None and r.sent_at is not None
        row = record_outbound(s, OutboundMessage(
            reply_id=r.id, conversation_id=conv.id, channel=conv.channel, recipient=sender,
            text=r.body, idempotency_key=r.idempotency_key), provider_id=f"p{r.id}")
        row.received_at = r.sent_at
        assert r.approved_at is not None
        for kind, when in (("reply.approved", r.approved_at), ("reply.sent", r.sent_at)):
            audit.record(s, kind, actor=approver if kind == "reply.approved" else None,
                         conversation_id=conv.id, reply_id=r.id).at = when
    for i in range(0, n, 25):
        audit.record(s, "conversation.note", actor=approver, conversation_id=conv.id,
                     text=f"long note {i}").at = start + timedelta(minutes=2 * i, seconds=5)
    middle = start + timedelta(minutes=n)
    s.add(Message(  # outbound, but no reply's: shown as a message of its own
        channel=conv.channel, external_id=f"long-manual-{conv.id}", direction=Direction.OUT,
        kind=MessageKind.MESSAGE, conversation_id=conv.id, customer_id=conv.customer_id,
        sender="us", recipient=sender, text="sent by hand", received_at=middle,
        routed_at=middle))
    panel = [Reply(conversation_id=conv.id, author_id=who.id, channel=conv.channel,
                   state=state, body=body, created_at=middle + timedelta(seconds=k),
                   review_comment="shorter" if state == ReplyState.REJECTED else None)
             for k, (who, state, body) in enumerate((
                 (author, ReplyState.REJECTED, "rejected one"),
                 (author, ReplyState.DRAFT, "a draft"),
                 (approver, ReplyState.DRAFT, "the approver's draft")))]
    s.add_all(panel)
    s.commit()
    total = sum(len(s.scalars(select(t.id).where(t.conversation_id == conv.id)).all())
                for t in (Message, Reply, Event))
    return Long(conv.id, pending.id, panel[0].id, panel[1].id, panel[2].id, total)


def expected_keys(s: Session, cid: int) -> list[ItemKey]:
    """The timeline's item keys, oldest first, by the rule from before windows."""
    replies = s.scalars(select(Reply).where(Reply.conversation_id == cid)).all()
    ids = {r.id for r in replies}
    keys = [row_key(r.sent_at or r.created_at, 1, r.id) for r in replies]
    for m in s.scalars(select(Message).where(Message.conversation_id == cid)):
        rid = (m.meta or {}).get("reply_id")
        if not (m.direction == Direction.OUT and isinstance(rid, int) and rid in ids):
            keys.append(row_key(m.received_at, 0, m.id))
    keys += [row_key(e.at, 2, e.id) for e in s.scalars(
        select(Event).where(Event.conversation_id == cid, Event.kind.in_(ACTIVITY_KINDS)))]
    return sorted(keys)

"""Merging conversation B into conversation A of the same customer, and undoing it.

A merge moves every message, reply and audit event of B to A (one timeline, ordered by
time as every timeline is), each moved row remembering where it came from
(``origin_conversation_id``; the first origin when a row moves twice). B stays as a row:
closed, with ``merged_into_id`` pointing to A; the router sends whatever would have gone to
B to A (:func:`router.threading.thread`), and no workflow step runs on B any more
(:func:`kartabl.workflow.states.check_conversation`). Both sides are audited
(``conversation.merged`` on A, ``conversation.merged_into`` on B), and a
:class:`~kartabl.models.ConversationMerge` keeps the moved ids for the undo.

Decisions
- **Who.** Whoever may open both conversations: coordinators and admins, an agent when
  both are in their scope. Either outside the actor's scope is :class:`NotFound`, never a
  hint that it exists.
- **One customer.** Conversations of two customers are never merged here. With the merge
  permission (``Person.can_merge`` or admin, as for customers) the refusal says to merge
  the customers first (their conversations then belong to one customer: the customer
  merge's own checks and audit apply); without it the refusal is a PermissionDenied. So
  no agent pulls another customer's conversation into view through a conversation merge.
- **Channels may differ.** Replies go out on A's channel, to the customer's latest message
  on that channel; the console says so before the merge.
- **Pending replies.** Refused while B has a reply pending approval, approved or being
  sent: a reply must not change conversation under its reviewer or the outbox.
- **Undo** while nothing new happened on A since the merge: no audit event on A after the
  merge's (a message routed, a reply drafted or reviewed, a note, a state change all write
  one) and no newer message or reply. It moves exactly the recorded rows back (their
  origin as it was), and gives B back its status, resolved and snoozed times.

Every ``conversation_id`` change of merge, undo and split goes through :func:`move_rows`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from kartabl import audit, search, service_clock
from kartabl.errors import IllegalTransition, NotFound, PermissionDenied
from kartabl.models import (
    Conversation,
    ConversationMerge,
    ConversationPause,
    ConversationStatus,
    Customer,
    Event,
    Message,
    Person,
    Reply,
    ReplyState,
    Role,
    utcnow,
)
from kartabl.workflow import waiting
from kartabl.workflow.access import actor_name, can_access, load_conversation, require_actor

# What a merge moves, by the key used in ConversationMerge.moved.
TABLES: Final[Mapping[str, type[Message] | type[Reply] | type[Event]]] = {
    "messages": Message, "replies": Reply, "events": Event}
# A reply in these states belongs to its reviewer or to the outbox: it does not move.
IN_FLIGHT: Final = (ReplyState.PENDING_APPROVAL, ReplyState.APPROVED, ReplyState.SENDING)
_CHUNK: Final = 500  # ids per UPDATE ... IN (...)

Moves = dict[str, list[tuple[int, int | None]]]  # table -> [(row id, origin to set)]


def move_rows(session: Session, moves: Moves, to_conversation_id: int) -> None:
    """Put rows in conversation ``to_conversation_id``, each with the origin given: the one
    place where merge, undo and split change a row's ``conversation_id``.
    Core UPDATEs (a long conversation is thousands of rows), so the session's loaded rows
    of these tables are expired."""
    # The search index keeps a conversation id per message, sent reply and note: it moves
    # with its rows, in this transaction, so a hit never points to where a row was.
    docs = {"messages": "message_ids", "replies": "reply_ids", "events": "event_ids"}
    for name, rows in moves.items():
        model = TABLES[name]
        by_origin: dict[int | None, list[int]] = defaultdict(list)
        for row_id, origin in rows:
            by_origin[origin].append(row_id)
        for origin, ids in by_origin.items():
            for i in range(0, len(ids), _CHUNK):
                session.execute(
                    update(model).where(model.id.in_(ids[i:i + _CHUNK]))
                    .values(conversation_id=to_conversation_id, origin_conversation_id=origin)
                    .execution_options(synchronize_session=False))
                search.move_docs(session, to_conversation_id=to_conversation_id,
                                 **{docs[name]: ids[i:i + _CHUNK]})
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Message | Reply | Event):
            session.expire(obj)


def may_merge_customers(actor: Person) -> bool:
    """The customer merge's permission (console.customers.may_merge, router.identity)."""
    return actor.active and (actor.can_merge or actor.role is Role.ADMIN)


def visible_conversation(session: Session, actor: Person | None, cid: int) -> Conversation:
    """The conversation locked, or NotFound also when outside the actor's scope."""
    conv = session.get(Conversation, cid)
    if conv is None or (actor is not None and not can_access(actor, conv)):
        raise NotFound(f"conversation {cid} does not exist", code="missing",
                       params={"item": "conversation", "id": cid})
    return conv


def lock_pair(session: Session, actor: Person | None,
              ids: Iterable[int]) -> dict[int, Conversation]:
    """The conversations ``ids``, in scope, locked as routing locks: their customers first
    (id order), then the conversations (id order). So no message is threaded into one of
    them half-way through the move."""
    wanted = sorted(set(ids))
    convs = [visible_conversation(session, actor, cid) for cid in wanted]
    customers = sorted({c.customer_id for c in convs})
    session.scalars(select(Customer.id).where(Customer.id.in_(customers))
                    .order_by(Customer.id).with_for_update()).all()
    locked = {cid: load_conversation(session, cid) for cid in wanted}
    for conv in locked.values():  # again, as locked: a hand-over may have just committed
        visible_conversation(session, actor, conv.id)
    return locked


def require_unmerged(step: str, conv: Conversation) -> None:
    if conv.merged_into_id is not None:
        raise IllegalTransition(step, "merged", f"conversation {conv.id} was merged into "
                                f"{conv.merged_into_id}", code="conv_merge.merged",
                                params={"id": conv.id, "into": conv.merged_into_id})


def require_no_flight(step: str, code: str, conv: Conversation,
                      reply_ids: Sequence[int] | None, session: Session) -> None:
    """Refuse while one of the replies (``None``: every reply of ``conv``) is pending
    approval, approved or being sent."""
    q = select(Reply.id, Reply.state).where(Reply.conversation_id == conv.id,
                                            Reply.state.in_(IN_FLIGHT))
    if reply_ids is not None:
        q = q.where(Reply.id.in_(list(reply_ids) or [0]))
    row = session.execute(q.order_by(Reply.id).limit(1)).first()
    if row is not None:
        raise IllegalTransition(step, ReplyState(row.state).value,
                                f"reply {row.id} is {ReplyState(row.state).value}",
                                code=code, params={"id": conv.id, "reply": row.id})


def rows_of(session: Session, cid: int) -> dict[str, list[tuple[int, int | None]]]:
    """Every message, reply and event of conversation ``cid`` as (id, origin)."""
    out: dict[str, list[tuple[int, int | None]]] = {}
    for name, model in TABLES.items():
        out[name] = [(r.id, r.origin_conversation_id) for r in session.execute(
            select(model.id, model.origin_conversation_id)
            .where(model.conversation_id == cid).order_by(model.id))]
    return out


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _newest(session: Session, model: type[Message] | type[Reply], cid: int) -> int | None:
    return session.scalar(select(func.max(model.id)).where(model.conversation_id == cid))


# -- merge ---------------------------------------------------------------------------------


def check_merge(session: Session, actor: Person, source: Conversation,
                target: Conversation) -> None:
    """What refuses merging ``source`` into ``target`` (both already in scope), raised as
    :func:`merge` raises it: the console's preview asks before anyone confirms."""
    step = "merge conversations"
    if source.id == target.id:
        raise IllegalTransition(step, "same conversation", f"conversation {source.id}",
                                code="conv_merge.same", params={"id": source.id})
    if source.customer_id != target.customer_id:
        if may_merge_customers(actor):
            raise IllegalTransition(step, "other customer", "the conversations belong to two "
                                    "customers: merge the customers first",
                                    code="conv_merge.other_customer",
                                    params={"customer": source.customer_id})
        raise PermissionDenied(step, actor_name(actor), "the conversations belong to two "
                               "customers, and merging customers needs the merge permission",
                               code="conv_merge.other_customer_denied")
    require_unmerged(step, source)
    require_unmerged(step, target)
    require_no_flight(step, "conv_merge.pending", source, None, session)


def merge(session: Session, actor: Person | None, source_id: int,
          target_id: int) -> ConversationMerge:
    """Merge conversation ``source_id`` (B) into ``target_id`` (A). Does not commit."""
    step = "merge conversations"
    require_actor(step, actor)
    assert actor is not None
    if source_id == target_id:
        raise IllegalTransition(step, "same conversation", f"conversation {source_id}",
                                code="conv_merge.same", params={"id": source_id})
    locked = lock_pair(session, actor, (source_id, target_id))
    source, target = locked[source_id], locked[target_id]
    check_merge(session, actor, source, target)

    rows = rows_of(session, source.id)
    move_rows(session, {name: [(i, o if o is not None else source.id) for i, o in found]
                        for name, found in rows.items()}, target.id)
    record = ConversationMerge(
        source_id=source.id, target_id=target.id, actor_id=actor.id,
        moved={name: [[i, o] for i, o in found] for name, found in rows.items()},
        source_state={"status": ConversationStatus(source.status).value,
                      "resolved_at": _iso(source.resolved_at),
                      "snoozed_until": _iso(source.snoozed_until)},
        target_state={"last_message_at": _iso(target.last_message_at)},
    )
    if source.status is not ConversationStatus.CLOSED:
        source.resolved_at = utcnow()
    source.status = ConversationStatus.CLOSED
    waiting.leave_hold(session, source)  # a pause of a waiting B ends as a close would end it
    source.merged_into_id = target.id
    if source.last_message_at > target.last_message_at:
        target.last_message_at = source.last_message_at
    session.add(record)
    session.flush()
    counts = {name: len(found) for name, found in rows.items()}
    on_target = audit.record(
        session, "conversation.merged", actor=actor, conversation_id=target.id,
        customer_id=target.customer_id, other_id=source.id, merge_id=record.id,
        channel=str(source.channel), **counts)
    on_source = audit.record(
        session, "conversation.merged_into", actor=actor, conversation_id=source.id,
        customer_id=source.customer_id, other_id=target.id, merge_id=record.id, **counts)
    session.flush()
    record.target_event_id, record.source_event_id = on_target.id, on_source.id
    record.last_message_id = _newest(session, Message, target.id)
    record.last_reply_id = _newest(session, Reply, target.id)
    return record


# -- undo ----------------------------------------------------------------------------------


def undo_refusal(session: Session, record: ConversationMerge, source: Conversation,
                 target: Conversation) -> str | None:
    """Why the merge can no longer be undone (a ``conv_merge.*`` code), or None."""
    if record.undone_at is not None or source.merged_into_id != target.id:
        return "conv_merge.undone"
    if target.merged_into_id is not None:
        return "conv_merge.target_merged"
    news = session.scalar(select(Event.id).where(
        Event.conversation_id == target.id, Event.id > (record.target_event_id or 0)).limit(1))
    if news is None:
        news = session.scalar(select(Message.id).where(
            Message.conversation_id == target.id,
            Message.id > (record.last_message_id or 0)).limit(1))
    if news is None:
        news = session.scalar(select(Reply.id).where(
            Reply.conversation_id == target.id, Reply.id > (record.last_reply_id or 0)).limit(1))
    return "conv_merge.news" if news is not None else None


def latest_merge(session: Session, target_id: int) -> ConversationMerge | None:
    """The newest merge into ``target_id`` not undone: the only one an undo could concern
    (any later merge wrote an event on the target)."""
    return session.scalars(
        select(ConversationMerge).where(ConversationMerge.target_id == target_id,
                                        ConversationMerge.undone_at.is_(None))
        .order_by(ConversationMerge.id.desc()).limit(1)).first()


def merge_of_source(session: Session, source_id: int) -> ConversationMerge | None:
    return session.scalars(
        select(ConversationMerge).where(ConversationMerge.source_id == source_id,
                                        ConversationMerge.undone_at.is_(None))
        .order_by(ConversationMerge.id.desc()).limit(1)).first()


def load_merge(session: Session, actor: Person | None, merge_id: int) -> ConversationMerge:
    """The merge, or NotFound (also when either conversation is outside the scope)."""
    record = session.get(ConversationMerge, merge_id)
    if record is None:
        raise NotFound(f"merge {merge_id} does not exist", code="conv_merge.missing",
                       params={"id": merge_id})
    try:
        visible_conversation(session, actor, record.source_id)
        visible_conversation(session, actor, record.target_id)
    except NotFound:
        raise NotFound(f"merge {merge_id} does not exist", code="conv_merge.missing",
                       params={"id": merge_id}) from None
    return record


def undo(session: Session, actor: Person | None, merge_id: int) -> ConversationMerge:
    """Undo merge ``merge_id``: its rows back to B as they were, B reopened as it was.
    Refused once anything new happened on A. Does not commit."""
    step = "undo a merge"
    require_actor(step, actor)
    assert actor is not None
    record = load_merge(session, actor, merge_id)
    locked = lock_pair(session, actor, (record.source_id, record.target_id))
    session.refresh(record, with_for_update=True)
    source, target = locked[record.source_id], locked[record.target_id]
    why = undo_refusal(session, record, source, target)
    if why is not None:
        raise IllegalTransition(step, "changed since", f"merge {record.id}: {why}", code=why,
                                params={"id": target.id, "merge": record.id})
    moved = {name: [(int(i), o if isinstance(o, int) else None) for i, o in found]
             for name, found in (record.moved or {}).items() if name in TABLES}
    move_rows(session, moved, source.id)
    state = record.source_state or {}
    source.status = ConversationStatus(state.get("status", "open"))
    source.resolved_at = _when(state.get("resolved_at"))
    source.snoozed_until = _when(state.get("snoozed_until"))
    source.merged_into_id = None
    if source.status is ConversationStatus.WAITING:
        # waiting again: its clock stands still again from now (the merge ended the pause)
        session.add(ConversationPause(conversation_id=source.id, started_at=utcnow()))
        session.flush()
        service_clock.refresh(session, source, utcnow())
    before = _when((record.target_state or {}).get("last_message_at"))
    if before is not None:
        target.last_message_at = before
    record.undone_at, record.undone_by_id = utcnow(), actor.id
    for conv, other in ((target, source), (source, target)):
        audit.record(session, "conversation.merge_undone", actor=actor,
                     conversation_id=conv.id, customer_id=conv.customer_id, other_id=other.id,
                     merge_id=record.id)
    session.flush()
    return record

"""Scheduled send: a reply that leaves at a set instant, never before, and only while the
customer has not written since it was scheduled.

A schedule is ``Reply.send_at`` (aware UTC; the console reads it in the team's time zone)
with ``scheduled_at`` (when it was set). It does not replace approval: a scheduled draft or
pending reply still goes through :func:`kartabl.workflow.submit` / ``approve``, and an
approved one leaves at ``send_at``, not at its approval.

- **Never early.** The outbox's claim (:mod:`responders.dispatch`) takes a reply only when
  :func:`leaves_now` holds, inside the claim's own locked statement: whatever enqueued the
  job (the approval, the sweep, a retry, a stale job in Redis), a reply whose time has not
  come is ``"skipped"`` and stays ``approved``. The sweep (:mod:`workers.sweeps`) enqueues it
  once its time has come; the claim makes the send happen once, however many race.
- **Held when the customer writes first.** A customer message routed into the
  conversation after the schedule was set holds it (``schedule_held_at``):
  :func:`hold_on_inbound` from the router, in the transaction that attaches the message,
  telling the author and the approver (``schedule_held`` notifications). The claim checks
  the same condition itself (a customer message newer than ``scheduled_at``), so a race
  with the router never lets it out; the sweep's :func:`hold_overdue` then holds it and
  tells them.
- A held reply leaves only when a person acts: :func:`send_now`, :func:`schedule` again
  (a new time), or :func:`withdraw` (back to the author's drafts).

Who: the reply's author, or a coordinator/admin (the approver is one) who may see the
conversation; checks in the workflow's order (actor and scope, then state, then input).
Each step writes one audit event; the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from kartabl import audit, notifications
from kartabl.errors import IllegalTransition, InputError, PermissionDenied
from kartabl.models import (
    Conversation,
    Direction,
    Message,
    MessageKind,
    Person,
    Reply,
    ReplyState,
    utcnow,
)
from kartabl.tasks import enqueue_after_commit
from kartabl.workflow.access import REVIEWERS, actor_name, load_reply, require_access, require_actor
from kartabl.workflow.states import move_reply

RS = ReplyState
# A reply may be scheduled while it has not been claimed by the outbox.
SCHEDULABLE: Final = frozenset({RS.DRAFT, RS.PENDING_APPROVAL, RS.APPROVED})
MAX_AHEAD: Final = timedelta(days=366)
HOLD_BATCH: Final = 200


# -- the conditions the outbox and the sweep share ------------------------------------------


def customer_wrote_since() -> ColumnElement[bool]:
    """A customer message (not automatic mail) on the reply's conversation, attached to it
    after the reply was scheduled: routed then, whenever it was stored (a message stored
    before but routed after was seen by nobody who set the time)."""
    return exists().where(
        Message.conversation_id == Reply.conversation_id,
        Message.direction == Direction.IN, Message.kind == MessageKind.MESSAGE,
        func.coalesce(Message.routed_at, Message.created_at) > Reply.scheduled_at)


def _arrived(message: Message) -> datetime:
    """When a message reached its conversation (as :func:`customer_wrote_since` reads it):
    routed, else (never routed) stored."""
    return message.routed_at or message.created_at


def leaves_now(now: datetime) -> ColumnElement[bool]:
    """May the reply leave at ``now`` (its state aside)? Unscheduled: yes. Scheduled: once
    ``send_at`` has come, unless held or the customer wrote since it was scheduled."""
    return or_(Reply.send_at.is_(None), and_(
        Reply.send_at <= now, Reply.schedule_held_at.is_(None), ~customer_wrote_since()))


# -- who may ----------------------------------------------------------------------------------


def _load(session: Session, step: str, actor: Person | None,
          reply_id: int) -> tuple[Reply, Conversation, Person]:
    """The reply and its conversation (locked), once the actor may act on its schedule."""
    require_actor(step, actor)
    assert actor is not None
    reply, conv = load_reply(session, reply_id)
    require_access(step, actor, conv)
    if actor.role not in REVIEWERS and reply.author_id != actor.id:
        raise PermissionDenied(step, actor_name(actor),
                               f"only the author of reply {reply.id} or a coordinator may",
                               code="schedule.who", params={"id": reply.id})
    return reply, conv, actor


def _state(step: str, reply: Reply, allowed: frozenset[ReplyState]) -> None:
    if reply.state not in allowed:
        raise IllegalTransition(step, RS(reply.state).value, f"reply {reply.id}",
                                params={"item": "reply", "id": reply.id})


def _scheduled(step: str, reply: Reply) -> None:
    _state(step, reply, frozenset({RS.APPROVED}))
    if reply.send_at is None:
        raise IllegalTransition(step, RS(reply.state).value, f"reply {reply.id} is not scheduled",
                                code="schedule.not_scheduled", params={"id": reply.id})


# -- the steps --------------------------------------------------------------------------------


def check_time(send_at: datetime, now: datetime | None = None) -> datetime:
    """``send_at`` if it is an aware instant ahead of ``now`` and within a year."""
    if send_at.tzinfo is None:
        raise ValueError("naive send_at: pass an aware datetime")  # a bug, not input
    now = now or utcnow()
    if send_at <= now:
        raise InputError(f"the send time {send_at.isoformat()} has passed",
                         code="schedule.past")
    if send_at - now > MAX_AHEAD:
        raise InputError(f"the send time {send_at.isoformat()} is more than a year ahead",
                         code="schedule.too_far")
    return send_at


def schedule(session: Session, actor: Person | None, reply_id: int,
             send_at: datetime) -> Reply:
    """Set (or change) when the reply leaves; a held reply is released to the new time."""
    reply, conv, person = _load(session, "schedule", actor, reply_id)
    _state("schedule", reply, SCHEDULABLE)
    check_time(send_at)
    before = reply.send_at
    was_held = reply.schedule_held_at is not None
    reply.send_at, reply.scheduled_at, reply.schedule_held_at = send_at, utcnow(), None
    audit.record(
        session, "reply.scheduled", actor=person, conversation_id=conv.id, reply_id=reply.id,
        send_at=send_at.isoformat(), previous=before.isoformat() if before else None,
        was_held=was_held)
    return reply


def cancel(session: Session, actor: Person | None, reply_id: int) -> Reply:
    """Take the time off a reply not yet approved (it leaves when approved, as any reply).
    An approved one goes back to its author's drafts instead (:func:`withdraw`): cancelling
    a schedule never sends anything at once."""
    reply, conv, person = _load(session, "unschedule", actor, reply_id)
    _state("unschedule", reply, SCHEDULABLE)
    # no schedule, nothing to cancel: an approved reply waiting for the outbox stays there
    if reply.send_at is None:
        raise IllegalTransition("unschedule", RS(reply.state).value,
                                f"reply {reply.id} is not scheduled",
                                code="schedule.not_scheduled", params={"id": reply.id})
    if reply.state == RS.APPROVED:
        return _withdraw(session, person, reply, conv)
    before = reply.send_at
    reply.send_at = reply.scheduled_at = reply.schedule_held_at = None
    audit.record(session, "reply.unscheduled", actor=person, conversation_id=conv.id,
                 reply_id=reply.id, previous=before.isoformat())
    return reply


def send_now(session: Session, actor: Person | None, reply_id: int) -> Reply:
    """A scheduled (or held) approved reply leaves now: the schedule is dropped and the
    outbox is asked after the commit."""
    reply, conv, person = _load(session, "send_now", actor, reply_id)
    _scheduled("send_now", reply)
    before, held = reply.send_at, reply.schedule_held_at is not None
    reply.send_at = reply.scheduled_at = reply.schedule_held_at = None
    reply.updated_at = utcnow()
    audit.record(session, "reply.send_now", actor=person, conversation_id=conv.id,
                 reply_id=reply.id, previous=before.isoformat() if before else None,
                 was_held=held)
    enqueue_after_commit(session, "dispatch_reply", reply.id)
    return reply


def withdraw(session: Session, actor: Person | None, reply_id: int) -> Reply:
    """A scheduled approved reply goes back to its author's drafts (to be changed and
    submitted again: approval is asked anew)."""
    reply, conv, person = _load(session, "withdraw", actor, reply_id)
    _scheduled("withdraw", reply)
    return _withdraw(session, person, reply, conv)


def _withdraw(session: Session, person: Person, reply: Reply, conv: Conversation) -> Reply:
    move_reply(reply, "withdraw", RS.DRAFT)
    before = reply.send_at
    reply.send_at = reply.scheduled_at = reply.schedule_held_at = None
    reply.approved_by_id, reply.approved_at = None, None
    # idempotency_key stays: it was fixed at approval and nothing went out under it
    audit.record(session, "reply.withdrawn", actor=person, conversation_id=conv.id,
                 reply_id=reply.id, previous=before.isoformat() if before else None)
    return reply


# -- held ---------------------------------------------------------------------------------------


def _hold(session: Session, reply: Reply, conv: Conversation, message_id: int | None) -> None:
    reply.schedule_held_at = utcnow()
    audit.record(session, "reply.schedule_held", conversation_id=conv.id, reply_id=reply.id,
                 message_id=message_id, send_at=reply.send_at.isoformat()
                 if reply.send_at else None)
    notifications.schedule_held(session, reply, conv)


def hold_on_inbound(session: Session, arrived: Sequence[tuple[Conversation, Message]]) -> int:
    """After routing customer messages (``(conversation, message)`` each, in the router's
    transaction): hold every approved reply scheduled on those conversations before the
    message came. One query for the batch; replies another transaction holds are skipped
    (the claim's own check and :func:`hold_overdue` cover them). Returns how many."""
    newest: dict[int, Message] = {}
    convs: dict[int, Conversation] = {}
    for conv, message in arrived:
        if conv.id is None:
            continue
        convs[conv.id] = conv
        if conv.id not in newest or _arrived(message) > _arrived(newest[conv.id]):
            newest[conv.id] = message
    if not newest:
        return 0
    replies = session.scalars(
        select(Reply).where(
            Reply.conversation_id.in_(sorted(newest)), Reply.state == RS.APPROVED,
            Reply.send_at.is_not(None), Reply.schedule_held_at.is_(None))
        .order_by(Reply.id).with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)).all()
    held = 0
    for reply in replies:
        message = newest[reply.conversation_id]
        if reply.scheduled_at is not None and _arrived(message) <= reply.scheduled_at:
            continue  # the message came before the schedule was set
        _hold(session, reply, convs[reply.conversation_id], message.id)
        held += 1
    return held


def hold_overdue(session: Session, *, limit: int = HOLD_BATCH) -> int:
    """The sweep's backstop: hold (and tell) scheduled replies the customer wrote after,
    that the router did not hold (a reply locked at that moment). Returns how many."""
    replies = session.scalars(
        select(Reply).where(
            Reply.state == RS.APPROVED, Reply.send_at.is_not(None),
            Reply.schedule_held_at.is_(None), customer_wrote_since())
        .order_by(Reply.id).limit(limit).with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)).all()
    for reply in replies:
        conv = session.get(Conversation, reply.conversation_id)
        assert conv is not None
        _hold(session, reply, conv, None)
    return len(replies)

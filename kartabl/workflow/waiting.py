"""Waiting on the customer and snoozing: the statuses between open and closed.

- **wait** (open or snoozed → waiting): set by a person who can access the conversation,
  or by the system after a reply is sent when the team's policy says so
  (``wait_after_reply`` in the routing file's ``[[teams]]``). It opens a
  :class:`~kartabl.models.ConversationPause`: the resolution clock stands still until the
  customer writes (:func:`customer_wrote`, called by the router) or a person resumes it.
- **snooze** (open, waiting or snoozed → snoozed until a time): set by a person. Out of the
  working queues until ``snoozed_until`` (the sweep's :func:`wake_due`) or until the
  customer writes, whichever is first. Snoozing is not waiting on the customer: the clock
  runs (a pause that was open ends).
- **resume** (waiting or snoozed → open): a person takes it back by hand.

Coming back from a snooze at its time puts the conversation at the top of the queues (its
``last_message_at``, the queues' order, becomes the time it woke), notifies its holder
(kind ``snooze_ended``) and keeps ``snoozed_until`` as the mark the queue rows show ("back
from snooze") until it is snoozed, set waiting or closed again. Waking is one conditional
UPDATE per row (``status = 'snoozed' AND snoozed_until <= now``), so several schedulers
sweeping at once wake a conversation once: the loser's update matches no row.

Every step audits one event (``conversation.waiting``, ``conversation.snoozed``,
``conversation.resumed`` with ``reason``) and refreshes the service clock; the caller
commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from config.routing import RoutingConfig, team_config
from kartabl import audit, notifications, service_clock
from kartabl.errors import InputError
from kartabl.models import (
    Conversation,
    ConversationPause,
    ConversationStatus,
    Person,
    Team,
    utcnow,
)
from kartabl.workflow.access import load_conversation, require_access, require_actor
from kartabl.workflow.states import ON_HOLD, OPEN, SNOOZED, WAITING, check_conversation

MAX_SNOOZE: Final = timedelta(days=366)
WAKE_BATCH: Final = 500


def _end_pause(session: Session, conv: Conversation, now: datetime) -> None:
    """End the conversation's open pause, if any (the clock runs again)."""
    session.execute(
        update(ConversationPause)
        .where(ConversationPause.conversation_id == conv.id, ConversationPause.ended_at.is_(None))
        .values(ended_at=now).execution_options(synchronize_session=False))


def leave_hold(session: Session, conv: Conversation, now: datetime | None = None) -> None:
    """What closing (or any step out of waiting/snoozed) must undo: the open pause and the
    snooze time. Called by :func:`kartabl.workflow.close` too."""
    _end_pause(session, conv, now or utcnow())
    conv.snoozed_until = None


def wait(session: Session, actor: Person | None, conversation_id: int, *,
         now: datetime | None = None, reason: str = "") -> Conversation:
    """Waiting on the customer; ``actor`` None is the system (the team's policy after a
    reply was sent)."""
    require_actor("wait", actor, system_ok=True)
    conv = load_conversation(session, conversation_id)
    require_access("wait", actor, conv)
    check_conversation("wait", conv)
    moment = now or utcnow()
    before = ConversationStatus(conv.status)
    conv.status, conv.snoozed_until = WAITING, None
    open_pause = session.scalar(select(ConversationPause.id).where(
        ConversationPause.conversation_id == conv.id, ConversationPause.ended_at.is_(None)))
    if open_pause is None:
        session.add(ConversationPause(conversation_id=conv.id, started_at=moment))
    session.flush()
    audit.record(session, "conversation.waiting", actor=actor, conversation_id=conv.id,
                 customer_id=conv.customer_id, previous=before.value, reason=reason or None)
    service_clock.refresh(session, conv, moment)
    return conv


def after_reply_sent(session: Session, conv: Conversation, routing: RoutingConfig) -> bool:
    """A reply to the customer was sent (the outbox, in its transaction): an open
    conversation of a team whose policy is ``wait_after_reply`` now waits on the customer,
    audited as the system. True when it did."""
    if conv.status != OPEN or conv.team_id is None:
        return False
    team = session.get(Team, conv.team_id)
    policy = team_config(routing, team.name if team is not None else None)
    if policy is None or not policy.wait_after_reply:
        return False
    wait(session, None, conv.id, reason="reply_sent")
    return True


def snooze(session: Session, actor: Person | None, conversation_id: int, until: datetime, *,
           now: datetime | None = None) -> Conversation:
    """Snoozed until ``until`` (aware; in the future, within :data:`MAX_SNOOZE`)."""
    require_actor("snooze", actor)
    conv = load_conversation(session, conversation_id)
    require_access("snooze", actor, conv)
    check_conversation("snooze", conv)
    moment = now or utcnow()
    if until.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one")  # a bug, not input
    if until <= moment:
        raise InputError(f"snooze until {until.isoformat()}: that time has passed",
                         code="status.snooze_past")
    if until - moment > MAX_SNOOZE:
        raise InputError(f"snooze until {until.isoformat()}: at most a year ahead",
                         code="status.snooze_far")
    before = ConversationStatus(conv.status)
    _end_pause(session, conv, moment)
    conv.status, conv.snoozed_until = SNOOZED, until
    audit.record(session, "conversation.snoozed", actor=actor, conversation_id=conv.id,
                 customer_id=conv.customer_id, previous=before.value, until=until.isoformat())
    service_clock.refresh(session, conv, moment)
    return conv


def _to_open(session: Session, actor: Person | None, conv: Conversation, moment: datetime,
             reason: str, message_id: int | None = None, **data: Any) -> None:
    before = ConversationStatus(conv.status)
    _end_pause(session, conv, moment)
    conv.status = OPEN
    # back from a snooze at its time keeps snoozed_until as the queue rows' mark
    if reason != "snooze_ended":
        conv.snoozed_until = None
    audit.record(session, "conversation.resumed", actor=actor, conversation_id=conv.id,
                 customer_id=conv.customer_id, message_id=message_id, previous=before.value,
                 reason=reason, **data)
    service_clock.refresh(session, conv, moment)


def resume(session: Session, actor: Person | None, conversation_id: int, *,
           now: datetime | None = None) -> Conversation:
    """A person takes a waiting or snoozed conversation back to open."""
    require_actor("resume", actor)
    conv = load_conversation(session, conversation_id)
    require_access("resume", actor, conv)
    check_conversation("resume", conv)
    _to_open(session, actor, conv, now or utcnow(), "by_person")
    return conv


def customer_wrote(session: Session, conv: Conversation, message_id: int | None,
                   now: datetime | None = None) -> bool:
    """The router threaded a customer's message into ``conv`` (already locked by the
    router's batch): a waiting or snoozed conversation opens again, audited as the system.
    True when it did."""
    if conv.status not in ON_HOLD:
        return False
    _to_open(session, None, conv, now or utcnow(), "customer_wrote", message_id=message_id)
    return True


def wake_due(session: Session, *, now: datetime | None = None, limit: int = WAKE_BATCH) -> int:
    """The sweep's step: snoozed conversations whose time has come go back to open, at the
    top of the queues, with a notice to their holder. Returns how many woke; the caller
    commits. Safe with several schedulers (see the module docstring)."""
    moment = now or utcnow()
    c = Conversation
    ids = list(session.scalars(
        select(c.id).where(c.status == SNOOZED, c.snoozed_until <= moment)
        .order_by(c.snoozed_until, c.id).limit(limit)))
    woke = 0
    for cid in ids:
        # the conditional update is the claim: a concurrent sweep's matches no row
        result = session.execute(
            update(c).where(c.id == cid, c.status == SNOOZED, c.snoozed_until <= moment)
            .values(status=OPEN).execution_options(synchronize_session=False))
        if not getattr(result, "rowcount", 0):
            continue
        conv = session.get(c, cid, populate_existing=True)
        assert conv is not None
        conv.status = SNOOZED  # for the audit's "previous"; _to_open sets it open again
        _to_open(session, None, conv, moment, "snooze_ended",
                 until=conv.snoozed_until.isoformat() if conv.snoozed_until else None)
        if conv.last_message_at is None or conv.last_message_at < moment:
            conv.last_message_at = moment  # "returns at the top": the queues' order
        notifications.snooze_ended(session, conv)
        woke += 1
    return woke


def back_from_snooze(conv: Conversation) -> bool:
    """The queue rows' mark: open again after a snooze ran out, not yet held again."""
    return conv.status == OPEN and conv.snoozed_until is not None

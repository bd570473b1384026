"""Delivery statuses a provider *pushes* (the generic API channel's status callback), applied
to the reply the way the polled ones are (:func:`responders.dispatch.poll_delivery`, SMS):
``sent → delivered`` with ``delivered_at`` and a ``reply.delivered`` event, or
``sent → failed`` with the provider's reason, back to the coordinator.

A push may come before the outbox has recorded the send (the provider answers our request,
then reports at once, while our ``sent`` transaction is still on its way): such a report is
:data:`NOT_YET` and the caller asks the provider to retry, never guessed at. A report is
idempotent: the same one twice changes nothing the second time (``changed`` is False).
``read`` counts as ``delivered`` (Kartabl has no read state); the event says ``read``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from sqlalchemy.orm import Session, sessionmaker

from kartabl import audit
from kartabl.models import Reply, ReplyState, utcnow
from kartabl.workflow import move_reply
from responders.dispatch import _count, _fail  # the outbox's own steps, not a copy of them

RS = ReplyState
Reported = Literal["delivered", "read", "failed"]
NOT_YET: Final = "not_yet"
UNKNOWN: Final = "unknown"


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: str  # NOT_YET, UNKNOWN, or the reply's state after the report
    changed: bool = False


def apply_report(session_factory: sessionmaker[Session], reply_id: int, status: Reported, *,
                 reason: str, belongs: Callable[[Session, Reply], bool]) -> Applied:
    """Apply ``status`` to reply ``reply_id`` when ``belongs(session, reply)`` (the
    reporter may only speak of its own replies: anything else is :data:`UNKNOWN`, never a
    hint that the reply exists). ``reason`` is the coordinator's sentence for a failure."""
    with session_factory() as session, session.begin():
        reply = session.get(Reply, reply_id, with_for_update=True, populate_existing=True)
        if reply is None or not belongs(session, reply):
            return Applied(UNKNOWN)
        state = RS(reply.state)
        if state in (RS.APPROVED, RS.SENDING):
            return Applied(NOT_YET)
        if state != RS.SENT:  # delivered or failed already (or never sent): nothing to move
            return Applied(state.value)
        if status == "failed":
            _fail(session, reply, reason)
            return Applied(RS.FAILED.value, changed=True)
        move_reply(reply, "deliver", RS.DELIVERED)
        reply.delivered_at = utcnow()
        audit.record(session, "reply.delivered", conversation_id=reply.conversation_id,
                     reply_id=reply.id, provider_id=reply.provider_id, reported=status)
        _count(session, "delivered")
        return Applied(RS.DELIVERED.value, changed=True)

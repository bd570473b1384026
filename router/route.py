"""Route one stored inbound message: recognise the customer, thread, assign, in ONE
transaction that is safe to run any number of times.

Idempotence: the message row is locked first (FOR UPDATE on PostgreSQL; SQLite's
BEGIN IMMEDIATE already serialises writers) and a message whose ``routed_at`` is set is left
alone. That is what makes a sweep re-enqueue, a broker redelivery or a worker killed
mid-route harmless: the killed transaction rolled back, so the next run starts clean; a
finished one is skipped.

Lock order, the same in every path so concurrent routes cannot deadlock: message, customer,
team, persons. Locking the customer serialises two messages of one customer, so they cannot
open two conversations; two messages of one *new* customer meet on the identity's unique
constraint instead (see :func:`router.identity.match_or_create`).

Automatic mail (auto_reply, bounce) is threaded, so it is visible in the conversation, but
it never reopens a closed conversation and never triggers assignment: an out-of-office
answer is not a reason to wake a finished conversation or to hand work to someone.

An inbound message whose sender address is not valid for its channel is marked routed with a
"router.rejected" event naming the reason: it stays in the database, visible, and the sweep
does not retry it forever.

Queries per message on PostgreSQL, known customer continuing an assigned conversation: lock
message, lock customer, find conversation, check assignee, then one flush (conversation,
message, event) and the commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.routing import RoutingConfig, get_routing
from config.settings import get_settings
from kartabl import audit, metrics
from kartabl.models import Direction, Message, MessageKind, utcnow
from router.assignment import assign
from router.identity import identity_for, match_or_create
from router.threading import thread

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RouteOutcome:
    message_id: int
    customer_id: int | None  # None only when the message was rejected
    customer_created: bool
    conversation_id: int | None
    how: str  # reference | open | reopened | new_linked | new | closed | rejected
    assignee_id: int | None
    team_id: int | None


def route_message(
    session: Session,
    message_id: int,
    *,
    routing: RoutingConfig | None = None,
    reopen_window: timedelta | None = None,
) -> RouteOutcome | None:
    """Route message ``message_id`` and commit. Returns None when there was nothing to do:
    already routed, outbound, or no such message. Rolls back and re-raises on error."""
    routing = routing if routing is not None else get_routing()
    if reopen_window is None:
        reopen_window = timedelta(hours=get_settings().reopen_window_hours)
    try:
        outcome, message = _route(session, message_id, routing, reopen_window)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    if outcome is not None and message is not None and message.routed_at is not None:
        metrics.ROUTED.inc()
        metrics.ROUTE_LATENCY.observe((message.routed_at - message.created_at).total_seconds())
    return outcome


def _route(
    session: Session, message_id: int, routing: RoutingConfig, reopen_window: timedelta
) -> tuple[RouteOutcome | None, Message | None]:
    message = session.scalars(
        select(Message).where(Message.id == message_id).with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if message is None:
        log.warning("route_message: message %s does not exist", message_id)
        return None, None
    if message.routed_at is not None:
        return None, None  # already routed: a redelivery or a sweep re-enqueue
    if message.direction is not Direction.IN:
        log.warning("route_message: message %s is outbound; only inbound is routed", message_id)
        return None, None
    try:
        kind, address = identity_for(message.channel, message.sender)
    except ValueError as exc:
        return _reject(session, message, str(exc)), message

    customer, created = match_or_create(session, kind, address, message.sender_name, lock=True)
    automatic = message.kind is not MessageKind.MESSAGE
    conv, how = thread(session, message, customer, reopen_window=reopen_window,
                       reopen=not automatic)
    if automatic:
        if conv.id is None:
            session.flush()
    else:
        assign(session, conv, routing, subject=message.subject, text=message.text)

    message.conversation_id = conv.id
    message.customer_id = customer.id
    message.routed_at = utcnow()
    audit.record(session, "message.routed", conversation_id=conv.id, customer_id=customer.id,
                 message_id=message.id, how=how, customer_created=created)
    return RouteOutcome(
        message_id=message.id, customer_id=customer.id, customer_created=created,
        conversation_id=conv.id, how=how, assignee_id=conv.assignee_id, team_id=conv.team_id,
    ), message


def _reject(session: Session, message: Message, reason: str) -> RouteOutcome:
    log.warning("route_message: message %s rejected: %s", message.id, reason)
    message.routed_at = utcnow()
    message.meta = {**(message.meta or {}), "rejected": reason}
    audit.record(session, "router.rejected", message_id=message.id, reason=reason)
    return RouteOutcome(
        message_id=message.id, customer_id=None, customer_created=False, conversation_id=None,
        how="rejected", assignee_id=None, team_id=None,
    )

"""Route many stored inbound messages in ONE transaction, with set-based statements: the
one implementation behind :func:`router.route.route_message` and the ``route_messages``
task.

Per batch, not per message: the unrouted inbound rows are locked ``FOR UPDATE SKIP
LOCKED`` (a row another router holds is being routed; if that transaction fails, its
retry or the sweep routes it), senders are resolved to customers in one query and the new
ones created in bulk (:func:`router.identity.match_or_create_many`), the customers' latest
conversation per channel is loaded in one query, assignment reads and locks each team once
(:mod:`router.placement`), and the writes go out as one insert or executemany per table.
Only reply references still cost a query per message, and only when a message has some.

The guarantees are those of routing one message at a time, in message id order:

- idempotence: a routed message is skipped, so a redelivery or a sweep re-enqueue is
  harmless, and a killed worker's transaction simply rolls back;
- lock order customers, teams, persons, then the replies that bounces name (each by id),
  so concurrent batches cannot deadlock (the outbox locks one reply alone, never a team);
  locking the customers serialises two batches holding messages of one customer, and two
  messages of one *new* customer meet on the identity's unique constraint;
- several messages of one customer in a batch continue the same conversation, exactly as
  if they had been routed one after the other;
- automatic mail (auto_reply, bounce) is threaded but never reopens a conversation and
  never triggers assignment;
- a sender address that is not valid for its channel is marked routed with a
  "router.rejected" event naming the reason, so it stays visible and is not retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from config.routing import RoutingConfig
from kartabl import audit, metrics, notifications, search, service_clock
from kartabl.models import (
    Conversation,
    Direction,
    Message,
    MessageKind,
    utcnow,
)
from kartabl.workflow import schedule
from router.bounces import fail_bounced_replies
from router.identity import message_identity
from router.identity_many import match_or_create_many
from router.offline_answers import offline_answers
from router.placement import Announce, Placement
from router.threading import latest_per_channel, rank, thread

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RouteOutcome:
    message_id: int
    customer_id: int | None  # None only when the message was rejected
    customer_created: bool
    conversation_id: int | None
    how: str  # reference | offline | open | reopened | new_linked | new | closed | rejected
    assignee_id: int | None
    team_id: int | None


@dataclass(slots=True)
class _Routed:
    message: Message
    conv: Conversation
    how: str
    created: bool
    announced: list[tuple[str, dict[str, Any]]]
    assignee_id: int | None = None
    team_id: int | None = None


def route_batch(
    session: Session,
    message_ids: Sequence[int],
    *,
    routing: RoutingConfig,
    reopen_window: timedelta,
    defer: Callable[[list[int]], None] | None = None,
) -> list[RouteOutcome]:
    """Route the messages ``message_ids`` and commit. Returns one outcome per message routed
    now, in id order; a message already routed, outbound, missing or being routed by another
    transaction has none. Rolls back and re-raises on error.

    By default a customer locked by another transaction is waited for. With ``defer``, the
    messages of such customers are left unrouted and, after the commit, handed to
    ``defer`` (the queue sends them again): batches of random customers overlap, and
    waiting would make every batch queue up behind the one holding a shared customer.

    ``routing`` (the routing file) and ``reopen_window`` (``Settings.reopen_window``) are
    passed in by the caller, read once at its process start: the router reads no settings."""
    try:
        outcomes, messages, busy = _route(session, sorted(set(message_ids)), routing,
                                          reopen_window, skip_busy=defer is not None)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    for message in messages:
        if message.routed_at is not None:
            metrics.ROUTED.inc()
            metrics.ROUTE_LATENCY.observe(
                (message.routed_at - message.created_at).total_seconds())
    if busy and defer is not None:
        defer(busy)
    return outcomes


def _lock(session: Session, ids: list[int]) -> list[Message]:
    messages = list(session.scalars(
        select(Message)
        .where(Message.id.in_(ids), Message.routed_at.is_(None),
               Message.direction == Direction.IN)
        .order_by(Message.id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ))
    if len(messages) < len(ids):
        log.debug("route: %d of %d messages routed already, outbound, missing or locked",
                  len(ids) - len(messages), len(ids))
    return messages


def _route(
    session: Session, ids: list[int], routing: RoutingConfig, window: timedelta,
    *, skip_busy: bool,
) -> tuple[list[RouteOutcome], list[Message], list[int]]:
    messages = _lock(session, ids) if ids else []
    if not messages:
        return [], [], []
    rejected: dict[int, RouteOutcome] = {}
    keys: dict[int, tuple[str, str]] = {}
    wanted: dict[tuple[str, str], str] = {}
    for m in messages:
        try:
            keys[m.id] = message_identity(m.channel, m.sender, m.meta)
        except ValueError as exc:
            rejected[m.id] = _reject(session, m, str(exc))
            continue
        wanted.setdefault(keys[m.id], m.sender_name)
    owners = match_or_create_many(session, wanted, skip_locked=skip_busy)
    busy = [m.id for m in messages if m.id in keys and keys[m.id] not in owners]
    messages = [m for m in messages if m.id not in keys or keys[m.id] in owners]
    customers = {c.id: c for c, _ in owners.values()}
    new_customers = {c.id for c, created in owners.values() if created}
    routable = [m for m in messages if m.id in keys]

    routed: list[_Routed] = []
    with session.no_autoflush:
        latest = latest_per_channel(session, set(customers) - new_customers,
                                    {m.channel for m in routable})
        told_created: set[tuple[str, str]] = set()
        answers = offline_answers(session, routable)  # website chat continuations, at once
        for m in routable:
            customer, created = owners[keys[m.id]]
            created = created and keys[m.id] not in told_created
            told_created.add(keys[m.id])
            conv, how = thread(session, m, customer, reopen_window=window,
                               reopen=m.kind is MessageKind.MESSAGE,
                               latest=lambda msg, c: latest.get((c.id, str(msg.channel))),
                               offline=answers)
            slot = (customer.id, str(conv.channel))
            if slot not in latest or rank(conv) <= rank(latest[slot]):
                latest[slot] = conv
            routed.append(_Routed(m, conv, how, created, []))
        pending = {id(r.conv) for r in routed if r.conv.id is None}
        placement = Placement(
            session, routing,
            [(r.conv, r.message) for r in routed if r.message.kind is MessageKind.MESSAGE],
            customers, new_customers)
    session.flush()  # conversations get their ids
    _update_messages(session, routed)
    # Last: the team locks are held until the commit, so as little as possible follows.
    placement.lock(session)
    _place(placement, routed, pending)
    _clock(session, routed, pending, {tid: name for name, tid in placement.team_ids.items()})
    # Automatic mail is nobody's news; a customer's message is its holder's.
    told = notifications.answered(session, [
        (r.conv, any(kind == "conversation.assigned" for kind, _ in r.announced))
        for r in routed if r.message.kind is MessageKind.MESSAGE])
    _insert_events(session, routed, told)
    fail_bounced_replies(
        session, [r.message for r in routed if r.message.kind is MessageKind.BOUNCE])
    # the customer wrote first: their scheduled replies wait for a person (lock order: replies last)
    # (a new conversation has no replies: a batch of new ones costs no query)
    schedule.hold_on_inbound(session, [
        (r.conv, r.message) for r in routed
        if r.message.kind is MessageKind.MESSAGE and id(r.conv) not in pending])
    by_id = {r.message.id: r for r in routed}
    outcomes = [rejected[m.id] if m.id in rejected else _outcome(by_id[m.id]) for m in messages]
    return outcomes, messages, busy


def _clock(session: Session, routed: list[_Routed], new: set[int],
           names: dict[int, str]) -> None:
    """The service clock (issue 15) of each conversation that is new, was placed in a team
    or reopened: its due times follow the team's calendar and targets. A conversation
    merely continued keeps the times it has (a waiting one that woke was refreshed then)."""
    now, done = utcnow(), set()
    for r in routed:
        if id(r.conv) in done:
            continue
        if (id(r.conv) in new or r.announced or r.how == "reopened"
                or r.conv.first_response_due_at is None):
            service_clock.refresh(session, r.conv, now, no_pauses=id(r.conv) in new,
                                  names=names)
            done.add(id(r.conv))


def _update_messages(session: Session, routed: list[_Routed]) -> None:
    """One executemany: Core rather than the unit of work, which cost more CPU per batch
    than the routing itself. The loaded messages are told the new values, not dirtied."""
    if not routed:
        return
    now = utcnow()
    table = cast(Table, Message.__table__)
    session.connection().execute(
        update(table).where(table.c.id == bindparam("b_id")).values(
            conversation_id=bindparam("b_conv"), customer_id=bindparam("b_customer"),
            routed_at=bindparam("b_at")),
        [{"b_id": r.message.id, "b_conv": r.conv.id, "b_customer": r.conv.customer_id,
          "b_at": now} for r in routed],
    )
    for r in routed:
        set_committed_value(r.message, "conversation_id", r.conv.id)
        set_committed_value(r.message, "customer_id", r.conv.customer_id)
        set_committed_value(r.message, "routed_at", now)
    # searchable from the moment it is routed, in the same transaction
    search.index_messages(session, [r.message for r in routed])


def _insert_events(session: Session, routed: list[_Routed],
                   notified: list[audit.Entry]) -> None:
    """The audit events of the batch, in the order single routes would write them, then
    the notifications' live events, in one executemany (:func:`kartabl.audit.record_many`)."""
    entries: list[audit.Entry] = []
    for r in routed:
        conv, customer = r.conv.id, r.conv.customer_id
        entries += [audit.Entry(kind, conversation_id=conv, customer_id=customer, data=fields)
                    for kind, fields in r.announced]
        entries.append(audit.Entry("message.routed", conversation_id=conv, customer_id=customer,
                                   message_id=r.message.id,
                                   data={"how": r.how, "customer_created": r.created}))
    audit.record_many(session, entries + notified)


def _place(placement: Placement, routed: list[_Routed], pending: set[int]) -> None:
    """Assignment, in message order; automatic mail is filed but never assigned."""
    placed: set[int] = set()

    def announcer(r: _Routed) -> Announce:
        return lambda kind, _conv, fields: r.announced.append((kind, fields))

    for r in routed:
        if r.message.kind is MessageKind.MESSAGE:
            is_new = id(r.conv) in pending and id(r.conv) not in placed
            placed.add(id(r.conv))
            placement.place(r.conv, r.message, is_new, announcer(r))
        r.assignee_id, r.team_id = r.conv.assignee_id, r.conv.team_id


def _outcome(r: _Routed) -> RouteOutcome:
    return RouteOutcome(
        message_id=r.message.id, customer_id=r.conv.customer_id, customer_created=r.created,
        conversation_id=r.conv.id, how=r.how, assignee_id=r.assignee_id, team_id=r.team_id,
    )


def _reject(session: Session, message: Message, reason: str) -> RouteOutcome:
    log.warning("route: message %s rejected: %s", message.id, reason)
    message.routed_at = utcnow()
    message.meta = {**(message.meta or {}), "rejected": reason}
    audit.record(session, "router.rejected", message_id=message.id, reason=reason)
    return RouteOutcome(
        message_id=message.id, customer_id=None, customer_created=False, conversation_id=None,
        how="rejected", assignee_id=None, team_id=None,
    )

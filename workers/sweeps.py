"""The sweep: the database says what is unfinished, and the sweep puts it back on the queue.

It makes every way a queued job can vanish harmless: an enqueue that failed after its
commit, Redis losing queued jobs, a worker killed mid-route (dramatiq's Redis broker would
redeliver its messages only once a live broker notices the dead heartbeat, minutes later).

One pass:

1. inbound messages committed but unrouted for longer than ``sweep_grace_s`` →
   route_messages, in batches of :data:`kartabl.tasks.ROUTE_BATCH`;
2. replies approved but untouched for longer than ``sweep_grace_s`` → dispatch_reply;
3. replies left in ``sending`` for ``sending_stale_s`` → reconciled with the provider,
   never blindly resent (responders.dispatch.reconcile_stale_sending);
4. delivery statuses polled from providers that do not call back (responders.dispatch);
5. breach warnings: the holders of open conversations about to pass a service target are
   notified, once per conversation, person and target (kartabl.notifications.warn_breaches);
6. scheduled replies the customer wrote before are held, their people told (the router
   holds them as it attaches the message; this catches one it found locked:
   kartabl.workflow.schedule.hold_overdue). A scheduled reply is enqueued by step 2 once
   its time has come, and never claimed before (responders.dispatch).
7. snoozed conversations whose time came go back to open, at the top of the queues, with a
   notice to their holder (kartabl.workflow.waiting.wake_due: a conditional update per row,
   so several schedulers wake each one once).

Re-enqueueing is safe because route_messages and dispatch_reply are idempotent: a message
routed meanwhile, or still waiting in the queue, costs one no-op call. The grace keeps that
cost rare; it should exceed the usual queue latency. Each batch is bounded and ordered by
id, so a large backlog is worked off oldest first over several ticks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from kartabl import metrics, notifications, tasks
from kartabl.models import Direction, Message, Reply, ReplyState, utcnow
from kartabl.workflow import schedule, waiting

log = logging.getLogger(__name__)

DEFAULT_BATCH = 1000


@dataclass(frozen=True, slots=True)
class SweepReport:
    messages: int = 0  # unrouted inbound messages re-enqueued
    replies: int = 0  # approved-but-unsent replies re-enqueued
    reconciled: int = 0  # replies stuck in 'sending' resolved
    polled: int = 0  # delivery statuses updated
    warned: int = 0  # breach warnings written
    held: int = 0  # scheduled replies held: the customer wrote first (router missed them)
    woken: int = 0  # snoozed conversations whose time came, back to open
    errors: tuple[str, ...] = field(default=())  # one line per step that failed


def unrouted_message_ids(session: Session, grace_s: float, limit: int) -> list[int]:
    cutoff = utcnow() - timedelta(seconds=grace_s)
    stmt = (
        select(Message.id)
        .where(Message.routed_at.is_(None), Message.direction == Direction.IN,
               Message.created_at < cutoff)
        .order_by(Message.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def unsent_reply_ids(session: Session, grace_s: float, limit: int) -> list[int]:
    # updated_at, not approved_at: a reply the dispatcher handed back to 'approved' after a
    # retryable failure is recent again, and the queue's own retry is already on it.
    # A scheduled reply is offered once its time has come (leaves_now), at once the first
    # time (not touched since send_at), then after the grace like any other.
    now = utcnow()
    cutoff = now - timedelta(seconds=grace_s)
    stmt = (
        select(Reply.id)
        .where(Reply.state == ReplyState.APPROVED, schedule.leaves_now(now),
               or_(Reply.updated_at < cutoff,
                   and_(Reply.send_at.is_not(None), Reply.updated_at < Reply.send_at)))
        .order_by(Reply.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def sweep_once(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    batch: int = DEFAULT_BATCH,
    enqueue: tasks.Enqueuer = tasks.enqueue_now,
) -> SweepReport:
    """One pass of the sweep (see the module docstring). A step that fails is logged and
    reported; the other steps still run."""
    errors: list[str] = []
    counts: dict[str, int] = {}

    def step(name: str, fn: Callable[[], int]) -> None:
        try:
            counts[name] = fn()
        except Exception as exc:
            log.exception("sweep step %s failed", name)
            errors.append(f"{name}: {type(exc).__name__}: {exc}")

    def requeue_messages() -> int:
        with session_factory() as session:
            ids = unrouted_message_ids(session, settings.sweep_grace_s, batch)
        for start in range(0, len(ids), tasks.ROUTE_BATCH):
            enqueue("route_messages", ids[start : start + tasks.ROUTE_BATCH])
        metrics.SWEPT.labels(kind="message").inc(len(ids))
        return len(ids)

    def requeue_replies() -> int:
        with session_factory() as session, session.begin():
            ids = unsent_reply_ids(session, settings.sweep_grace_s, batch)
            if ids:
                # Touched now, a reply waits another grace before it is offered again: with a
                # backlog in the queue (a worker down for a while) every tick would otherwise
                # add one more job per reply, all of them no-ops but the first.
                session.execute(
                    update(Reply)
                    .where(Reply.id.in_(ids), Reply.state == ReplyState.APPROVED)
                    .values(updated_at=utcnow())
                    .execution_options(synchronize_session=False))
        for rid in ids:
            enqueue("dispatch_reply", rid)
        metrics.SWEPT.labels(kind="reply").inc(len(ids))
        return len(ids)

    def reconcile() -> int:
        from responders.dispatch import reconcile_stale_sending

        n = reconcile_stale_sending(
            session_factory, older_than=timedelta(seconds=settings.sending_stale_s)
        )
        metrics.SWEPT.labels(kind="sending").inc(n)
        return n

    def poll() -> int:
        from responders.dispatch import poll_delivery

        # Each poll is a provider call: keep a tick short whatever the batch size.
        return poll_delivery(session_factory, limit=min(batch, 100))

    def warn() -> int:
        with session_factory() as session, session.begin():
            return notifications.warn_breaches(
                session, first_response_minutes=settings.first_response_target_minutes,
                resolution_hours=settings.resolution_target_hours)

    def hold() -> int:
        with session_factory() as session, session.begin():
            return schedule.hold_overdue(session)

    def wake() -> int:
        with session_factory() as session, session.begin():
            return waiting.wake_due(session, limit=batch)

    step("messages", requeue_messages)
    step("held", hold)
    step("replies", requeue_replies)
    step("reconciled", reconcile)
    step("polled", poll)
    step("warned", warn)
    step("woken", wake)
    report = SweepReport(**counts, errors=tuple(errors))
    if (report.messages or report.replies or report.reconciled or report.warned or report.held
            or report.woken or errors):
        log.info("sweep", extra={"report": report})
    return report

"""The outbox: the one guarded path by which an approved reply leaves Kartabl.

``approved --claim--> sending --send--> sent --poll--> delivered``, or ``failed``.

1. **Claim** (one short transaction): ``UPDATE reply SET state='sending' ... WHERE id IN
   (SELECT id ... WHERE state='approved' FOR UPDATE SKIP LOCKED) RETURNING``. On PostgreSQL
   a concurrent dispatcher skips the locked row; on SQLite ``FOR UPDATE`` is dropped and
   the ``BEGIN IMMEDIATE`` transaction plus the ``WHERE state='approved'`` make the update
   atomic. Either way exactly one dispatcher gets the row; the others return ``"skipped"``
   without calling the sender. ``sending`` is committed *before* the provider is called.
2. **Send**, outside any transaction (the sender has its own I/O and timeouts).
3. **Record** (new transaction): ``sent``, the provider id, ``first_response_at``, and an
   outbound message row.

Failures, by the one table of :mod:`responders.outcomes` (the send runs through
:func:`responders.outcomes.send`, which lets only three kinds of error out):
:class:`RetryableDeliveryError` (nothing was sent: the provider refused for now, or an error
of our own came before the provider call, such as the SMS rate limiter's Redis being down)
puts the reply back to ``approved`` and re-raises for the worker's backoff; a
:class:`PermanentDeliveryError` marks it ``failed`` for a coordinator to see;
:class:`OutcomeUnknown` (the request went out, no usable answer) fails it at once with the
reason when the channel cannot be asked and sends at most once (Telegram, Bale), and
otherwise leaves it ``sending`` and propagates: :func:`reconcile_stale_sending` asks the
provider later (SMS) or sends it again (SMTP). A retried task then finds the reply
``sending`` and returns ``"skipped"``: nothing is ever resent blindly. Only a process that
dies mid-send leaves a reply ``sending`` without an :class:`OutcomeUnknown`.

Every state change goes through :func:`kartabl.workflow.move_reply` (one table) and writes
an audit event with the system as actor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from kartabl import audit, metrics, search, service_clock
from kartabl.db import after_commit
from kartabl.errors import OutcomeUnknown, PermanentDeliveryError, RetryableDeliveryError
from kartabl.messages import OutboundMessage
from kartabl.models import Conversation, Reply, ReplyState, utcnow
from kartabl.outbound import get_sender
from kartabl.tasks import enqueue_after_commit
from kartabl.workflow import REPLY_TRANSITIONS, move_reply, waiting
from kartabl.workflow.schedule import leaves_now
from responders import outcomes
from responders.outbound import build_message, record_outbound

log = logging.getLogger(__name__)

RS = ReplyState
Outcome = Literal["sent", "skipped", "failed"]
UNKNOWN_OUTCOME_REASON = (
    "outcome unknown after a crash; check with the customer before resending"
)
Factory = sessionmaker[Session]


def dispatch_reply(session_factory: Factory, reply_id: int) -> Outcome:
    """Send approved reply ``reply_id`` at most once per claim. Returns ``"sent"``,
    ``"skipped"`` (not approved: already taken, sent, or gone; or scheduled and its time not
    come, or held) or ``"failed"`` (permanent).
    Raises :class:`RetryableDeliveryError` (retry after ``retry_after_s``), ``LookupError``
    (no sender for the channel: the reply stays approved), or :class:`OutcomeUnknown` when
    the outcome is unknown and the channel reconciles (the reply stays ``sending`` for the
    reconcile sweep)."""
    with session_factory() as session, session.begin():
        claimed = _claim(session, reply_id)
        if claimed is None:
            log.info("reply %s not claimable; skipped", reply_id)
            return "skipped"
        sender = get_sender(claimed.channel)  # LookupError rolls the claim back
        try:
            msg = build_message(session, claimed)
        except PermanentDeliveryError as exc:
            _fail(session, claimed, str(exc))
            return "failed"
        audit.record(
            session, "reply.sending", conversation_id=claimed.conversation_id,
            reply_id=reply_id, attempt=claimed.attempts, channel=msg.channel.value,
        )
    metrics.REPLIES.labels(state="sending").inc()

    try:
        provider_id = outcomes.send(sender, msg)
    except RetryableDeliveryError as exc:
        _in_transaction(session_factory, reply_id, partial(_release, exc=exc))
        raise
    except PermanentDeliveryError as exc:
        _in_transaction(session_factory, reply_id, partial(_fail, reason=str(exc)))
        return "failed"
    except OutcomeUnknown as exc:
        if outcomes.fails_at_once(sender):
            reason = f"{exc}; {outcomes.CHECK_WITH_CUSTOMER}"
            _in_transaction(session_factory, reply_id, partial(_fail, reason=reason))
            return "failed"
        log.warning("reply %s: outcome unknown (%s); left 'sending' for the reconcile sweep",
                    reply_id, exc)
        raise

    with session_factory() as session, session.begin():
        reply = _locked(session, reply_id)
        if reply.state in (RS.SENT, RS.DELIVERED):
            return "sent"  # the reconcile sweep got there first
        _mark_sent(session, reply, msg, provider_id, via="dispatch")
    return "sent"


def reconcile_stale_sending(
    session_factory: Factory, older_than: timedelta, *, limit: int = 100
) -> int:
    """Resolve replies left ``sending`` longer than ``older_than`` (a crash or timeout
    between claim and record). Asks the sender's :meth:`lookup`: found → ``sent`` without
    resending; surely absent → back to ``approved`` and re-dispatched; cannot tell → the
    channel's ``unknown_outcome`` policy (``at_most_once`` → ``failed`` with a reason the
    coordinator sees; ``at_least_once`` → re-dispatched). Returns how many it resolved."""
    cutoff = utcnow() - older_than
    with session_factory() as session, session.begin():
        stale = session.execute(
            select(Reply.id, Reply.sending_at)
            .where(Reply.state == RS.SENDING, Reply.sending_at < cutoff)
            .order_by(Reply.sending_at)
            .limit(limit)
        ).all()
    resolved = 0
    for reply_id, sending_at in stale:
        try:
            resolved += _reconcile_one(session_factory, reply_id, sending_at)
        except Exception:
            log.exception("reconcile of reply %s failed; it stays 'sending'", reply_id)
    return resolved


def _reconcile_one(session_factory: Factory, reply_id: int, sending_at: object) -> int:
    with session_factory() as session, session.begin():
        reply = _locked(session, reply_id)
        if reply.state != RS.SENDING:
            return 0
        try:
            msg = build_message(session, reply)
        except PermanentDeliveryError as exc:
            _fail(session, reply, str(exc))
            return 1
    sender = get_sender(msg.channel)
    try:
        found = sender.lookup(msg)
        verdict = "found" if found else "absent"
    except NotImplementedError:
        found, verdict = None, sender.unknown_outcome

    with session_factory() as session, session.begin():
        reply = _locked(session, reply_id)
        if reply.state != RS.SENDING or reply.sending_at != sending_at:
            return 0  # a dispatcher or another sweep resolved it meanwhile
        if found:
            _mark_sent(session, reply, msg, found, via="reconcile")
        elif verdict == "at_most_once":
            _fail(session, reply, UNKNOWN_OUTCOME_REASON)
        else:
            _release(session, reply, reason=f"reconciled: {verdict}")
            enqueue_after_commit(session, "dispatch_reply", reply.id)
    return 1


# Providers stop reporting on a message after a day or two (and channels such as Telegram
# never report delivery at all): a reply still 'sent' after this long stays 'sent', rather
# than costing a provider call on every sweep for ever.
DELIVERY_POLL_WINDOW = timedelta(days=3)


def poll_delivery(session_factory: Factory, limit: int = 100) -> int:
    """Ask the providers about sent replies: ``delivered`` or ``failed`` (a failure goes
    back to the coordinator through the audit trail and the failed state). Replies still
    in flight move to the back of the queue. Returns how many changed state."""
    with session_factory() as session, session.begin():
        rows = session.execute(
            select(Reply.id, Reply.channel, Reply.provider_id)
            .where(
                Reply.state == RS.SENT,
                Reply.provider_id.is_not(None),
                Reply.sent_at >= utcnow() - DELIVERY_POLL_WINDOW,
            )
            .order_by(Reply.updated_at, Reply.id)
            .limit(limit)
        ).all()
    changed = 0
    for reply_id, channel, provider_id in rows:
        assert provider_id is not None  # the query filters on it
        try:
            status = get_sender(channel).status(provider_id)
        except Exception:
            log.exception("delivery status of reply %s unavailable", reply_id)
            continue
        with session_factory() as session, session.begin():
            reply = _locked(session, reply_id)
            if reply.state != RS.SENT:
                continue
            if status == "delivered":
                move_reply(reply, "deliver", RS.DELIVERED)
                reply.delivered_at = utcnow()
                audit.record(
                    session, "reply.delivered", conversation_id=reply.conversation_id,
                    reply_id=reply.id, provider_id=provider_id,
                )
                _count(session, "delivered")
                changed += 1
            elif status == "failed":
                _fail(session, reply, _failure_reason(channel, provider_id))
                changed += 1
            else:
                reply.updated_at = utcnow()  # round robin: poll the others first next time
    return changed


def _failure_reason(channel: str, provider_id: str) -> str:
    """The coordinator's reason for a failed delivery: the provider's own words when the
    sender can say (``failure_reason``, optional: Kavenegar's "11: it did not reach the
    phone"), else a generic one. Asking may cost a provider call, on failures only."""
    reason = "the provider reported that delivery failed"
    explain = getattr(get_sender(channel), "failure_reason", None)
    if explain is None:
        return reason
    try:
        detail = explain(provider_id)
    except Exception:  # the status said failed; a missing detail must not hide that
        log.warning("failure reason of %s message %s unavailable", channel, provider_id,
                    exc_info=True)
        return reason
    return f"{reason}: {detail}" if detail else reason


# -- the steps ------------------------------------------------------------------------------


def _claim(session: Session, reply_id: int) -> Reply | None:
    now = utcnow()
    # leaves_now: never before send_at, never once held or the customer wrote since it was
    # scheduled, checked in the claim's own locked statement (kartabl.workflow.schedule)
    claimable = (
        select(Reply.id)
        .where(Reply.id == reply_id, Reply.state.in_(REPLY_TRANSITIONS["claim"][0]),
               leaves_now(now))
        .with_for_update(skip_locked=True)
    )
    claimed = session.execute(
        update(Reply)
        .where(Reply.id.in_(claimable))
        .values(state=RS.SENDING, sending_at=now, updated_at=now, attempts=Reply.attempts + 1)
        .returning(Reply.id)
        .execution_options(synchronize_session=False)
    ).first()
    if claimed is None:
        return None
    return session.get(Reply, reply_id, populate_existing=True)


def _locked(session: Session, reply_id: int) -> Reply:
    reply = session.get(Reply, reply_id, with_for_update=True, populate_existing=True)
    assert reply is not None, f"reply {reply_id} vanished"
    return reply


def _in_transaction(
    session_factory: Factory, reply_id: int, step: Callable[[Session, Reply], None]
) -> None:
    with session_factory() as session, session.begin():
        step(session, _locked(session, reply_id))


def _mark_sent(
    session: Session, reply: Reply, msg: OutboundMessage, provider_id: str, *, via: str
) -> None:
    move_reply(reply, "record_sent", RS.SENT)
    now = utcnow()
    reply.provider_id, reply.sent_at, reply.error = provider_id, now, None
    conv = session.get(Conversation, reply.conversation_id, with_for_update=True)
    assert conv is not None
    if conv.first_response_at is None:
        conv.first_response_at = now
        service_clock.refresh(session, conv, now)
    out = record_outbound(session, msg, provider_id)
    session.flush()
    search.index_reply(session, reply)
    audit.record(
        session, "reply.sent", conversation_id=conv.id, reply_id=reply.id, message_id=out.id,
        provider_id=provider_id, via=via, channel=msg.channel.value, recipient=msg.recipient,
        text=msg.text, files=[a.filename for a in msg.attachments],
    )
    # the team's policy may set it waiting on the customer now (issue 15, statuses)
    waiting.after_reply_sent(session, conv, service_clock.current().routing)
    _count(session, "sent")


def _release(
    session: Session, reply: Reply, exc: RetryableDeliveryError | None = None, *,
    reason: str = "",
) -> None:
    move_reply(reply, "release", RS.APPROVED)
    reply.error = str(exc) if exc is not None else reason
    audit.record(
        session, "reply.retry", conversation_id=reply.conversation_id, reply_id=reply.id,
        reason=reply.error, retry_after_s=exc.retry_after_s if exc is not None else None,
    )
    _count(session, "approved")


def _count(session: Session, state: str) -> None:
    """Count a reply's move once its transaction has committed: a rolled-back move (a lost
    race, a database error) counts nothing."""
    after_commit(session, metrics.REPLIES.labels(state=state).inc)


def _fail(session: Session, reply: Reply, reason: str) -> None:
    move_reply(reply, "fail", RS.FAILED)
    reply.error = reason
    audit.record(
        session, "reply.failed", conversation_id=reply.conversation_id, reply_id=reply.id,
        reason=reason,
    )
    _count(session, "failed")
    log.warning("reply %s failed: %s", reply.id, reason)

"""``kartabl_replies_total{state}`` counts the outbox's state changes, one per reply and
step: ``sending`` per claim, ``sent`` per recorded send (by the dispatcher or the
reconcile sweep), ``approved`` per reply handed back for a retry, ``failed`` per permanent
failure (refused, delivery failed), ``delivered`` per delivery report."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from kartabl.errors import PermanentDeliveryError, RetryableDeliveryError
from kartabl.models import Channel
from responders.dispatch import dispatch_reply, poll_delivery, reconcile_stale_sending
from responders.sandbox import CRASH_AFTER_RECORD, SandboxSender, SimulatedCrash
from tests.metric_values import Deltas

STATES = ("sending", "sent", "approved", "failed", "delivered")


def watch() -> Deltas:
    return Deltas(*(("kartabl_replies_total", {"state": s}) for s in STATES))


def moved(**expected: int) -> dict[str, float]:
    """The deltas of every state: ``expected`` ones, zero for the others."""
    return {f"kartabl_replies_total{{state={s}}}": expected.get(s, 0) for s in STATES}


def test_a_reply_sent_counts_one_sending_and_one_sent(
    db: sessionmaker[Session], sandbox: dict[str, SandboxSender], approved_reply
) -> None:
    rid = approved_reply(Channel.EMAIL)
    counts = watch()
    assert dispatch_reply(db, rid) == "sent"
    assert counts.now() == moved(sending=1, sent=1)
    # A second dispatch of the same reply is skipped and counts nothing
    assert dispatch_reply(db, rid) == "skipped"
    assert counts.now() == moved(sending=1, sent=1)


def test_three_replies_sent_count_three(
    db: sessionmaker[Session], sandbox: dict[str, SandboxSender], approved_reply
) -> None:
    rids = [approved_reply(ch) for ch in (Channel.EMAIL, Channel.SMS, Channel.TELEGRAM)]
    counts = watch()
    for rid in rids:
        dispatch_reply(db, rid)
    assert counts.now() == moved(sending=3, sent=3)


def test_a_retry_counts_approved_then_the_second_attempt(
    db: sessionmaker[Session], sandbox: dict[str, SandboxSender], approved_reply
) -> None:
    rid = approved_reply(Channel.SMS)
    sandbox["sms"].inject(RetryableDeliveryError("429 too many requests", retry_after_s=3))
    counts = watch()
    with pytest.raises(RetryableDeliveryError):
        dispatch_reply(db, rid)
    assert counts.now() == moved(sending=1, approved=1)
    assert dispatch_reply(db, rid) == "sent"
    assert counts.now() == moved(sending=2, approved=1, sent=1)


def test_a_refused_reply_counts_one_failed(
    db: sessionmaker[Session], sandbox: dict[str, SandboxSender], approved_reply
) -> None:
    rid = approved_reply(Channel.TELEGRAM)
    sandbox["telegram"].inject(PermanentDeliveryError("403: bot was blocked by the user"))
    counts = watch()
    assert dispatch_reply(db, rid) == "failed"
    assert counts.now() == moved(sending=1, failed=1)


def test_delivery_reports_count_delivered_and_failed(
    db: sessionmaker[Session], sandbox: dict[str, SandboxSender], approved_reply
) -> None:
    # Given two SMS and an email sent
    delivered = [approved_reply(Channel.SMS), approved_reply(Channel.SMS)]
    undelivered = approved_reply(Channel.EMAIL)
    for rid in (*delivered, undelivered):
        dispatch_reply(db, rid)
    sandbox["email"].report_status = "failed"
    counts = watch()
    # When the provider reports on them
    assert poll_delivery(db, limit=10) == 3
    # Then two were delivered and one failed
    assert counts.now() == moved(delivered=2, failed=1)


def test_a_send_recovered_by_the_reconcile_sweep_counts_one_sent(
    db: sessionmaker[Session], sandbox: dict[str, SandboxSender], approved_reply
) -> None:
    # Given a reply the provider took, whose outcome the dispatcher never learnt
    rid = approved_reply(Channel.EMAIL)
    sandbox["email"].inject(CRASH_AFTER_RECORD)
    counts = watch()
    with pytest.raises(SimulatedCrash):
        dispatch_reply(db, rid)
    assert counts.now() == moved(sending=1)
    # When the sweep reconciles it, it is found at the provider: sent, once
    assert reconcile_stale_sending(db, older_than=timedelta(0)) == 1
    assert counts.now() == moved(sending=1, sent=1)


def test_a_move_rolled_back_counts_nothing(
    db: sessionmaker[Session], sandbox: dict[str, SandboxSender], approved_reply
) -> None:
    from kartabl.models import Reply
    from responders.dispatch import _fail

    rid = approved_reply(Channel.SMS)
    assert dispatch_reply(db, rid) == "sent"
    counts = watch()
    # Given a sent reply failed inside a transaction that then rolls back (as a delivery
    # report would fail it, but the transaction lost a race or hit an error)
    with db() as session:
        reply = session.get(Reply, rid)
        assert reply is not None
        _fail(session, reply, "refused")
        session.flush()
        session.rollback()
    # Then nothing was counted, and the reply is still sent
    assert counts.now() == moved()
    # While the same move committed counts once
    with db() as session:
        reply = session.get(Reply, rid)
        assert reply is not None
        _fail(session, reply, "refused")
        session.commit()
    assert counts.now() == moved(failed=1)

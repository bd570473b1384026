"""Replies left 'sending' by a crash are reconciled with the provider, never resent blindly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl.errors import OutcomeUnknown
from kartabl.models import Channel, Direction, Message, Reply, ReplyState, SandboxDelivery
from responders.dispatch import UNKNOWN_OUTCOME_REASON, dispatch_reply, reconcile_stale_sending
from responders.sandbox import CRASH_AFTER_RECORD, SimulatedCrash
from tests.factories import events

RS = ReplyState
NOW = timedelta(0)


def reply(db: sessionmaker[Session], rid: int) -> Reply:
    with db() as s:
        r = s.get(Reply, rid)
        assert r is not None
        return r


def delivery_count(db: sessionmaker[Session]) -> int:
    with db() as s:
        return len(s.scalars(select(SandboxDelivery.id)).all())


def test_a_crash_after_the_provider_accepted_is_marked_sent_without_resending(
    db, sandbox, approved_reply
) -> None:
    # Given a dispatcher that dies after the provider accepted the message
    rid = approved_reply(Channel.EMAIL)
    sandbox["email"].inject(CRASH_AFTER_RECORD)
    with pytest.raises(SimulatedCrash):
        dispatch_reply(db, rid)
    assert reply(db, rid).state == RS.SENDING
    # When the sweep reconciles it
    assert reconcile_stale_sending(db, older_than=NOW) == 1
    # Then it is sent, with the provider's id, and the provider got it once
    r = reply(db, rid)
    assert r.state == RS.SENT and r.provider_id and r.sent_at
    assert sandbox["email"].calls == 1 and delivery_count(db) == 1
    with db() as s:
        [out] = s.scalars(select(Message).where(Message.direction == Direction.OUT))
        assert out.external_id == r.idempotency_key
        assert events(s, "reply.sent")[0].data["via"] == "reconcile"
    assert reconcile_stale_sending(db, older_than=NOW) == 0


def test_a_crash_before_the_provider_accepted_is_dispatched_again(
    db, sandbox, approved_reply, enqueued
) -> None:
    rid = approved_reply(Channel.SMS)
    enqueued.clear()
    sandbox["sms"].inject(ConnectionResetError("connection reset"))  # after it left
    with pytest.raises(OutcomeUnknown, match="ConnectionResetError"):
        dispatch_reply(db, rid)
    # When the sweep finds the provider has no such message
    assert reconcile_stale_sending(db, older_than=NOW) == 1
    # Then the reply is approved again and its dispatch enqueued (after the commit)
    assert reply(db, rid).state == RS.APPROVED
    assert enqueued == [("dispatch_reply", rid)]
    assert dispatch_reply(db, rid) == "sent"
    assert delivery_count(db) == 1


@pytest.mark.parametrize(
    ("policy", "state", "error"),
    [("at_most_once", RS.FAILED, UNKNOWN_OUTCOME_REASON), ("at_least_once", RS.APPROVED, None)],
)
def test_a_channel_that_cannot_look_up_applies_its_policy(
    db, sandbox, approved_reply, enqueued, policy, state, error
) -> None:
    rid = approved_reply(Channel.TELEGRAM)
    enqueued.clear()
    sender = sandbox["telegram"]
    sender.supports_lookup, sender.unknown_outcome = False, policy
    sender.inject(CRASH_AFTER_RECORD)
    with pytest.raises(SimulatedCrash):
        dispatch_reply(db, rid)
    assert reconcile_stale_sending(db, older_than=NOW) == 1
    r = reply(db, rid)
    assert r.state == state
    if error:  # at most once: the coordinator sees why, nothing is resent
        assert r.error == error and enqueued == []
        with db() as s:
            assert events(s, "reply.failed")[0].data == {"reason": error}
    else:  # at least once: sent again
        assert enqueued == [("dispatch_reply", rid)]
    assert sender.calls == 1


def test_fresh_sending_replies_are_left_alone(db, sandbox, approved_reply) -> None:
    rid = approved_reply(Channel.BALE)
    sandbox["bale"].inject(CRASH_AFTER_RECORD)
    with pytest.raises(SimulatedCrash):
        dispatch_reply(db, rid)
    assert reconcile_stale_sending(db, older_than=timedelta(hours=1)) == 0
    assert reply(db, rid).state == RS.SENDING

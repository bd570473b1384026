"""Waiting on the customer and snoozing (kartabl.workflow.waiting): by a person, the pause
rows of the resolution clock, the snooze running out through the sweep with a notice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl import workflow
from kartabl.errors import IllegalTransition, InputError, NotFound, PermissionDenied
from kartabl.models import (
    Conversation,
    ConversationPause,
    ConversationStatus,
    Notification,
    utcnow,
)
from kartabl.workflow import waiting
from tests.factories import events
from tests.workflow.conftest import Org

CS = ConversationStatus


def pauses(session: Session, cid: int) -> list[ConversationPause]:
    return list(session.scalars(select(ConversationPause).where(
        ConversationPause.conversation_id == cid).order_by(ConversationPause.id)))


def test_waiting_opens_a_pause_and_resuming_ends_it(session: Session, org: Org) -> None:
    # Given ali's open conversation, when he sets it waiting on the customer
    workflow.waiting.wait(session, org.ali, org.conv.id)
    session.commit()
    # Then it waits, audited, with one open pause
    assert org.conv.status == CS.WAITING
    [pause] = pauses(session, org.conv.id)
    assert pause.ended_at is None
    [event] = events(session, "conversation.waiting")
    assert event.actor_id == org.ali.id and event.data["previous"] == "open"
    # Waiting twice is refused, naming the state
    with pytest.raises(IllegalTransition) as err:
        waiting.wait(session, org.ali, org.conv.id)
    assert err.value.state == "waiting"
    session.rollback()
    # Notes, drafts and hand-over go on while it waits
    workflow.note(session, org.ali, org.conv.id, "منتظر پاسخ مشتری")
    workflow.refer(session, org.ali, org.conv.id, person_id=org.sara.id, note="تو ادامه بده")
    # When sara resumes it, the pause ends and it is open again
    waiting.resume(session, org.sara, org.conv.id)
    session.commit()
    assert org.conv.status == CS.OPEN
    [pause] = pauses(session, org.conv.id)
    assert pause.ended_at is not None and pause.ended_at >= pause.started_at
    assert events(session, "conversation.resumed")[0].data["reason"] == "by_person"


def test_scope_and_state_checks(session: Session, org: Org) -> None:
    # bob (sales) cannot touch a support conversation: refused before its state is told
    with pytest.raises(PermissionDenied):
        waiting.wait(session, org.bob, org.conv.id)
    with pytest.raises(PermissionDenied):
        waiting.snooze(session, org.bob, org.conv.id, utcnow() + timedelta(hours=1))
    # a snooze is a person's step, never the system's
    with pytest.raises(PermissionDenied):
        waiting.snooze(session, None, org.conv.id, utcnow() + timedelta(hours=1))
    with pytest.raises(NotFound):
        waiting.wait(session, org.ali, 10**6)
    # resume needs a held conversation
    with pytest.raises(IllegalTransition):
        waiting.resume(session, org.ali, org.conv.id)
    # a time that has passed, or more than a year ahead, is refused with a code
    with pytest.raises(InputError) as err:
        waiting.snooze(session, org.ali, org.conv.id, utcnow() - timedelta(minutes=1))
    assert err.value.code == "status.snooze_past"
    with pytest.raises(InputError) as err:
        waiting.snooze(session, org.ali, org.conv.id, utcnow() + timedelta(days=400))
    assert err.value.code == "status.snooze_far"


def test_closing_from_waiting_ends_the_pause(session: Session, org: Org) -> None:
    waiting.wait(session, org.ali, org.conv.id)
    workflow.close(session, org.ali, org.conv.id)
    session.commit()
    assert org.conv.status == CS.CLOSED
    assert [p.ended_at is not None for p in pauses(session, org.conv.id)] == [True]


def test_snooze_runs_out_in_the_sweep_once_with_a_notice(
    session: Session, db: sessionmaker[Session], org: Org
) -> None:
    # Given ali snoozed his conversation until 09:00 tomorrow, after it waited a while
    now = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    waiting.wait(session, org.ali, org.conv.id, now=now - timedelta(hours=1))
    until = now + timedelta(hours=20)
    waiting.snooze(session, org.ali, org.conv.id, until, now=now)
    session.commit()
    # the clock runs while snoozed: the waiting pause ended when the snooze began
    assert [p.ended_at for p in pauses(session, org.conv.id)] == [now]
    assert (org.conv.status, org.conv.snoozed_until) == (CS.SNOOZED, until)
    # Before its time the sweep leaves it
    assert waiting.wake_due(session, now=until - timedelta(seconds=1)) == 0
    session.rollback()
    # When two schedulers sweep after its time, it wakes once
    with db() as a, db() as b:
        woke = waiting.wake_due(a, now=until + timedelta(seconds=5))
        a.commit()
        woke += waiting.wake_due(b, now=until + timedelta(seconds=6))
        b.commit()
    assert woke == 1
    session.expire_all()
    conv = session.get(Conversation, org.conv.id)
    assert conv is not None and conv.status == CS.OPEN
    # at the top of the queues (their order), with the mark and a notice to ali
    assert conv.last_message_at == until + timedelta(seconds=5)
    assert waiting.back_from_snooze(conv)
    [notice] = session.scalars(select(Notification).where(Notification.kind == "snooze_ended"))
    assert (notice.person_id, notice.conversation_id) == (org.ali.id, conv.id)
    [event] = events(session, "conversation.resumed")
    assert (event.actor_id, event.data["reason"]) == (None, "snooze_ended")
    # holding it again clears the mark
    waiting.wait(session, org.ali, conv.id)
    assert not waiting.back_from_snooze(conv)


def test_the_scheduler_sweep_wakes_a_snooze_whose_time_came(
    settings, db: sessionmaker[Session], org: Org
) -> None:
    from workers.sweeps import sweep_once

    # Given ali's conversation snoozed until a minute ago (set directly: a snooze is always
    # in the future when it is made)
    with db() as s:
        conv = s.get(Conversation, org.conv.id)
        assert conv is not None
        conv.status, conv.snoozed_until = CS.SNOOZED, utcnow() - timedelta(minutes=1)
        s.commit()
    # When the scheduler's sweep runs, twice
    first = sweep_once(db, settings, enqueue=lambda task, ids: None)
    second = sweep_once(db, settings, enqueue=lambda task, ids: None)
    # Then it woke once, and ali has his notice
    assert (first.woken, second.woken, first.errors) == (1, 0, ())
    with db() as s:
        conv = s.get(Conversation, org.conv.id)
        assert conv is not None and conv.status == CS.OPEN
        assert [n.kind for n in s.scalars(select(Notification).where(
            Notification.person_id == org.ali.id))] == ["snooze_ended"]


def test_the_snooze_notice_reads_in_both_languages(session: Session, org: Org) -> None:
    from console.pages.notifications import sentence
    from kartabl.notifications import feed

    now = utcnow()
    waiting.snooze(session, org.ali, org.conv.id, now + timedelta(minutes=5), now=now)
    waiting.wake_due(session, now=now + timedelta(minutes=6))
    session.commit()
    [item] = feed(session, org.ali)
    assert sentence("en", item) == "A conversation you hold is back from its snooze"
    assert "تعویق" in sentence("fa", item)

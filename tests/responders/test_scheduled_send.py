"""Scheduled send (kartabl.workflow.schedule): never before its time whatever enqueues it,
once at its time under racing dispatchers, held when the customer writes first (author and
approver told), reschedule / cancel / send now / back to draft, and who may."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from config.routing import get_routing
from kartabl import ingest, workflow
from kartabl.errors import IllegalTransition, InputError, NotFound, PermissionDenied
from kartabl.messages import InboundMessage
from kartabl.models import (
    Channel,
    Conversation,
    Event,
    Identity,
    Notification,
    Person,
    Reply,
    ReplyState,
    Role,
    utcnow,
)
from kartabl.workflow import schedule
from responders.dispatch import dispatch_reply
from responders.preview import REPLY_CHECK
from router.route import route_message
from tests.factories import conversation, events, inbound, person, team
from workers.sweeps import sweep_once

RS = ReplyState


@dataclass
class Case:
    reply_id: int
    conv_id: int
    author_id: int
    approver_id: int
    other_agent_id: int  # same team, not the author
    stranger_id: int  # another team's agent


def make_case(db: sessionmaker[Session], *, approve: bool = True,
              channel: Channel = Channel.SMS, ahead: timedelta = timedelta(hours=1)) -> Case:
    with db() as s:
        support, sales = team(s), team(s)
        agent = person(s, teams=[support])
        other = person(s, teams=[support])
        stranger = person(s, teams=[sales])
        coordinator = person(s, role=Role.COORDINATOR)
        conv = conversation(s, channel=channel, team=support, assignee=agent)
        reply = workflow.draft(s, agent, conv.id, "فردا صبح تماس می‌گیریم", check=REPLY_CHECK)
        schedule.schedule(s, agent, reply.id, utcnow() + ahead)
        workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
        if approve:
            workflow.approve(s, coordinator, reply.id, check=REPLY_CHECK)
        s.commit()
        return Case(reply.id, conv.id, agent.id, coordinator.id, other.id, stranger.id)


def get(db: sessionmaker[Session], reply_id: int) -> Reply:
    with db() as s:
        reply = s.get(Reply, reply_id)
        assert reply is not None
        return reply


def come_due(db: sessionmaker[Session], reply_id: int, ago: float = 1.0) -> None:
    """Time passes: the reply's send_at is now ``ago`` seconds behind us."""
    send_at = utcnow() - timedelta(seconds=ago)
    with db() as s, s.begin():  # last touched before then, as when it was approved
        s.execute(update(Reply).where(Reply.id == reply_id)
                  .values(send_at=send_at, updated_at=send_at - timedelta(minutes=5)))


def actor(s: Session, pid: int) -> Person | None:
    return s.get(Person, pid)


def test_not_sent_before_its_time_even_when_enqueued(db, sandbox, settings) -> None:
    case = make_case(db)
    # the approval enqueued it; a stale job, a retry: every dispatch before the time skips
    for _ in range(3):
        assert dispatch_reply(db, case.reply_id) == "skipped"
    reply = get(db, case.reply_id)
    assert reply.state == RS.APPROVED and reply.attempts == 0
    assert sandbox["sms"].calls == 0
    # and the sweep does not offer it before its time
    offered: list[tuple[str, object]] = []
    sweep_once(db, settings, enqueue=lambda task, arg: offered.append((task, arg)))
    assert ("dispatch_reply", case.reply_id) not in offered


def test_sent_once_at_its_time_by_the_sweep(db, sandbox, settings) -> None:
    case = make_case(db)
    come_due(db, case.reply_id)
    offered: list[tuple[str, object]] = []
    sweep_once(db, settings, enqueue=lambda task, arg: offered.append((task, arg)))
    # offered at once (not after the sweep's grace: it was not touched since its time)
    assert offered.count(("dispatch_reply", case.reply_id)) == 1
    assert dispatch_reply(db, case.reply_id) == "sent"
    assert dispatch_reply(db, case.reply_id) == "skipped"
    reply = get(db, case.reply_id)
    assert reply.state == RS.SENT and reply.send_at is not None
    assert reply.sent_at is not None and reply.sent_at >= reply.send_at
    assert sandbox["sms"].calls == 1
    # the next sweep does not offer it again
    offered.clear()
    sweep_once(db, settings, enqueue=lambda task, arg: offered.append((task, arg)))
    assert ("dispatch_reply", case.reply_id) not in offered


def test_racing_dispatchers_at_the_time_send_exactly_once(db, sandbox) -> None:
    case = make_case(db, ahead=timedelta(seconds=1.5))
    send_at = get(db, case.reply_id).send_at
    assert send_at is not None
    outcomes: list[str] = []
    sent_at: list[float] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def hammer() -> None:
        # each dispatcher keeps trying from before the time until past it, as stale jobs,
        # the sweep and retries would
        try:
            start.wait(timeout=10)
            deadline = time.monotonic() + 3.5
            while time.monotonic() < deadline:
                outcome = dispatch_reply(db, case.reply_id)
                outcomes.append(outcome)
                if outcome == "sent":
                    sent_at.append(time.time())
                time.sleep(0.05)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert outcomes.count("sent") == 1 and len(outcomes) > 8
    assert sandbox["sms"].calls == 1
    reply = get(db, case.reply_id)
    assert reply.state == RS.SENT and reply.attempts == 1
    assert reply.sent_at is not None and reply.sent_at >= send_at
    assert sent_at[0] >= send_at.timestamp()


def _customer_writes(db: sessionmaker[Session], conv_id: int) -> None:
    """The customer sends an SMS, stored as ingest does and routed by the router."""
    with db() as s:
        conv = s.get(Conversation, conv_id)
        assert conv is not None
        phone = s.scalar(select(Identity.address).where(Identity.customer_id == conv.customer_id))
        assert phone is not None
        mid = ingest.store(s, InboundMessage(channel="sms", sender=phone, text="لطفا صبر کنید",
                                             external_id=f"sms-{conv_id}-{time.time_ns()}"))
        s.commit()
        outcome = route_message(s, mid.message_id, routing=get_routing(),
                                reopen_window=timedelta(days=7))
        assert outcome is not None and outcome.conversation_id == conv_id


def test_held_when_the_customer_writes_first(db, sandbox) -> None:
    case = make_case(db)
    _customer_writes(db, case.conv_id)
    reply = get(db, case.reply_id)
    assert reply.schedule_held_at is not None and reply.state == RS.APPROVED
    with db() as s:
        told = s.execute(select(Notification.person_id, Notification.kind, Notification.reply_id)
                         .where(Notification.kind == "schedule_held")).all()
        assert sorted(told) == sorted([(case.author_id, "schedule_held", case.reply_id),
                                       (case.approver_id, "schedule_held", case.reply_id)])
        assert [e.reply_id for e in events(s, "reply.schedule_held")] == [case.reply_id]
    # its time comes: it does not leave, and the sweep does not offer it
    come_due(db, case.reply_id)
    assert dispatch_reply(db, case.reply_id) == "skipped"
    assert sandbox["sms"].calls == 0
    # a person sends it now
    with db() as s:
        schedule.send_now(s, actor(s, case.author_id), case.reply_id)
        s.commit()
    assert dispatch_reply(db, case.reply_id) == "sent" and sandbox["sms"].calls == 1


def test_the_claim_refuses_when_the_customer_wrote_and_the_sweep_holds_it(
    db, sandbox, settings,
) -> None:
    # a message attached without the router's hold (a reply locked at that moment)
    case = make_case(db)
    with db() as s:
        conv = s.get(Conversation, case.conv_id)
        assert conv is not None
        inbound(s, conv, text="یک سوال دیگر")
        s.commit()
    come_due(db, case.reply_id)
    assert dispatch_reply(db, case.reply_id) == "skipped"
    assert get(db, case.reply_id).schedule_held_at is None
    report = sweep_once(db, settings, enqueue=lambda task, arg: None)
    assert report.held == 1
    assert get(db, case.reply_id).schedule_held_at is not None
    with db() as s:
        assert s.scalar(select(Notification.id).where(
            Notification.kind == "schedule_held", Notification.person_id == case.author_id))


def test_a_message_before_the_schedule_does_not_hold(db, sandbox) -> None:
    case = make_case(db)  # the conversation's first message came before it was scheduled
    come_due(db, case.reply_id)
    assert dispatch_reply(db, case.reply_id) == "sent"


def test_reschedule_cancel_and_back_to_draft(db, sandbox) -> None:
    case = make_case(db)
    later = utcnow() + timedelta(days=2)
    with db() as s:
        schedule.schedule(s, actor(s, case.approver_id), case.reply_id, later)
        s.commit()
    assert get(db, case.reply_id).send_at == later
    # held, then rescheduled: released to the new time
    _customer_writes(db, case.conv_id)
    assert get(db, case.reply_id).schedule_held_at is not None
    with db() as s:
        schedule.schedule(s, actor(s, case.author_id), case.reply_id, later)
        s.commit()
    reply = get(db, case.reply_id)
    assert reply.schedule_held_at is None and reply.state == RS.APPROVED
    # cancelling an approved reply's schedule sends nothing: back to the author's drafts
    with db() as s:
        schedule.cancel(s, actor(s, case.author_id), case.reply_id)
        s.commit()
    reply = get(db, case.reply_id)
    assert (reply.state, reply.send_at, reply.approved_by_id) == (RS.DRAFT, None, None)
    assert dispatch_reply(db, case.reply_id) == "skipped" and sandbox["sms"].calls == 0
    with db() as s:
        kinds = list(s.scalars(select(Event.kind).where(Event.reply_id == case.reply_id)))
        assert kinds.count("reply.scheduled") == 3 and "reply.withdrawn" in kinds
    # a pending reply: cancel takes the time off; approved then, it leaves at once
    pending = make_case(db, approve=False)
    with db() as s:
        schedule.cancel(s, actor(s, pending.author_id), pending.reply_id)
        workflow.approve(s, actor(s, pending.approver_id), pending.reply_id, check=REPLY_CHECK)
        s.commit()
    assert dispatch_reply(db, pending.reply_id) == "sent"


def test_withdraw_then_resubmit_needs_approval_again(db, sandbox) -> None:
    case = make_case(db)
    with db() as s:
        schedule.withdraw(s, actor(s, case.approver_id), case.reply_id)
        workflow.submit(s, actor(s, case.author_id), case.reply_id, check=REPLY_CHECK)
        s.commit()
    assert get(db, case.reply_id).state == RS.PENDING_APPROVAL


def test_who_may_schedule(db, sandbox) -> None:
    case = make_case(db)
    soon = utcnow() + timedelta(hours=3)
    with db() as s:
        with pytest.raises(PermissionDenied) as denied:
            schedule.schedule(s, actor(s, case.stranger_id), case.reply_id, soon)
        assert denied.value.code == "outside_teams"  # the console answers it 404
        s.rollback()
        with pytest.raises(PermissionDenied) as denied:
            schedule.send_now(s, actor(s, case.other_agent_id), case.reply_id)
        assert denied.value.code == "schedule.who"
        s.rollback()
        with pytest.raises(NotFound):
            schedule.schedule(s, actor(s, case.author_id), 10**9, soon)
        s.rollback()
        with pytest.raises(InputError) as bad:
            schedule.schedule(s, actor(s, case.author_id), case.reply_id,
                              utcnow() - timedelta(minutes=1))
        assert bad.value.code == "schedule.past"
        s.rollback()
        with pytest.raises(InputError) as bad:
            schedule.schedule(s, actor(s, case.author_id), case.reply_id,
                              utcnow() + timedelta(days=400))
        assert bad.value.code == "schedule.too_far"
        s.rollback()
    assert dispatch_reply(db, case.reply_id) == "skipped"
    come_due(db, case.reply_id)
    assert dispatch_reply(db, case.reply_id) == "sent"
    with db() as s:  # once it left, nobody changes its schedule
        with pytest.raises(IllegalTransition):
            schedule.schedule(s, actor(s, case.author_id), case.reply_id, soon)
        with pytest.raises(IllegalTransition):
            schedule.send_now(s, actor(s, case.approver_id), case.reply_id)


def test_cancelling_an_unscheduled_approved_reply_is_refused_not_withdrawn(db, sandbox) -> None:
    # Given an approved reply with no send time (waiting for the outbox, or its retry)
    case = make_case(db, approve=False)
    with db() as s:
        schedule.cancel(s, actor(s, case.author_id), case.reply_id)
        workflow.approve(s, actor(s, case.approver_id), case.reply_id, check=REPLY_CHECK)
        s.commit()
    # When its author "cancels its schedule" (DELETE /api/v1/replies/{id}/schedule)
    with db() as s:
        with pytest.raises(IllegalTransition) as refused:
            schedule.cancel(s, actor(s, case.author_id), case.reply_id)
        assert refused.value.code == "schedule.not_scheduled"
        s.rollback()
    # Then there was no schedule to cancel: it stays approved, its approval kept
    reply = get(db, case.reply_id)
    assert (reply.state, reply.approved_by_id) == (RS.APPROVED, case.approver_id)
    assert dispatch_reply(db, case.reply_id) == "sent"


def test_a_message_routed_after_the_schedule_holds_it_though_stored_before(db, sandbox) -> None:
    # Given the customer's SMS is stored (ingest) but not yet routed: its routing job was
    # lost, or waits behind others (the sweep re-enqueues it later)
    case = make_case(db)
    with db() as s:
        conv = s.get(Conversation, case.conv_id)
        assert conv is not None
        phone = s.scalar(select(Identity.address).where(Identity.customer_id == conv.customer_id))
        stored = ingest.store(s, InboundMessage(channel="sms", sender=phone, text="صبر کنید",
                                                external_id=f"late-{time.time_ns()}"))
        s.commit()
    # When the author sets the time again, not seeing it (it is in no conversation yet)
    with db() as s:
        schedule.schedule(s, actor(s, case.author_id), case.reply_id,
                          utcnow() + timedelta(hours=2))
        s.commit()
    # and then the router attaches it to the conversation
    with db() as s:
        outcome = route_message(s, stored.message_id, routing=get_routing(),
                                reopen_window=timedelta(days=7))
        assert outcome is not None and outcome.conversation_id == case.conv_id
    # Then the reply is held: the customer wrote before it left, and nobody had seen it
    assert get(db, case.reply_id).schedule_held_at is not None
    come_due(db, case.reply_id)
    assert dispatch_reply(db, case.reply_id) == "skipped" and sandbox["sms"].calls == 0

"""Who is notified of what (kartabl.notifications), through the steps that cause it: the
workflow's transitions, the router and the sweep's breach warnings; and who is not: the
actor, a person who may not open the conversation, anybody when the step rolls back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.routing import ApprovalPolicy
from console.live import Cursor, Viewer, read_after
from kartabl import notifications, workflow
from kartabl.errors import InputError
from kartabl.models import (
    Channel,
    Conversation,
    Direction,
    Message,
    MessageKind,
    Notification,
    Person,
    Reply,
    Role,
    utcnow,
)
from responders.preview import REPLY_CHECK
from router.route import route_message
from tests.factories import conversation, events, person, routing_args
from workers.sweeps import sweep_once


def feed(session: Session, who: Person) -> list[tuple[str, int | None, int | None, str]]:
    """``who``'s notifications, oldest first: (kind, actor, conversation, text)."""
    rows = session.execute(
        select(Notification.kind, Notification.actor_id, Notification.conversation_id,
               Notification.text)
        .where(Notification.person_id == who.id).order_by(Notification.id))
    return [tuple(r) for r in rows]  # type: ignore[misc]


def everyone(session: Session) -> int:
    return len(session.scalars(select(Notification.id)).all())


def pending(session: Session, org, body: str = "سفارش شما ارسال شد") -> Reply:
    reply = workflow.draft(session, org.ali, org.conv.id, body, check=REPLY_CHECK)
    workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    session.commit()
    return reply


# -- assigned and referred -------------------------------------------------------------------


def test_an_assignment_notifies_the_new_assignee_not_the_coordinator(session: Session,
                                                                       org) -> None:
    workflow.assign(session, org.maryam, org.conv.id, person_id=org.sara.id)
    session.commit()
    assert feed(session, org.sara) == [("assigned", org.maryam.id, org.conv.id, "")]
    assert feed(session, org.maryam) == [] and feed(session, org.ali) == []


def test_assigning_to_oneself_notifies_nobody(session: Session, org) -> None:
    workflow.assign(session, org.maryam, org.conv.id, person_id=org.maryam.id)
    workflow.assign(session, org.maryam, org.conv.id, team_id=org.sales.id)  # no person
    session.commit()
    assert everyone(session) == 0


def test_a_referral_to_a_person_carries_the_note(session: Session, org) -> None:
    workflow.refer(session, org.ali, org.conv.id, person_id=org.sara.id, note="لطفاً پیگیری کن")
    session.commit()
    assert feed(session, org.sara) == [("referred", org.ali.id, org.conv.id, "لطفاً پیگیری کن")]
    assert feed(session, org.ali) == []


def test_a_referral_to_a_team_notifies_its_active_members_but_the_actor(
        session: Session, org) -> None:
    gone = person(session, "gone", teams=[org.sales], active=False)
    carol = person(session, "carol", Role.COORDINATOR, teams=[org.sales])
    workflow.refer(session, carol, org.conv.id, team_id=org.sales.id, note="for sales")
    session.commit()
    assert feed(session, org.bob) == [("team_referred", carol.id, org.conv.id, "for sales")]
    assert feed(session, carol) == [] and feed(session, gone) == []
    # the support team lost it: nobody there is told of a conversation they can no longer open
    assert feed(session, org.ali) == [] and feed(session, org.sara) == []


# -- approved and rejected -------------------------------------------------------------------


def test_a_rejection_reaches_the_author_with_the_comment(session: Session, org) -> None:
    reply = pending(session, org)
    workflow.reject(session, org.maryam, reply.id, "لحن را مؤدبانه‌تر کن")
    session.commit()
    assert feed(session, org.ali) == [("rejected", org.maryam.id, org.conv.id,
                                       "لحن را مؤدبانه‌تر کن")]


def test_an_approval_reaches_the_author(session: Session, org, enqueued) -> None:
    reply = pending(session, org)
    workflow.approve(session, org.maryam, reply.id, check=REPLY_CHECK)
    session.commit()
    assert feed(session, org.ali) == [("approved", org.maryam.id, org.conv.id, "")]


def test_a_reply_that_skips_review_tells_nobody(session: Session, org, enqueued) -> None:
    reply = workflow.draft(session, org.ali, org.conv.id, "x", check=REPLY_CHECK)
    workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK,
                    policy=ApprovalPolicy(trusted_agents=("ali",)))
    session.commit()
    assert session.get(Reply, reply.id).state.value == "approved"
    assert everyone(session) == 0


def test_a_refused_step_notifies_nobody(session: Session, org) -> None:
    reply = pending(session, org)
    with pytest.raises(InputError):
        workflow.reject(session, org.maryam, reply.id, "   ")
    session.rollback()
    assert everyone(session) == 0


# -- mentions --------------------------------------------------------------------------------


def test_mentions_in_latin_and_persian_usernames(session: Session, org) -> None:
    reza_fa = person(session, "رضا", teams=[org.support])
    session.commit()
    workflow.note(session, org.maryam, org.conv.id,
                  "@ali و @رضا، لطفاً نگاه کنید. (@sara.) نه x@sara.example")
    session.commit()
    for who in (org.ali, reza_fa, org.sara):
        assert [k for k, *_ in feed(session, who)] == ["mentioned"]
    assert feed(session, org.ali)[0][3].startswith("@ali و @رضا")


def test_an_email_address_is_not_a_mention() -> None:
    assert notifications.mentions("write to sara@example.com or @ali, @ali.") == ["ali"]


def test_a_mention_of_someone_outside_the_scope_or_oneself_tells_nobody(
        session: Session, org) -> None:
    # bob is in sales: the support conversation would be a 404 to him
    workflow.note(session, org.ali, org.conv.id, "@bob @ali @nobody-here please")
    session.commit()
    assert everyone(session) == 0


# -- the customer answered -------------------------------------------------------------------


def _customer_writes(session: Session, conv: Conversation) -> Message:
    sender = session.scalar(select(Message.sender).where(Message.conversation_id == conv.id))
    msg = Message(channel=Channel.EMAIL, external_id=f"<again-{conv.id}@example.ir>",
                  direction=Direction.IN, sender=sender, recipient="support@kartabl.example",
                  subject="Re: " + conv.subject, text="هنوز نرسیده")
    session.add(msg)
    session.commit()
    return msg


def test_a_customer_answer_tells_the_assignee(session: Session, org) -> None:
    msg = _customer_writes(session, org.conv)
    outcome = route_message(session, msg.id, **routing_args())
    assert outcome is not None and outcome.conversation_id == org.conv.id
    assert feed(session, org.ali) == [("answered", None, org.conv.id, "")]
    assert feed(session, org.sara) == [] and feed(session, org.maryam) == []


def test_a_message_the_router_places_tells_the_new_assignee_assigned(
        session: Session, org) -> None:
    conv = conversation(session, team=org.support)  # in the team, nobody holds it
    session.commit()
    outcome = route_message(session, _customer_writes(session, conv).id, **routing_args())
    assert outcome is not None and outcome.assignee_id is not None
    holder = session.get(Person, outcome.assignee_id)
    assert feed(session, holder) == [("assigned", None, conv.id, "")]
    assert everyone(session) == 1


def test_automatic_mail_tells_nobody(session: Session, org) -> None:
    msg = _customer_writes(session, org.conv)
    msg.kind = MessageKind.AUTO_REPLY
    session.commit()
    route_message(session, msg.id, **routing_args())
    assert everyone(session) == 0


# -- breach warnings -------------------------------------------------------------------------


def test_a_breach_warning_is_written_once_per_conversation(session: Session, org) -> None:
    now = utcnow()
    near = conversation(session, team=org.support, assignee=org.sara)
    near.opened_at = now - timedelta(minutes=200)  # 83 % of a 240-minute target
    late = conversation(session, team=org.support, assignee=org.sara)
    late.opened_at = now - timedelta(minutes=300)  # past it already: the overdue queue's
    early = conversation(session, team=org.support, assignee=org.sara)
    early.opened_at = now - timedelta(minutes=100)
    session.commit()
    args = {"first_response_minutes": 240, "resolution_hours": 72, "now": now}
    assert notifications.warn_breaches(session, **args) == 1
    session.commit()
    assert feed(session, org.sara) == [("breach", None, near.id, "first_response")]
    assert notifications.warn_breaches(session, **args) == 0  # once
    # handed to ali, it warns its new holder (and still not sara twice)
    workflow.assign(session, org.maryam, near.id, person_id=org.ali.id)
    session.commit()
    assert notifications.warn_breaches(session, **args) == 1
    session.commit()
    assert feed(session, org.ali)[-1] == ("breach", None, near.id, "first_response")


def test_a_full_batch_of_breach_warnings_leaves_the_rest_for_the_next_sweep(
        session: Session, org) -> None:
    # More conversations near their target than a batch: each sweep warns new ones, none
    # twice, until all are warned (the warned ones do not fill the next batch again)
    now = utcnow()
    convs = []
    for minutes in (230, 225, 220):
        conv = conversation(session, team=org.support, assignee=org.sara)
        conv.opened_at = now - timedelta(minutes=minutes)
        convs.append(conv.id)
    session.commit()
    args = {"first_response_minutes": 240, "resolution_hours": 72, "now": now, "limit": 2}
    assert notifications.warn_breaches(session, **args) == 2
    session.commit()
    assert notifications.warn_breaches(session, **args) == 1
    session.commit()
    assert notifications.warn_breaches(session, **args) == 0
    warned = sorted(c for kind, _, c, _ in feed(session, org.sara) if kind == "breach")
    assert warned == sorted(convs)


def test_the_schedulers_sweep_writes_the_warnings(db, settings, session: Session,
                                                  org) -> None:
    near = conversation(session, team=org.support, assignee=org.sara)
    near.opened_at = utcnow() - timedelta(minutes=settings.first_response_target_minutes * 0.9)
    session.commit()
    near_id = near.id
    session.close()  # SQLite: the sweep's sessions write; this one must hold no transaction
    report = sweep_once(db, settings, enqueue=lambda task, obj_id: None)
    assert report.warned == 1, report
    assert sweep_once(db, settings, enqueue=lambda task, obj_id: None).warned == 0
    assert feed(session, org.sara) == [("breach", None, near_id, "first_response")]


# -- reading, marking, and the live push -----------------------------------------------------


def test_marking_read_works_on_ones_own_notifications_only(session: Session, org) -> None:
    workflow.assign(session, org.maryam, org.conv.id, person_id=org.sara.id)
    session.commit()
    (mine,) = session.scalars(select(Notification.id).where(Notification.person_id == org.sara.id))
    assert notifications.mark_read(session, org.ali.id, mine) is False  # not ali's
    assert notifications.mark_all_read(session, org.ali.id) == 0
    assert notifications.unread_count(session, org.sara.id) == 1
    assert notifications.mark_read(session, org.sara.id, mine) is True
    assert notifications.unread_count(session, org.sara.id) == 0


def test_the_live_event_reaches_the_recipient_alone(session: Session, org) -> None:
    workflow.refer(session, org.ali, org.conv.id, person_id=org.sara.id, note="n")
    session.commit()
    (event,) = events(session, notifications.EVENT)
    assert event.conversation_id is None  # in no conversation's timeline
    live = [e for e in read_after(session, Cursor(0)) if e.kind == notifications.EVENT]
    assert [e.for_person for e in live] == [org.sara.id]
    assert Viewer.of(session, org.sara).may_see(live[0])
    for other in (org.ali, org.maryam, org.admin, org.bob):  # reviewers included
        assert not Viewer.of(session, other).may_see(live[0])


def test_a_conversation_is_new_until_seen_and_again_after_a_customer_message(
        session: Session, org) -> None:
    cid = org.conv.id
    last = {cid: org.conv.last_message_at}
    assert notifications.unseen(session, org.ali.id, last) == {cid}
    notifications.mark_seen(session, org.ali.id, cid)
    notifications.mark_seen(session, org.ali.id, cid)  # twice: one row
    session.commit()
    assert notifications.unseen(session, org.ali.id, last) == set()
    assert notifications.unseen(session, org.sara.id, last) == {cid}  # per person
    route_message(session, _customer_writes(session, org.conv).id, **routing_args())
    session.refresh(org.conv)
    assert notifications.unseen(session, org.ali.id, {cid: org.conv.last_message_at}) == {cid}

"""The customer's next message continues a waiting or snoozed conversation and opens it
again (router.threading with kartabl.workflow.waiting); automatic mail does not wake it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from kartabl.models import Conversation, ConversationPause, ConversationStatus, Role, utcnow
from kartabl.workflow import waiting
from tests.factories import events

CS = ConversationStatus


def test_customer_message_ends_the_wait(session, inbound, route):
    first = route(inbound(sender="a@example.ir", subject="سفارش"))
    # Given the conversation waits on the customer (set by the system after a reply)
    waiting.wait(session, None, first.conversation_id, reason="reply_sent")
    session.commit()
    # When the customer writes again
    again = route(inbound(sender="a@example.ir", text="این هم شماره سفارش"))
    # Then the message continues it, it is open, the pause ended, audited as the system
    assert (again.how, again.conversation_id) == ("open", first.conversation_id)
    session.expire_all()
    conv = session.get(Conversation, first.conversation_id)
    assert conv.status == CS.OPEN
    [pause] = session.scalars(select(ConversationPause))
    assert pause.ended_at is not None
    [event] = events(session, "conversation.resumed")
    assert event.actor_id is None and event.data["reason"] == "customer_wrote"
    assert event.message_id == again.message_id


def test_customer_message_ends_a_snooze_before_its_time(session, inbound, route, make_person):
    first = route(inbound(sender="b@example.ir", subject="پرسش"))
    coordinator = make_person(role=Role.COORDINATOR)
    waiting.snooze(session, coordinator, first.conversation_id, utcnow() + timedelta(days=2))
    session.commit()
    again = route(inbound(sender="b@example.ir", text="هنوز منتظرم"))
    assert again.conversation_id == first.conversation_id
    session.expire_all()
    conv = session.get(Conversation, first.conversation_id)
    assert conv.status == CS.OPEN and conv.snoozed_until is None
    # and the sweep later finds nothing to wake
    assert waiting.wake_due(session, now=utcnow() + timedelta(days=3)) == 0


def test_automatic_mail_is_filed_without_waking(session, inbound, route):
    first = route(inbound(sender="c@example.ir", subject="پرسش"))
    waiting.wait(session, None, first.conversation_id)
    session.commit()
    auto = route(inbound(sender="c@example.ir", text="I am out of office", kind="auto_reply"))
    assert auto.conversation_id == first.conversation_id
    session.expire_all()
    assert session.get(Conversation, first.conversation_id).status == CS.WAITING

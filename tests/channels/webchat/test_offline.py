"""The offline continuation on both databases: a visitor who gave a number and left gets the
approved answer by SMS (the Kavenegar stand-in, through the real outbox and sender) exactly
once, and their SMS answer continues the same widget conversation; a connected visitor gets
it in the widget only; outside business hours it goes by SMS even to a connected visitor;
without a contact it waits in the widget log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from channels.webchat.log import sync_notices
from channels.webchat.offline import is_gone
from channels.webchat.stream import mark_seen
from config.sms import SmsConfig
from kartabl import workflow
from kartabl.models import (
    Channel,
    Conversation,
    Customer,
    Identity,
    Message,
    Reply,
    ReplyState,
    Role,
    WebchatOffline,
    WebchatVisitor,
    utcnow,
)
from kartabl.outbound import register, registered, unregister
from responders.dispatch import dispatch_reply
from responders.outbound import build_message
from responders.preview import REPLY_CHECK
from responders.webchat import WebchatSender
from router.route import route_message
from tests.channels.sms.conftest import LINE, poll_sms, sms_config, standin  # noqa: F401
from tests.channels.webchat.conftest import ORIGIN, Chat, make_widget
from tests.console.conftest import add_person, sign_in
from tests.factories import person, routing_args
from tests.responders.limits import kavenegar

PHONE = "۰۹۱۲ ۳۴۵ ۶۷۸۹"
E164 = "+989123456789"


@pytest.fixture
def senders(db: sessionmaker[Session], sms_config: SmsConfig) -> Iterator[None]:  # noqa: F811
    before = {c: registered().get(c) for c in ("webchat", "sms")}
    for c in before:
        unregister(c)
    register(WebchatSender(db, away_s=30))
    sms = register(kavenegar(sms_config))
    yield
    for c, old in before.items():
        unregister(c)
        if old is not None:
            register(old)
    sms.close()


def _visitor_id(db: sessionmaker[Session]) -> int:
    """The newest visitor (each test makes one)."""
    with db() as s:
        return s.scalars(select(WebchatVisitor.id).order_by(WebchatVisitor.id.desc())).one()


def _ask_and_approve(chat: Chat, db: sessionmaker[Session], token: str,
                     **contact: str) -> tuple[int, int]:
    """The visitor writes (with the pre-chat form's contact), it is routed, drafted,
    approved: (conversation id, reply id)."""
    assert chat.post(token, "سفارش ۱۲ کجاست؟", **contact).status_code == 200
    with db() as s:
        mid = s.scalars(select(Message.id).order_by(Message.id.desc())).first()
        outcome = route_message(s, mid, **routing_args())
        assert outcome is not None and outcome.conversation_id is not None
        boss = person(s, role=Role.ADMIN)
        reply = workflow.draft(s, boss, outcome.conversation_id, "فردا ارسال می‌شود.",
                               check=REPLY_CHECK)
        s.commit()
        sync_notices(s)
        workflow.submit(s, boss, reply.id, check=REPLY_CHECK)
        workflow.approve(s, person(s, role=Role.COORDINATOR), reply.id, check=REPLY_CHECK)
        s.commit()
        return outcome.conversation_id, reply.id


def _continuations(db: sessionmaker[Session]) -> list[WebchatOffline]:
    with db() as s:
        return list(s.scalars(select(WebchatOffline)))


def test_gone_visitor_gets_sms_once_and_answer_continues(
        chat: Chat, db: sessionmaker[Session], senders: None, standin,  # noqa: F811
        sms_config: SmsConfig) -> None:  # noqa: F811
    token = chat.visitor()
    conv, rid = _ask_and_approve(chat, db, token, contact=PHONE)
    # the visitor's page opened no stream (closed before the answer): gone
    assert dispatch_reply(db, rid) == "sent"
    assert dispatch_reply(db, rid) == "skipped"
    # the widget's send retried after an unknown outcome: the event is there, no second copy
    with db() as s:
        reply = s.get(Reply, rid)
        assert reply is not None
        again = build_message(s, reply)
    WebchatSender(db, away_s=30).send(again)
    rows = _continuations(db)
    assert [(r.source_reply_id, r.kind, r.address, r.reason) for r in rows] == [
        (rid, "phone", E164, "gone")]
    sms_id = rows[0].reply_id
    assert dispatch_reply(db, sms_id) == "sent"
    assert dispatch_reply(db, sms_id) == "skipped"  # a redelivered job
    sent = [m for m in standin.sent if m.message.find("فردا ارسال می‌شود.") >= 0]
    assert len(sent) == 1 and sent[0].receptor.endswith("9123456789")
    with db() as s:
        sms_reply = s.get(Reply, sms_id)
        assert sms_reply is not None and sms_reply.state == ReplyState.SENT
        assert sms_reply.conversation_id == conv and sms_reply.channel == Channel.SMS
    # the returning visitor still sees the answer in the widget
    assert [e["kind"] for e in chat.events(token)] == ["message", "preparing", "reply"]

    # the customer answers by SMS: it continues the same conversation
    standin.inbound("09123456789", "ممنون، منتظرم", LINE, via="queue")
    poll_sms(sms_config, db)
    with db() as s:
        answer = s.scalars(select(Message).where(Message.channel == Channel.SMS,
                                                 Message.text == "ممنون، منتظرم")).one()
        outcome = route_message(s, answer.id, **routing_args())
        assert outcome is not None and outcome.conversation_id == conv
        assert outcome.how == "offline"
        # the typed number was never linked to the visitor's customer
        visitor_customer = s.get(Conversation, conv).customer_id  # type: ignore[union-attr]
        phone = s.scalars(select(Identity).where(Identity.kind == "phone",
                                                 Identity.address == E164)).one()
        assert phone.customer_id != visitor_customer
        assert s.get(Customer, phone.customer_id) is not None
    # and the visitor's widget does not show the SMS answer
    assert [e["kind"] for e in chat.events(token)] == ["message", "preparing", "reply"]


def test_connected_visitor_gets_it_in_the_widget_only(
        chat: Chat, db: sessionmaker[Session], senders: None) -> None:
    token = chat.visitor()
    _, rid = _ask_and_approve(chat, db, token, contact=PHONE)
    chat.events(token)  # a stream was open: marked seen
    with db() as s:
        visitor = s.get(WebchatVisitor, _visitor_id(db))
        assert visitor is not None and not is_gone(visitor, utcnow(), 30)
        assert is_gone(visitor, utcnow() + timedelta(seconds=31), 30)
    assert dispatch_reply(db, rid) == "sent"
    assert _continuations(db) == []
    assert [e["kind"] for e in chat.events(token)] == ["message", "preparing", "reply"]


def test_no_contact_waits_in_the_widget_log(
        chat: Chat, db: sessionmaker[Session], senders: None) -> None:
    token = chat.visitor()
    _, rid = _ask_and_approve(chat, db, token)
    assert dispatch_reply(db, rid) == "sent"
    assert _continuations(db) == []
    assert [e["kind"] for e in chat.events(token)] == ["message", "preparing", "reply"]


@pytest.fixture
def closed_team(routing_file: Path) -> Path:
    # a team whose hours never include now: every day but today (UTC) round the clock
    today = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][utcnow().weekday()]
    days = ", ".join(f'{d} = ["00:00-24:00"]'
                     for d in ("sat", "sun", "mon", "tue", "wed", "thu", "fri") if d != today)
    routing_file.write_text(routing_file.read_text(encoding="utf-8") + f"""
[[teams]]
name = "night"
timezone = "UTC"
hours = {{ {days} }}
iran_holidays = false
""", encoding="utf-8")
    return routing_file


def test_outside_hours_connected_visitor_also_gets_sms(
        closed_team: Path, chat: Chat, db: sessionmaker[Session], senders: None) -> None:
    from kartabl.models import Team
    token = chat.visitor()
    with db() as s:
        s.add(Team(name="night"))
        s.commit()
    conv, rid = _ask_and_approve(chat, db, token, contact="Ali@Example.IR")
    with db() as s:
        team = s.scalars(select(Team.id).where(Team.name == "night")).one()
        s.execute(update(Conversation).where(Conversation.id == conv).values(team_id=team))
        s.commit()
    mark_seen(db, _visitor_id(db))  # connected right now
    assert dispatch_reply(db, rid) == "sent"
    assert [(r.kind, r.address, r.reason) for r in _continuations(db)] == [
        ("email", "ali@example.ir", "closed_hours")]
    with db() as s:
        copy = s.get(Reply, _continuations(db)[0].reply_id)
        assert copy is not None and copy.channel == Channel.EMAIL
        assert copy.state == ReplyState.APPROVED
        # the outbox sends it to the typed address, not to any identity
        assert build_message(s, copy).recipient == "ali@example.ir"


def test_outside_hours_the_widget_is_offline_and_insists_on_a_contact(
        closed_team: Path, chat: Chat, db: sessionmaker[Session]) -> None:
    from kartabl.models import Team
    with db() as s:
        night = Team(name="night")
        s.add(night)
        s.commit()
        night_id = night.id
    shop = Chat(chat.client, make_widget(db, team_id=night_id, offline_fa="فردا پاسخ می‌دهیم"))
    assert chat.session().json()["offline"] is False  # no team: never offline
    chat.client.cookies.clear()
    r = shop.session()
    assert r.status_code == 200 and r.json()["offline"] is True
    assert r.json()["has_contact"] is False
    token = r.json()["visitor"]
    refused = shop.post(token, "سلام")
    assert refused.status_code == 400 and "contact" in refused.text
    assert shop.post(token, "سلام", contact=PHONE).status_code == 200
    assert shop.post(token, "هنوز هستم").status_code == 200  # the contact is known now
    assert shop.session(token=token).json()["has_contact"] is True
    with db() as s:
        assert s.scalars(select(Message.text).order_by(Message.id)).all() == ["سلام", "هنوز هستم"]


def test_satisfaction_at_close_once_per_conversation(
        chat: Chat, db: sessionmaker[Session], senders: None) -> None:
    token = chat.visitor()
    conv, rid = _ask_and_approve(chat, db, token)
    dispatch_reply(db, rid)
    with db() as s:
        workflow.close(s, person(s, role=Role.COORDINATOR), conv)
        s.commit()
        sync_notices(s)
    closed = [e for e in chat.events(token) if e["kind"] == "closed"]
    assert len(closed) == 1
    seq = closed[0]["seq"]

    def rate(score: object, comment: str = "", who: str = token, at: object = seq) -> int:
        r = chat.client.post(chat.url("rating"), json={"seq": at, "score": score,
                                                       "comment": comment},
                             headers={"Origin": ORIGIN, "X-Kartabl-Visitor": who})
        return r.status_code

    assert rate(6) == 400 and rate(0) == 400
    assert rate(5, "x" * 1001) == 400  # the comment's cap
    assert rate(5, at=seq - 1) == 404  # not a close: a message event
    other = chat.visitor()
    assert rate(1, who=other) == 404  # another visitor cannot rate this chat's close
    assert rate(4, "خوب بود") == 200
    assert rate(4, "خوب بود") == 200  # a retried POST
    assert rate(1, "بد") == 409  # a second, different rating is refused
    r = chat.client.post(chat.url("rating"), json={"seq": seq, "score": 3},
                         headers={"Origin": "https://evil.example", "X-Kartabl-Visitor": token})
    assert r.status_code == 403
    with db() as s:
        c = s.get(Conversation, conv)
        assert c is not None
        assert (c.satisfaction_score, c.satisfaction_comment) == (4, "خوب بود")
        assert c.satisfaction_at is not None
        # and the reports count it (the range around today, in any time zone)
        from console.reports import report, report_rows
        today = utcnow().date()
        rep = report(s, person(s, role=Role.ADMIN), today - timedelta(days=1),
                     today + timedelta(days=1))
        assert (rep.rated, rep.satisfaction_avg) == (1, 4.0)
        assert ["satisfaction", "average", "", "4.0", ""] in report_rows(rep)
    # the conversation page of the console shows it
    add_person(db, "rater-boss", Role.ADMIN)
    chat.client.cookies.clear()
    sign_in(chat.client, "rater-boss")
    page = chat.client.get(f"/conversations/{conv}")
    assert page.status_code == 200
    assert 'id="conv-satisfaction" data-score="4"' in page.text and "خوب بود" in page.text

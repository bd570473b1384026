"""A conversation we start, through approval, out by the real senders (the Kavenegar
stand-in, aiosmtpd), and the customer's answer back into the same conversation through the
inbound contract (the SMS poller against the stand-in; ``channels.email.parse``)."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.email import parse
from channels.sms.standin import KavenegarStandin
from config.sms import SmsConfig
from kartabl import ingest, outbound, workflow
from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    Person,
    Reply,
    ReplyState,
    Role,
)
from kartabl.workflow import merge as wm
from kartabl.workflow.start import start
from responders.dispatch import dispatch_reply
from responders.preview import REPLY_CHECK
from router.identity import normalize_phone
from router.route import route_message
from tests.channels.sms.conftest import poll_sms
from tests.factories import inbound, person, routing_args, team
from tests.responders.limits import kavenegar

API_KEY = "KAVE-start-secret-key-AbC123"
LINE = "10008663"
TYPED = "۰۹۱۲ ۳۴۵ ۶۷۸۹"  # as a person types it, in Persian digits


@pytest.fixture
def standin() -> Iterator[KavenegarStandin]:
    server = KavenegarStandin(API_KEY).start()
    yield server
    server.stop()


@pytest.fixture
def sms_config(standin: KavenegarStandin) -> SmsConfig:
    return SmsConfig(api_key=API_KEY, base_url=standin.base_url, line=LINE,
                     connect_timeout_s=1.0, timeout_s=1.0)


@pytest.fixture
def sms(sms_config: SmsConfig, sandbox) -> Iterator[None]:
    sender = kavenegar(sms_config)
    outbound.register(sender)
    yield
    sender.close()


def people(db: sessionmaker[Session]) -> tuple[int, int]:
    with db() as s:
        support = team(s, "support")
        agent = person(s, "ali", teams=[support])
        coordinator = person(s, "maryam", Role.COORDINATOR)
        s.commit()
        return agent.id, coordinator.id


def started_and_approved(db: sessionmaker[Session], **kw: object) -> tuple[int, int]:
    """The agent starts a conversation, a coordinator approves its reply: (conv, reply)."""
    agent_id, coordinator_id = people(db)
    with db() as s:
        agent = s.get(Person, agent_id)
        started = start(s, agent, check=REPLY_CHECK, **kw)  # type: ignore[arg-type]
        assert started.reply.state == ReplyState.PENDING_APPROVAL
        s.commit()
        cid, rid = started.conversation.id, started.reply.id
    with db() as s:
        workflow.approve(s, s.get(Person, coordinator_id), rid, check=REPLY_CHECK)
        s.commit()
    return cid, rid


def route_all(db: sessionmaker[Session]) -> list[Message]:
    with db() as s:
        ids = list(s.scalars(select(Message.id).where(Message.direction == Direction.IN,
                                                      Message.routed_at.is_(None))))
        for mid in ids:
            route_message(s, mid, **routing_args())
        return list(s.scalars(select(Message).where(Message.id.in_(ids))))


def test_an_sms_conversation_through_approval_and_the_customers_answer(
        db, sms, standin, sms_config) -> None:
    # Given agent ali starts a conversation by SMS to a new number, and maryam approves it
    phone = normalize_phone(TYPED)
    cid, rid = started_and_approved(
        db, new_address=("phone", phone), body="سلام، سفارش شما آماده‌ی تحویل است.")
    # When the outbox dispatches it
    assert dispatch_reply(db, rid) == "sent"
    # Then the stand-in received the SMS, to that number, from our line, with its localid
    [sent] = standin.sent
    assert (sent.receptor, sent.sender, sent.localid) == ("09123456789", LINE, str(rid))
    assert "آماده‌ی تحویل" in sent.message
    with db() as s:
        reply = s.get(Reply, rid)
        assert reply is not None and reply.state == ReplyState.SENT
    # When the customer answers by SMS, fetched by the poller from Kavenegar
    standin.inbound("09123456789", "ممنون، فردا می‌آیم", LINE, via="queue")
    assert poll_sms(sms_config, db).created == 1
    [answer] = route_all(db)
    # Then it lands in the same conversation: the customer's open one on SMS
    assert answer.conversation_id == cid and answer.sender == phone
    with db() as s:
        conv = s.get(Conversation, cid)
        agent = s.scalar(select(Person).where(Person.username == "ali"))
        # still ali's, in his team: the router keeps the conversation where it is
        assert conv is not None and agent is not None and conv.assignee_id == agent.id
        assert conv.team is not None and conv.team.name == "support"
        # and a second reply answers the inbound message as any reply does
        second = workflow.draft(s, agent, cid, "خواهش می‌کنم", check=REPLY_CHECK)
        s.commit()
        assert second.conversation_id == cid


def test_an_email_conversation_through_approval_and_the_answer_threads_back(
        db, smtp_server, smtp_outbox) -> None:
    # Given agent ali starts a conversation by email, from the support mailbox, approved
    cid, rid = started_and_approved(
        db, new_address=("email", "new.customer@example.ir"), subject="پیگیری سفارش ۱۲",
        body="سلام، سفارش شما ارسال شد.", our_address="support@kartabl.example")
    # When the outbox sends it by SMTP
    assert dispatch_reply(db, rid) == "sent"
    [got] = smtp_server.recorder.received
    mail = got.message
    with db() as s:
        reply = s.get(Reply, rid)
        assert reply is not None
        key = reply.idempotency_key
    # Then the mail goes to the customer, from the mailbox, with the subject as typed
    assert (got.mail_from, got.rcpt_tos) == ("support@kartabl.example",
                                             ["new.customer@example.ir"])
    assert str(mail["Subject"]) == "پیگیری سفارش ۱۲"
    assert mail["From"].addresses[0].addr_spec == "support@kartabl.example"
    # with a signed Message-ID in our domain, threading on nothing
    assert key is not None and str(mail["Message-ID"]) == key
    assert key.startswith("<kartabl.") and key.endswith("@kartabl.example>")
    assert mail["In-Reply-To"] is None and mail["References"] is None
    # A second mail before the customer answered follows our first one
    with db() as s:
        conv = s.get(Conversation, cid)
        assert conv is not None and conv.assignee_id is not None
        agent, coordinator = s.get(Person, conv.assignee_id), s.scalar(
            select(Person).where(Person.username == "maryam"))
        again = workflow.draft(s, agent, cid, "یادآوری: سفارش شما رسید؟", check=REPLY_CHECK)
        workflow.submit(s, agent, again.id, check=REPLY_CHECK)
        workflow.approve(s, coordinator, again.id, check=REPLY_CHECK)
        s.commit()
        again_id = again.id
    assert dispatch_reply(db, again_id) == "sent"
    second = smtp_server.recorder.received[1].message
    assert str(second["In-Reply-To"]) == key and str(second["References"]) == key
    assert str(second["Subject"]) == "پیگیری سفارش ۱۲"
    # When the customer answers the first
    answer = EmailMessage()
    answer["From"] = "New Customer <new.customer@example.ir>"
    answer["To"] = "support@kartabl.example"
    answer["Subject"] = "Re: پیگیری سفارش ۱۲"
    answer["Message-ID"] = make_msgid(domain="example.ir")
    answer["In-Reply-To"] = key
    answer["References"] = key
    answer.set_content("ممنون، رسید.")
    parsed = parse(answer.as_bytes(), our_addresses={"support@kartabl.example"})
    with db() as s:
        ingest.store(s, parsed)
    [routed] = route_all(db)
    # Then it lands in the same conversation
    assert routed.conversation_id == cid
    with db() as s:
        # the second reply threads on the customer's answer as usual
        conv = s.get(Conversation, cid)
        assert conv is not None and conv.subject == "پیگیری سفارش ۱۲"


def test_a_started_conversations_unsent_reply_still_goes_out_after_a_merge(
        db, smtp_server, smtp_outbox) -> None:
    # Given ali started an email conversation (B) whose first message maryam sent back
    agent_id, coordinator_id = people(db)
    with db() as s:
        agent, coordinator = s.get(Person, agent_id), s.get(Person, coordinator_id)
        started = start(s, agent, new_address=("email", "new.customer@example.ir"),
                        subject="پیگیری سفارش ۱۲", body="سلام، سفارش شما ارسال شد.",
                        our_address="support@kartabl.example", check=REPLY_CHECK)
        workflow.reject(s, coordinator, started.reply.id, "تاریخ را بنویسید")
        b, rid = started.conversation, started.reply.id
        # and the same customer's SMS conversation (A), where they wrote to us
        a = Conversation(customer_id=b.customer_id, channel=Channel.SMS, subject="پیامک",
                         team_id=b.team_id, status=ConversationStatus.OPEN)
        s.add(a)
        s.flush()
        inbound(s, a, text="سلام", sender="+989123456789")
        s.commit()
        a_id, b_id = a.id, b.id
    # When B is merged into A, and its reply is corrected, submitted and approved there
    with db() as s:
        coordinator = s.get(Person, coordinator_id)
        wm.merge(s, coordinator, b_id, a_id)
        agent = s.get(Person, agent_id)
        workflow.update_draft(s, agent, rid, "سلام، سفارش شما دیروز ارسال شد.")
        workflow.submit(s, agent, rid, check=REPLY_CHECK)
        workflow.approve(s, coordinator, rid, check=REPLY_CHECK)
        s.commit()
    # Then it still goes out as started: by email, to the address chosen, subject as typed
    assert dispatch_reply(db, rid) == "sent"
    [got] = smtp_server.recorder.received
    assert (got.mail_from, got.rcpt_tos) == ("support@kartabl.example",
                                             ["new.customer@example.ir"])
    assert str(got.message["Subject"]) == "پیگیری سفارش ۱۲"

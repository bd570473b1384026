"""A conversation we start by email, answered by the customer over IMAP: the agent writes
first, a coordinator approves, the mail leaves by SMTP (aiosmtpd) from the mailbox the
channels file names, and the customer's answer, delivered to the mailbox in Dovecot and
fetched by the IMAP poller, threads back into the same conversation by its In-Reply-To."""

from __future__ import annotations

from collections.abc import Iterator
from email.header import Header

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.email.service import make_poller
from config.channels import ChannelsConfig, get_channels
from config.routing import get_routing
from config.settings import get_settings
from console.starting import mailboxes
from kartabl import outbound, workflow
from kartabl.models import Channel, Conversation, Message, Person, Reply, Role, Team
from kartabl.workflow.start import start
from responders.dispatch import dispatch_reply
from responders.email import SmtpSender
from responders.preview import REPLY_CHECK
from router.batch import route_batch
from router.teams import sync_teams
from tests.channels.email.imap_helpers import append
from tests.factories import person, routing_args
from tests.responders import smtp_server as smtp

CUSTOMER = "new.customer@example.ir"


@pytest.fixture
def smtp_out() -> Iterator[smtp.SmtpServer]:
    server = smtp.start()
    before = outbound.registered()
    outbound.register(SmtpSender(server.email_config(timeout_s=2.0)))
    yield server
    outbound.unregister(Channel.EMAIL)
    if "email" in before:
        outbound.register(before["email"])
    server.controller.stop()


def test_the_customers_answer_by_imap_continues_the_conversation_we_started(
        db: sessionmaker[Session], imap, write_channels, smtp_out) -> None:
    mailbox = write_channels(team="support")
    with db() as s:
        sync_teams(s, get_routing())
        support = s.scalar(select(Team).where(Team.name == "support"))  # the routing's
        assert support is not None
        agent = person(s, "ali", teams=[support])
        coordinator = person(s, "maryam", Role.COORDINATOR)
        s.commit()
        agent_id, coordinator_id = agent.id, coordinator.id
    # Given ali starts a conversation by email, from the mailbox that can send, approved
    with db() as s:
        sending = ChannelsConfig(email=smtp_out.email_config())
        started = start(s, s.get(Person, agent_id), new_address=("email", CUSTOMER),
                        subject="پیگیری سفارش ۱۲", body="سلام، سفارش شما ارسال شد.",
                        our_address=mailboxes(s, sending), check=REPLY_CHECK)
        s.commit()
        cid, rid = started.conversation.id, started.reply.id
    with db() as s:
        workflow.approve(s, s.get(Person, coordinator_id), rid, check=REPLY_CHECK)
        s.commit()
    assert dispatch_reply(db, rid) == "sent"
    [got] = smtp_out.recorder.received
    sent_id = str(got.message["Message-ID"])
    assert got.rcpt_tos == [CUSTOMER] and sent_id.endswith("@kartabl.example>")
    with db() as s:
        reply = s.get(Reply, rid)
        assert reply is not None and reply.idempotency_key == sent_id
    # When the customer answers it, and the mail arrives in the mailbox
    answer = (
        f"From: New Customer <{CUSTOMER}>\r\nTo: Support <support@kartabl.example>\r\n"
        f"Subject: {Header('Re: پیگیری سفارش ۱۲', 'utf-8').encode()}\r\n"
        f"Message-ID: <answer.1@example.ir>\r\nIn-Reply-To: {sent_id}\r\n"
        f"References: {sent_id}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "ممنون، رسید.\r\n").encode()
    append(imap, answer)
    result = make_poller(get_settings(), get_channels(), mailbox).poll_once()
    assert result.created == 1
    # Then the router threads it into the conversation we started
    with db() as s:
        [mid] = s.scalars(select(Message.id).where(Message.sender == CUSTOMER))
        route_batch(s, [mid], **routing_args())
    with db() as s:
        msg = s.get(Message, mid)
        assert msg is not None and msg.conversation_id == cid
        assert msg.text.strip() == "ممنون، رسید." and msg.subject == "Re: پیگیری سفارش ۱۲"
        conv = s.get(Conversation, cid)
        assert conv is not None and conv.customer_id == msg.customer_id

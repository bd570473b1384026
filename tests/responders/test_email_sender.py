"""The SMTP sender against a local SMTP server (aiosmtpd): what the customer receives, the
outbox path, the error mapping, TLS, AUTH, and header injection."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bench.ports import free_port
from config.channels import ChannelsConfig, EmailConfig
from config.settings import get_settings
from kartabl import outbound as port
from kartabl import workflow
from kartabl.errors import OutcomeUnknown, PermanentDeliveryError, RetryableDeliveryError
from kartabl.messages import OutboundMessage
from kartabl.models import Channel, Direction, Message, Reply, ReplyState, Role, utcnow
from responders.dispatch import dispatch_reply
from responders.email import SmtpSender
from responders.preview import REPLY_CHECK
from responders.setup import install_senders
from tests.factories import conversation, person, team
from tests.responders import smtp_server as smtp
from tests.responders.limits import limiters

RS = ReplyState
CUSTOMER = "customer@example.ir"
ROOT_ID = "<root-1@mail.gmail.com>"
_seq = itertools.count(1)


def outbound(**kw: Any) -> OutboundMessage:
    n = next(_seq)
    fields: dict[str, Any] = {
        "reply_id": n, "conversation_id": 1, "channel": Channel.EMAIL, "recipient": CUSTOMER,
        "text": "سلام، بسته‌ی شما ارسال شد.", "subject": "Re: سفارش ۱۲",
        "idempotency_key": f"<kartabl.{n}.0123456789abcdef.0123456789abcdef0123@kartabl.example>",
        "html": "<p dir=\"rtl\">سلام</p>", "in_reply_to": "<CAF-1@mail.gmail.com>",
        "references": (ROOT_ID,), "meta": {"from": "support@kartabl.example"},
    }
    fields.update(kw)
    return OutboundMessage(**fields)


def sender_for(server: smtp.SmtpServer, **kw: Any) -> SmtpSender:
    return SmtpSender(server.email_config(**kw), ssl_context=server.client_context())


# -- through the outbox: approve, dispatch, receive ------------------------------------------


def approved(db: sessionmaker[Session], body: str = "سلام علی،\nبسته‌ی شما امروز ارسال شد.",
             ) -> tuple[int, str]:
    """An approved email reply to a customer mail whose real Message-ID the parser kept in
    meta (its external id is ``<Message-ID>#hash``). Returns (reply id, real Message-ID)."""
    real_id = f"<CAF-{next(_seq)}@mail.gmail.com>"
    with db() as s:
        support = team(s)
        agent = person(s, teams=[support])
        coordinator = person(s, role=Role.COORDINATOR)
        conv = conversation(s, team=support, assignee=agent, sender=CUSTOMER)
        s.add(Message(
            channel=Channel.EMAIL, external_id=f"{real_id}#0123456789abcdef",
            direction=Direction.IN, conversation_id=conv.id, customer_id=conv.customer_id,
            sender=CUSTOMER, sender_name="علی", recipient="help@kartabl.example",
            subject="Re: سفارش ۱۲", text="کی می‌رسد؟", references=[ROOT_ID],
            meta={"message_id": real_id}, received_at=utcnow() + timedelta(seconds=1),
            routed_at=utcnow(),
        ))
        s.flush()
        reply = workflow.draft(s, agent, conv.id, body, check=REPLY_CHECK)
        workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
        workflow.approve(s, coordinator, reply.id, check=REPLY_CHECK)
        s.commit()
        return reply.id, real_id


def reply_row(db: sessionmaker[Session], reply_id: int) -> Reply:
    with db() as s:
        reply = s.get(Reply, reply_id)
        assert reply is not None
        return reply


def test_an_approved_reply_goes_out_threaded_multipart_and_persian(
    db, smtp_server, smtp_outbox
) -> None:
    # Given an approved reply to a customer's mail
    body = "سلام علی،\nبسته‌ی شما امروز ارسال شد."
    rid, real_id = approved(db, body)
    # When the outbox dispatches it with the SMTP sender
    assert dispatch_reply(db, rid) == "sent"
    # Then the server received exactly one mail, from the mailbox the customer wrote to
    [got] = smtp_server.recorder.received
    reply = reply_row(db, rid)
    assert (got.mail_from, got.rcpt_tos) == ("support@kartabl.example", [CUSTOMER])
    mail = got.message
    [sender] = mail["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("پشتیبانی کارتابل",
                                                       "support@kartabl.example")
    assert str(mail["To"]) == CUSTOMER and str(mail["Subject"]) == "Re: سفارش ۱۲"
    # with the Message-ID fixed at approval, threaded on the customer's REAL Message-ID
    assert str(mail["Message-ID"]) == reply.idempotency_key
    assert str(mail["In-Reply-To"]) == real_id
    assert str(mail["References"]).split() == [ROOT_ID, real_id]
    assert mail["Auto-Submitted"] is None  # a person's reply, not an automatic one
    # as text and HTML alternatives, the Persian text intact (ZWNJ included)
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    # (base64 of the canonical form: text/* lines end in CRLF on the wire, RFC 2046)
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n").strip() == body
    assert "بسته‌ی شما امروز ارسال شد." in mail.get_body(("html",)).get_content()
    # and the reply is sent, with the Message-ID and the server's queue id
    assert reply.state == RS.SENT and reply.error is None
    assert reply.provider_id == f"{reply.idempotency_key} queued-as {smtp.QUEUE_ID}"
    with db() as s:
        [out] = s.scalars(select(Message).where(Message.direction == Direction.OUT))
        assert (out.external_id, out.in_reply_to) == (reply.idempotency_key, real_id)


def test_a_4xx_puts_the_reply_back_to_approved_and_the_retry_sends_it_once(
    db, smtp_server, smtp_outbox
) -> None:
    rid, _ = approved(db)
    smtp_server.recorder.fail("RCPT", "451 4.3.0 Temporary lookup failure")
    with pytest.raises(RetryableDeliveryError, match=r"451 4\.3\.0 Temporary lookup failure"):
        dispatch_reply(db, rid)
    reply = reply_row(db, rid)
    assert reply.state == RS.APPROVED and "451" in (reply.error or "")
    assert smtp_server.recorder.received == []
    # The worker's retry goes through
    assert dispatch_reply(db, rid) == "sent"
    assert len(smtp_server.recorder.received) == 1 and reply_row(db, rid).state == RS.SENT


def test_a_5xx_fails_the_reply_with_the_servers_reason(db, smtp_server, smtp_outbox) -> None:
    rid, _ = approved(db)
    smtp_server.recorder.fail(
        "RCPT", "550 5.1.1 <customer@example.ir>: Recipient address rejected: User unknown")
    assert dispatch_reply(db, rid) == "failed"
    reply = reply_row(db, rid)
    assert reply.state == RS.FAILED
    assert "550 5.1.1 <customer@example.ir>: Recipient address rejected: User unknown" in (
        reply.error or "")
    assert smtp_server.recorder.received == []


def test_a_lost_answer_after_the_data_leaves_the_reply_sending(
    db, smtp_server, smtp_outbox
) -> None:
    rid, _ = approved(db)
    smtp_server.recorder.fail("DATA", "drop")
    with pytest.raises(OutcomeUnknown):
        dispatch_reply(db, rid)
    # the server has it, we cannot know: the reconcile sweep decides (at_least_once)
    assert reply_row(db, rid).state == RS.SENDING
    assert len(smtp_server.recorder.received) == 1
    assert dispatch_reply(db, rid) == "skipped"  # a retried task never resends blindly


# -- the error mapping -------------------------------------------------------------------------


@pytest.mark.parametrize(("step", "fault", "error"), [
    ("MAIL", "421 4.7.0 mx.example.ir closing connection", RetryableDeliveryError),
    ("MAIL", "451 4.3.0 Local error in processing", RetryableDeliveryError),
    ("RCPT", "452 4.2.2 Mailbox full", RetryableDeliveryError),
    ("RCPT", "550 5.1.1 User unknown", PermanentDeliveryError),
    ("MAIL", "553 5.1.8 Sender address rejected", PermanentDeliveryError),
    ("DATA", "451 4.7.1 Greylisted, try again", RetryableDeliveryError),
    ("DATA", "554 5.7.1 Message rejected as spam", PermanentDeliveryError),
    ("MAIL", "drop", RetryableDeliveryError),  # disconnected before the data
    ("RCPT", "stall:2", RetryableDeliveryError),  # timeout before the data
    ("DATA", "drop", OutcomeUnknown),  # the data went out, the answer did not come
    ("DATA", "stall:2", OutcomeUnknown),
    ("DATA", "garbled answer", OutcomeUnknown),  # smtplib's -1: accepted or not, unknown
])
def test_errors_are_mapped_by_code_and_by_when_they_happen(
    smtp_server, step: str, fault: str, error: type[Exception]
) -> None:
    smtp_server.recorder.fail(step, fault)
    with pytest.raises(error) as caught:
        sender_for(smtp_server, timeout_s=0.5, data_timeout_s=0.5).send(outbound())
    if fault[0] in "45":  # the server's own words reach the coordinator
        assert fault in str(caught.value)


def test_a_slow_answer_after_the_data_is_waited_for_not_resent(smtp_server) -> None:
    # Given a server that filters before queuing: its final answer takes longer than the
    # per-command timeout, but less than the data timeout (RFC 5321 asks for 10 minutes)
    smtp_server.recorder.fail("DATA", "stall:1.5")
    provider_id = sender_for(smtp_server, timeout_s=0.5, data_timeout_s=10).send(outbound())
    # Then the reply counts as sent, once
    assert provider_id.startswith("<kartabl.")
    assert len(smtp_server.recorder.received) == 1


def test_a_send_that_may_outlast_the_reconcile_window_is_refused_at_start(smtp_server) -> None:
    # 8 x 30 s + 600 s may pass before SMTP answers: a reconcile after 120 s would resend
    with pytest.raises(ValueError, match="KARTABL_SENDING_STALE_S"):
        SmtpSender(smtp_server.email_config(timeout_s=30, data_timeout_s=600),
                   sending_stale_s=120)
    SmtpSender(smtp_server.email_config(timeout_s=30, data_timeout_s=600), sending_stale_s=900)


def test_connection_refused_is_retryable() -> None:
    config = EmailConfig.model_validate({"mailboxes": [{
        "name": "support", "address": "support@kartabl.example",
        "smtp": {"host": "127.0.0.1", "port": free_port(), "security": "plain",
                 "timeout_s": 2}}]})
    with pytest.raises(RetryableDeliveryError, match=r"127\.0\.0\.1"):
        SmtpSender(config).send(outbound())


# -- TLS and AUTH ------------------------------------------------------------------------------


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_and_starttls_with_the_servers_certificate(tls_cert, security: str) -> None:
    server = smtp.start(security=security, cert=tls_cert)
    try:
        # The STARTTLS server refuses MAIL before STARTTLS, so a delivery proves TLS was used
        sender_for(server).send(outbound())
        assert len(server.recorder.received) == 1
        # A certificate that does not verify is a configuration error, not a retry
        with pytest.raises(PermanentDeliveryError, match="certificate"):
            SmtpSender(server.email_config()).send(outbound())
    finally:
        server.controller.stop()


def test_starttls_is_never_skipped_when_the_server_does_not_offer_it(smtp_server) -> None:
    with pytest.raises(PermanentDeliveryError, match="STARTTLS"):
        sender_for(smtp_server, security="starttls").send(outbound())
    assert smtp_server.recorder.received == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_logs_in_and_a_wrong_password_is_permanent_and_not_shown() -> None:
    server = smtp.start(auth=True)
    try:
        sender_for(server, username="support", password="s3cret-pass").send(outbound())
        assert len(server.recorder.received) == 1
        assert [user for _, user in server.recorder.logins] == ["support"]
        wrong = sender_for(server, username="support", password="wrong-pass-9f2")
        with pytest.raises(PermanentDeliveryError, match="535") as caught:
            wrong.send(outbound())
        assert "wrong-pass-9f2" not in str(caught.value) + repr(wrong)
        # No username configured while the server requires AUTH: 530, permanent
        with pytest.raises(PermanentDeliveryError, match="530"):
            sender_for(server).send(outbound())
        assert len(server.recorder.received) == 1
    finally:
        server.controller.stop()


# -- header injection --------------------------------------------------------------------------

INJECTION = "\r\nBcc: evil@attacker.example"


def test_crlf_in_subject_display_name_and_references_adds_no_header(smtp_server) -> None:
    config = smtp_server.email_config().model_dump()
    config["mailboxes"][0]["display_name"] = f"Kartabl{INJECTION}"
    config["mailboxes"][0]["smtp"]["password"] = ""
    sender = SmtpSender(EmailConfig.model_validate(config))
    sender.send(outbound(subject=f"Re: سفارش{INJECTION}", in_reply_to=f"<a@b.example>{INJECTION}",
                         references=(f"<r@b.example>{INJECTION}", "<ok@b.example>")))
    [got] = smtp_server.recorder.received
    assert got.rcpt_tos == [CUSTOMER]
    headers = got.data.split(b"\r\n\r\n", 1)[0]
    assert not any(line.lower().startswith(b"bcc") for line in headers.split(b"\r\n"))
    mail = got.message
    assert mail["Bcc"] is None
    assert str(mail["Subject"]) == "Re: سفارش Bcc: evil@attacker.example"  # text, one line
    assert mail["In-Reply-To"] is None  # not one message id: dropped
    assert str(mail["References"]).split() == ["<ok@b.example>"]


@pytest.mark.parametrize("recipient", [
    f"{CUSTOMER}{INJECTION}", f"{CUSTOMER}, evil@attacker.example", f"Ali <{CUSTOMER}>",
    f"{CUSTOMER}\n", "customer@", "", "customer(comment)@example.ir", "\"a b\"@example.ir",
])
def test_a_recipient_that_is_not_one_plain_address_is_permanent(
    smtp_server, recipient: str
) -> None:
    with pytest.raises(PermanentDeliveryError, match="recipient"):
        sender_for(smtp_server).send(outbound(recipient=recipient))
    assert smtp_server.recorder.received == []


def test_an_invalid_message_id_of_ours_is_never_sent(smtp_server) -> None:
    with pytest.raises(PermanentDeliveryError, match="Message-ID"):
        sender_for(smtp_server).send(outbound(idempotency_key=f"<k@x.example>{INJECTION}"))
    assert smtp_server.recorder.received == []


def test_lines_starting_with_a_dot_arrive_intact(smtp_server) -> None:
    text = "first\n.\n.hidden line\n..two dots\nlast"
    sender_for(smtp_server).send(outbound(text=text, html=None, subject="dots"))
    [mail] = smtp_server.messages()
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content().splitlines() == text.split("\n")


# -- choosing the mailbox, and installing the sender --------------------------------------------


def test_the_mailbox_the_customer_wrote_to_answers(smtp_server) -> None:
    sales = {"name": "sales", "address": "sales@kartabl.example",
             "smtp": {"host": "127.0.0.1", "port": smtp_server.port, "security": "plain"}}
    billing = {"name": "billing", "address": "billing@kartabl.example"}  # no smtp
    sender = SmtpSender(smtp_server.email_config(extra=[sales, billing]))
    pick = {wrote_to: sender.mailbox_for(outbound(meta={"from": wrote_to})).name
            for wrote_to in ("SALES@kartabl.example", "help@kartabl.example",
                             "billing@kartabl.example", "nobody@elsewhere.example", "")}
    assert pick == {"SALES@kartabl.example": "sales", "help@kartabl.example": "support",
                    "billing@kartabl.example": "support", "nobody@elsewhere.example": "support",
                    "": "support"}
    sender.send(outbound(meta={"from": "sales@kartabl.example"}))
    assert smtp_server.recorder.received[0].mail_from == "sales@kartabl.example"
    assert "sales" in repr(sender) and "127.0.0.1" not in repr(sender)


def test_install_senders_uses_smtp_when_a_mailbox_has_it(smtp_server) -> None:
    before = port.registered()
    try:
        for ch in Channel:
            port.unregister(ch)
        with_smtp = ChannelsConfig(email=smtp_server.email_config())
        sandboxed = install_senders(with_smtp, settings=get_settings(), rate_limiter=limiters())
        assert isinstance(port.get_sender("email"), SmtpSender) and "email" not in sandboxed
        for ch in Channel:
            port.unregister(ch)
        without = ChannelsConfig(email=EmailConfig.model_validate(
            {"mailboxes": [{"name": "support", "address": "support@kartabl.example"}]}))
        assert "email" in install_senders(without, settings=get_settings(),
                                          rate_limiter=limiters())
        assert not isinstance(port.get_sender("email"), SmtpSender)
    finally:
        for ch in Channel:
            port.unregister(ch)
        for s in before.values():
            port.register(s)

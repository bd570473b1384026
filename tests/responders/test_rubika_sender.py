"""The Rubika sender, through the outbox where the outcome matters, against the Rubika
stand-in over real HTTP: the chat found from the customer's messages, Rubika's refusals
inside an HTTP 200 envelope, the at-most-once policy when the answer is lost, files by
requestSendFile / upload / sendFile, and the token nowhere."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from channels.email.attachments import store_payloads
from channels.rubika.standin import RubikaStandin
from config.rubika import RubikaBot
from config.settings import get_settings
from kartabl import outbound, workflow
from kartabl.errors import OutcomeUnknown, PermanentDeliveryError, RetryableDeliveryError
from kartabl.messages import OutboundAttachment, OutboundMessage
from kartabl.models import (
    Channel,
    Conversation,
    Customer,
    Direction,
    Identity,
    Message,
    Reply,
    ReplyState,
    Role,
    utcnow,
)
from responders.dispatch import dispatch_reply, reconcile_stale_sending
from responders.preview import REPLY_CHECK
from responders.rubika import RubikaSender, worst_case_s
from tests.factories import person, team

TOKEN = "RUBIKA-sender-distinctive-token-PlMkOnJi"
CHAT, USER = "b0chatOfSara", "u0sara"
RS = ReplyState


@pytest.fixture
def standin() -> Iterator[RubikaStandin]:
    server = RubikaStandin().start()
    server.add_bot(TOKEN, "Shop")
    server.chats.add(CHAT)
    yield server
    server.stop()


def bot(base_url: str, *, name: str = "shop", timeout_s: float = 2.0) -> RubikaBot:
    return RubikaBot(name=name, token=TOKEN, base_url=base_url, timeout_s=timeout_s)


@pytest.fixture
def rubika(standin: RubikaStandin, db: sessionmaker[Session], tmp_path: Path
           ) -> Iterator[RubikaSender]:
    before = outbound.registered()
    sender = RubikaSender([bot(standin.base_url)], sessions=db, attachments_dir=tmp_path)
    outbound.register(sender)
    yield sender
    sender.close()
    outbound.unregister(Channel.RUBIKA)
    if "rubika" in before:
        outbound.register(before["rubika"])


def customer_message(s: Session, *, user: str = USER, chat: str | None = CHAT,
                     bot_name: str = "shop") -> Conversation:
    """Sara wrote to the bot: her customer, identity, conversation and message."""
    customer = Customer(display_name="سارا")
    s.add(customer)
    s.flush()
    s.add(Identity(customer_id=customer.id, kind="rubika", address=user))
    conv = Conversation(customer_id=customer.id, channel=Channel.RUBIKA, subject="")
    s.add(conv)
    s.flush()
    s.add(Message(channel=Channel.RUBIKA, external_id=f"{bot_name}:{chat}:{conv.id}",
                  direction=Direction.IN, conversation_id=conv.id, customer_id=customer.id,
                  sender=user, recipient=bot_name, text="سلام", routed_at=utcnow(),
                  meta={"chat_id": chat} if chat else {}))
    s.flush()
    return conv


@pytest.fixture
def approved(db: sessionmaker[Session]) -> Callable[..., int]:
    def make(body: str = "سفارش شما ارسال شد", **kw: str) -> int:
        with db() as s:
            support = team(s)
            agent = person(s, teams=[support])
            coordinator = person(s, role=Role.COORDINATOR)
            conv = customer_message(s, **kw)
            conv.team_id, conv.assignee_id = support.id, agent.id
            reply = workflow.draft(s, agent, conv.id, body, check=REPLY_CHECK)
            workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
            workflow.approve(s, coordinator, reply.id, check=REPLY_CHECK)
            s.commit()
            return reply.id
    return make


def state(db: sessionmaker[Session], rid: int) -> Reply:
    with db() as s:
        r = s.get(Reply, rid)
        assert r is not None
        return r


def out(text: str = "سلام", **kw: object) -> OutboundMessage:
    return OutboundMessage(reply_id=1, conversation_id=1, channel=Channel.RUBIKA,
                           recipient=USER, text=text, idempotency_key="k-1",
                           meta={"from": "shop"}, **kw)  # type: ignore[arg-type]


def test_a_reply_goes_to_the_chat_the_customer_wrote_from(standin, rubika, approved,
                                                         db) -> None:
    paragraph = ("سفارش شما ارسال شد " * 60).strip()
    rid = approved("\n\n".join([paragraph] * 5))  # ~5,700 characters: two messages
    assert dispatch_reply(db, rid) == "sent"
    sent = standin.sent
    assert [s.chat_id for s in sent] == [CHAT, CHAT] and all(len(s.text) <= 4096 for s in sent)
    reply = state(db, rid)
    assert reply.state == RS.SENT
    assert reply.provider_id == f"shop:{CHAT}:{sent[0].message_id},{sent[1].message_id}"


def test_a_customer_without_a_chat_with_the_bot_is_refused_before_any_request(
        standin, rubika, approved, db) -> None:
    rid = approved(chat=None)
    assert dispatch_reply(db, rid) == "failed"
    assert "has no Rubika chat with bot shop" in (state(db, rid).error or "")
    assert standin.calls == []


@pytest.mark.parametrize(("fault", "value", "outcome", "words"), [
    ("too_requests", 0, RS.APPROVED, None),
    ("http", 403, RS.APPROVED, None),  # a proxy's 403, no envelope: not processed
    ("invalid_input", 0, RS.FAILED, "Rubika refused the message: sendMessage: INVALID_INPUT"),
    ("invalid_access", 0, RS.FAILED, "INVALID_ACCESS"),
    ("server_error", 500, RS.FAILED, "HTTP 500"),
    ("proxy_error", 502, RS.FAILED, "(not a Bot API answer)"),
    ("drop", 0, RS.FAILED, "no answer after the request went out"),
])
def test_each_answer_has_its_outcome(standin, rubika, approved, db, fault: str, value: float,
                                     outcome: ReplyState, words: str | None) -> None:
    rid = approved()
    standin.fail_next("sendMessage", fault, value)
    if outcome is RS.APPROVED:  # nothing was sent: back to approved, sent by the retry
        with pytest.raises(RetryableDeliveryError):
            dispatch_reply(db, rid)
        assert state(db, rid).state == RS.APPROVED and standin.sent == []
        assert dispatch_reply(db, rid) == "sent" and len(standin.sent) == 1
        return
    assert dispatch_reply(db, rid) == "failed"
    error = state(db, rid).error or ""
    assert words in error and TOKEN not in error
    if fault in ("server_error", "proxy_error", "drop"):  # unknown: at most once
        assert error.endswith("check with the customer before resending")


def test_a_lost_answer_fails_at_once_and_is_never_sent_twice(standin, rubika, approved,
                                                             db) -> None:
    # Given Rubika records the message and answers after the client's 2 s timeout
    rid = approved()
    standin.fail_next("sendMessage", "slow", 3.0)
    assert rubika.unknown_outcome == "at_most_once" and not rubika.can_look_up
    assert dispatch_reply(db, rid) == "failed"
    assert "ReadTimeout" in (state(db, rid).error or "")
    assert dispatch_reply(db, rid) == "skipped"
    assert reconcile_stale_sending(db, older_than=timedelta(0)) == 0
    assert len(standin.sent) == 1


def test_a_refused_connection_is_retryable(standin, db) -> None:
    sender = RubikaSender([bot(standin.base_url)], sessions=db)
    with db() as s:
        customer_message(s)
        s.commit()
    standin.stop()  # the port stays bound, not listening: refused
    with pytest.raises(RetryableDeliveryError, match="not sent: ConnectError"):
        sender.send(out())
    sender.close()


@pytest.mark.parametrize(("fault", "error", "sent"), [
    ("invalid_input", PermanentDeliveryError, 1),  # refused: the customer got part 1
    ("drop", OutcomeUnknown, 1),  # no answer: part 2 may have arrived too
])
def test_a_later_part_failing_names_what_went_out(standin, rubika, db, fault: str,
                                                  error: type[Exception], sent: int) -> None:
    with db() as s:
        customer_message(s)
        s.commit()
    text = "\n\n".join([("خط " * 900).strip()] * 3)  # three messages
    standin.fail_next("sendMessage", "ok")
    standin.fail_next("sendMessage", fault)
    with pytest.raises(error, match=r"partly sent: parts 1-1 of 3 went out \(message ids "):
        rubika.send(out(text))
    assert len(standin.sent) == sent


def test_files_go_by_request_upload_and_send_file(standin, rubika, db, tmp_path: Path) -> None:
    with db() as s:
        customer_message(s)
        s.commit()
    png = (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (40).to_bytes(4, "big")
           + (30).to_bytes(4, "big") + b"\x08\x02\x00\x00\x00" + b"0" * 20)
    pdf = b"%PDF-1.7 the invoice"
    atts = []
    for name, ctype, data in [("photo.png", "image/png", png), ("فاکتور.pdf",
                                                                 "application/pdf", pdf)]:
        key = hashlib.sha256(data).hexdigest()
        store_payloads({key: data}, tmp_path)
        atts.append(OutboundAttachment(name, ctype, len(data), key))
    provider_id = rubika.send(out("این هم فاکتور", attachments=tuple(atts)))
    first, second = standin.sent
    assert (first.method, first.text, first.file and first.file.data) == ("sendFile",
                                                                         "این هم فاکتور", png)
    assert (second.method, second.text, second.file and second.file.filename) == (
        "sendFile", "", "فاکتور.pdf")
    assert provider_id == f"shop:{CHAT}:{first.message_id},{second.message_id}"
    assert standin.calls.count("requestSendFile") == 2


def test_a_failed_upload_sends_nothing_and_is_retryable(standin, rubika, db,
                                                        tmp_path: Path) -> None:
    with db() as s:
        customer_message(s)
        s.commit()
    data = b"%PDF-1.7 x"
    key = hashlib.sha256(data).hexdigest()
    store_payloads({key: data}, tmp_path)
    standin.fail_next("requestSendFile", "server_error", 502)
    att = OutboundAttachment("a.pdf", "application/pdf", len(data), key)
    with pytest.raises(RetryableDeliveryError, match="not sent"):
        rubika.send(out("x", attachments=(att,)))
    assert standin.sent == []


def test_the_token_never_appears_in_logs_errors_or_reprs(
        standin, rubika, approved, db, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    rid = approved()  # Sara's chat, and a reply to her
    for fault, value in [("too_requests", 0), ("invalid_access", 0), ("server_error", 500),
                         ("proxy_error", 502), ("drop", 0), ("slow", 3.0)]:
        standin.fail_next("sendMessage", fault, value)
        try:
            rubika.send(out())
        except Exception as exc:
            errors.append(f"{exc!r} {exc} {exc.__cause__!r} {exc.__cause__}")
    assert dispatch_reply(db, rid) == "sent"
    assert len(errors) == 6 and caplog.records
    for text in (caplog.text, *errors, repr(rubika), repr(bot(standin.base_url))):
        assert TOKEN not in text


def test_install_senders_and_a_send_that_could_outlive_the_sweep(db) -> None:
    from config.channels import ChannelsConfig
    from config.rubika import RubikaConfig
    from responders.setup import install_senders
    from tests.responders.limits import limiters

    b = RubikaBot(name="shop", token=TOKEN)
    assert worst_case_s(b) < get_settings().sending_stale_s  # the defaults fit together
    with pytest.raises(ValueError, match="KARTABL_SENDING_STALE_S"):
        RubikaSender([RubikaBot(name="slow", token=TOKEN, timeout_s=60)], sending_stale_s=900)
    before = outbound.registered()
    try:
        for ch in Channel:
            outbound.unregister(ch)
        sandboxed = install_senders(ChannelsConfig(rubika=RubikaConfig(bots=[b])),
                                    settings=get_settings(), rate_limiter=limiters())
        assert "rubika" not in sandboxed
        sender = outbound.get_sender("rubika")
        assert isinstance(sender, RubikaSender) and TOKEN not in repr(sender)
    finally:
        for ch in Channel:
            outbound.unregister(ch)
        for s in before.values():
            outbound.register(s)

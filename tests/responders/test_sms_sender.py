"""The Kavenegar sender through the outbox, over real HTTP against the stand-in
(:mod:`channels.sms.standin`): nothing of the ``kavenegar`` library is mocked."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from channels.sms.kavenegar import MASK
from channels.sms.standin import KavenegarStandin
from config.settings import get_settings
from config.sms import SmsConfig
from kartabl import outbound
from kartabl.errors import OutcomeUnknown, PermanentDeliveryError, RetryableDeliveryError
from kartabl.messages import OutboundMessage
from kartabl.models import Channel, Reply, ReplyState
from responders.dispatch import dispatch_reply, poll_delivery, reconcile_stale_sending
from responders.sms import FAILURE_REASONS, KavenegarSender, receptor, sms_parts
from responders.sms_length import sms_length
from tests.responders.limits import kavenegar, limiters

RS = ReplyState
NOW = timedelta(seconds=-1)  # every 'sending' reply is stale
API_KEY = "KAVE-outbox-secret-key-XyZ987"  # distinctive: a leak cannot hide
LINE = "10008663"


@pytest.fixture
def standin() -> Iterator[KavenegarStandin]:
    server = KavenegarStandin(API_KEY).start()
    yield server
    server.stop()


def config(standin: KavenegarStandin, **kw: object) -> SmsConfig:
    fields: dict[str, object] = {"connect_timeout_s": 1.0, "timeout_s": 0.5, **kw}
    return SmsConfig(api_key=API_KEY, base_url=standin.base_url, line=LINE,
                     **fields)  # type: ignore[arg-type]


@pytest.fixture
def sms(standin: KavenegarStandin, sandbox) -> Iterator[KavenegarSender]:
    """The Kavenegar sender registered for sms (the other channels: the sandbox)."""
    sender = kavenegar(config(standin))
    outbound.register(sender)
    yield sender
    sender.close()


def reply(db: sessionmaker[Session], rid: int) -> Reply:
    with db() as s:
        r = s.get(Reply, rid)
        assert r is not None
        return r


def test_a_reply_leaves_with_its_id_as_localid_from_our_line(
        db, sms, standin, approved_reply) -> None:
    rid = approved_reply(Channel.SMS, body="سفارش شما ارسال شد")
    assert dispatch_reply(db, rid) == "sent"
    [sent] = standin.sent
    r = reply(db, rid)
    assert (sent.localid, sent.sender, r.provider_id) == (str(rid), LINE, str(sent.messageid))
    assert sent.receptor.startswith("09") and "سفارش شما ارسال شد" in sent.message


def test_a_timeout_after_kavenegar_took_it_is_reconciled_without_resending(
        db, sms, standin, approved_reply) -> None:
    # Given Kavenegar records the SMS but answers after the client's timeout
    rid = approved_reply(Channel.SMS)
    standin.fail_next("send", "slow", 1.5)
    with pytest.raises(OutcomeUnknown):
        dispatch_reply(db, rid)
    assert reply(db, rid).state == RS.SENDING  # neither lost nor retried blindly
    assert dispatch_reply(db, rid) == "skipped"
    # When the sweep asks Kavenegar by localid
    assert reconcile_stale_sending(db, older_than=NOW) == 1
    # Then the reply is sent with Kavenegar's id, and Kavenegar got it once
    [sent] = standin.sends_of(str(rid))
    r = reply(db, rid)
    assert r.state == RS.SENT and r.provider_id == str(sent.messageid)
    assert standin.calls.count("send") == 1


def test_a_request_lost_before_kavenegar_took_it_is_sent_again_once(
        db, sms, standin, approved_reply, enqueued) -> None:
    # Given the connection drops before Kavenegar recorded anything
    rid = approved_reply(Channel.SMS)
    enqueued.clear()
    standin.fail_next("send", "drop")
    with pytest.raises(OutcomeUnknown):
        dispatch_reply(db, rid)
    assert reply(db, rid).state == RS.SENDING
    # When the sweep finds Kavenegar has no SMS with this localid
    assert reconcile_stale_sending(db, older_than=NOW) == 1
    assert reply(db, rid).state == RS.APPROVED and enqueued == [("dispatch_reply", rid)]
    # Then the next dispatch sends it, once
    assert dispatch_reply(db, rid) == "sent"
    assert len(standin.sends_of(str(rid))) == 1


@pytest.mark.parametrize(("status", "reason"), [
    (418, "418: account credit is not enough"),
    (411, "411: the recipient's number is invalid"),
    (412, "412: the sender line is invalid (check the channels file)"),
])
def test_kavenegar_refusals_fail_the_reply_with_a_clear_reason(
        db, sms, standin, approved_reply, status, reason) -> None:
    rid = approved_reply(Channel.SMS)
    standin.fail_next("send", "api", status)
    assert dispatch_reply(db, rid) == "failed"
    r = reply(db, rid)
    assert (r.state, r.error) == (RS.FAILED, reason)
    assert standin.sent == []


@pytest.mark.parametrize(("kind", "value"), [("http", 502), ("http", 503), ("http", 429),
                                             ("api", 409), ("api", 451)])
def test_a_refusal_before_processing_is_retryable(
        db, sms, standin, approved_reply, kind, value) -> None:
    rid = approved_reply(Channel.SMS)
    standin.fail_next("send", kind, value)
    with pytest.raises(RetryableDeliveryError):
        dispatch_reply(db, rid)
    assert reply(db, rid).state == RS.APPROVED
    assert "statuslocalmessageid" in standin.calls  # it asked before saying "not sent"
    assert dispatch_reply(db, rid) == "sent" and len(standin.sends_of(str(rid))) == 1


def test_connection_refused_is_retryable(db, sandbox, standin, approved_reply) -> None:
    sender = kavenegar(config(standin))
    outbound.register(sender)
    standin.stop()  # nothing listens on the port any more
    rid = approved_reply(Channel.SMS)
    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        dispatch_reply(db, rid)
    assert reply(db, rid).state == RS.APPROVED


@pytest.mark.parametrize(("code", "state"), [
    (10, RS.DELIVERED), (11, RS.FAILED), (6, RS.FAILED), (13, RS.FAILED), (14, RS.FAILED),
    (1, RS.SENT), (2, RS.SENT), (4, RS.SENT), (5, RS.SENT),
])
def test_delivery_statuses_reach_the_reply(
        db, sms, standin, approved_reply, code, state) -> None:
    rid = approved_reply(Channel.SMS)
    assert dispatch_reply(db, rid) == "sent"
    standin.set_status(reply(db, rid).provider_id or "", code)
    assert poll_delivery(db) == (0 if state == RS.SENT else 1)
    r = reply(db, rid)
    assert r.state == state
    if state == RS.FAILED:
        # The coordinator reads Kavenegar's own code and its meaning on the failed reply.
        assert r.error == ("the provider reported that delivery failed: "
                           f"{sms.failure_reason(r.provider_id or '')}")
        assert r.error.endswith(f": {code}: {FAILURE_REASONS[code]}")


def test_the_api_key_never_appears_in_logs_errors_or_reprs(
        db, sms, standin, approved_reply, caplog: pytest.LogCaptureFixture) -> None:
    errors: list[BaseException] = []
    with caplog.at_level(logging.DEBUG):  # urllib3 logs every request path at DEBUG
        for kind, value in [("api", 418), ("http", 502), ("slow", 1.5), ("drop", 0),
                            ("api", 412)]:
            rid = approved_reply(Channel.SMS)
            standin.fail_next("send", kind, value)
            try:
                dispatch_reply(db, rid)
            except Exception as exc:
                errors.append(exc)
        reconcile_stale_sending(db, older_than=NOW)
        wrong = kavenegar(config(standin).model_copy(
            update={"base_url": "http://127.0.0.1:9"}))  # refused
        msg = OutboundMessage(reply_id=1, conversation_id=1, channel=Channel.SMS,
                              recipient="+989121234567", text="x", idempotency_key="k1")
        for call in (lambda: wrong.send(msg), lambda: wrong.lookup(msg)):
            try:
                call()
            except Exception as exc:
                errors.append(exc)
    assert len(errors) >= 4 and "/v1/" in caplog.text  # the run did log request paths
    assert API_KEY not in caplog.text and MASK in caplog.text
    for text in [*(str(e) for e in errors), *(repr(e) for e in errors), repr(sms),
                 str(sms), repr(sms.api), str(sms.api), repr(sms.config)]:
        assert API_KEY not in text


def test_a_refused_api_key_is_permanent_and_masked(db, sandbox, standin) -> None:
    cfg = SmsConfig(api_key="KAVE-wrong-key-000111", base_url=standin.base_url, line=LINE)
    msg = OutboundMessage(reply_id=1, conversation_id=1, channel=Channel.SMS,
                          recipient="+989121234567", text="x", idempotency_key="k2")
    with pytest.raises(PermanentDeliveryError, match="403: the API key was refused") as info:
        kavenegar(cfg).send(msg)
    assert "KAVE-wrong-key-000111" not in str(info.value)


def test_a_send_that_could_outlive_the_reconcile_sweep_is_refused(standin) -> None:
    with pytest.raises(ValueError, match="KARTABL_SENDING_STALE_S"):
        kavenegar(config(standin, timeout_s=60), sending_stale_s=60)


@pytest.mark.parametrize(("phone", "expected"), [
    ("+989121234567", "09121234567"), ("+4915112345678", "004915112345678")])
def test_receptor(phone: str, expected: str) -> None:
    assert receptor(phone) == expected


@pytest.mark.parametrize(("text", "parts", "encoding"), [
    ("", 0, "gsm7"), ("Hello", 1, "gsm7"), ("a" * 160, 1, "gsm7"), ("a" * 161, 2, "gsm7"),
    ("a" * 306, 2, "gsm7"), ("a" * 307, 3, "gsm7"), ("€" * 80, 1, "gsm7"),
    ("€" * 81, 2, "gsm7"), ("س" * 70, 1, "ucs2"), ("س" * 71, 2, "ucs2"),
    ("س" * 134, 2, "ucs2"), ("س" * 135, 3, "ucs2"), ("a" * 69 + "😀", 2, "ucs2"),
    ("سلام\u200cخوبی", 1, "ucs2"),
])
def test_sms_parts_knows_the_gsm_and_ucs2_limits(text: str, parts: int, encoding: str) -> None:
    assert sms_parts(text) == parts and sms_length(text).encoding == encoding


def test_a_reply_longer_than_eight_parts_fails_clearly(db, sms, standin, approved_reply) -> None:
    # The workflow refuses to approve it (tests/workflow/test_reply_length.py); the sender
    # checks again, for a reply approved before a template grew or by an older release.
    rid = approved_reply(Channel.SMS)
    with db() as s, s.begin():
        s.execute(update(Reply).where(Reply.id == rid).values(body="س" * (67 * 8 + 1)))
    assert dispatch_reply(db, rid) == "failed"
    assert "too long for SMS: 9 parts" in (reply(db, rid).error or "")


def test_install_senders_serves_sms_by_kavenegar_when_configured(standin, sandbox) -> None:
    from config.channels import ChannelsConfig
    from responders.setup import install_senders

    sandboxed = install_senders(ChannelsConfig(sms=config(standin)), settings=get_settings(),
                                rate_limiter=limiters())
    assert "sms" not in sandboxed and isinstance(outbound.get_sender("sms"), KavenegarSender)


def test_sends_over_the_rate_are_retryable_and_never_reach_kavenegar(standin) -> None:
    from dramatiq.rate_limits import WindowRateLimiter
    from dramatiq.rate_limits.backends import StubBackend

    # Given two senders (two processes) sharing one limiter backend (Redis in the fleet)
    backend = StubBackend()
    cfg = config(standin, rate_per_s=2)
    senders = [KavenegarSender(cfg, limiter=WindowRateLimiter(backend, "sms", limit=2))
               for _ in range(2)]
    outcomes: list[str] = []
    for n in range(5):  # well within two seconds: at most 2 per second go out
        msg = OutboundMessage(reply_id=n, conversation_id=1, channel=Channel.SMS,
                              recipient="+989121234567", text="x", idempotency_key=f"r{n}")
        try:
            senders[n % 2].send(msg)
            outcomes.append("sent")
        except RetryableDeliveryError as exc:
            assert exc.retry_after_s and "rate" in str(exc)
            outcomes.append("later")
    assert "later" in outcomes and outcomes.count("sent") == len(standin.sent) <= 4

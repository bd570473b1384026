"""The Instagram and WhatsApp sender against the Graph API stand-in over HTTP: the body
each API documents, the HUMAN_AGENT tag, and every Graph error code mapped to retry
(nothing sent), refused, or unknown (the table in :mod:`responders.meta`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from channels.meta.standin import GraphStandin
from config.meta import MetaConfig
from kartabl.errors import OutcomeUnknown, PermanentDeliveryError, RetryableDeliveryError
from kartabl.messages import OutboundMessage
from kartabl.models import Channel
from responders.meta import MetaSender

IG, WA = "17841400000000009", "106540352242999"
IG_TOKEN, WA_TOKEN = "IGAAT-sender-secret-ZxCv", "EAAG-sender-secret-BnMq"
CUSTOMER = {"instagram": "2000000000000077", "whatsapp": "+989121234567"}
_seq = itertools.count(1)


@pytest.fixture(scope="module")
def standin() -> Iterator[GraphStandin]:
    server = GraphStandin().start()
    server.add_account(IG, IG_TOKEN)
    server.add_account(WA, WA_TOKEN)
    yield server
    server.stop()


def config(standin: GraphStandin, *, human_agent: bool = False, token: str = "") -> MetaConfig:
    return MetaConfig(app_secret="x", verify_token="sender-verify-token",
                      graph_url=standin.graph_url, connect_timeout_s=1, timeout_s=2,
                      instagram=[{"id": IG, "access_token": token or IG_TOKEN,
                                  "human_agent": human_agent}],
                      whatsapp=[{"phone_number_id": WA, "access_token": token or WA_TOKEN}])


def message(channel: str, text: str = "سلام، پاسخ شما") -> OutboundMessage:
    n = next(_seq)
    return OutboundMessage(reply_id=n, conversation_id=1, channel=Channel(channel),
                           recipient=CUSTOMER[channel], text=text, idempotency_key=str(n),
                           meta={"from": IG if channel == "instagram" else WA})


@pytest.fixture(params=["instagram", "whatsapp"])
def channel(request: pytest.FixtureRequest, standin: GraphStandin) -> str:
    standin.faults.clear()
    standin.customer_wrote(IG, CUSTOMER["instagram"])
    standin.customer_wrote(WA, CUSTOMER["whatsapp"])
    return str(request.param)


def test_the_documented_bodies(standin: GraphStandin, channel: str) -> None:
    with MetaSender(channel, config(standin)) as sender:
        provider_id = sender.send(message(channel))
    sent = standin.sent[-1]
    assert sent.message_id == provider_id and sent.text == "سلام، پاسخ شما"
    if channel == "whatsapp":
        assert sent.body == {"messaging_product": "whatsapp", "recipient_type": "individual",
                             "to": "989121234567", "type": "text",
                             "text": {"preview_url": False, "body": "سلام، پاسخ شما"}}
        assert provider_id.startswith("wamid.")
    else:
        assert sent.body == {"recipient": {"id": CUSTOMER["instagram"]},
                             "message": {"text": "سلام، پاسخ شما"}}


def test_instagram_human_agent_replies_are_tagged_and_allowed_for_7_days(
        standin: GraphStandin) -> None:
    three_days = standin.clock() - 3 * 86_400
    standin.customer_wrote(IG, CUSTOMER["instagram"], at=three_days)
    with MetaSender("instagram", config(standin)) as plain, pytest.raises(
            PermanentDeliveryError, match="window has closed"):
        plain.send(message("instagram"))
    with MetaSender("instagram", config(standin, human_agent=True)) as tagged:
        tagged.send(message("instagram"))
    assert standin.sent[-1].tag == "HUMAN_AGENT"
    assert standin.sent[-1].body["messaging_type"] == "MESSAGE_TAG"


def test_whatsapp_outside_24_hours_is_refused_as_131047(standin: GraphStandin) -> None:
    standin.customer_wrote(WA, CUSTOMER["whatsapp"], at=standin.clock() - 25 * 3600)
    with MetaSender("whatsapp", config(standin)) as sender, pytest.raises(
            PermanentDeliveryError) as refused:
        sender.send(message("whatsapp"))
    assert "131047" in str(refused.value) and "SMS" in str(refused.value)


@pytest.mark.parametrize(("status", "code", "subcode", "expected", "retry_after"), [
    (400, 4, None, RetryableDeliveryError, 60.0),  # application request limit
    (400, 80007, None, RetryableDeliveryError, 60.0),  # WhatsApp account rate limit
    (400, 130429, None, RetryableDeliveryError, 60.0),  # Cloud API throughput
    (500, 2, None, RetryableDeliveryError, None),  # service temporarily unavailable
    (500, 1, None, RetryableDeliveryError, None),  # unknown error, documented as retry
    (400, 100, None, PermanentDeliveryError, None),  # invalid parameter
    (400, 10, 2018278, PermanentDeliveryError, None),  # outside the window
    (400, 131026, None, PermanentDeliveryError, None),  # undeliverable
    (502, None, None, OutcomeUnknown, None),  # a proxy's page: it may have gone out
])
def test_graph_errors_are_classified(standin: GraphStandin, channel: str, status: int,
                                     code: int | None, subcode: int | None,
                                     expected: type[Exception], retry_after: float | None
                                     ) -> None:
    standin.fail_next(status, code, subcode)
    before = len(standin.sent)
    with MetaSender(channel, config(standin)) as sender, pytest.raises(expected) as err:
        sender.send(message(channel))
    assert len(standin.sent) == before  # the stand-in took nothing
    if isinstance(err.value, RetryableDeliveryError):
        assert err.value.retry_after_s == retry_after


def test_a_refused_token_is_permanent_and_never_in_the_reason(standin: GraphStandin,
                                                              channel: str) -> None:
    with MetaSender(channel, config(standin, token="not-the-token-SECRET")) as sender, \
            pytest.raises(PermanentDeliveryError) as refused:
        sender.send(message(channel))
    assert "access token was refused" in str(refused.value)
    assert "SECRET" not in str(refused.value) and "SECRET" not in repr(sender)


def test_an_unreachable_graph_api_is_retryable(standin: GraphStandin, channel: str) -> None:
    down = GraphStandin().start()
    cfg = config(down)
    down.stop()  # the port is held, not listening: connections are refused
    with MetaSender(channel, cfg) as sender, pytest.raises(RetryableDeliveryError):
        sender.send(message(channel))


def test_too_long_or_with_files_is_refused_before_anything_is_sent(
        standin: GraphStandin, channel: str) -> None:
    before = len(standin.sent)
    long = "ب" * (600 if channel == "instagram" else 4100)  # 1,200 bytes; 4,100 characters
    with MetaSender(channel, config(standin)) as sender, pytest.raises(
            PermanentDeliveryError, match="shorten it"):
        sender.send(message(channel, long))
    assert len(standin.sent) == before


def test_outside_24_hours_a_number_with_a_template_sends_the_reply_as_it(
        standin: GraphStandin) -> None:
    standin.customer_wrote(WA, CUSTOMER["whatsapp"], at=standin.clock() - 30 * 3600)
    standin.add_template(WA, "kartabl_reply")
    cfg = config(standin)
    cfg.whatsapp[0].reengagement_template = "kartabl_reply"
    with MetaSender("whatsapp", cfg) as sender:
        provider_id = sender.send(message("whatsapp", "سلام\n\nسفارش شما     فردا می‌رسد"))
    sent = standin.sent[-1]
    assert sent.message_id == provider_id and sent.tag == "template:kartabl_reply"
    assert sent.body["template"]["language"] == {"code": "fa"}
    assert sent.text == "سلام سفارش شما فردا می‌رسد"  # one line: WhatsApp's parameter rule


def test_a_template_meta_does_not_know_is_refused(standin: GraphStandin) -> None:
    standin.customer_wrote(WA, CUSTOMER["whatsapp"], at=standin.clock() - 30 * 3600)
    cfg = config(standin)
    cfg.whatsapp[0].reengagement_template = "not_approved"
    before = len(standin.sent)
    with MetaSender("whatsapp", cfg) as sender, pytest.raises(PermanentDeliveryError,
                                                              match="132001"):
        sender.send(message("whatsapp"))
    assert len(standin.sent) == before


@pytest.mark.parametrize("channel", [Channel.INSTAGRAM, Channel.WHATSAPP])
def test_files_are_refused_on_the_reply_before_anything_is_stored(channel: Channel) -> None:
    from kartabl.errors import InputError
    from responders.reply_files import Limits, Upload, check

    upload = Upload(filename="a.pdf", size=8, data=b"%PDF-1.4")
    with pytest.raises(InputError) as refused:
        check(channel, [upload], [], Limits(10_000, 20_000))
    assert refused.value.code == "meta_window.files"

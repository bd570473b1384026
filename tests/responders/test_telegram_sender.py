"""The Telegram sender through the outbox, against the Bot API stand-in over real HTTP:
split at 4096, 429 retried after retry_after, a blocked bot failed with a clear reason,
and the at-most-once policy when a send times out after the stand-in recorded it."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from channels.telegram.standin import BotApiStandin
from config.settings import get_settings
from config.telegram import BotConfig
from kartabl import outbound
from kartabl.errors import OutcomeUnknown, PermanentDeliveryError, RetryableDeliveryError
from kartabl.messages import OutboundMessage
from kartabl.models import Channel, Reply, ReplyState
from responders.chat_length import split_text
from responders.dispatch import dispatch_reply, reconcile_stale_sending
from responders.telegram import BLOCKED_REASON, TelegramSender

TOKEN = "9100001:SENDER-distinctive-token-PlMkOn"
RS = ReplyState


@pytest.fixture
def standin() -> Iterator[BotApiStandin]:
    server = BotApiStandin().start()
    server.add_bot(TOKEN, "shop_bot")
    yield server
    server.stop()


def bot_config(base_url: str, *, token: str = TOKEN, timeout_s: float = 2.0) -> BotConfig:
    return BotConfig(name="shop", token=token, mode="polling", base_url=base_url,
                     timeout_s=timeout_s)


@pytest.fixture
def telegram(standin: BotApiStandin) -> Iterator[TelegramSender]:
    before = outbound.registered()
    # 2 s: a shorter timeout also bounds the connect, which a busy CI machine (three xdist
    # workers on two cores) has exceeded at 0.5 s; the "slow" faults answer after 3 s.
    sender = TelegramSender(Channel.TELEGRAM, [bot_config(standin.base_url, timeout_s=2.0)])
    outbound.register(sender)
    yield sender
    outbound.unregister(Channel.TELEGRAM)
    if "telegram" in before:
        outbound.register(before["telegram"])


def state(db: sessionmaker[Session], rid: int) -> Reply:
    with db() as s:
        r = s.get(Reply, rid)
        assert r is not None
        return r


def out(text: str, recipient: str = "4242") -> OutboundMessage:
    return OutboundMessage(reply_id=1, conversation_id=1, channel=Channel.TELEGRAM,
                           recipient=recipient, text=text, idempotency_key="k-1")


def test_long_replies_are_split_at_4096_on_boundaries(standin, telegram, approved_reply,
                                                      db) -> None:
    paragraph = ("سفارش شما ارسال شد " * 60).strip()  # ~1100 characters
    body = "\n\n".join([paragraph] * 8)  # ~9000 characters
    rid = approved_reply(Channel.TELEGRAM, body=body)
    assert dispatch_reply(db, rid) == "sent"
    sent = standin.sent
    assert len(sent) == 3 and all(len(s.text) <= 4096 for s in sent)
    assert all(not s.text.startswith(" ") and not s.text.endswith(" ") for s in sent)
    assert "".join(s.text for s in sent).replace("\n", "") == body.replace("\n", "")
    reply = state(db, rid)
    assert reply.state == RS.SENT
    bot, chat, ids = (reply.provider_id or "").split(":")
    assert (bot, chat) == ("shop", sent[0].chat_id)
    assert ids == ",".join(str(s.message_id) for s in sent)


def test_split_text_falls_back_to_words_then_hard_cuts() -> None:
    assert split_text("  ") == []
    assert [len(p) for p in split_text("a" * 5000)] == [4096, 904]
    words = split_text("کلمه " * 1000)
    assert all(len(p) <= 4096 and not p.endswith("کل") for p in words)
    assert len(split_text("😀" * 3000)[0]) == 2048  # UTF-16 units, as Telegram counts


def test_429_is_a_retry_after_retry_after(standin, telegram, approved_reply, db) -> None:
    rid = approved_reply(Channel.TELEGRAM)
    standin.fail_next("sendMessage", "retry_after", 7)
    with pytest.raises(RetryableDeliveryError) as err:
        dispatch_reply(db, rid)
    assert err.value.retry_after_s == 7
    assert state(db, rid).state == RS.APPROVED and standin.sent == []
    assert dispatch_reply(db, rid) == "sent" and len(standin.sent) == 1


def test_a_blocked_bot_fails_with_a_clear_reason(standin, telegram, approved_reply,
                                                 db) -> None:
    rid = approved_reply(Channel.TELEGRAM)
    standin.fail_next("sendMessage", "blocked")
    assert dispatch_reply(db, rid) == "failed"
    reply = state(db, rid)
    assert reply.state == RS.FAILED and reply.error == BLOCKED_REASON


@pytest.mark.parametrize(("fault", "value", "error", "text"), [
    ("chat_not_found", 0, PermanentDeliveryError, "(?i)chat not found"),
    ("server_error", 500, OutcomeUnknown, "HTTP 500 Internal Server Error: Internal"),
    ("server_error", 502, OutcomeUnknown, "answered HTTP 502 Bad Gateway.*may have sent"),
    ("proxy_error", 502, OutcomeUnknown, "HTTP 502 Bad Gateway.*may have sent"),
    ("status", 429, RetryableDeliveryError, "refused for now"),  # 429, no retry_after
    ("drop", 0, OutcomeUnknown, "may have sent"),
])
def test_error_mapping(standin, telegram, fault: str, value: float, error: type,
                       text: str) -> None:
    standin.fail_next("sendMessage", fault, value)
    with pytest.raises(error, match=text):
        telegram.send(out("سلام"))


def test_a_bale_bots_reasons_name_bale(standin) -> None:
    # Given a Bale bot (the same sender class, the bale channel) on the Bot API stand-in
    bale = TelegramSender(Channel.BALE, [BotConfig(name="bale-shop", kind="bale", token=TOKEN,
                                                   mode="polling", base_url=standin.base_url,
                                                   timeout_s=2.0)])
    # When Bale refuses the message, or answers a 5xx after taking it
    standin.fail_next("sendMessage", "chat_not_found")
    with pytest.raises(PermanentDeliveryError, match="Bale refused the message") as refused:
        bale.send(out("سلام"))
    standin.fail_next("sendMessage", "server_error", 502, after_send=True)
    with pytest.raises(OutcomeUnknown, match=r"Bale answered .*Bale may have sent") as unknown:
        bale.send(out("سلام"))
    # Then the reasons name Bale, never Telegram
    assert "Telegram" not in str(refused.value) and "Telegram" not in str(unknown.value)


def test_a_refused_connection_is_retryable_and_a_wrong_token_permanent(standin) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nowhere = TelegramSender("telegram", [bot_config(f"http://127.0.0.1:{port}/bot")])
    with pytest.raises(RetryableDeliveryError, match="not sent"):
        nowhere.send(out("سلام"))
    wrong = TelegramSender("telegram", [bot_config(standin.base_url, token="1:wrong-TOKEN")])
    with pytest.raises(PermanentDeliveryError, match="token was refused"):
        wrong.send(out("سلام"))


def test_a_later_part_failing_is_permanent_and_names_what_went_out(standin,
                                                                   telegram) -> None:
    standin.fail_next("sendMessage", "retry_after", 3)  # the first part: retry, nothing sent
    with pytest.raises(RetryableDeliveryError):
        telegram.send(out("a" * 5000))
    standin.blocked_users.clear()
    calls = len(standin.sent)
    # Given the first part goes out and the second is refused
    standin.blocked_users.add("4343")
    original = standin._api_sendMessage

    def block_second(bot, params):  # type: ignore[no-untyped-def]
        answer = original(bot, params)
        standin.blocked_users.add(str(params.get("chat_id")))
        return answer

    standin._api_sendMessage = block_second  # type: ignore[method-assign]
    with pytest.raises(PermanentDeliveryError, match=r"partly sent: parts 1-1 of 2"):
        telegram.send(out("a" * 5000))
    assert len(standin.sent) == calls + 1


def test_a_timeout_after_the_send_follows_at_most_once(standin, telegram, approved_reply,
                                                       db) -> None:
    # Given the stand-in records the message but answers after the client's 2 s timeout
    rid = approved_reply(Channel.TELEGRAM)
    standin.fail_next("sendMessage", "slow", 3.0)
    # Then Telegram cannot be asked, and the policy (at most once) fails the reply at once,
    # with the reason: the customer may have it
    assert telegram.unknown_outcome == "at_most_once" and not telegram.can_look_up
    assert dispatch_reply(db, rid) == "failed"
    reply = state(db, rid)
    assert reply.state == RS.FAILED and len(standin.sent) == 1
    assert "no answer after the request went out (ReadTimeout)" in (reply.error or "")
    assert (reply.error or "").endswith("check with the customer before resending")
    # and it is never sent twice: not by a retried task, not by the sweep
    assert dispatch_reply(db, rid) == "skipped"
    assert reconcile_stale_sending(db, older_than=timedelta(0)) == 0
    assert len(standin.sent) == 1 and state(db, rid).state == RS.FAILED


def test_the_token_never_appears_in_logs_errors_or_reprs(
        standin, telegram, approved_reply, db, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    for fault, value in [("retry_after", 2), ("blocked", 0), ("server_error", 500),
                         ("drop", 0), ("slow", 3.0), ("chat_not_found", 0)]:
        standin.fail_next("sendMessage", fault, value)
        try:
            telegram.send(out("سلام"))
        except Exception as exc:
            errors.append(f"{exc!r} {exc} {exc.__cause__!r}")
    rid = approved_reply(Channel.TELEGRAM)
    assert dispatch_reply(db, rid) == "sent"
    assert len(errors) == 6 and caplog.records
    for text in (caplog.text, *errors, repr(telegram), repr(bot_config(standin.base_url))):
        assert TOKEN not in text and TOKEN.split(":")[1] not in text


def test_install_senders_registers_one_sender_per_channel_with_bots(db) -> None:
    from config.channels import ChannelsConfig
    from config.telegram import TelegramConfig
    from responders.setup import install_senders
    from tests.responders.limits import limiters

    before = outbound.registered()
    try:
        for ch in Channel:
            outbound.unregister(ch)
        bots = TelegramConfig(bots=[
            BotConfig(name="shop", token=TOKEN, mode="polling"),
            BotConfig(name="bale-shop", kind="bale", token=TOKEN, mode="polling"),
        ])
        sandboxed = install_senders(ChannelsConfig(telegram=bots), settings=get_settings(),
                                    rate_limiter=limiters())
        assert "telegram" not in sandboxed and "bale" not in sandboxed
        tg, bale = outbound.get_sender("telegram"), outbound.get_sender("bale")
        assert isinstance(tg, TelegramSender) and isinstance(bale, TelegramSender)
        assert "shop" in repr(tg) and "bale-shop" in repr(bale) and TOKEN not in repr(bale)
    finally:
        for ch in Channel:
            outbound.unregister(ch)
        for s in before.values():
            outbound.register(s)


def test_too_long_replies_and_timeouts_that_outlive_the_sweep_are_refused(standin,
                                                                         telegram) -> None:
    with pytest.raises(PermanentDeliveryError, match="too long"):
        telegram.send(out("a" * (4096 * 10 + 1)))
    assert standin.sent == []
    slow = bot_config(standin.base_url, timeout_s=30.0)  # 10 parts x 4 x 30 s = 1200 s
    with pytest.raises(ValueError, match="KARTABL_SENDING_STALE_S=900"):
        TelegramSender("telegram", [slow], sending_stale_s=900)
    TelegramSender("telegram", [slow], sending_stale_s=1800)

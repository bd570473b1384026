"""The sender contract, run over every sender. A channel issue adds its sender to SENDERS
(built against the test database and its stand-in server: the SMTP sender against a local
aiosmtpd) and inherits these tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from kartabl.messages import OutboundMessage
from kartabl.models import Channel, SandboxDelivery
from kartabl.outbound import Sender, get_sender, register, registered, unregister
from responders.email import SmtpSender
from responders.sandbox import SandboxSender, install
from tests.responders.smtp_server import SmtpServer

Factory = Callable[[pytest.FixtureRequest, sessionmaker[Session]], Sender]


def _smtp(request: pytest.FixtureRequest, db: sessionmaker[Session]) -> Sender:
    server: SmtpServer = request.getfixturevalue("smtp_server")  # a local aiosmtpd
    return SmtpSender(server.email_config(timeout_s=5.0))


def _telegram(request: pytest.FixtureRequest, db: sessionmaker[Session]) -> Sender:
    from channels.telegram.standin import BotApiStandin  # a local Bot API server
    from config.telegram import BotConfig
    from responders.telegram import TelegramSender

    server = BotApiStandin().start()
    request.addfinalizer(server.stop)
    server.add_bot("555:contract-token")
    bot = BotConfig(name="contract", token="555:contract-token", mode="polling",
                    base_url=server.base_url, timeout_s=5.0)
    return TelegramSender("telegram", [bot])


def _sms(request: pytest.FixtureRequest, db: sessionmaker[Session]) -> Sender:
    from channels.sms.standin import KavenegarStandin  # a local Kavenegar server
    from config.sms import SmsConfig
    from tests.responders.limits import kavenegar

    server = KavenegarStandin("contract-kavenegar-key").start()
    request.addfinalizer(server.stop)
    return kavenegar(SmsConfig(api_key="contract-kavenegar-key", base_url=server.base_url,
                               line="10008663", timeout_s=5.0))


def _api(request: pytest.FixtureRequest, db: sessionmaker[Session]) -> Sender:
    from channels.api.standin import ApiSystemStandin  # the external system's stand-in
    from config.api_channel import ApiChannelConfig
    from responders.api_channel import ApiChannelSender

    secret = "contract-api-secret-0123456789abcdef"
    server = ApiSystemStandin(secret).start()
    request.addfinalizer(server.stop)
    return ApiChannelSender([ApiChannelConfig(name="contract", secret=secret,
                                              callback_url=server.callback_url, timeout_s=5.0)])
def _webchat(request: pytest.FixtureRequest, db: sessionmaker[Session]) -> Sender:
    from kartabl.models import WebchatVisitor, Widget
    from responders.webchat import WebchatSender

    with db() as s:  # the visitor message() answers: its log is the "provider"
        widget = Widget(public_id="w-contract", name="contract", secret="s" * 32)
        s.add(widget)
        s.flush()
        s.add(WebchatVisitor(widget_id=widget.id, key="4242"))
        s.commit()
    return WebchatSender(db)
def _meta(channel: str) -> Factory:
    def make(request: pytest.FixtureRequest, db: sessionmaker[Session]) -> Sender:
        from channels.meta.standin import GraphStandin  # a local Graph API
        from config.meta import MetaConfig
        from responders.meta import MetaSender

        server = GraphStandin().start()
        request.addfinalizer(server.stop)
        server.add_account("1001", "ig-contract-token")
        server.add_account("2002", "wa-contract-token")
        for account in ("1001", "2002"):
            server.customer_wrote(account, "4242")  # the window is open
        config = MetaConfig(app_secret="s", verify_token="contract-verify-token",
                            graph_url=server.graph_url,
                            instagram=[{"id": "1001", "access_token": "ig-contract-token"}],
                            whatsapp=[{"phone_number_id": "2002",
                                       "access_token": "wa-contract-token"}])
        sender = MetaSender(channel, config)
        request.addfinalizer(sender.close)
        return sender

    return make
def _rubika(request: pytest.FixtureRequest, db: sessionmaker[Session]) -> Sender:
    from channels.rubika.standin import RubikaStandin  # a local Rubika Bot API server
    from config.rubika import RubikaBot
    from kartabl import ingest
    from kartabl.messages import InboundMessage
    from responders.rubika import RubikaSender

    server = RubikaStandin().start()
    request.addfinalizer(server.stop)
    server.add_bot("contract-rubika-token")
    bot = RubikaBot(name="contract", token="contract-rubika-token",
                    base_url=server.base_url, timeout_s=5.0)
    # A Rubika bot answers only someone who wrote to it: customer 4242 opened a chat.
    server.chats.add("b0contractchat")
    with db() as s:
        ingest.store(s, InboundMessage(
            channel=Channel.RUBIKA, external_id="contract:b0contractchat:1", sender="4242",
            text="سلام", recipient="contract", meta={"chat_id": "b0contractchat"}))
    sender = RubikaSender([bot], sessions=db)
    request.addfinalizer(sender.close)
    return sender


SENDERS: dict[str, Factory] = {
    **{f"sandbox-{ch.value}": (lambda request, db, ch=ch: SandboxSender(ch, session_factory=db))
       for ch in Channel},
    "smtp": _smtp,
    "telegram": _telegram,
    "sms": _sms,
    "api": _api,
    "webchat": _webchat,
    "instagram": _meta("instagram"),
    "whatsapp": _meta("whatsapp"),
    "rubika": _rubika,
}
_seq = itertools.count(1)


def message(channel: str) -> OutboundMessage:
    n = next(_seq)
    email = Channel(channel) == Channel.EMAIL
    return OutboundMessage(
        reply_id=n, conversation_id=1, channel=Channel(channel),
        recipient=("customer@example.ir" if email else "+989121234567" if channel == "sms"
                   else "contract:4242" if channel == "api"  # <API channel>:<user id>
                   else "4242"),  # a messenger's recipient is the customer's user id
        text="سلام، پاسخ شما",
        idempotency_key=(f"<kartabl.{n}.0123456789abcdef.0123456789abcdef0123@kartabl.example>"
                         if email else f"contract-{n}"),
        subject="Re: test",
    )


@pytest.fixture(params=sorted(SENDERS))
def sender(request: pytest.FixtureRequest, db: sessionmaker[Session]) -> Sender:
    return SENDERS[request.param](request, db)


def test_it_is_a_sender_with_a_stated_policy(sender: Sender) -> None:
    assert isinstance(sender, Sender)
    assert Channel(sender.channel)
    assert sender.unknown_outcome in ("at_most_once", "at_least_once")


def test_send_returns_the_providers_id_and_lookup_finds_it(sender: Sender) -> None:
    msg = message(sender.channel)
    try:
        assert sender.lookup(msg) is None  # surely not sent yet
    except NotImplementedError:
        assert not sender.can_look_up  # what the outbox reads instead of calling lookup
        pytest.skip(f"{sender!r} cannot look up; its policy is {sender.unknown_outcome}")
    assert sender.can_look_up
    provider_id = sender.send(msg)
    assert isinstance(provider_id, str) and provider_id
    assert sender.lookup(msg) == provider_id
    assert sender.status(provider_id) in ("sent", "delivered", "failed", None)


def test_the_same_key_twice_is_one_delivery_or_a_recognisable_one(sender: Sender, db) -> None:
    msg = message(sender.channel)
    first, second = sender.send(msg), sender.send(msg)
    try:
        sender.lookup(msg)
    except NotImplementedError:
        # A provider that cannot deduplicate delivers twice when asked twice. With an
        # at_least_once policy (SMTP) both deliveries carry the key (the Message-ID), so the
        # duplicate is recognisable; a messenger's duplicate is not (Telegram), so its policy
        # is at_most_once: the outbox never asks twice after an unknown outcome.
        if sender.unknown_outcome == "at_least_once":
            assert msg.idempotency_key in first and msg.idempotency_key in second
        else:
            assert first != second  # two deliveries, told apart by the provider's ids
        return
    assert first == second
    if isinstance(sender, SandboxSender):
        with db() as s:
            assert s.scalar(select(func.count()).select_from(SandboxDelivery)) == 1


def test_the_registry_is_one_sender_per_channel(db) -> None:
    before = registered()
    try:
        for ch in Channel:
            unregister(ch)
        installed = install(db)
        assert sorted(s.channel for s in installed) == sorted(ch.value for ch in Channel)
        real = register(SandboxSender("sms", session_factory=db, unknown_outcome="at_most_once"))
        assert get_sender("sms") is real and install(db) == []
        with pytest.raises(ValueError):
            register(SandboxSender("sms", unknown_outcome="maybe"))  # type: ignore[arg-type]
    finally:
        for ch in Channel:
            unregister(ch)
        for s in before.values():
            register(s)


def test_send_marks_the_moment_the_request_leaves(sender: Sender) -> None:
    # Every sender calls request_leaves() before the provider call: an unmapped error
    # before it is "not sent", after it "unknown" (responders/outcomes.py).
    from responders.outcomes import attempt

    with attempt() as current:
        sender.send(message(sender.channel))
    assert current.left

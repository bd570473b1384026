"""The demo's SMS, Telegram and Bale (:mod:`boot.demo_channels`): the demo customers write
through the Kavenegar and Bot API stand-ins, the real pollers and callback ingest them as
the seeded customers, and approved replies leave by the real senders to the stand-ins."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import config.settings
from bench.ports import free_port
from boot.demo import CUSTOMERS, DemoDriver, seed
from boot.demo_channels import LINE, DemoChannels, start_unless_configured
from channels.rubika.poller import sources as rubika_sources
from channels.runner import Runner, poll_each
from channels.sms.poller import sources as sms_sources
from channels.sms.standin import KavenegarStandin
from channels.telegram.poller import BotSource
from kartabl import db as kdb
from kartabl import outbound, workflow
from kartabl.models import Channel, Conversation, Identity, Message, Person, Reply, ReplyState
from responders.dispatch import dispatch_reply, poll_delivery
from responders.preview import REPLY_CHECK
from responders.setup import install_senders
from router.route import route_message
from tests.factories import routing_args
from tests.responders.limits import limiters

MINA, DANIEL, ZAHRA = "مینا احمدی", "Daniel Brown", "زهرا کریمی"
ADDRESSES = dict(CUSTOMERS)


@pytest.fixture(params=["sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite only: this is the embedded mode's wiring (the adapters have their own tests
    on both databases)."""
    path = tmp_path / "kartabl.db"
    path.write_bytes(request.getfixturevalue("sqlite_template").read_bytes())
    return f"sqlite:///{path}"


@pytest.fixture
def seeded(db: sessionmaker[Session]) -> sessionmaker[Session]:
    with db() as s:
        seed(s)
        s.commit()
    return db


def make_demo(**kw: float) -> Iterator[DemoChannels]:
    before = outbound.registered()
    demo = DemoChannels.start(**kw)
    sandboxed = install_senders(demo.config, settings=config.settings.get_settings(),
                                rate_limiter=limiters())
    # SMS, Telegram, Bale and Rubika leave by their real senders, to the demo's stand-ins; email and
    # the channels whose stand-ins the demo does not start yet stay in the sandbox
    assert "email" in sandboxed and not {"sms", "telegram", "bale", "rubika", "instagram",
                                         "whatsapp", "api", "webchat"} & set(sandboxed)
    yield demo
    demo.stop()
    for ch in Channel:
        outbound.unregister(ch)
    for sender in before.values():
        outbound.register(sender)


@pytest.fixture
def demo(seeded: sessionmaker[Session]) -> Iterator[DemoChannels]:
    """The stand-ins; a sent SMS is reported delivered as soon as it is asked about."""
    yield from make_demo(deliver_after_s=0.0, fail_ratio=0.0, seed=1)


def sms_runners(demo: DemoChannels, db: sessionmaker[Session]) -> list[Runner]:
    """The demo line's poller, as `kartabl run` builds it (channels.polled)."""
    return [Runner(line, db) for line in sms_sources(demo.config, config.settings.get_settings(),
                                                     db)]


def poll_all(demo: DemoChannels) -> int:
    db = kdb.session_factory()
    # The bots as `kartabl run` polls them, without the long poll's wait
    bots = [Runner(BotSource(bot, db, timeout_s=0), db) for bot in demo.config.telegram.bots]
    rubika = [Runner(src, db) for src in rubika_sources(demo.config, config.settings.get_settings(),
                                                      db)]
    return poll_each(sms_runners(demo, db) + bots + rubika).created


def route_all(db: sessionmaker[Session]) -> None:
    with db() as s:
        ids = list(s.scalars(select(Message.id).where(Message.routed_at.is_(None))))
    for mid in ids:
        with db() as s:
            route_message(s, mid, **routing_args())


def customer_of(db: sessionmaker[Session], kind: str, address: str) -> int:
    with db() as s:
        return s.scalars(select(Identity.customer_id).where(
            Identity.kind == kind, Identity.address == address)).one()


def approve_reply(db: sessionmaker[Session], message: Message, body: str) -> int:
    """An agent drafts ``body`` on the message's conversation; the coordinator approves."""
    with db() as s:
        conv = s.get(Conversation, message.conversation_id)
        assert conv is not None
        maryam = s.scalars(select(Person).where(Person.username == "maryam")).one()
        if conv.assignee_id is None:
            ali = s.scalars(select(Person).where(Person.username == "ali")).one()
            workflow.assign(s, maryam, conv.id, person_id=ali.id)
        agent = s.get(Person, conv.assignee_id)
        assert agent is not None
        reply = workflow.draft(s, agent, conv.id, body, check=REPLY_CHECK)
        workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
        workflow.approve(s, maryam, reply.id, check=REPLY_CHECK)
        s.commit()
        return reply.id


def message_on(db: sessionmaker[Session], channel: Channel) -> Message:
    with db() as s:
        return s.scalars(select(Message).where(Message.channel == channel)).one()


def test_sms_and_telegram_reach_kartabl_as_the_seeded_customers(demo, seeded) -> None:
    # Given Mina texts our line and Daniel writes to the Telegram bot, both via stand-ins
    demo.customer_writes(Channel.SMS, MINA, ADDRESSES[MINA]["sms"], "سفارش ۱۲۳۴ کجاست؟")
    demo.customer_writes(Channel.TELEGRAM, DANIEL, ADDRESSES[DANIEL]["telegram"], "Hello")
    demo.customer_writes(Channel.BALE, ZAHRA, ADDRESSES[ZAHRA]["bale"], "سلام")
    # When the real pollers run once, and the router routes what they stored
    assert poll_all(demo) == 3
    route_all(seeded)
    # Then each message belongs to the customer the seed knows on another identity
    sms, tg = message_on(seeded, Channel.SMS), message_on(seeded, Channel.TELEGRAM)
    bale = message_on(seeded, Channel.BALE)
    assert (sms.sender, sms.recipient, sms.text) == ("+989123456789", LINE, "سفارش ۱۲۳۴ کجاست؟")
    assert sms.customer_id == customer_of(seeded, "email", "mina@example.ir")
    assert (tg.sender, tg.sender_name, tg.recipient) == ("5550001", DANIEL, "demo-telegram")
    assert tg.customer_id == customer_of(seeded, "email", "daniel@example.com")
    assert (bale.sender, bale.recipient) == ("7770002", "demo-bale")
    assert bale.customer_id == customer_of(seeded, "bale", "7770002")
    # And polling again finds nothing new: the stand-ins were acknowledged
    assert poll_all(demo) == 0


def test_an_approved_sms_reply_leaves_once_and_is_delivered(demo, seeded, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    demo.customer_writes(Channel.SMS, MINA, ADDRESSES[MINA]["sms"], "قیمت اشتراک؟")
    poll_all(demo)
    route_all(seeded)
    rid = approve_reply(seeded, message_on(seeded, Channel.SMS), "اشتراک سالانه ۹۰۰ هزار تومان است")
    # When the outbox dispatches it
    assert dispatch_reply(seeded, rid) == "sent"
    # Then Kavenegar's stand-in got exactly one send: our line, Mina's phone, the reply id
    [sms] = demo.kavenegar.sent
    with seeded() as s:
        reply = s.get(Reply, rid)
        assert reply is not None and reply.state == ReplyState.SENT
        assert (sms.localid, reply.provider_id) == (reply.idempotency_key, str(sms.messageid))
    assert (sms.sender, sms.receptor) == (LINE, "09123456789")
    assert "اشتراک سالانه ۹۰۰ هزار تومان است" in sms.message
    # When the sweep polls delivery: the carrier reported it delivered
    assert poll_delivery(seeded) == 1
    with seeded() as s:
        assert s.get(Reply, rid).state == ReplyState.DELIVERED  # type: ignore[union-attr]
    assert dispatch_reply(seeded, rid) == "skipped" and len(demo.kavenegar.sent) == 1
    # And neither the API key nor the callback secret reached a log line
    sms_cfg = demo.sms_config
    for secret in (sms_cfg.api_key.get_secret_value(),
                   sms_cfg.webhook_secret.get_secret_value()):
        assert secret not in caplog.text
    assert "Kavenegar stand-in: SMS" in caplog.text  # the demo's log shows the phone's side


def test_an_approved_telegram_reply_reaches_the_customers_chat(demo, seeded, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    demo.customer_writes(Channel.TELEGRAM, DANIEL, ADDRESSES[DANIEL]["telegram"], "Refund?")
    poll_all(demo)
    route_all(seeded)
    rid = approve_reply(seeded, message_on(seeded, Channel.TELEGRAM), "Your refund is on its way")
    assert dispatch_reply(seeded, rid) == "sent"
    [sent] = demo.bot_api.sent_to(5550001)
    assert (sent.bot, sent.text) == ("kartabl_demo_bot", "Your refund is on its way")
    assert demo.bot_api.sent == [sent]
    # Telegram reports no delivery: the reply stays sent
    assert poll_delivery(seeded) == 0
    for bot in demo.config.telegram.bots:
        assert bot.token.get_secret_value() not in caplog.text


def test_a_rubika_customer_is_answered_in_their_chat(demo, seeded, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    negar = next(a["rubika"] for _, a in CUSTOMERS if "rubika" in a)
    demo.customer_writes(Channel.RUBIKA, "نگار", negar, "سفارشم کی می‌رسد؟")
    assert poll_all(demo) == 1
    route_all(seeded)
    msg = message_on(seeded, Channel.RUBIKA)
    assert msg.customer_id == customer_of(seeded, "rubika", negar)  # the seeded customer
    rid = approve_reply(seeded, msg, "فردا می‌رسد")
    assert dispatch_reply(seeded, rid) == "sent"
    assert demo.rubika is not None
    [sent] = demo.rubika.sent
    assert (sent.chat_id, sent.text) == (msg.meta["chat_id"], "فردا می‌رسد")
    for bot in demo.config.rubika.bots:
        assert bot.token.get_secret_value() not in caplog.text


def test_the_carrier_sometimes_reports_a_failed_sms(seeded) -> None:
    gen = make_demo(deliver_after_s=0.0, fail_ratio=1.0, seed=1)
    demo = next(gen)
    try:
        demo.customer_texts(ADDRESSES[MINA]["sms"], "سلام", via="queue")
        poll_all(demo)
        route_all(seeded)
        rid = approve_reply(seeded, message_on(seeded, Channel.SMS), "پاسخ")
        assert dispatch_reply(seeded, rid) == "sent"
        assert poll_delivery(seeded) == 1
        with seeded() as s:
            reply = s.get(Reply, rid)
            assert reply is not None and reply.state == ReplyState.FAILED
            assert reply.error and "delivery failed" in reply.error
    finally:
        next(gen, None)


def test_a_sent_sms_stays_queued_until_the_carrier_reports() -> None:
    from channels.sms.kavenegar import Kavenegar
    from config.sms import SmsConfig

    standin = KavenegarStandin("standin-key", deliver_after_s=0.3).start()
    api = Kavenegar(SmsConfig(api_key="standin-key", base_url=standin.base_url, line=LINE))
    try:
        [sent] = api.sms_send({"receptor": "09120000000", "message": "x", "localid": "9"})
        assert api.sms_status({"messageid": sent["messageid"]})[0]["status"] == 1  # queued
        time.sleep(0.35)
        assert api.sms_status({"messageid": sent["messageid"]})[0]["status"] == 10
        assert api.sms_statuslocalmessageid({"localid": "9"})[0]["status"] == 10
    finally:
        api.close()
        standin.stop()




def test_an_sms_by_callback_and_by_polling_is_one_message(demo, seeded) -> None:
    # Given the console serves the receive callback with the demo's in-memory [sms]
    from console.app import create_app

    app, port = create_app(), free_port()
    demo.serve_callback(app, "127.0.0.1", port)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        # When Mina texts, Kavenegar calls back AND keeps the SMS for the receive API
        entry = demo.kavenegar.inbound("09123456789", "بله", LINE, via="both")
        assert entry["callback_status"] == 200
        # Then the callback stored it, and the poller finds it already there
        result = poll_each(sms_runners(demo, kdb.session_factory()))
        assert (result.fetched, result.created, result.duplicates) == (1, 0, 1)
        with seeded() as s:
            [msg] = s.scalars(select(Message)).all()
            assert msg.external_id == f"kv:{entry['messageid']}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_demo_driver_writes_through_the_stand_ins(demo, seeded) -> None:
    # Given a driver whose customers use the demo's polled channels (the API channel's
    # messages are POSTed to the console's webhook: tests/channels/api/test_demo_api.py)
    driver = DemoDriver(threading.Event(), seed_=7, channels=demo,
                        only={"email", "sms", "telegram", "bale"})
    writes = 30
    for _ in range(writes):
        driver.customer_writes()
    # Then only email was stored directly: SMS, Telegram and Bale wait at the stand-ins
    with seeded() as s:
        stored = s.scalars(select(Message.channel)).all()
    assert set(stored) <= {Channel.EMAIL} and len(stored) < writes
    # And the pollers bring in every one of the others, once each (Instagram and WhatsApp
    # wait for the console's webhook: tests/test_demo_meta.py)
    meta = len(demo.meta.pending) if demo.meta is not None else 0
    assert poll_all(demo) == writes - len(stored) - meta
    assert poll_all(demo) == 0


def test_a_channels_file_means_no_stand_ins(tmp_path, caplog, monkeypatch) -> None:
    channels = tmp_path / "channels.toml"
    channels.write_text("", encoding="utf-8")
    monkeypatch.setenv("KARTABL_CHANNELS_FILE", str(channels))
    config.settings.get_settings.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger="kartabl.demo"):
            assert start_unless_configured(config.settings.get_settings()) is None
    finally:
        config.settings.get_settings.cache_clear()
    assert "starts no SMS or Telegram stand-ins" in caplog.text


def test_with_real_channels_the_driver_writes_only_where_the_sandbox_answers(
        seeded) -> None:
    # Given SMS and the messengers are real (not in the sandbox), email is not
    driver = DemoDriver(threading.Event(), seed_=3, only=["email"])
    for _ in range(10):
        driver.customer_writes()
    with seeded() as s:
        channels = set(s.scalars(select(Message.channel)))
    assert channels == {Channel.EMAIL}


def test_a_rejected_reply_left_behind_by_a_referral_does_not_stall_the_agents(seeded) -> None:
    from kartabl import ingest
    from kartabl.messages import InboundMessage
    from kartabl.models import Team

    def conversation_of(text: str, sender: str) -> int:
        with seeded() as s:
            ingest.store(s, InboundMessage(channel=Channel.EMAIL, external_id=f"<{text}@x>",
                                           sender=sender, text=text))
        route_all(seeded)
        with seeded() as s:
            return s.scalars(select(Message.conversation_id).where(Message.text == text)).one()

    # Given the sales bot's reply was rejected, then the conversation was referred to billing
    first = conversation_of("price?", "sophie@example.fr")
    with seeded() as s:
        people = {p.username: p for p in s.scalars(select(Person))}
        billing = s.scalars(select(Team).where(Team.name == "billing")).one()
        workflow.assign(s, people["demo-coordinator"], first, person_id=people["demo-sales"].id)
        rejected = workflow.draft(s, people["demo-sales"], first, "draft", check=REPLY_CHECK)
        workflow.submit(s, people["demo-sales"], rejected.id, check=REPLY_CHECK)
        workflow.reject(s, people["demo-coordinator"], rejected.id, "no")
        workflow.refer(s, people["demo-sales"], first, team_id=billing.id, note="billing")
        workflow.assign(s, people["demo-coordinator"], first, person_id=people["demo-billing"].id)
        s.commit()
    # And another customer waits for an answer
    second = conversation_of("my order?", "mina@example.ir")
    with seeded() as s:
        conv = s.get(Conversation, second)
        assert conv is not None
        if conv.assignee_id != people["demo-support"].id:  # the router may pick a person
            workflow.assign(s, people["demo-coordinator"], second,
                            person_id=people["demo-support"].id)
        s.commit()
    # When the bots work (the sales bot may no longer edit its rejected reply)
    driver = DemoDriver(threading.Event(), seed_=1)
    driver.rnd.random = lambda: 0.9  # type: ignore[method-assign]  # no referral, no note
    with seeded() as s:
        driver.agents_work(s)
        s.commit()
    # Then the waiting customer got a draft for review, and the rejected reply stays as it was
    with seeded() as s:
        states = {r.conversation_id: r.state for r in s.scalars(
            select(Reply).where(Reply.id != rejected.id))}
        assert states.get(second) == ReplyState.PENDING_APPROVAL
        assert s.get(Reply, rejected.id).state == ReplyState.REJECTED  # type: ignore[union-attr]

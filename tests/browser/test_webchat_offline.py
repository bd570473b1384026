"""The widget's offline path in a real browser, in Persian (issue 16): the visitor writes
with their mobile number in the pre-chat form and closes the page; the answer is approved
(stepped through the workflow on the server's database), the outbox sends it to the widget
and, the visitor being gone, by SMS to the Kavenegar stand-in exactly once; the SMS answer
lands in the same conversation; the visitor's next visit shows the answer, and they rate
the conversation once it is closed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from channels.sms.standin import KavenegarStandin
from channels.webchat.log import sync_notices
from config.sms import SmsConfig
from kartabl import workflow
from kartabl.db import make_engine
from kartabl.models import (
    Channel,
    Conversation,
    Direction,
    Message,
    Role,
    WebchatOffline,
    Widget,
)
from kartabl.outbound import register, registered, unregister
from responders.dispatch import dispatch_reply
from responders.preview import REPLY_CHECK
from responders.webchat import WebchatSender
from router.route import route_message
from tests.browser.conftest import LiveServer
from tests.browser.test_webchat_widget import Host
from tests.channels.sms.conftest import poll_sms
from tests.factories import person, routing_args
from tests.responders.limits import kavenegar

T = 15_000  # ms
LINE = "10008663"


@pytest.fixture
def kartabl_env(tmp_path: Path) -> dict[str, str]:
    channels = tmp_path / "channels.toml"
    channels.write_text("[webchat]\npoll_s = 0.1\nheartbeat_s = 1\nstream_s = 5\n")
    return {"KARTABL_CHANNELS_FILE": str(channels)}


@pytest.fixture
def db(live_server: LiveServer) -> Iterator[sessionmaker[Any]]:
    engine = make_engine(live_server.db_url)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def sms() -> Iterator[tuple[KavenegarStandin, SmsConfig]]:
    standin = KavenegarStandin("browser-sms-key").start()
    config = SmsConfig(api_key="browser-sms-key", base_url=standin.base_url, line=LINE,
                       connect_timeout_s=1.0, timeout_s=1.0)
    yield standin, config
    standin.stop()


def test_the_visitor_leaves_the_answer_goes_by_sms_and_the_sms_answer_continues(
        browser: Browser, live_server: LiveServer, db: sessionmaker[Any],
        sms: tuple[KavenegarStandin, SmsConfig]) -> None:
    standin, sms_config = sms
    host = Host(live_server.url, "wshop", "fa")
    before = {c: registered().get(c) for c in ("webchat", "sms")}
    try:
        with db() as s:
            s.add(Widget(public_id="wshop", name="shop", secret="s" * 32, origins=[host.origin],
                         ask_phone=True))
            s.commit()
        context = browser.new_context(locale="fa-IR")
        page = context.new_page()
        page.goto(host.origin)
        page.locator("[data-kartabl-chat] button.l").click()
        page.wait_for_function("() => window.__kartablChat && window.__kartablChat.reconnect",
                               timeout=T)
        chat = page.locator("[data-kartabl-chat] .p")
        chat.locator("input[name=contact]").fill("۰۹۱۲ ۳۴۵ ۶۷۸۹")
        chat.locator("textarea").first.fill("سفارش ۱۲ کی می‌رسد؟")
        chat.locator("textarea").first.press("Enter")
        page.wait_for_function("() => window.__kartablChat.seen.length >= 1", timeout=T)
        page.close()  # the visitor leaves

        for c in before:
            unregister(c)
        register(WebchatSender(db, away_s=0.05))  # gone 50 ms after the last stream mark
        register(kavenegar(sms_config))
        with live_server.session() as s:
            mid = s.scalars(select(Message.id)).one()
            outcome = route_message(s, mid, **routing_args())
            assert outcome is not None and outcome.conversation_id is not None
            conv = outcome.conversation_id
            boss = person(s, role=Role.ADMIN)
            reply = workflow.draft(s, boss, conv, "فردا به دستتان می‌رسد.", check=REPLY_CHECK)
            workflow.submit(s, boss, reply.id, check=REPLY_CHECK)
            workflow.approve(s, person(s, role=Role.COORDINATOR), reply.id, check=REPLY_CHECK)
            rid = reply.id
        time.sleep(0.1)  # past the in-test sender's away_s since the page's stream ended
        assert dispatch_reply(db, rid) == "sent"
        with db() as s:
            continued = s.scalars(select(WebchatOffline)).one()
            assert (continued.source_reply_id, continued.address) == (rid, "+989123456789")
        assert dispatch_reply(db, continued.reply_id) == "sent"
        assert dispatch_reply(db, continued.reply_id) == "skipped"
        texts = [m for m in standin.sent if "فردا به دستتان می‌رسد." in m.message]
        assert len(texts) == 1  # exactly once, to the number the visitor gave

        standin.inbound("09123456789", "ممنون", LINE, via="queue")
        poll_sms(sms_config, db)
        with live_server.session() as s:
            answer = s.scalars(select(Message).where(Message.channel == Channel.SMS,
                                                       Message.direction == Direction.IN)).one()
            routed = route_message(s, answer.id, **routing_args())
            assert routed is not None and routed.conversation_id == conv

        # the visitor comes back: the answer is in the widget (and never the SMS answer)
        page = context.new_page()
        page.goto(host.origin)
        page.locator("[data-kartabl-chat] button.l").click()
        chat = page.locator("[data-kartabl-chat] .p")
        chat.locator(".m.r").first.wait_for(timeout=T)
        assert "فردا به دستتان می‌رسد." in chat.locator(".m.r").first.inner_text()
        assert "ممنون" not in chat.locator(".log").inner_text()

        # closed: the widget asks for a rating, once
        with live_server.session() as s:
            workflow.close(s, person(s, role=Role.COORDINATOR), conv)
        with db() as s:
            sync_notices(s)
        chat.locator("[data-rate] [data-score='4']").click(timeout=T)
        chat.locator("[data-rate] textarea").fill("خوب بود")
        with page.expect_response(lambda r: r.url.endswith("/rating")) as rated:
            chat.locator("[data-rate] > button").click()
        assert rated.value.status == 200
        with db() as s:
            c = s.get(Conversation, conv)
            assert c is not None and (c.satisfaction_score, c.satisfaction_comment) == (
                4, "خوب بود")
        context.close()
    finally:
        for c, old in before.items():
            unregister(c)
            if old is not None:
                register(old)
        host.close()

"""The website chat widget in a real browser, in Persian and in English (issue 16).

A shop's page on another origin, under a strict Content-Security-Policy (scripts and
connections only from Kartabl, no inline script or style at all), embeds the widget with
the snippet. A conversation of 100 messages both ways goes through 20 forced disconnects
(10 event streams closed by the page, 10 with the browser offline while the visitor keeps
typing), besides the server ending every stream each second: every event reaches the
widget exactly once and in order, and the agent's side
(the database the console reads) has every visitor message exactly once, in order.
The site's signed identity is accepted, and a forged one refused.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from bench.ports import free_port
from channels.webchat.identity import identity_mac
from kartabl.db import make_engine
from kartabl.messages import OutboundMessage
from kartabl.models import Channel, Message, WebchatEvent, WebchatVisitor, Widget
from responders.webchat import WebchatSender
from tests.browser.conftest import LiveServer

SECRET = "browser-widget-secret-0123456789"
N = 100  # messages each way
T = 15_000  # ms


class Host:
    """The shop's site: one page that embeds the widget, on an origin of its own."""

    def __init__(self, kartabl: str, widget: str, lang: str) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.attrs = ""
        csp = (f"default-src 'none'; script-src {kartabl}; connect-src {kartabl}; "
               "style-src 'none'; img-src 'none'; base-uri 'none'; form-action 'none'")
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name for it
                page = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
                        f"<title>shop</title></head><body><h1>shop</h1>"
                        f'<script src="{kartabl}/widget/{widget}/loader.js" async'
                        f"{host.attrs}></script></body></html>").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Security-Policy", csp)
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def kartabl_env(tmp_path: Path) -> dict[str, str]:
    channels = tmp_path / "channels.toml"
    # stream_s = 1: the server also ends every stream each second, and the browser's own
    # reconnect (EventSource's, with its Last-Event-ID header) resumes it
    channels.write_text("[webchat]\npoll_s = 0.1\nheartbeat_s = 1\nstream_s = 1\n"
                        "per_visitor_per_min = 5000\nper_ip_per_min = 5000\n")
    return {"KARTABL_CHANNELS_FILE": str(channels)}


@pytest.fixture
def db(live_server: LiveServer) -> Iterator[sessionmaker[Any]]:
    engine = make_engine(live_server.db_url)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def make_widget(db: sessionmaker[Any], origin: str) -> str:
    with db() as s:
        s.add(Widget(public_id="wshop", name="shop", secret=SECRET, origins=[origin],
                     color="#0a7d5a", greeting_fa="سلام! چطور کمک کنیم؟",
                     greeting_en="Hello! How can we help?"))
        s.commit()
    return "wshop"


def open_widget(browser: Browser, host: Host, lang: str) -> tuple[Page, list[str]]:
    context = browser.new_context(locale="fa-IR" if lang == "fa" else "en-US")
    page = context.new_page()
    problems: list[str] = []

    def on_console(m: ConsoleMessage) -> None:
        if m.type == "error" and ("Content Security Policy" in m.text or "CSP" in m.text):
            problems.append(m.text)

    page.on("console", on_console)
    page.goto(host.origin)
    page.locator("[data-kartabl-chat] button.l").click()
    page.wait_for_function("() => window.__kartablChat && window.__kartablChat.reconnect",
                           timeout=T)
    page.wait_for_function("() => localStorage.getItem('kartabl-visitor-wshop')", timeout=T)
    return page, problems


def visitor_key(page: Page) -> str:
    token = page.evaluate("localStorage.getItem('kartabl-visitor-wshop')")
    return str(token).rpartition(".")[0]


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_a_hundred_messages_each_way_through_twenty_disconnects(
        browser: Browser, live_server: LiveServer, db: sessionmaker[Any], lang: str) -> None:
    host = Host(live_server.url, "wshop", lang)
    try:
        make_widget(db, host.origin)
        page, problems = open_widget(browser, host, lang)
        panel = page.locator("[data-kartabl-chat] .p")
        assert panel.get_attribute("dir") == ("rtl" if lang == "fa" else "ltr")
        # The styles applied under the host's CSP (style-src 'none'): a fixed, open panel
        # in the widget's colour
        assert panel.is_visible()
        assert panel.evaluate("e => getComputedStyle(e).position") == "fixed"
        launcher = page.locator("[data-kartabl-chat] button.l")
        assert launcher.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(10, 125, 90)"
        key = visitor_key(page)
        sender = WebchatSender(db)
        word = "پیام" if lang == "fa" else "message"
        disconnects = 0
        for i in range(N):
            page.evaluate("t => window.__kartablChat.send(t)", f"{word} {i}")
            sender.send(OutboundMessage(
                reply_id=i + 1, conversation_id=1, channel=Channel.WEBCHAT, recipient=key,
                text=f"reply {i}", idempotency_key=f"r-{lang}-{i}"))
            if i % 5 == 4:  # 20 disconnects
                disconnects += 1
                if disconnects % 2:
                    page.evaluate("window.__kartablChat.reconnect()")  # the page drops it
                else:  # offline: the stream breaks, and the visitor's next send must retry
                    page.context.set_offline(True)
                    page.evaluate("window.__kartablChat.reconnect()")
                    page.evaluate("t => window.__kartablChat.send(t)", f"{word} offline {i}")
                    page.wait_for_timeout(50)
                    page.context.set_offline(False)
        assert disconnects == 20
        total = 2 * N + 10  # and the 10 typed while offline
        page.wait_for_function(f"() => window.__kartablChat.seen.length >= {total}", timeout=T)
        page.wait_for_timeout(300)  # anything doubled would arrive now
        seen = page.evaluate("window.__kartablChat.seen")
        assert seen == list(range(1, total + 1))  # each event once, in order
        bubbles = panel.locator(".log > .m").all_inner_texts()
        with db() as s:
            visitor = s.scalars(select(WebchatVisitor).where(WebchatVisitor.key == key)).one()
            log = list(s.scalars(select(WebchatEvent).where(WebchatEvent.visitor_id == visitor.id)
                                 .order_by(WebchatEvent.seq)))
            stored = list(s.scalars(select(Message.text).where(
                Message.channel == Channel.WEBCHAT).order_by(Message.id)))
        # The widget shows the log as it is, in order (the time under each bubble aside)
        assert [b.split("\n")[0] for b in bubbles] == [e.text for e in log]
        sent = [e.text for e in log if e.kind == "message"]
        assert stored == sent and len(stored) == N + 10 and len(set(stored)) == N + 10
        assert [t for t in stored if "offline" not in t] == [f"{word} {i}" for i in range(N)]
        assert [e.text for e in log if e.kind == "reply"] == [f"reply {i}" for i in range(N)]
        if lang == "fa":  # the times under the bubbles are in Persian digits
            assert any(c in bubbles[0] for c in "۰۱۲۳۴۵۶۷۸۹")
        assert problems == []
        page.context.close()
    finally:
        host.close()


def test_the_sites_signed_identity_is_accepted_and_a_forged_one_refused(
        browser: Browser, live_server: LiveServer, db: sessionmaker[Any]) -> None:
    host = Host(live_server.url, "wshop", "en")
    try:
        make_widget(db, host.origin)
        identity = "customer@example.ir"
        host.attrs = (f' data-identity="{identity}" data-identity-hmac='
                      f'"{identity_mac(SECRET, identity)}"')
        page, _ = open_widget(browser, host, "en")
        page.evaluate("window.__kartablChat.send('signed in')")
        page.wait_for_function("() => window.__kartablChat.seen.length >= 1", timeout=T)
        with db() as s:
            visitor = s.scalars(select(WebchatVisitor)).one()
            assert (visitor.identity_kind, visitor.identity_address) == ("email", identity)
        page.context.close()
        # A forged signature: the session is refused, no visitor is made, nothing is stored
        host.attrs = f' data-identity="someone@example.ir" data-identity-hmac="{"0" * 64}"'
        forged = page.context.browser.new_context().new_page() if page.context.browser else None
        assert forged is not None
        with forged.expect_response(lambda r: r.url.endswith("/session")) as answer:
            forged.goto(host.origin)
            forged.locator("[data-kartabl-chat] button.l").click()
        assert answer.value.status == 403
        with db() as s:
            assert len(s.scalars(select(WebchatVisitor)).all()) == 1
            assert len(s.scalars(select(Message)).all()) == 1
        forged.context.close()
    finally:
        host.close()

"""A long conversation in a real Chromium: the page shows the newest TIMELINE_PAGE items, and
"earlier" puts each earlier window in its own place through htmx (no reload, no JavaScript
error, the status poll running meanwhile) until the first item."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Page, expect
from sqlalchemy import select

from console.timeline_window import TIMELINE_PAGE
from kartabl.models import Message, Role, utcnow
from tests import factories as f
from tests.browser.conftest import LiveServer

PASSWORD = "a long browser-test password"
T = 10_000


def test_earlier_windows_load_in_place(live_server: LiveServer, page: Page) -> None:
    # Given a conversation of two full windows and a bit
    total = 2 * TIMELINE_PAGE + 30
    start = utcnow() - timedelta(days=1)
    with live_server.session() as s:
        coordinator = f.person(s, "maryam", Role.COORDINATOR)
        coordinator.password_hash, coordinator.locale = f.quick_hash(PASSWORD), "en"
        conv = f.conversation(s, channel="sms", text="message 0")
        s.scalars(select(Message).where(Message.conversation_id == conv.id)).one(
        ).received_at = start
        for i in range(1, total):
            f.inbound(s, conv, text=f"message {i}").received_at = start + timedelta(minutes=i)
        cid = conv.id
    errors: list[str] = []  # htmx reports a failed request or a missing swap target here
    page.on("console", lambda m: errors.append(m.text) if m.type == "error"
            and not m.location["url"].endswith("/favicon.ico") else None)
    page.goto(live_server.url + "/login")
    page.locator('input[name="username"]').fill("maryam")
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('form[action="/login"] button[type=submit]').click()
    page.wait_for_url("**/queues")

    # When the conversation is opened: the newest window, then the "earlier" entry
    page.goto(f"{live_server.url}/conversations/{cid}")
    items = page.locator("#timeline > li.item")
    expect(items).to_have_count(TIMELINE_PAGE)
    expect(items.last).to_contain_text(f"message {total - 1}")
    earlier = page.locator("#timeline > li:first-child#timeline-earlier a")
    expect(earlier).to_have_text(f"Show {TIMELINE_PAGE} earlier items ({total - TIMELINE_PAGE} "
                                 "in all earlier)")
    page.evaluate("window.kartablMarker = 1")

    # Then each click puts the window before in the entry's place, oldest first
    earlier.click()
    expect(items).to_have_count(2 * TIMELINE_PAGE, timeout=T)
    expect(page.locator("#timeline-earlier a")).to_have_text("Show 30 earlier items (30 in all "
                                                             "earlier)")
    page.locator("#timeline-earlier a").click()
    expect(items).to_have_count(total, timeout=T)
    expect(page.locator("#timeline-earlier")).to_have_count(0)
    texts = items.locator(".text").all_inner_texts()
    assert texts == [f"message {i}" for i in range(total)]
    page.wait_for_timeout(6_000)  # a status poll (every 5 s) with the window's cursor
    assert page.evaluate("window.kartablMarker") == 1  # no reload
    assert errors == []

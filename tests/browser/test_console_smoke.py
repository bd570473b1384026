"""The overview page in a real Chromium, behind sign-in: Persian and right-to-left, its counts
come from the database the server uses, and they refresh live without a reload."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from kartabl import ingest
from kartabl.messages import InboundMessage
from kartabl.models import Role
from router.batch import route_batch
from tests import factories as f
from tests.browser.conftest import LiveServer

PASSWORD = "a long browser-test password"

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _card(page: Page, label: str) -> str:
    return page.locator("#counts .card", has_text=label).locator("b").inner_text()


def test_overview_is_rtl_and_refreshes_live(
    live_server: LiveServer, page: Page, screenshot: Callable[..., Path]
) -> None:
    # Given one inbound SMS already in the server's database
    with live_server.session() as s:
        ingest.store(
            s, InboundMessage(channel="sms", external_id="1", sender="+989121112233", text="سلام")
        )
        coordinator = f.person(s, "maryam", Role.COORDINATOR)
        coordinator.password_hash = f.quick_hash(PASSWORD)
    # When the overview is opened: it needs sign-in (counts are not public)
    page.goto(live_server.url + "/")
    page.wait_for_url("**/login?next=%2F")
    page.locator('input[name="username"]').fill("maryam")
    page.locator('input[name="password"]').fill(PASSWORD)
    with page.expect_navigation() as signed_in:
        page.locator('form[action="/login"] button[type=submit]').click()
    response = signed_in.value
    # Then it is the Persian, right-to-left overview, counting that message
    assert response is not None and response.ok and response.url == live_server.url + "/"
    assert page.evaluate("document.documentElement.dir") == "rtl"
    assert page.evaluate("document.documentElement.lang") == "fa"
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    expect(page.locator("h1")).to_have_text("نمای کلی")  # every word in Persian
    assert _card(page, "پیام‌های ورودی") == "۱"
    # and htmx (served by the console) fetches the counts on live events: a new message
    # shows without a reload. It is stored and routed by this test's process, which wakes no
    # web process: the server finds the routing's event by its own look every 5 s
    # (KARTABL_LIVE_POLL_S), what covers a lost wake.
    assert page.evaluate("typeof window.htmx") == "object"
    expect(page.locator('#counts[hx-get="/"][hx-trigger="live"]')).to_have_count(1)
    expect(page.locator("body")).to_have_attribute("data-live-open", "1")
    page.evaluate("window.kartablMarker = 1")
    with live_server.session() as s:
        stored = ingest.store(
            s, InboundMessage(channel="sms", external_id="2", sender="+989121112233", text="؟")
        )
        route_batch(s, [stored.message_id], **f.routing_args())
    expect(page.locator("#counts .card", has_text="پیام‌های ورودی").locator("b")).to_have_text(
        "۲", timeout=10_000
    )
    assert page.evaluate("window.kartablMarker") == 1
    shot = screenshot("overview")
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000, shot

    # The API description the page links to is served too
    api = page.goto(live_server.url + "/openapi.json")
    assert api is not None and {"/healthz", "/api/v1/status"} <= set(api.json()["paths"])

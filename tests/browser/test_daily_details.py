"""The console as a daily tool (issue 14), in a real Chromium:

- the queue at 390 px wide (a phone) has no horizontal scroll, in Persian and English,
  with long names and subjects in its rows;
- a refused form lands on a GET page (post/redirect/get): the reason is shown in the
  reader's language with the typed text kept, and a reload repeats a GET, submitting
  nothing (no new audit event, no new row).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Request, expect
from sqlalchemy import func, select

from kartabl.models import Channel, Customer, Event, Role
from tests import factories as f
from tests.browser.conftest import LiveServer

PASSWORD = "a long browser-test password"
PHONE = {"width": 390, "height": 844}
BROWSER_LOCALE = {"fa": "fa-IR", "en": "en-US"}


@pytest.fixture
def phone_page(browser: Browser) -> Iterator[Callable[[str], Page]]:
    pages: list[Page] = []

    def make(locale: str) -> Page:
        context = browser.new_context(locale=BROWSER_LOCALE[locale], viewport=PHONE,
                                      is_mobile=True, has_touch=True, device_scale_factor=3)
        context.set_default_timeout(10_000)
        p = context.new_page()
        pages.append(p)
        return p

    yield make
    for p in pages:
        p.context.close()


def _sign_in(page: Page, url: str, username: str) -> None:
    page.goto(url + "/login")
    page.locator('input[name="username"]').fill(username)
    page.locator('input[name="password"]').fill(PASSWORD)
    with page.expect_navigation():
        page.locator('form[action="/login"] button[type=submit]').click()


def _seed_queue(server: LiveServer, locale: str) -> None:
    with server.session() as s:
        support = f.team(s, "support")
        support.title = "پشتیبانی مشتریان ویژهٔ سازمانی" if locale == "fa" else \
            "Enterprise customer support"
        coord = f.person(s, "maryam", Role.COORDINATOR)
        coord.password_hash, coord.locale = f.quick_hash(PASSWORD), locale
        agent = f.person(s, "ali", teams=[support])
        agent.display_name = "علی رضایی‌نژاد" if locale == "fa" else "Alexander Montgomery-Smith"
        for n, channel in enumerate((Channel.EMAIL, Channel.SMS, Channel.TELEGRAM, Channel.BALE)):
            conv = f.conversation(
                s, channel=channel, team=support, assignee=agent if n % 2 else None,
                subject=("سفارش شمارهٔ ۱۲۳۴۵۶۷۸۹ هنوز نرسیده و پیگیری‌ها بی‌نتیجه مانده است"
                         if locale == "fa" else
                         "Order 123456789 has still not arrived after three weeks of waiting"),
                text="x" * 300 if n == 0 else "سلام " * 60)
            if n == 3:  # a name that is one long word
                row = s.get(Customer, conv.customer_id)
                assert row is not None
                row.display_name = ("https://example.com/a-very-long-unbroken-customer-name-"
                                    "without-any-space-at-all")


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_queue_at_390px_has_no_horizontal_scroll(
    live_server: LiveServer, phone_page: Callable[[str], Page], locale: str,
    screenshot: Callable[..., Path],
) -> None:
    # Given a coordinator reading in ``locale`` and open conversations with long words
    _seed_queue(live_server, locale)
    page = phone_page(locale)
    _sign_in(page, live_server.url, "maryam")
    # When the open queue is shown on a 390 px wide phone
    page.goto(live_server.url + "/queues?queue=open")
    expect(page.locator("#queue-rows .queue-row")).to_have_count(4)
    assert page.evaluate("document.documentElement.lang") == locale
    screenshot(f"queue-390-{locale}", of=page)
    # Then nothing is wider than the screen: the page does not scroll sideways
    widths = page.evaluate(
        "[window.innerWidth, document.documentElement.scrollWidth, document.body.scrollWidth]")
    assert widths[0] == 390 and widths[1] <= widths[0] and widths[2] <= widths[0], widths
    # and each row is still readable: its cells are labelled lines inside the screen
    first = page.locator("#queue-rows .queue-row").first
    box = first.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390 + 0.5, box
    label = first.locator("td").nth(2).evaluate(  # after the bulk checkbox and the customer
        "td => getComputedStyle(td, '::before').content")
    assert label.strip('"') in ("موضوع", "Subject")


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_refused_form_and_reload_submit_nothing(
    live_server: LiveServer, phone_page: Callable[[str], Page], locale: str,
    screenshot: Callable[..., Path],
) -> None:
    # Given an agent on their conversation
    with live_server.session() as s:
        support = f.team(s, "support")
        agent = f.person(s, "ali", teams=[support])
        agent.password_hash, agent.locale = f.quick_hash(PASSWORD), locale
        cid = f.conversation(s, team=support, assignee=agent).id
    page = phone_page(locale)
    _sign_in(page, live_server.url, "ali")
    page.goto(f"{live_server.url}/conversations/{cid}")
    note = "یادداشت برای همکار" if locale == "fa" else "a note for the next person"

    def events() -> int:
        with live_server.session() as s:
            return s.scalar(select(func.count()).select_from(Event)) or 0

    before = events()
    # When they hand it over with a note but to neither a person nor a team
    page.locator("#handover-note").fill(note)
    with page.expect_navigation():
        page.locator("#handover-button").click()
    # Then they land on a GET page that says why, in their language, the note kept
    assert "?failed=" in page.url
    reason = "یک نفر یا یک تیم را انتخاب کنید." if locale == "fa" else \
        "Choose a person or a team."
    expect(page.locator("#action-error")).to_contain_text(reason)
    expect(page.locator("#handover-note")).to_have_value(note)
    screenshot(f"refused-{locale}", of=page)
    # When the page is reloaded: the browser repeats a GET, not the POST
    methods: list[str] = []

    def on_request(request: Request) -> None:
        if request.is_navigation_request():
            methods.append(request.method)

    page.on("request", on_request)
    page.reload()
    expect(page.locator("#action-error")).to_contain_text(reason)
    assert methods == ["GET"], methods
    assert events() == before  # nothing was submitted, nothing recorded

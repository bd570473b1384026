"""Canned responses in a real Chromium: in the reply composer, ``/`` and a shortcut offers
the matching responses, Enter or Tab inserts one, in the *customer's* language (Persian
for a customer who wrote Persian, English for one who wrote English), with the customer's
name filled in, whatever the language of the agent's console (tested in both). The insert
goes through the server (scope-checked, counted), and htmx's live preview follows it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from console.i18n import DIRECTION, gettext
from kartabl.models import CannedResponse, Channel, Role
from tests import factories as f
from tests.browser.conftest import LiveServer

PASSWORD = "a long browser-test password"


def _seed(server: LiveServer, locale: str) -> tuple[int, int]:
    """An agent of support with ``locale``, a Persian and an English customer's
    conversations held by them, a global /thanks and a sales-only /sales-secret."""
    with server.session() as s:
        support, sales = f.team(s, "support"), f.team(s, "sales")
        agent = f.person(s, "ali", teams=[support])
        agent.password_hash, agent.locale = f.quick_hash(PASSWORD), locale
        coord = f.person(s, "maryam", Role.COORDINATOR)
        fa = f.conversation(s, channel=Channel.SMS, team=support, assignee=agent,
                            text="سلام، سفارشم هنوز نرسیده")
        fa.customer.display_name = "سارا احمدی"
        en = f.conversation(s, channel=Channel.EMAIL, team=support, assignee=agent,
                            text="Hello, my order has not arrived yet", subject="Order")
        en.customer.display_name = "Sophie Martin"
        s.add_all([
            CannedResponse(name="Thanks", shortcut="thanks", created_by_id=coord.id,
                           body_fa="{{ customer_name }} عزیز، از صبر شما سپاسگزاریم.",
                           body_en="Dear {{ customer_name }}, thank you for your patience."),
            CannedResponse(name="Tracking", shortcut="track", body_fa="کد رهگیری:",
                           body_en="Tracking code:"),
            CannedResponse(name="sales-secret", shortcut="tsales", team_id=sales.id,
                           body_fa="راز", body_en="secret"),
        ])
        s.flush()
        return fa.id, en.id


def _sign_in(page: Page, server: LiveServer) -> None:
    page.goto(server.url + "/login")
    page.locator('input[name="username"]').fill("ali")
    page.locator('input[name="password"]').fill(PASSWORD)
    with page.expect_navigation():
        page.locator('form[action="/login"] button[type=submit]').click()


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_a_shortcut_expands_in_the_customer_s_language(
    live_server: LiveServer, page: Page, locale: str, screenshot: Callable[..., Path],
) -> None:
    fa_conv, en_conv = _seed(live_server, locale)
    _sign_in(page, live_server)
    cases = [
        (fa_conv, "سارا احمدی عزیز، از صبر شما سپاسگزاریم.", "Enter"),
        (en_conv, "Dear Sophie Martin, thank you for your patience.", "Tab"),
    ]
    for cid, expected, key in cases:
        # Given the agent's reply composer, in the console's language
        page.goto(f"{live_server.url}/conversations/{cid}")
        assert page.evaluate("document.documentElement.dir") == DIRECTION[locale]
        expect(page.locator(".canned-hint")).to_contain_text(
            gettext(locale, "canned.composer_hint"))
        # which says what the customer writes in: what will be inserted
        language = "fa" if cid == fa_conv else "en"
        expect(page.locator("#customer-language")).to_have_attribute("data-language", language)
        body = page.locator("#draft-body")
        body.click()
        # When they type a line, then "/t"
        page.keyboard.type("OK. /t")
        # Then the responses starting with "t" that they may use are offered (not sales')
        options = page.locator("#draft-body-canned .canned-option")
        expect(options).to_have_count(2)
        expect(options.nth(0)).to_contain_text("/thanks")
        expect(options.nth(1)).to_contain_text("/track")
        expect(options.nth(0)).to_have_attribute("aria-selected", "true")
        screenshot(f"suggestions-{cid}")
        # and narrowing the shortcut narrows the list
        page.keyboard.type("ha")
        expect(options).to_have_count(1)
        # When they press Enter (or Tab)
        page.keyboard.press(key)
        # Then "/tha" becomes the response in the customer's language, name filled in
        expect(body).to_have_value(f"OK. {expected}")
        expect(page.locator("#draft-body-canned")).to_be_hidden()
        # and the live preview (htmx) shows the inserted text
        expect(page.locator("#draft-preview")).to_contain_text(expected.split("،")[0][:12])
        # and typing goes on after it
        page.keyboard.type(" :)")
        expect(body).to_have_value(f"OK. {expected} :)")

    # Arrows choose, Escape closes, an unknown shortcut offers nothing
    page.goto(f"{live_server.url}/conversations/{en_conv}")
    page.locator("#draft-body").click()
    page.keyboard.type("/t")
    options = page.locator("#draft-body-canned .canned-option")
    expect(options).to_have_count(2)
    page.keyboard.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    expect(page.locator("#draft-body")).to_have_value("Tracking code:")
    page.keyboard.type(" /tsales")
    expect(page.locator("#draft-body-canned .canned-none")).to_have_text(
        gettext(locale, "canned.no_match"))
    page.keyboard.press("Escape")
    expect(page.locator("#draft-body-canned")).to_be_hidden()
    page.keyboard.press("Enter")  # the list is closed: Enter is a new line again
    expect(page.locator("#draft-body")).to_have_value("Tracking code: /tsales\n")

    # Each insertion was counted by the server; the other team's response never was
    with live_server.session() as s:
        uses = dict(s.execute(select(CannedResponse.shortcut, CannedResponse.use_count)).all())
    assert uses == {"thanks": 2, "track": 1, "tsales": 0}

"""Starting a conversation in a real Chromium, in Persian: an agent opens "New conversation"
from the header, writes by SMS to a number nobody has written from (typed in Persian
digits), and lands on the new conversation with its message awaiting approval; a
coordinator sees it in her approval queue."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from console.i18n import gettext
from kartabl.models import Conversation, Identity, Role
from tests import factories as f
from tests.browser.conftest import LiveServer

PASSWORD = "a long browser-test password"


def _sign_in(page, url: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url + "/login")
    page.locator('input[name="username"]').fill(username)
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('form[action="/login"] button[type=submit]').click()
    page.wait_for_url("**/queues")


def test_an_agent_starts_an_sms_conversation_to_a_new_number_in_persian(
        live_server: LiveServer, new_page) -> None:  # type: ignore[no-untyped-def]
    # Given ali of support and maryam, a coordinator, both reading Persian
    with live_server.session() as s:
        support = f.team(s, "support")
        ali = f.person(s, "ali", teams=[support])
        maryam = f.person(s, "maryam", Role.COORDINATOR)
        for p in (ali, maryam):
            p.password_hash, p.locale = f.quick_hash(PASSWORD), "fa"
    page = new_page("fa")
    _sign_in(page, live_server.url, "ali")
    # When he opens "New conversation" from the header
    page.locator("#nav-compose").click()
    page.wait_for_url("**/conversations/new")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("h1")).to_have_text(gettext("fa", "compose.title"))
    # and writes by SMS to a new number, typed in Persian digits
    page.locator("#compose-kind").select_option("phone")
    page.locator("#compose-address").fill("۰۹۱۲ ۳۴۵ ۶۷۸۹")
    page.locator("#compose-name").fill("خانم رضایی")
    page.locator("#compose-body").fill("سلام، سفارش شما آماده‌ی تحویل است.")
    page.locator("#compose-submit-button").click()
    # Then he is on the new conversation, its message awaiting approval
    page.wait_for_url(re.compile(r".*/conversations/\d+\?done=submitted$"))
    expect(page.locator("#approval .pending-reply")).to_have_count(1)
    expect(page.locator("#approval")).to_contain_text("آماده‌ی تحویل")
    with live_server.session() as s:
        conv = s.scalars(select(Conversation)).one()
        ident = s.get(Identity, conv.to_identity_id)
        assert ident is not None and ident.address == "+989123456789"
        assert conv.assignee_id == conv.started_by_id == ali.id
        cid = conv.id
    # And maryam finds it in her approval queue
    other = new_page("fa")
    _sign_in(other, live_server.url, "maryam")
    other.goto(live_server.url + "/queues?queue=approval")
    expect(other.locator(f'tr.queue-row[data-conversation-id="{cid}"]')).to_have_count(1)
    expect(other.locator("#queue-rows")).to_contain_text("خانم رضایی")

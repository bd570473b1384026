"""Snoozing in a real Chromium, in Persian: ali snoozes his conversation until a Jalali date
and time typed in Persian digits; it leaves his queue and is listed in the snoozed queue
with its time, and the page says until when."""

from __future__ import annotations

from datetime import timedelta

import jdatetime
from playwright.sync_api import expect

from console.dates import persian_digits
from console.i18n import gettext
from kartabl.models import Conversation, ConversationStatus, utcnow
from tests import factories as f
from tests.browser.conftest import LiveServer

PASSWORD = "a long browser-test password"
T = 10_000


def test_snooze_until_a_jalali_moment_in_persian(live_server: LiveServer, new_page) -> None:
    # Given two conversations of ali's in his queue
    with live_server.session() as s:
        support = f.team(s, "support")
        ali = f.person(s, "ali", teams=[support])
        ali.password_hash, ali.locale = f.quick_hash(PASSWORD), "fa"
        snoozed = f.conversation(s, team=support, assignee=ali, subject="بعداً پیگیری شود").id
        other = f.conversation(s, team=support, assignee=ali, subject="همین حالا").id
    page = new_page("fa")
    page.goto(live_server.url + "/login")
    page.locator('input[name="username"]').fill("ali")
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('form[action="/login"] button[type=submit]').click()
    page.wait_for_url("**/queues")
    page.goto(live_server.url + "/queues?queue=mine")
    expect(page.locator("#queue-rows tbody tr")).to_have_count(2)
    # When he opens one and snoozes it until a Jalali day three days ahead, 10:30
    day = jdatetime.date.fromgregorian(date=(utcnow() + timedelta(days=3)).date())
    typed = persian_digits(f"{day.year}/{day.month:02d}/{day.day:02d} 10:30")
    page.goto(f"{live_server.url}/conversations/{snoozed}")
    expect(page.locator("html")).to_have_attribute("lang", "fa")
    page.locator("#snooze-panel summary").click()
    page.locator("#snooze-until").fill(typed)
    page.locator("#snooze-button").click()
    # Then the page says so, in Persian, with the time it comes back
    expect(page.locator("#flash")).to_have_text(gettext("fa", "flash.snoozed"), timeout=T)
    expect(page.locator("#held-notice")).to_have_attribute("data-status", "snoozed")
    # and it leaves his queue, the other one staying
    page.goto(live_server.url + "/queues?queue=mine")
    expect(page.locator(f"#row-{other}")).to_have_count(1, timeout=T)
    expect(page.locator(f"#row-{snoozed}")).to_have_count(0)
    # and the snoozed queue lists it, marked with its status
    page.goto(live_server.url + "/queues?queue=snoozed")
    row = page.locator(f"#row-{snoozed}")
    expect(row).to_have_count(1, timeout=T)
    expect(row.locator(".status-snoozed")).to_contain_text(gettext("fa", "status.snoozed"))
    with live_server.session() as s:
        conv = s.get(Conversation, snoozed)
        assert conv is not None and conv.status == ConversationStatus.SNOOZED
        assert conv.snoozed_until is not None
        assert conv.snoozed_until.date() == day.togregorian()
        # 10:30 in Tehran is 07:00 UTC
        assert (conv.snoozed_until.hour, conv.snoozed_until.minute) == (7, 0)


def test_the_w_key_sets_waiting_and_g_w_finds_it(live_server: LiveServer, new_page) -> None:
    with live_server.session() as s:
        support = f.team(s, "support")
        ali = f.person(s, "ali", teams=[support])
        ali.password_hash, ali.locale = f.quick_hash(PASSWORD), "fa"
        cid = f.conversation(s, team=support, assignee=ali, subject="منتظر مدارک").id
    page = new_page("fa")
    page.goto(live_server.url + "/login")
    page.locator('input[name="username"]').fill("ali")
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('form[action="/login"] button[type=submit]').click()
    page.wait_for_url("**/queues")
    page.goto(f"{live_server.url}/conversations/{cid}")
    page.locator("body").press("w")
    expect(page.locator("#flash")).to_have_text(gettext("fa", "flash.waiting"), timeout=T)
    expect(page.locator("#held-notice")).to_have_attribute("data-status", "waiting")
    page.locator("body").press("g")
    page.locator("body").press("w")
    page.wait_for_url("**/queues?queue=waiting")
    expect(page.locator(f"#row-{cid} .status-waiting")).to_have_count(1, timeout=T)

"""Scheduled send in a real Chromium, in Persian: the agent writes a reply and sets its send
time as a Jalali date-time in Persian digits, a coordinator approves it, and it waits in
the "scheduled" queue with its time (Jalali, Persian digits), not sent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from console.dates import persian_digits
from console.schedule_time import jalali_example
from kartabl.models import Channel, Reply, ReplyState, Role, utcnow
from tests import factories as f
from tests.browser.conftest import LiveServer

PASSWORD = "a long browser-test password"
TEHRAN = ZoneInfo("Asia/Tehran")


def _sign_in(page: Page, url: str, username: str) -> None:
    page.goto(url + "/login")
    page.locator('input[name="username"]').fill(username)
    page.locator('input[name="password"]').fill(PASSWORD)
    with page.expect_navigation():
        page.locator('form[action="/login"] button[type=submit]').click()


def test_schedule_a_reply_in_jalali_and_see_it_in_the_scheduled_queue(
    live_server: LiveServer, new_page: Callable[[str], Page], screenshot: Callable[..., Path],
) -> None:
    # Given an agent's SMS conversation, and a coordinator, both reading Persian
    with live_server.session() as s:
        support = f.team(s, "support")
        support.title = "پشتیبانی"
        agent = f.person(s, "ali", teams=[support])
        coord = f.person(s, "reza", Role.COORDINATOR)
        for p in (agent, coord):
            p.password_hash, p.locale = f.quick_hash(PASSWORD), "fa"
        cid = f.conversation(s, channel=Channel.SMS, team=support, assignee=agent,
                             subject="پیگیری سفارش").id
    at = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    typed = persian_digits(jalali_example(at, TEHRAN))  # e.g. ۱۴۰۵/۰۹/۱۶ ۱۳:۴۵
    # When the agent writes a reply, sets its send time in Jalali and submits it
    agent_page = new_page("fa")
    _sign_in(agent_page, live_server.url, "ali")
    agent_page.goto(f"{live_server.url}/conversations/{cid}")
    expect(agent_page.locator("html")).to_have_attribute("dir", "rtl")
    agent_page.locator("#draft-body").fill("سلام، فردا ساعت ده با شما تماس می‌گیریم.")
    agent_page.locator("#draft-send-at").fill(typed)
    screenshot("scheduled-compose", of=agent_page)
    with agent_page.expect_navigation():
        agent_page.locator("#draft-submit-button").click()
    expect(agent_page.locator("#flash")).to_have_attribute("data-done", "submitted")
    with live_server.session() as s:
        reply = s.query(Reply).filter(Reply.conversation_id == cid).one()
        rid = reply.id
        assert reply.send_at == at and reply.state == ReplyState.PENDING_APPROVAL
    expect(agent_page.locator(f"#send-at-{rid}")).to_contain_text(typed)
    # And the coordinator approves it
    coord_page = new_page("fa")
    _sign_in(coord_page, live_server.url, "reza")
    coord_page.goto(f"{live_server.url}/conversations/{cid}")
    with coord_page.expect_navigation():
        coord_page.locator(f"#approve-button-{rid}").click()
    expect(coord_page.locator("#flash")).to_have_attribute("data-done", "approved")
    expect(coord_page.locator(f"#scheduled-{rid}")).to_contain_text(typed)
    # Then it waits in the scheduled queue with its time, in Jalali with Persian digits
    coord_page.goto(f"{live_server.url}/queues?queue=scheduled")
    expect(coord_page.locator("#tab-scheduled")).to_contain_text("زمان‌بندی‌شده")
    expect(coord_page.locator("#tab-scheduled .count")).to_have_attribute("data-count", "1")
    row = coord_page.locator(f"#row-{cid}-{rid}")
    expect(row).to_contain_text("ارسال در")
    expect(row).to_contain_text(typed)
    screenshot("scheduled-queue", of=coord_page)
    with live_server.session() as s:  # approved, and not sent before its time
        reply = s.get(Reply, rid)
        assert reply is not None and reply.state == ReplyState.APPROVED
        assert reply.sent_at is None

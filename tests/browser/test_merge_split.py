"""Merging and splitting conversations in a real Chromium, in Persian: a coordinator merges
one conversation of a customer into another from the conversation page (preview by htmx,
then the confirmation), sees one timeline ordered by time with "from #B" on the moved
message, undoes the merge, and splits a message out into a new conversation."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from kartabl.models import Conversation, Message, Role, utcnow
from tests import factories as f
from tests.browser.conftest import LiveServer

PASSWORD = "a long browser-test password"


def test_merge_undo_and_split_in_persian(live_server: LiveServer, new_page) -> None:
    # Given a customer with two conversations: A (older) and B, on the same channel
    start = utcnow() - timedelta(hours=3)
    with live_server.session() as s:
        coordinator = f.person(s, "maryam", Role.COORDINATOR)
        coordinator.password_hash, coordinator.locale = f.quick_hash(PASSWORD), "fa"
        a = f.conversation(s, channel="sms", subject="سفارش الف", text="پیام اول الف")
        s.scalars(select(Message).where(Message.conversation_id == a.id)).one(
        ).received_at = start
        b = Conversation(customer_id=a.customer_id, channel=a.channel, subject="سفارش ب")
        s.add(b)
        s.flush()
        f.inbound(s, b, text="پیام ب").received_at = start + timedelta(minutes=10)
        f.inbound(s, a, text="پیام دوم الف").received_at = start + timedelta(minutes=20)
        aid, bid = a.id, b.id
    page = new_page("fa")
    page.goto(live_server.url + "/login")
    page.locator('input[name="username"]').fill("maryam")
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('form[action="/login"] button[type=submit]').click()
    page.wait_for_url("**/queues")

    # When she opens B and chooses A in its merge panel: the preview comes in place
    page.goto(f"{live_server.url}/conversations/{bid}")
    expect(page.locator("#merge-panel h2")).to_have_text("ادغام گفتگوها")
    page.locator(f"#merge-into-{aid}").check()
    confirm = page.locator("#merge-preview #merge-confirm-button")
    expect(confirm).to_have_text("ادغام")
    expect(page.locator("#merge-preview")).to_contain_text("۱ پیام")
    confirm.click()

    # Then A's page shows one timeline ordered by time, B's message marked "from #B"
    page.wait_for_url(f"**/conversations/{aid}?done=conv_merge.merged")
    expect(page.locator("#flash")).to_have_text("گفتگوها ادغام شدند.")
    texts = page.locator("#timeline li.item.message .text").all_inner_texts()
    assert texts == ["پیام اول الف", "پیام ب", "پیام دوم الف"]
    moved = page.locator("#timeline li.item.message").nth(1).locator("a.badge.origin")
    expect(moved).to_have_text(f"از #{bid}")
    # and B's page says where it went
    page.goto(f"{live_server.url}/conversations/{bid}")
    expect(page.locator("#merged-banner")).to_contain_text("این گفتگو ادغام شده است در")
    expect(page.locator("#merged-into-link")).to_have_attribute("href", f"/conversations/{aid}")

    # When she undoes the merge from A's page
    page.goto(f"{live_server.url}/conversations/{aid}")
    page.locator("#merge-undo-button").click()
    page.wait_for_url(f"**/conversations/{aid}?done=conv_merge.undone")
    expect(page.locator("#flash")).to_have_text("ادغام برگردانده شد.")
    assert page.locator("#timeline li.item.message .text").all_inner_texts() == [
        "پیام اول الف", "پیام دوم الف"]

    # And splits A's second message out, with what follows
    second = page.locator("#timeline li.item.message").nth(1)
    second.locator("details.split summary").click()
    expect(second.locator("details.split summary")).to_have_text("جداکردن از این‌جا")
    second.locator("input[name=following]").check()
    second.locator("button.split-button").click()
    page.wait_for_url("**?done=conv_split.split")
    expect(page.locator("#flash")).to_have_text("پیام به این گفتگوی تازه جدا شد.")
    expect(page.locator("#timeline li.item.message .text")).to_have_text(["پیام دوم الف"])
    expect(page.locator("#timeline a.badge.origin")).to_have_text(f"از #{aid}")
    assert f"/conversations/{aid}" not in page.url

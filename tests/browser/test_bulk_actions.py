"""Bulk actions in a real Chromium: a coordinator assigns 20 triage items at once (Persian and
English), and an agent's bulk close refuses, with the reason, what left their scope while
they were choosing. The selection survives the queue's live refresh (it pauses while rows
are selected: console/static/bulk.js)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from console.i18n import gettext
from kartabl import audit
from kartabl.models import Conversation, ConversationStatus, Role
from tests import factories as f
from tests.browser.conftest import LiveServer

PASSWORD = "a long browser-test password"
T = 10_000


def _sign_in(page: Page, url: str, username: str) -> None:
    page.goto(url + "/login")
    page.locator('input[name="username"]').fill(username)
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('form[action="/login"] button[type=submit]').click()
    page.wait_for_url("**/queues")


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_a_coordinator_assigns_twenty_triage_items_at_once(live_server: LiveServer, page: Page,
                                                          locale: str) -> None:
    # Given 20 conversations waiting in triage, and ali of support
    with live_server.session() as s:
        maryam = f.person(s, "maryam", Role.COORDINATOR)
        maryam.password_hash, maryam.locale = f.quick_hash(PASSWORD), locale
        support = f.team(s, "support")
        ali = f.person(s, "ali", teams=[support])
        ids = [f.conversation(s, channel="telegram", subject=f"item {i}").id for i in range(20)]
        ali_id, support_id = ali.id, support.id
    _sign_in(page, live_server.url, "maryam")
    page.goto(live_server.url + "/queues?queue=triage")
    expect(page.locator("#queue-rows tbody tr")).to_have_count(20)
    # When she selects every row, and a change she may see happens meanwhile (a new
    # conversation assigned into triage's team-less queue: a live event for her)
    page.locator("#bulk-pick-all").check()
    with live_server.session() as s:
        late = f.conversation(s, channel="telegram", subject="late arrival")
        audit.record(s, "conversation.assigned", conversation_id=late.id,
                     customer_id=late.customer_id, to_person=None, to_team=None)
        late_id = late.id
    page.wait_for_timeout(7_000)  # the server finds it within KARTABL_LIVE_POLL_S (5 s)
    # Then her selection is still there: the rows waited
    expect(page.locator(".bulk-pick:checked")).to_have_count(20)
    expect(page.locator(f"#row-{late_id}")).to_have_count(0)
    # and once nothing is selected, the refresh it skipped runs
    page.locator("#bulk-pick-all").uncheck()
    expect(page.locator(f"#row-{late_id}")).to_have_count(1, timeout=T)
    page.locator("#bulk-pick-all").check()
    page.locator(f'.bulk-pick[value="{late_id}"]').uncheck()
    # and assigns them to ali
    page.locator("#bulk-action").select_option("assign")
    page.locator("#bulk-person").select_option(str(ali_id))
    page.locator("#bulk-apply").click()
    # Then the result page lists the 20 as done, in her language
    page.wait_for_url(re.compile(r".*/queues/bulk/\d+$"))
    expect(page.locator("html")).to_have_attribute("lang", locale)
    expect(page.locator("#bulk-done-title")).to_have_text(gettext(locale, "bulk.done", n=20))
    expect(page.locator("#bulk-done li")).to_have_count(20)
    expect(page.locator("#bulk-refused")).to_have_count(0)
    with live_server.session() as s:
        rows = s.execute(select(Conversation.assignee_id, Conversation.team_id)
                         .where(Conversation.id.in_(ids))).all()
    assert {tuple(r) for r in rows} == {(ali_id, support_id)}
    # and only the late arrival, not selected, is left in triage when she goes back
    page.locator("#bulk-back").click()
    expect(page.locator("#queue-rows tbody tr")).to_have_count(1, timeout=T)
    expect(page.locator(f"#row-{late_id}")).to_have_count(1)


def test_an_agents_bulk_close_refuses_what_left_their_scope(live_server: LiveServer,
                                                           page: Page) -> None:
    # Given three conversations of ali's in his queue
    with live_server.session() as s:
        support, sales = f.team(s, "support"), f.team(s, "sales")
        ali = f.person(s, "ali", teams=[support])
        ali.password_hash, ali.locale = f.quick_hash(PASSWORD), "fa"
        bob = f.person(s, "bob", teams=[sales])
        ids = [f.conversation(s, team=support, assignee=ali, subject=f"mine {i}").id
               for i in range(3)]
        sales_id, bob_id = sales.id, bob.id
    _sign_in(page, live_server.url, "ali")
    page.goto(live_server.url + "/queues?queue=mine")
    expect(page.locator("#queue-rows tbody tr")).to_have_count(3)
    page.locator("#bulk-pick-all").check()
    # While he chooses, a coordinator hands one of them to sales
    with live_server.session() as s:
        moved = s.get(Conversation, ids[1])
        assert moved is not None
        moved.team_id, moved.assignee_id = sales_id, bob_id
    # When he closes the selection
    page.locator("#bulk-action").select_option("close")
    page.locator("#bulk-apply").click()
    # Then the two still his are closed, and the moved one is refused, with the reason
    page.wait_for_url(re.compile(r".*/queues/bulk/\d+$"))
    expect(page.locator("#bulk-done li")).to_have_count(2)
    refused = page.locator(f'#bulk-refused tr[data-conversation-id="{ids[1]}"]')
    expect(refused).to_have_count(1)
    expect(page.locator("#bulk-refused-title")).to_have_text(gettext("fa", "bulk.refused", n=1))
    with live_server.session() as s:
        status = dict(s.execute(select(Conversation.id, Conversation.status)
                                .where(Conversation.id.in_(ids))).all())
    assert [ConversationStatus(status[i]) for i in ids] == [
        ConversationStatus.CLOSED, ConversationStatus.OPEN, ConversationStatus.CLOSED]

"""Pages update in place from the live stream, in Persian and in English: no reload, no
polling (a reload would lose the marker each test leaves on the page's window).

- The agent has their queue open; a coordinator, in a browser of their own, refers a
  conversation to them: the row appears in "mine".
- The agent has their conversation open with a reply awaiting approval; the coordinator
  rejects it with a comment: the agent's page shows the edit form with the comment at once,
  the approval panel goes, and the timeline's state reads "rejected" (issue 14: it used to
  say "rejected" while the panel still said "awaiting approval").
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from console.i18n import gettext
from kartabl import workflow
from kartabl.models import Person, Reply, ReplyState, Role
from responders.preview import REPLY_CHECK
from tests import factories as f
from tests.browser.conftest import LiveServer

PASSWORD = "a long browser-test password"
T = 5_000  # ms: the live stream brings a change well within this (the polls took 5 s)
COMMENT = {"fa": "لطفاً شماره سفارش را هم بنویسید.", "en": "Please add the order number."}


def seed(server: LiveServer, locale: str) -> dict[str, int]:
    with server.session() as s:
        team = f.team(s, "frontdesk")
        other = f.team(s, "billing")
        coord = f.person(s, "maryam", Role.COORDINATOR)
        agent = f.person(s, "ali", Role.AGENT, teams=[team])
        for p in (coord, agent):
            p.password_hash = f.quick_hash(PASSWORD)
            p.locale = locale
        referred = f.conversation(s, team=other, subject="referred")
        mine = f.conversation(s, team=team, assignee=agent, subject="mine")
        s.flush()
        reply = workflow.draft(s, agent, mine.id, "Hello", check=REPLY_CHECK)
        workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
        return {"agent": agent.id, "referred": referred.id, "mine": mine.id,
                "reply": reply.id}


def sign_in(p: Page, server: LiveServer, username: str) -> None:
    p.goto(server.url + "/login")
    p.locator('input[name="username"]').fill(username)
    p.locator('input[name="password"]').fill(PASSWORD)
    p.locator("form button[type=submit]").click()
    p.wait_for_url(re.compile(r"/queues"))


def mark(p: Page) -> None:
    """Left on the window: gone if the page reloads."""
    p.evaluate("window.__notReloaded = true")
    expect(p.locator("body")).to_have_attribute("data-live-open", "1")  # the stream is up


def not_reloaded(p: Page) -> bool:
    return bool(p.evaluate("window.__notReloaded === true"))


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_a_referral_reaches_the_agents_queue_without_a_reload(
    locale: str, live_server: LiveServer, new_page: Callable[[str], Page],
) -> None:
    ids = seed(live_server, locale)
    agent = new_page(locale)
    sign_in(agent, live_server, "ali")
    expect(agent.locator("#tab-mine")).to_have_attribute("aria-current", "page")
    expect(agent.locator(f"#row-{ids['mine']}")).to_be_visible()
    expect(agent.locator(f"#row-{ids['referred']}")).to_have_count(0)
    mark(agent)

    coord = new_page(locale)
    sign_in(coord, live_server, "maryam")
    coord.goto(f"{live_server.url}/conversations/{ids['referred']}")
    coord.locator("#handover-person").select_option(str(ids["agent"]))
    coord.locator("#handover-note").fill("برای شما" if locale == "fa" else "For you")
    coord.locator("#handover-button").click()
    expect(coord.locator("#flash")).to_have_attribute("data-done", "referred")

    expect(agent.locator(f"#row-{ids['referred']}")).to_be_visible(timeout=T)
    assert not_reloaded(agent)


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_a_rejection_shows_the_edit_form_at_once(
    locale: str, live_server: LiveServer, new_page: Callable[[str], Page],
) -> None:
    ids = seed(live_server, locale)
    rid = ids["reply"]
    agent = new_page(locale)
    sign_in(agent, live_server, "ali")
    agent.goto(f"{live_server.url}/conversations/{ids['mine']}")
    expect(agent.locator(f"#pending-{rid}")).to_contain_text(gettext(locale, "approval.own"))
    expect(agent.locator(f"#edit-form-{rid}")).to_have_count(0)
    agent.locator("#note-text").fill("typed, not sent")  # kept: its panel does not change
    mark(agent)

    coord = new_page(locale)
    sign_in(coord, live_server, "maryam")
    coord.goto(f"{live_server.url}/conversations/{ids['mine']}")
    coord.locator(f"#reject-comment-{rid}").fill(COMMENT[locale])
    coord.locator(f"#reject-button-{rid}").click()
    expect(coord.locator("#flash")).to_have_attribute("data-done", "rejected")

    form = agent.locator(f"#edit-form-{rid}")
    expect(form).to_be_visible(timeout=T)
    expect(form).to_have_attribute("data-reply-state", "rejected")
    expect(form).to_contain_text(gettext(locale, "drafts.rejected"))
    expect(form).to_contain_text(COMMENT[locale])
    expect(agent.locator("#approval")).to_have_count(0)
    expect(agent.locator(f"#reply-state-{rid}")).to_have_attribute("data-reply-state", "rejected")
    expect(agent.locator(f"#reply-state-{rid}")).to_have_text(
        gettext(locale, "reply_state.rejected"))
    expect(agent.locator("#note-text")).to_have_value("typed, not sent")
    assert not_reloaded(agent)
    # The swapped-in form works: the agent edits and resubmits from it.
    agent.locator(f"#edit-body-{rid}").fill("Hello, order 12")
    agent.locator(f"#submit-button-{rid}").click()
    expect(agent.locator("#flash")).to_have_attribute("data-done", "submitted")
    with live_server.session() as s:
        reply = s.get(Reply, rid)
        assert reply is not None
        assert (reply.state, reply.body) == (ReplyState.PENDING_APPROVAL, "Hello, order 12")


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_a_new_reply_for_approval_keeps_the_edit_of_another(
    locale: str, live_server: LiveServer, new_page: Callable[[str], Page],
) -> None:
    ids = seed(live_server, locale)
    first = ids["reply"]
    coord = new_page(locale)
    sign_in(coord, live_server, "maryam")
    coord.goto(f"{live_server.url}/conversations/{ids['mine']}")
    coord.locator(f"#approve-body-{first}").fill("Hello, edited by the coordinator")
    mark(coord)
    # The agent submits a second reply (committed by this test's process: the server finds
    # it by its own look, every 5 s)
    with live_server.session() as s:
        agent = s.get(Person, ids["agent"])
        second = workflow.draft(s, agent, ids["mine"], "Second", check=REPLY_CHECK)
        workflow.submit(s, agent, second.id, check=REPLY_CHECK)
        s.flush()
        second_id = second.id
    expect(coord.locator(f"#pending-{second_id}")).to_be_visible(timeout=10_000)
    expect(coord.locator(f"#approve-body-{second_id}")).to_have_value("Second")
    expect(coord.locator(f"#approve-body-{first}")).to_have_value(
        "Hello, edited by the coordinator")
    assert not_reloaded(coord)

"""Notifications reach their person live, in Persian and in English (issue 14's "done when"):

- a coordinator, in a browser of their own, refers a conversation to the agent: the agent's
  open queue page shows the unread count in the header and in the title at once, with no
  reload; the agent had opted in to desktop notifications (asked only when they ticked the
  box), and one is shown with the sentence in their language;
- a coordinator rejects the agent's reply: the count rises on the agent's page, the feed
  shows the rejection with its comment and a link to the conversation, and marking it read
  clears the count and the title.

The browser's Notification API is replaced by a recorder before any page script runs
(headless Chromium shows no desktop notifications): what is checked is what the page asks of
it, and that it asks for permission only after the click.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from console.i18n import digits, gettext
from kartabl import workflow
from kartabl.models import Role
from responders.preview import REPLY_CHECK
from tests import factories as f
from tests.browser.conftest import LiveServer

PASSWORD = "a long browser-test password"
T = 5_000  # ms: the live stream brings a change well within this
COMMENT = {"fa": "لطفاً شماره سفارش را هم بنویسید.", "en": "Please add the order number."}
# Before any page script: a Notification API that records instead of showing, whose
# permission is "default" until requestPermission is called (as a fresh profile's is), then
# "granted" on every page of the origin.
RECORDER = """
window.__shown = []; window.__asked = 0;
(function () {
  // kept per origin across pages, as the browser keeps a granted permission
  var permission = window.localStorage.getItem("test.permission") || "default";
  function Recorder(title, options) {
    window.__shown.push({ title: title, body: (options && options.body) || "" });
  }
  Object.defineProperty(Recorder, "permission", { get: function () { return permission; } });
  Recorder.requestPermission = function () {
    window.__asked += 1; permission = "granted";
    window.localStorage.setItem("test.permission", permission);
    return Promise.resolve("granted");
  };
  window.Notification = Recorder;
}());
"""


@pytest.fixture
def page_init_scripts() -> list[str]:
    return [RECORDER]  # for new_page (tests/browser/conftest.py)


def seed(server: LiveServer, locale: str) -> dict[str, int]:
    with server.session() as s:
        team, other = f.team(s, "frontdesk"), f.team(s, "billing")
        coord = f.person(s, "maryam", Role.COORDINATOR)
        agent = f.person(s, "ali", Role.AGENT, teams=[team])
        coord.display_name = "Maryam" if locale == "en" else "مریم"
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


def shown_on(p: Page) -> list[dict[str, str]]:
    """The desktop notifications the page has shown, once there is one (wait_for_function
    evaluates a string, which the console's CSP refuses)."""
    deadline = time.monotonic() + T / 1000
    while True:
        shown: list[dict[str, str]] = p.evaluate("window.__shown")
        if shown or time.monotonic() > deadline:
            return shown
        p.wait_for_timeout(100)


def count_of(locale: str, n: int) -> str:
    return digits(n, locale)


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_a_referral_notifies_the_agent_live_with_the_count_in_the_title(
    locale: str, live_server: LiveServer, new_page: Callable[[str], Page],
    screenshot: Callable[..., Path],
) -> None:
    ids = seed(live_server, locale)
    agent = new_page(locale)
    sign_in(agent, live_server, "ali")
    # opting in: nothing is asked of the browser before the click
    agent.goto(live_server.url + "/account")
    desktop = agent.locator("#notify-desktop")
    expect(desktop).to_be_visible()
    expect(desktop).not_to_be_checked()
    assert agent.evaluate("window.__asked") == 0
    desktop.check()
    expect(desktop).to_be_checked()
    assert agent.evaluate("window.__asked") == 1
    agent.goto(live_server.url + "/queues")
    badge = agent.locator("#notify-count")
    expect(badge).to_be_hidden()
    assert not agent.title().startswith("(")
    mark(agent)

    coord = new_page(locale)
    sign_in(coord, live_server, "maryam")
    coord.goto(f"{live_server.url}/conversations/{ids['referred']}")
    coord.locator("#handover-person").select_option(str(ids["agent"]))
    coord.locator("#handover-note").fill("برای شما" if locale == "fa" else "For you")
    coord.locator("#handover-button").click()
    expect(coord.locator("#flash")).to_have_attribute("data-done", "referred")

    one = count_of(locale, 1)
    expect(badge).to_be_visible(timeout=T)
    expect(badge).to_have_text(one)
    expect(agent).to_have_title(re.compile(r"^\(" + one + r"\) "))
    assert not_reloaded(agent)
    shown = shown_on(agent)
    sentence = gettext(locale, "notify.kind_referred", actor="\u2068" + (
        "Maryam" if locale == "en" else "مریم") + "\u2069")
    assert [n["title"] for n in shown] == [sentence]
    assert "referred" in shown[0]["body"]  # the conversation's subject
    # the referred conversation is in the agent's queue, marked new to them
    row = agent.locator(f"#row-{ids['referred']}")
    expect(row).to_have_class(re.compile(r"\bunread\b"), timeout=T)
    expect(row.locator(".new-mark")).to_have_text(gettext(locale, "notify.new"))
    screenshot("queue", of=agent)
    # the coordinator, who acted, is told nothing
    expect(coord.locator("#notify-count")).to_be_hidden()
    assert not coord.title().startswith("(")


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_a_rejection_reaches_the_author_with_its_comment(
    locale: str, live_server: LiveServer, new_page: Callable[[str], Page],
    screenshot: Callable[..., Path],
) -> None:
    ids = seed(live_server, locale)
    rid = ids["reply"]
    agent = new_page(locale)
    sign_in(agent, live_server, "ali")
    badge = agent.locator("#notify-count")
    expect(badge).to_be_hidden()
    mark(agent)

    coord = new_page(locale)
    sign_in(coord, live_server, "maryam")
    coord.goto(f"{live_server.url}/conversations/{ids['mine']}")
    coord.locator(f"#reject-comment-{rid}").fill(COMMENT[locale])
    coord.locator(f"#reject-button-{rid}").click()
    expect(coord.locator("#flash")).to_have_attribute("data-done", "rejected")

    one = count_of(locale, 1)
    expect(badge).to_have_text(one, timeout=T)
    expect(agent).to_have_title(re.compile(r"^\(" + one + r"\) "))
    assert not_reloaded(agent)
    assert agent.evaluate("window.__shown") == []  # desktop notifications were not chosen

    agent.locator("#nav-notifications").click()
    notice = agent.locator("#notify-feed li.notice").first
    expect(notice).to_have_attribute("data-kind", "rejected")
    expect(notice).to_contain_text(gettext(locale, "notify.kind_rejected",
                                           actor="Maryam" if locale == "en" else "مریم"))
    expect(notice.locator(".notice-comment")).to_have_text(COMMENT[locale])
    expect(notice.locator("a.notice-link")).to_have_attribute(
        "href", f"/conversations/{ids['mine']}")
    screenshot("feed", of=agent)
    notice.locator("button.mark-read").click()
    expect(agent.locator("#flash")).to_have_attribute("data-done", "notify_read")
    expect(agent.locator("#notify-count")).to_be_hidden()
    assert not agent.title().startswith("(")
    # the link leads to the conversation, where the edit form shows the comment
    agent.locator("#notify-feed a.notice-link").first.click()
    expect(agent.locator(f"#edit-form-{rid}")).to_contain_text(COMMENT[locale])

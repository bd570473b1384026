"""The whole workflow in a real Chromium, once in Persian and once in English.

A customer's SMS is stored and routed for real by ``kartabl run --no-demo`` (its in-process
worker and sweep): no member of the routed team is available, so it waits in triage. Then,
each in a browser of their own: the coordinator assigns it to an agent; the agent drafts a
reply, watching the live SMS part count, and submits it; the coordinator approves it with an
edit; the worker dispatches it through the sandbox sender and the sweep polls its delivery;
the open conversation page shows "delivered" through its htmx status poll, without a reload.

Every page is checked for its language and direction (``lang="fa" dir="rtl"`` in Persian,
``lang="en" dir="ltr"`` in English) and for the catalog's texts in that language; any
uncaught JavaScript error or console error (htmx logs its own errors there) fails the test.
The database is checked at the end: the reply delivered, approved by the coordinator with
the edit kept, and the audit trail complete. Screenshots: ``test_workflow_<locale>--*.png``
(see conftest.py for where).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect
from sqlalchemy import select

from console.i18n import DIRECTION, digits, gettext
from kartabl import ingest
from kartabl.messages import InboundMessage
from kartabl.models import (
    Channel,
    Conversation,
    Direction,
    Event,
    Message,
    Person,
    Reply,
    ReplyState,
    Role,
    Team,
    TeamMember,
)
from tests.browser.conftest import LiveServer
from tests.factories import quick_hash

T = 15_000  # ms: what any one step may take (auto-waiting; the live polls run every 5 s)
ROUTE_TIMEOUT_S = 15.0
PASSWORD = "a long browser-test password"
BROWSER_LOCALE = {"fa": "fa-IR", "en": "en-US"}  # Accept-Language: the sign-in page's language
PERSIAN = re.compile(r"[\u0600-\u06FF]")


@dataclass(frozen=True)
class Script:
    """What the customer writes and what the agent and the coordinator answer."""

    customer: str
    customer_name: str
    coordinator: str  # display names
    agent: str
    team: str
    long_draft: str  # two SMS parts: the count must follow the typing
    draft: str
    edited: str


SCRIPTS = {
    "fa": Script(
        customer="سلام، سفارش ۱۲ من کی می‌رسد؟",
        customer_name="سارا احمدی",
        coordinator="مریم",
        agent="علی",
        team="پذیرش",
        long_draft="س" * 71,  # UCS-2: 70 characters fit one SMS
        draft="سلام، سفارش شما امروز ارسال می‌شود.",
        edited="سلام، سفارش شما امروز ارسال می‌شود. با سپاس، پشتیبانی کارتابل",
    ),
    "en": Script(
        customer="Hello, when will my order 12 arrive?",
        customer_name="Sara Ahmadi",
        coordinator="Maryam",
        agent="Ali",
        team="Front desk",
        long_draft="x" * 161,  # GSM 7-bit: 160 characters fit one SMS
        draft="Hello, your order ships today.",
        edited="Hello, your order ships today. Thank you, Kartabl support",
    ),
}


@pytest.fixture
def kartabl_command() -> list[str]:
    # The worker routes the customer's message and dispatches the approved reply in-process;
    # the scheduler's sweep picks up the message stored by the test and polls delivery.
    return ["run", "--no-demo"]


@pytest.fixture
def kartabl_env() -> dict[str, str]:
    # The message is stored by this process, whose queue goes nowhere: the sweep routes it.
    # A quick sweep keeps that (and the sandbox's "delivered") within a second.
    return {"KARTABL_SWEEP_INTERVAL_S": "0.25", "KARTABL_SWEEP_GRACE_S": "0.5"}


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[[str], Page]]:
    """``new_page(locale)``: a page in a browser context of its own (its own cookies: one
    person each). Uncaught JavaScript errors and console errors fail the test."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def make(locale: str) -> Page:
        context = browser.new_context(
            locale=BROWSER_LOCALE[locale], viewport={"width": 1280, "height": 900})
        context.set_default_timeout(T)
        contexts.append(context)
        p = context.new_page()
        p.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        p.on("console", on_console)
        return p

    def on_console(msg: ConsoleMessage) -> None:
        # Chromium asks every site for /favicon.ico; the console has none (a 404 logged).
        if msg.type == "error" and not msg.location["url"].endswith("/favicon.ico"):
            errors.append(f"console: {msg.text} at {msg.location['url']}")

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the pages: {errors}"


@cache
def password_hash() -> str:
    return quick_hash(PASSWORD)  # cheap to verify at each sign-in (tests/factories.py)


def t(locale: str, key: str, **values: object) -> str:
    """The catalog's text, as the console shows it."""
    return gettext(locale, key, **values)


def check_language(p: Page, locale: str, *labelled: tuple[str, str]) -> None:
    """The page is in ``locale``'s language and direction, and each (selector, catalog key)
    shows that language's text (in Persian: Persian letters, not the English fallback). A
    selector starting with ``~`` need only contain the text (a tab has its count too)."""
    html = p.locator("html")
    expect(html).to_have_attribute("lang", locale, timeout=T)
    expect(html).to_have_attribute("dir", DIRECTION[locale], timeout=T)
    assert p.evaluate("getComputedStyle(document.body).direction") == DIRECTION[locale]
    for selector, key in labelled:
        text = t(locale, key)
        if locale == "fa":
            assert PERSIAN.search(text) and text != t("en", key), (key, text)
        if selector.startswith("~"):
            expect(p.locator(selector[1:])).to_contain_text(text, timeout=T)
        else:
            expect(p.locator(selector)).to_have_text(text, timeout=T)


def sign_in(p: Page, server: LiveServer, locale: str, username: str) -> None:
    p.goto(server.url + "/login")
    check_language(p, locale)
    form = p.locator('form[action="/login"]')
    expect(form.locator("button[type=submit]")).to_have_text(t(locale, "app.sign_in"))
    form.locator('input[name="username"]').fill(username)
    form.locator('input[name="password"]').fill(PASSWORD)
    form.locator("button[type=submit]").click()
    p.wait_for_url("**/queues")
    check_language(p, locale, ("#nav-queues", "nav.queues"), ("h1", "queues.title"))


def check_parallel_requests(p: Page, n: int = 8) -> None:
    """``n`` signed-in requests at once (what several pages' htmx polls make) all answer
    promptly: a regression check for a server that stalled every request for the SQLite
    busy timeout (30 s) when two of them overlapped."""
    statuses, ms = p.evaluate("""async (n) => {
        const t0 = performance.now();
        // Distinct URLs, no cache: Chromium would queue identical GETs behind the first.
        const get = (_, i) => fetch(`/queues/live?queue=triage&n=${i}`, {
            cache: "no-store", signal: AbortSignal.timeout(10000),
        }).then(r => r.status, e => String(e));
        const statuses = await Promise.all(Array.from({length: n}, get));
        return [statuses, performance.now() - t0];
    }""", n)
    assert statuses == [200] * n and ms < 10_000, (statuses, ms)


def preview_text(locale: str, text: str, parts: int) -> str:
    """The draft preview's count line for an SMS ``text`` (the default template: the text
    alone), as :file:`_preview.html` words it."""
    encoding = "ucs2" if PERSIAN.search(text) else "gsm7"
    return t(locale, "preview.sms", parts=parts, encoding=t(locale, f"preview.enc_{encoding}"),
             units=len(text))


def type_and_check_preview(p: Page, field: str, preview: str, locale: str, text: str,
                           parts: int) -> None:
    p.locator(field).fill(text)
    box = p.locator(f"{preview} .preview-box")
    expect(box).to_have_attribute("data-parts", str(parts), timeout=T)
    expect(box).to_have_attribute("data-channel", "sms")
    expect(box.locator(".preview-count")).to_have_text(preview_text(locale, text, parts))


def wait_routed(server: LiveServer, external_id: str) -> int:
    """The conversation the server's worker routed the message into (polls the database)."""
    deadline = time.monotonic() + ROUTE_TIMEOUT_S
    while True:
        with server.session() as s:
            msg = s.scalar(select(Message).where(Message.external_id == external_id))
            if msg is not None and msg.routed_at is not None and msg.conversation_id:
                return msg.conversation_id
        if time.monotonic() > deadline:
            tail = server.log.read_text(errors="replace")[-3000:]
            pytest.fail(f"message {external_id} not routed in {ROUTE_TIMEOUT_S} s:\n{tail}")
        time.sleep(0.1)


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_workflow(
    locale: str, live_server: LiveServer, new_page: Callable[[str], Page],
    screenshot: Callable[..., Path],
) -> None:
    script = SCRIPTS[locale]
    # Given a coordinator, and an agent of a team no routing rule names
    with live_server.session() as s:
        team = Team(name="frontdesk", title=script.team)
        coordinator = Person(username="maryam", display_name=script.coordinator,
                             role=Role.COORDINATOR, password_hash=password_hash(), locale=locale)
        agent = Person(username="ali", display_name=script.agent, role=Role.AGENT,
                       password_hash=password_hash(), locale=locale)
        s.add_all([team, coordinator, agent])
        s.flush()
        s.add(TeamMember(team_id=team.id, person_id=agent.id))
        team_id, coordinator_id, agent_id = team.id, coordinator.id, agent.id
    # and a customer's SMS, which the default rules give to "support", a team with nobody
    # available: routed for real by the server's worker, it waits in triage
    with live_server.session() as s:
        ingest.store(s, InboundMessage(
            channel=Channel.SMS, external_id=f"browser-{locale}", sender="+989121234567",
            sender_name=script.customer_name, recipient="+9810004000", text=script.customer))

    # 1. The coordinator signs in (meanwhile the message is routed), opens the triage queue,
    #    finds the conversation there and assigns it to the agent and her team
    coord = new_page(locale)
    sign_in(coord, live_server, locale, "maryam")
    cid = wait_routed(live_server, f"browser-{locale}")
    with live_server.session() as s:
        conv = s.get(Conversation, cid)
        assert conv is not None and conv.assignee_id is None
    check_parallel_requests(coord)
    coord.locator("#tab-triage").click()
    coord.wait_for_url(re.compile(r"/queues\?queue=triage"))
    expect(coord.locator("#tab-triage")).to_have_attribute("aria-current", "page")
    check_language(coord, locale, ("~#tab-triage", "queue.triage"))
    expect(coord.locator("#tab-triage .count")).to_have_text(digits(1, locale))  # "۱" in fa
    row = coord.locator(f"#row-{cid}")
    expect(row).to_be_visible(timeout=T)
    expect(row.locator("a.row-link")).to_have_text(script.customer_name)
    expect(row).to_contain_text(t(locale, "channel.sms"))
    expect(row).to_contain_text(t(locale, "queues.nobody"))
    row.locator("a.row-link").click()  # opens in the inbox's pane, beside the list
    coord.wait_for_url(re.compile(rf"/queues\?queue=triage&open={cid}$"))
    expect(coord.locator(f"#inbox-pane #conversation[data-conversation-id='{cid}']")) \
        .to_be_visible()
    check_language(coord, locale, ("#handover-button", "handover.submit"),
                   ("#draft-submit-button", "draft.save_submit"))
    expect(coord.locator("#timeline .item.message.in .text")).to_have_text(script.customer)
    expect(coord.locator("#conv-assignee")).to_have_attribute("data-assignee-id", "")
    coord.locator("#handover-person").select_option(str(agent_id))  # no note: an assignment
    coord.locator("#handover-team").select_option(str(team_id))
    coord.locator("#handover-button").click()
    expect(coord.locator("#flash")).to_have_attribute("data-done", "assigned", timeout=T)
    check_language(coord, locale, ("#flash", "flash.assigned"))
    expect(coord.locator("#conv-assignee")).to_have_attribute("data-assignee-id", str(agent_id))
    expect(coord.locator("#conv-assignee")).to_contain_text(script.agent)
    screenshot("1-coordinator-assigned", of=coord)

    # 2. The agent finds it in "mine", drafts a reply (the SMS count follows the typing) and
    #    submits it for approval
    agent_page = new_page(locale)
    sign_in(agent_page, live_server, locale, "ali")
    expect(agent_page.locator("#tab-mine")).to_have_attribute("aria-current", "page")
    check_language(agent_page, locale, ("~#tab-mine", "queue.mine"))
    agent_row = agent_page.locator(f"#row-{cid}")
    expect(agent_row).to_be_visible(timeout=T)
    agent_row.locator("a.row-link").click()
    agent_page.wait_for_url(re.compile(rf"/queues\?queue=mine&open={cid}$"))
    check_language(agent_page, locale, ("#draft-submit-button", "draft.save_submit"),
                   ("#draft-save-button", "draft.save"))
    expect(agent_page.locator("#assign-me-form")).to_have_count(0)  # an agent does not assign
    expect(agent_page.locator("#draft-preview .preview-box")).to_have_text(
        t(locale, "preview.empty"))
    type_and_check_preview(agent_page, "#draft-body", "#draft-preview", locale,
                           script.long_draft, 2)
    type_and_check_preview(agent_page, "#draft-body", "#draft-preview", locale, script.draft, 1)
    agent_page.locator("#draft-submit-button").click()
    expect(agent_page.locator("#flash")).to_have_attribute("data-done", "submitted", timeout=T)
    check_language(agent_page, locale, ("#flash", "flash.submitted"),
                   ("#approval h2", "approval.title"))
    pending = agent_page.locator("#approval .pending-reply")
    expect(pending).to_have_count(1)
    rid = int(pending.get_attribute("data-reply-id") or "0")
    assert rid > 0
    state = agent_page.locator(f"#reply-state-{rid}")
    expect(state).to_have_attribute("data-reply-state", "pending_approval")
    expect(state).to_have_text(t(locale, "reply_state.pending_approval"))
    expect(agent_page.locator(f"#approve-button-{rid}")).to_have_count(0)  # not her own
    screenshot("2-agent-submitted", of=agent_page)
    agent_page.evaluate("window.kartablNoReload = true")  # her page stays open, unreloaded

    # 3. The coordinator finds it awaiting approval, edits it and approves it
    coord.locator("#nav-queues").click()
    coord.wait_for_url("**/queues")
    coord.locator("#tab-approval").click()
    coord.wait_for_url(re.compile(r"/queues\?queue=approval"))
    check_language(coord, locale, ("~#tab-approval", "queue.approval"))
    approval_row = coord.locator(f"#row-{cid}-{rid}")
    expect(approval_row).to_be_visible(timeout=T)
    expect(approval_row).to_contain_text(t(locale, "queues.pending_by", name=script.agent))
    approval_row.locator("a.row-link").click()
    coord.wait_for_url(re.compile(rf"/queues\?queue=approval&open={cid}$"))
    check_language(coord, locale, (f"#approve-button-{rid}", "approval.approve"),
                   (f"#reject-button-{rid}", "approval.reject"))
    expect(coord.locator(f"#approve-body-{rid}")).to_have_value(script.draft)
    type_and_check_preview(coord, f"#approve-body-{rid}", f"#approve-preview-{rid}", locale,
                           script.edited, 1)
    coord.locator(f"#approve-button-{rid}").click()
    expect(coord.locator("#flash")).to_have_attribute("data-done", "approved", timeout=T)
    check_language(coord, locale, ("#flash", "flash.approved"))
    edit = coord.locator(f"#reply-edit-{rid}")  # the edit shown as before / after
    expect(edit.locator(".before .text")).to_have_text(script.draft)
    expect(edit.locator(".after .text")).to_have_text(script.edited)
    screenshot("3-coordinator-approved", of=coord)

    # 4. The reply is dispatched (sandbox sender) and delivered; the open pages show it
    #    through their htmx status poll, not a reload (the coordinator's page may have been
    #    rendered after the delivery already; the agent's was rendered before the approval)
    coord.evaluate("window.kartablNoReload = true")
    state = coord.locator(f"#reply-state-{rid}")
    expect(state).to_have_attribute("data-reply-state", "delivered", timeout=T)
    expect(state).to_have_text(t(locale, "reply_state.delivered"))
    check_language(coord, locale, (f"#reply-state-{rid}", "reply_state.delivered"))
    status = coord.locator(f"#reply-status-{rid}")
    expect(status).to_have_attribute("data-reply-state", "delivered")
    expect(status).to_contain_text(t(locale, "reply.approved_by", name=script.coordinator))
    expect(status.locator(".ok")).to_contain_text(t(locale, "reply.delivered_at", at="").strip())
    assert coord.evaluate("window.kartablNoReload") is True
    screenshot("4-coordinator-delivered", of=coord)
    # and the agent's page, open since she submitted, follows without a reload
    agent_state = agent_page.locator(f"#reply-state-{rid}")
    expect(agent_state).to_have_attribute("data-reply-state", "delivered", timeout=T)
    expect(agent_state).to_have_text(t(locale, "reply_state.delivered"))
    check_language(agent_page, locale, (f"#reply-state-{rid}", "reply_state.delivered"))
    assert agent_page.evaluate("window.kartablNoReload") is True
    screenshot("5-agent-delivered", of=agent_page)

    # Then the database agrees: delivered, approved by the coordinator with her edit kept,
    # and every step is in the audit trail
    with live_server.session() as s:
        reply = s.get(Reply, rid)
        assert reply is not None and reply.conversation_id == cid
        assert reply.state == ReplyState.DELIVERED
        assert reply.author_id == agent_id and reply.approved_by_id == coordinator_id
        assert (reply.original_body, reply.body) == (script.draft, script.edited)
        assert reply.sent_at is not None and reply.delivered_at is not None
        conv = s.get(Conversation, cid)
        assert conv is not None
        assert (conv.assignee_id, conv.team_id) == (agent_id, team_id)
        assert conv.first_response_at is not None
        events = [(e.kind, e.actor_id) for e in s.scalars(
            select(Event).where(Event.conversation_id == cid).order_by(Event.id))]
        sent = s.scalars(select(Message.text).where(
            Message.conversation_id == cid, Message.direction == Direction.OUT)).all()
    assert [k for k in ("conversation.triaged", "conversation.assigned", "reply.drafted",
                        "reply.submitted", "reply.approved", "reply.sent", "reply.delivered")
            if k not in dict(events)] == [], events
    kinds = [k for k, _ in events]
    assert kinds.index("conversation.triaged") < kinds.index("conversation.assigned") < \
        kinds.index("reply.drafted") < kinds.index("reply.submitted") < \
        kinds.index("reply.approved") < kinds.index("reply.sent") < kinds.index("reply.delivered")
    actors = dict(events)
    assert actors["conversation.triaged"] is None  # the router
    assert actors["conversation.assigned"] == coordinator_id
    assert actors["reply.drafted"] == agent_id and actors["reply.submitted"] == agent_id
    assert actors["reply.approved"] == coordinator_id
    assert sent == [script.edited], "the SMS as sent is in the conversation"

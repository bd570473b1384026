"""Collision and news in an open conversation, in Persian and in English, against the
embedded mode (``kartabl run --no-demo``: one process, stub broker, SQLite):

- A coordinator and an agent, each in a browser of their own, open the same conversation:
  each sees the other's notice appear live; when the agent types in the composer the
  coordinator sees "drafting"; when the coordinator saves a reply meanwhile, the agent is
  told; when the agent leaves, the notice goes at once (the leave beacon; the expiry is
  set far longer, so nothing else could explain it).
- A customer's message, ingested and routed for real, appears in the open conversation's
  timeline without a reload, and the text in the composer stays.
- The same in the inbox's pane (/queues, a row clicked): the pane's conversation beats and
  hears pushes like its page; when the pane switches to another conversation, the previous
  one is left at once (the others' notice goes) and the live stream follows the new one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from console.i18n import gettext
from kartabl import ingest, workflow
from kartabl.messages import InboundMessage
from kartabl.models import Channel, Message, Person, Role, Team, TeamMember
from tests.browser.conftest import LiveServer
from tests.factories import quick_hash

PASSWORD = "a long browser-test password"
T = 5_000  # ms: a push brings a change well within this
NAMES = {"fa": ("مریم", "علی"), "en": ("Maryam", "Ali")}  # coordinator, agent
TYPED = {"fa": "سلام، در حال بررسی هستیم", "en": "Hello, we are looking into it"}
CUSTOMER = {"fa": ("سفارشم نرسیده است.", "هنوز منتظرم، لطفاً خبر بدهید."),
            "en": ("My order has not arrived.", "Still waiting, please let me know.")}


@pytest.fixture
def kartabl_command() -> list[str]:
    return ["run", "--no-demo"]  # the worker routes the customer's messages in-process


@pytest.fixture
def kartabl_env() -> dict[str, str]:
    # The messages are stored by this test process: the server's quick sweep routes them.
    # An expiry far above the test's waits: a notice that goes went by the leave beacon.
    return {"KARTABL_SWEEP_INTERVAL_S": "0.25", "KARTABL_SWEEP_GRACE_S": "0.5",
            "KARTABL_PRESENCE_EXPIRY_S": "120"}


def seed(server: LiveServer, locale: str) -> tuple[int, int]:
    """A coordinator and an agent of a team no routing rule names; a customer's SMS routed
    for real, then assigned to the agent. (conversation id, agent id)."""
    coord_name, agent_name = NAMES[locale]
    with server.session() as s:
        team = Team(name="frontdesk")
        coord = Person(username="maryam", display_name=coord_name, role=Role.COORDINATOR,
                       password_hash=quick_hash(PASSWORD), locale=locale)
        agent = Person(username="ali", display_name=agent_name, role=Role.AGENT,
                       password_hash=quick_hash(PASSWORD), locale=locale)
        s.add_all([team, coord, agent])
        s.flush()
        s.add(TeamMember(team_id=team.id, person_id=agent.id))
        agent_id, team_id = agent.id, team.id
    customer_says(server, f"first-{locale}", CUSTOMER[locale][0])
    cid = wait_routed(server, f"first-{locale}")
    with server.session() as s:
        workflow.assign(s, s.scalar(select(Person).where(Person.username == "maryam")), cid,
                        person_id=agent_id, team_id=team_id)
    return cid, agent_id


def customer_says(server: LiveServer, external_id: str, text: str,
                  sender: str = "+989121234567") -> None:
    with server.session() as s:
        ingest.store(s, InboundMessage(
            channel=Channel.SMS, external_id=external_id, sender=sender,
            sender_name="Sara", recipient="+9810004000", text=text))


def wait_routed(server: LiveServer, external_id: str) -> int:
    deadline = time.monotonic() + 15
    while True:
        with server.session() as s:
            msg = s.scalar(select(Message).where(Message.external_id == external_id))
            if msg is not None and msg.routed_at is not None and msg.conversation_id:
                return msg.conversation_id
        if time.monotonic() > deadline:
            tail = server.log.read_text(errors="replace")[-3000:]
            pytest.fail(f"message {external_id} not routed:\n{tail}")
        time.sleep(0.1)


def sign_in(p: Page, server: LiveServer, username: str) -> None:
    p.goto(server.url + "/login")
    p.locator('input[name="username"]').fill(username)
    p.locator('input[name="password"]').fill(PASSWORD)
    p.locator("form button[type=submit]").click()
    p.wait_for_url(re.compile(r"/queues"))


def open_conversation(p: Page, server: LiveServer, cid: int) -> None:
    p.goto(f"{server.url}/conversations/{cid}")
    expect(p.locator("body")).to_have_attribute("data-live-open", "1")  # the stream is up
    p.evaluate("window.__notReloaded = true")  # gone if the page reloads


def open_in_pane(p: Page, server: LiveServer, cid: int) -> None:
    """The inbox, then a row clicked: the conversation in the pane (htmx, no page load)."""
    if "/queues?queue=open" not in p.url:
        p.goto(f"{server.url}/queues?queue=open")
        expect(p.locator("body")).to_have_attribute("data-live-open", "1")
        p.evaluate("window.__notReloaded = true")
    p.locator(f"#row-{cid} a.row-link").click()
    expect(p.locator("#inbox-pane #conversation")).to_have_attribute(
        "data-conversation-id", str(cid))
    # the live stream follows the pane's conversation (static/live.js)
    expect(p.locator("body")).to_have_attribute("data-live-follows", str(cid), timeout=T)


def second_conversation(server: LiveServer, locale: str, agent_id: int) -> int:
    """Another customer's conversation, assigned to the agent too."""
    customer_says(server, f"other-{locale}", CUSTOMER[locale][0], sender="+989351112233")
    cid = wait_routed(server, f"other-{locale}")
    with server.session() as s:
        coord = s.scalar(select(Person).where(Person.username == "maryam"))
        team_id = s.scalar(select(TeamMember.team_id).where(TeamMember.person_id == agent_id))
        workflow.assign(s, coord, cid, person_id=agent_id, team_id=team_id)
    return cid


def not_reloaded(p: Page) -> bool:
    return bool(p.evaluate("window.__notReloaded === true"))


def notice(locale: str, state: str, name: str) -> str:
    return gettext(locale, f"presence.{state}", name=name)


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_each_sees_the_other_and_who_is_drafting(
    locale: str, live_server: LiveServer, new_page: Callable[[str], Page],
) -> None:
    cid, _ = seed(live_server, locale)
    coord_name, agent_name = NAMES[locale]
    coord = new_page(locale)
    sign_in(coord, live_server, "maryam")
    open_conversation(coord, live_server, cid)
    expect(coord.locator("#presence-others")).to_have_count(0)  # alone so far

    # The agent opens it: each sees the other, the coordinator without a reload
    agent = new_page(locale)
    sign_in(agent, live_server, "ali")
    open_conversation(agent, live_server, cid)
    theirs = coord.locator("#presence-others .presence-person")
    expect(theirs).to_have_text(notice(locale, "viewing", agent_name), timeout=T)
    expect(theirs).to_have_attribute("data-state", "viewing")
    expect(agent.locator("#presence-others .presence-person")).to_have_text(
        notice(locale, "viewing", coord_name), timeout=T)

    # The agent types a reply: the coordinator sees "drafting"
    agent.locator("#draft-body").fill(TYPED[locale])
    expect(theirs).to_have_attribute("data-state", "drafting", timeout=T)
    expect(theirs).to_have_text(notice(locale, "drafting", agent_name))

    # The coordinator saves a reply meanwhile: the drafting agent is told who did
    coord.locator("#draft-body").fill("—" + TYPED[locale])
    coord.locator("#draft-save-button").click()
    expect(coord.locator("#flash")).to_have_attribute("data-done", "drafted")
    news = agent.locator("#presence-news li")
    expect(news).to_have_attribute("data-step", "drafted", timeout=T)
    expect(news).to_contain_text(coord_name)
    expect(agent.locator("#draft-body")).to_have_value(TYPED[locale])  # still there
    assert not_reloaded(agent)
    open_conversation(coord, live_server, cid)  # (the save reloaded the coordinator's page)
    expect(coord.locator("#presence-others .presence-person")).to_have_attribute(
        "data-state", "drafting", timeout=T)

    # The agent leaves: the notice goes at once (the beacon), long before the expiry
    agent.goto(f"{live_server.url}/queues")
    expect(coord.locator("#presence-others")).to_have_count(0, timeout=T)
    assert not_reloaded(coord)


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_a_customer_message_appears_in_place_and_the_composer_keeps_its_text(
    locale: str, live_server: LiveServer, new_page: Callable[[str], Page],
) -> None:
    cid, _ = seed(live_server, locale)
    agent = new_page(locale)
    sign_in(agent, live_server, "ali")
    open_conversation(agent, live_server, cid)
    messages = agent.locator("#timeline .item.message.in")
    expect(messages).to_have_count(1)
    agent.locator("#draft-body").fill(TYPED[locale])

    customer_says(live_server, f"second-{locale}", CUSTOMER[locale][1])
    assert wait_routed(live_server, f"second-{locale}") == cid

    expect(messages).to_have_count(2, timeout=T)
    expect(messages.last.locator(".text")).to_have_text(CUSTOMER[locale][1])
    expect(agent.locator("#news-reload")).to_have_count(0)  # appended, no reload offered
    expect(agent.locator("#draft-body")).to_have_value(TYPED[locale])
    assert not_reloaded(agent)
    # and once more: the page asks with the version the last answer brought, nothing twice
    customer_says(live_server, f"third-{locale}", "3")
    expect(messages).to_have_count(3, timeout=T)
    ids = agent.locator("#timeline > li").evaluate_all("els => els.map(e => e.id)")
    assert len(ids) == len(set(ids)), ids
    expect(agent.locator("#draft-body")).to_have_value(TYPED[locale])
    assert not_reloaded(agent)


@pytest.mark.parametrize(("locale", "agent_in"), [("fa", "page"), ("en", "pane")])
def test_in_the_inbox_pane_each_sees_the_other_and_a_switch_leaves(
    locale: str, agent_in: str, live_server: LiveServer, new_page: Callable[[str], Page],
) -> None:
    cid, agent_id = seed(live_server, locale)
    other = second_conversation(live_server, locale, agent_id)
    assert other != cid
    coord_name, agent_name = NAMES[locale]
    coord = new_page(locale)
    sign_in(coord, live_server, "maryam")
    open_in_pane(coord, live_server, cid)
    pane = coord.locator("#inbox-pane")
    expect(pane.locator("#presence-others")).to_have_count(0)  # alone so far

    agent = new_page(locale)
    sign_in(agent, live_server, "ali")
    if agent_in == "pane":
        open_in_pane(agent, live_server, cid)
    else:
        open_conversation(agent, live_server, cid)
    theirs = pane.locator("#presence-others .presence-person")
    expect(theirs).to_have_text(notice(locale, "viewing", agent_name), timeout=T)
    mine = agent.locator("#presence-others .presence-person")
    expect(mine).to_have_text(notice(locale, "viewing", coord_name), timeout=T)

    # The agent drafts: the coordinator's pane says so (a push, not the next beat)
    agent.locator("#draft-body").fill(TYPED[locale])
    expect(theirs).to_have_attribute("data-state", "drafting", timeout=T)
    expect(theirs).to_have_text(notice(locale, "drafting", agent_name))

    # The coordinator switches the pane: the first conversation is left at once (the
    # expiry is 120 s), and the new one is beaten
    open_in_pane(coord, live_server, other)
    expect(agent.locator("#presence-others")).to_have_count(0, timeout=T)
    expect(pane.locator("#presence-others")).to_have_count(0)
    expect(pane.locator("#presence")).to_have_attribute("data-conversation-id", str(other))

    # The agent comes to the new one: the coordinator's stream carries its presence now
    if agent_in == "pane":
        open_in_pane(agent, live_server, other)
    else:
        open_conversation(agent, live_server, other)
    expect(theirs).to_have_text(notice(locale, "viewing", agent_name), timeout=T)
    expect(mine).to_have_text(notice(locale, "viewing", coord_name), timeout=T)

    # and back to the first: the agent's page of the second sees the coordinator go
    open_in_pane(coord, live_server, cid)
    expect(agent.locator("#presence-others")).to_have_count(0, timeout=T)
    expect(pane.locator("#presence-others")).to_have_count(0)
    assert not_reloaded(coord)
    assert not_reloaded(agent)


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_a_customer_message_appears_in_the_inbox_pane_after_a_switch(
    locale: str, live_server: LiveServer, new_page: Callable[[str], Page],
) -> None:
    cid, agent_id = seed(live_server, locale)
    other = second_conversation(live_server, locale, agent_id)
    agent = new_page(locale)
    sign_in(agent, live_server, "ali")
    open_in_pane(agent, live_server, other)
    open_in_pane(agent, live_server, cid)  # switched: the pane's second conversation
    pane = agent.locator("#inbox-pane")
    messages = pane.locator("#timeline .item.message.in")
    expect(messages).to_have_count(1)
    pane.locator("#draft-body").fill(TYPED[locale])

    customer_says(live_server, f"second-{locale}", CUSTOMER[locale][1])
    assert wait_routed(live_server, f"second-{locale}") == cid

    expect(messages).to_have_count(2, timeout=T)
    expect(messages.last.locator(".text")).to_have_text(CUSTOMER[locale][1])
    expect(pane.locator("#news-reload")).to_have_count(0)  # appended, no reload offered
    expect(pane.locator("#draft-body")).to_have_value(TYPED[locale])
    customer_says(live_server, f"third-{locale}", "3")
    expect(messages).to_have_count(3, timeout=T)
    ids = pane.locator("#timeline > li").evaluate_all("els => els.map(e => e.id)")
    assert len(ids) == len(set(ids)), ids
    expect(pane.locator("#draft-body")).to_have_value(TYPED[locale])
    assert not_reloaded(agent)

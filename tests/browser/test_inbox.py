"""The inbox in a real Chromium, in Persian and English (issue 14):

- keyboard navigation through a queue: j / k move the focus along the rows, Enter and o open
  the row's conversation in the pane beside the list, and the list stays (the same element,
  its rows and its place; no page load); a form in the pane posts and comes back into it;
  keys typed in the composer stay the composer's; c closes through the real form after a
  confirmation;
- the "?" help is a modal dialog in the reader's language; Escape closes it and the focus
  goes back where it was; / goes to the queue's filter, g then t to triage;
- h goes to the hand-over panel, which refers, with a note, to a person of another team:
  the conversation moves to that person's team, the referral is audited with its note;
- the inbox at 390 px wide with a conversation open has no horizontal scroll.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect
from sqlalchemy import select

from console.i18n import gettext
from kartabl.models import Conversation, ConversationStatus, Event, Role
from tests import factories as f
from tests.browser.conftest import LiveServer

PASSWORD = "a long browser-test password"
BROWSER_LOCALE = {"fa": "fa-IR", "en": "en-US"}
T = 10_000


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """``new_page(locale, width=1440)``: a page of its own; an uncaught JavaScript error or
    a console error (htmx logs its own there) fails the test."""
    pages: list[Page] = []
    errors: list[str] = []

    def make(locale: str, width: int = 1440, height: int = 900) -> Page:
        phone = width < 600
        context = browser.new_context(
            locale=BROWSER_LOCALE[locale], viewport={"width": width, "height": height},
            is_mobile=phone, has_touch=phone)
        context.set_default_timeout(T)
        p = context.new_page()
        p.on("pageerror", lambda exc: errors.append(str(exc)))
        p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pages.append(p)
        return p

    yield make
    for p in pages:
        p.context.close()
    assert errors == [], errors


def _seed(server: LiveServer, locale: str) -> dict[str, int]:
    """A coordinator reading ``locale``, support (ali) and sales (bob), and four open
    conversations of support."""
    with server.session() as s:
        support, sales = f.team(s, "support"), f.team(s, "sales")
        support.title = "پشتیبانی" if locale == "fa" else "Support"
        sales.title = "فروش" if locale == "fa" else "Sales"
        maryam = f.person(s, "maryam", Role.COORDINATOR)
        maryam.password_hash, maryam.locale = f.quick_hash(PASSWORD), locale
        ali = f.person(s, "ali", teams=[support])
        bob = f.person(s, "bob", teams=[sales])
        bob.display_name = "بهرام" if locale == "fa" else "Bob"
        convs = [f.conversation(s, team=support, assignee=ali,
                                subject=(f"سفارش {n}" if locale == "fa" else f"Order {n}"),
                                text=f"message {n}") for n in range(4)]
        ids = {f"c{n}": c.id for n, c in enumerate(convs)}
        return ids | {"support": support.id, "sales": sales.id, "ali": ali.id, "bob": bob.id,
                      "maryam": maryam.id}


def _sign_in(page: Page, url: str) -> None:
    page.goto(url + "/login")
    page.locator('input[name="username"]').fill("maryam")
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('form[action="/login"] button[type=submit]').click()
    page.wait_for_url("**/queues")


def _focused_row(page: Page) -> str:
    return str(page.evaluate(
        "(document.activeElement.closest('.queue-row') || {}).id || ''"))


def _mark(page: Page) -> None:
    """Marks that a page load would lose: the window's and the list's own element's."""
    page.evaluate("window.kartablNoReload = true;"
                  "document.getElementById('inbox-list').dataset.kept = 'yes'")


def _kept(page: Page) -> bool:
    return bool(page.evaluate(
        "window.kartablNoReload === true && "
        "document.getElementById('inbox-list').dataset.kept === 'yes'"))


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_keyboard_through_a_queue_opens_in_the_pane_and_keeps_the_list(
    live_server: LiveServer, new_page: Callable[..., Page], locale: str,
    screenshot: Callable[..., Path],
) -> None:
    ids = _seed(live_server, locale)
    page = new_page(locale)
    _sign_in(page, live_server.url)
    page.goto(live_server.url + "/queues?queue=open&team=" + str(ids["support"]))
    rows = page.locator("#queue-rows .queue-row")
    expect(rows).to_have_count(4)
    order = [r.get_attribute("data-conversation-id") for r in rows.all()]
    _mark(page)
    # j / k move the focus along the rows
    page.keyboard.press("j")
    assert _focused_row(page) == f"row-{order[0]}"
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert _focused_row(page) == f"row-{order[2]}"
    page.keyboard.press("k")
    assert _focused_row(page) == f"row-{order[1]}"
    # with the Persian layout on, the key of "k" types "ن": still "previous", then "j" ("ت")
    for key, code in (("ن", "KeyK"), ("ت", "KeyJ")):
        page.evaluate("([key, code]) => document.activeElement.dispatchEvent("
                      "new KeyboardEvent('keydown', {key, code, bubbles: true}))", [key, code])
        assert _focused_row(page) == f"row-{order[0] if code == 'KeyK' else order[1]}"
    # Enter opens it in the pane; the list (its filter, its rows) stays, the URL says both
    page.keyboard.press("Enter")
    pane = page.locator("#inbox-pane")
    expect(pane.locator("#conversation")).to_have_attribute(
        "data-conversation-id", str(order[1]))
    expect(page).to_have_url(re.compile(
        rf"/queues\?queue=open&team={ids['support']}&open={order[1]}$"))
    expect(page.locator(f"#row-{order[1]}")).to_have_attribute("aria-current", "true")
    expect(rows).to_have_count(4)
    assert _kept(page)
    assert _focused_row(page) == f"row-{order[1]}"  # the keyboard goes on from there
    # three columns side by side: the list, the conversation, its side panels
    boxes = [page.locator(sel).bounding_box() for sel in ("#inbox-list", "#conv-main",
                                                          "#conv-side")]
    assert all(b is not None for b in boxes)
    xs = sorted(b["x"] for b in boxes if b is not None)
    assert xs[0] < xs[1] < xs[2], boxes
    screenshot(f"inbox-{locale}", of=page)
    # j then o: the next one, in the same pane
    page.keyboard.press("j")
    page.keyboard.press("o")
    expect(pane.locator("#conversation")).to_have_attribute(
        "data-conversation-id", str(order[2]))
    expect(page.locator(f"#row-{order[1]}")).not_to_have_attribute("aria-current", "true")
    expect(page.locator(f"#row-{order[2]}")).to_have_attribute("aria-current", "true")
    assert _kept(page)
    # r goes to the composer; what one types there is the composer's, "/" and j included
    page.keyboard.press("r")
    expect(page.locator("#draft-body")).to_be_focused()
    page.keyboard.type("jk /")
    expect(page.locator("#draft-body")).to_have_value("jk /")
    expect(page.locator("#keys-help")).not_to_have_attribute("open", "")
    # a form in the pane posts and comes back into the pane, the list untouched
    note = "یادداشت از صندوق" if locale == "fa" else "a note from the inbox"
    page.locator("#note-text").fill(note)
    page.locator("#note-button").click()
    expect(pane.locator("#flash")).to_have_attribute("data-done", "noted")
    expect(pane.locator("#flash")).to_have_text(gettext(locale, "flash.noted"))
    expect(pane.locator("#timeline")).to_contain_text(note)
    assert _kept(page)
    expect(page).to_have_url(re.compile(rf"open={order[2]}$"))
    # a assigns it to me: the one-click form, posted from the pane
    page.locator("#inbox-list h1").click()  # the focus out of the note's form
    page.keyboard.press("a")
    expect(pane.locator("#flash")).to_have_attribute("data-done", "assigned")
    expect(pane.locator("#conv-assignee")).to_have_attribute("data-assignee-id",
                                                             str(ids["maryam"]))
    # c closes it through the close form, after a confirmation in the reader's language
    asked: list[str] = []

    def accept(d: Dialog) -> None:
        asked.append(d.message)
        d.accept()

    page.once("dialog", accept)
    page.locator("#inbox-list h1").click()  # the focus out of the form
    page.keyboard.press("c")
    expect(pane.locator("#flash")).to_have_attribute("data-done", "closed")
    assert asked == [gettext(locale, "keys.close_confirm")]
    assert _kept(page)
    with live_server.session() as s:
        closed = s.get(Conversation, int(str(order[2])))
        assert closed is not None and closed.status == ConversationStatus.CLOSED
        assert s.scalars(select(Event.actor_id).where(
            Event.conversation_id == closed.id, Event.kind == "conversation.closed")).all()


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_the_help_overlay_opens_and_closes(
    live_server: LiveServer, new_page: Callable[..., Page], locale: str,
    screenshot: Callable[..., Path],
) -> None:
    _seed(live_server, locale)
    page = new_page(locale)
    _sign_in(page, live_server.url)
    page.goto(live_server.url + "/queues?queue=open")
    page.keyboard.press("j")
    before = _focused_row(page)
    assert before.startswith("row-")
    help_ = page.locator("#keys-help")
    expect(help_).not_to_be_visible()
    page.keyboard.press("Shift+Slash")  # "?"
    expect(help_).to_be_visible()
    assert page.evaluate("document.getElementById('keys-help').open") is True
    expect(help_.locator("h2")).to_have_text(gettext(locale, "keys.title"))
    expect(help_.locator("tr[data-key='j']")).to_contain_text(gettext(locale, "keys.next"))
    assert page.evaluate("getComputedStyle(document.getElementById('keys-help')).direction") \
        == ("rtl" if locale == "fa" else "ltr")
    expect(page.locator("#keys-close")).to_be_focused()  # the focus is in the dialog
    screenshot(f"keys-help-{locale}", of=page)
    page.keyboard.press("j")  # the page behind does not move while the dialog is open
    page.keyboard.press("Escape")
    expect(help_).not_to_be_visible()
    assert _focused_row(page) == before  # the focus back where it was
    # the header's button opens it too, its own button closes it
    page.locator("#keys-open").click()
    expect(help_).to_be_visible()
    page.locator("#keys-close").click()
    expect(help_).not_to_be_visible()
    # / goes to the header's search box; keys in a field are the field's
    page.keyboard.press("/")
    expect(page.locator("#search-q")).to_be_focused()
    page.keyboard.press("j")
    expect(page.locator("#search-q")).to_have_value("j")
    page.locator("#search-q").fill("")
    # g then t: to triage
    page.locator("#inbox-list h1").click()
    page.keyboard.press("g")
    page.keyboard.press("t")
    page.wait_for_url(re.compile(r"/queues\?queue=triage$"))


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_handover_with_a_note_to_another_teams_person_moves_the_conversation(
    live_server: LiveServer, new_page: Callable[..., Page], locale: str,
    screenshot: Callable[..., Path],
) -> None:
    ids = _seed(live_server, locale)
    page = new_page(locale)
    _sign_in(page, live_server.url)
    page.goto(live_server.url + "/queues?queue=open")
    _mark(page)
    page.locator(f"#row-{ids['c0']} a.row-link").click()
    pane = page.locator("#inbox-pane")
    expect(pane.locator("#conversation")).to_have_attribute("data-conversation-id",
                                                            str(ids["c0"]))
    panel = pane.locator("#handover")
    expect(panel.locator("h2")).to_have_text(gettext(locale, "handover.title"))
    page.keyboard.press("h")  # the focus was on the row: h goes to the panel
    expect(panel.locator("#handover-person")).to_be_focused()
    expect(pane.locator("#assign, #refer")).to_have_count(0)  # one panel, not two
    panel.locator("#handover-person").select_option(str(ids["bob"]))
    note = "فاکتور فروش را بررسی کن" if locale == "fa" else "Please check the sales invoice"
    panel.locator("#handover-note").fill(note)
    panel.locator("#handover-button").click()
    expect(pane.locator("#flash")).to_have_attribute("data-done", "referred")
    expect(pane.locator("#flash")).to_have_text(gettext(locale, "flash.referred"))
    expect(pane.locator("#conv-team")).to_contain_text("فروش" if locale == "fa" else "Sales")
    expect(pane.locator("#conv-assignee")).to_have_attribute("data-assignee-id",
                                                             str(ids["bob"]))
    expect(pane.locator("#timeline")).to_contain_text(note)
    assert _kept(page)
    screenshot(f"handover-{locale}", of=page)
    with live_server.session() as s:
        conv = s.get(Conversation, ids["c0"])
        assert conv is not None and (conv.team_id, conv.assignee_id) == (ids["sales"], ids["bob"])
        event = s.scalars(select(Event).where(Event.conversation_id == ids["c0"],
                                              Event.kind == "conversation.referred")).one()
        assert event.data["note"] == note and event.data["from_team"] == ids["support"]


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_the_inbox_at_390px_has_no_horizontal_scroll(
    live_server: LiveServer, new_page: Callable[..., Page], locale: str,
    screenshot: Callable[..., Path],
) -> None:
    ids = _seed(live_server, locale)
    page = new_page(locale, width=390, height=844)
    _sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/queues?queue=open&open={ids['c1']}")
    expect(page.locator("#inbox-pane #conversation")).to_be_visible()
    expect(page.locator("#queue-rows .queue-row")).to_have_count(4)
    widths = page.evaluate(
        "[window.innerWidth, document.documentElement.scrollWidth, document.body.scrollWidth]")
    assert widths[0] == 390 and widths[1] <= 390 and widths[2] <= 390, widths
    # stacked: the list, then the conversation, then its side panels, each within the screen
    boxes = [page.locator(sel).bounding_box() for sel in ("#inbox-list", "#conv-main",
                                                          "#conv-side")]
    for b in boxes:
        assert b is not None and b["x"] >= 0 and b["x"] + b["width"] <= 390.5, boxes
    ys = [b["y"] for b in boxes if b is not None]
    assert ys == sorted(ys), boxes
    screenshot(f"inbox-390-{locale}", of=page)

"""Search inside messages in a real Chromium, in Persian: the header's box (reached with
"/"), a compound word typed with a space finds the message written with a half-space, the
hit shows the snippet with the match marked, "more" loads the next page in place, and the
hit opens its conversation. An agent of another team finds nothing of it."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from kartabl import search
from kartabl.models import Role
from tests import factories as f
from tests.browser.conftest import LiveServer

PASSWORD = "a long browser-test password"


def _sign_in(page: Page, url: str, username: str) -> None:
    page.goto(url + "/login")
    page.locator('input[name="username"]').fill(username)
    page.locator('input[name="password"]').fill(PASSWORD)
    with page.expect_navigation():
        page.locator('form[action="/login"] button[type=submit]').click()


def _seed(server: LiveServer) -> int:
    with server.session() as s:
        support, sales = f.team(s, "support"), f.team(s, "sales")
        coord = f.person(s, "maryam", Role.COORDINATOR)
        other = f.person(s, "bahar", teams=[sales])
        for p in (coord, other):
            p.password_hash, p.locale = f.quick_hash(PASSWORD), "fa"
        conv = f.conversation(s, team=support, subject="درخواست لغو",
                              text="سلام، می‌خواهم اشتراکم را <b>لغو</b> کنم")
        for i in range(22):  # more than a page of another word
            f.conversation(s, team=support, subject=f"پیگیری {i}", text=f"پیگیری سفارش {i}")
        s.flush()
        search.reindex(s)
        return conv.id


def test_search_from_the_header_in_persian(live_server: LiveServer,
                                           new_page: Callable[[str], Page]) -> None:
    cid = _seed(live_server)
    page = new_page("fa")
    _sign_in(page, live_server.url, "maryam")
    # "/" goes to the header's box; the compound word typed with a space
    page.keyboard.press("/")
    box = page.locator("#search-q")
    expect(box).to_be_focused()
    box.fill("می خواهم")
    with page.expect_navigation():
        box.press("Enter")
    hit = page.locator(f'.search-hit[data-conversation-id="{cid}"]')
    expect(hit).to_have_count(1)
    expect(page.locator(".search-hit")).to_have_count(1)
    # the half-spaced original, marked; the customer's markup shown as text
    expect(hit.locator("mark")).to_have_text("می\u200cخواهم")
    expect(hit.locator(".search-snippet")).to_contain_text("<b>لغو</b>")
    expect(hit.locator(".search-source")).to_have_text("پیام")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    # it opens its conversation
    with page.expect_navigation():
        hit.locator("a.search-hit-link").click()
    assert page.url.endswith(f"/conversations/{cid}")
    # a common word: 20 hits, then "more" loads the rest in place
    page.goto(live_server.url + "/search?q=" + "پيگيري")  # Arabic yeh: still found
    expect(page.locator(".search-hit")).to_have_count(20)
    page.locator("#search-more a").click()
    expect(page.locator(".search-hit")).to_have_count(22)
    expect(page.locator("#search-more")).to_have_count(0)


def test_an_agent_of_another_team_finds_nothing(live_server: LiveServer,
                                                new_page: Callable[[str], Page]) -> None:
    _seed(live_server)
    page = new_page("fa")
    _sign_in(page, live_server.url, "bahar")
    page.goto(live_server.url + "/search?q=" + "میخواهم")
    expect(page.locator("#search-none")).to_be_visible()
    expect(page.locator(".search-hit")).to_have_count(0)

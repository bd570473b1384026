"""The inbox's pane misses nothing that happened while it was loading.

The server renders the pane at one moment and the browser swaps it in a little later. An
event that reaches the page in between is handed to the old pane's live elements, which
are about to go, and the new pane would stay as rendered until the next event, perhaps for
good. It did so in CI, where a loaded machine widened the gap: the coordinator approved
from the pane, the reply was sent and delivered while the answer was on its way, and the
pane said "sent" for ever. Here the gap is made wide on purpose: the pane's request is
held until the server has rendered it *and* a later event has reached the page.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Route, expect

from kartabl import workflow
from kartabl.models import Role
from responders.preview import REPLY_CHECK
from tests import factories as f
from tests.browser.conftest import LiveServer
from tests.browser.test_inbox import PASSWORD, _sign_in, new_page  # noqa: F401 (a fixture)

T = 10_000


@pytest.fixture
def kartabl_env() -> dict[str, str]:
    # The test's own process approves the reply, so no wake reaches the server: its hub
    # finds the event on its own look, every live_poll_s.
    return {"KARTABL_LIVE_POLL_S": "0.5"}


def _seed(server: LiveServer) -> dict[str, int]:
    with server.session() as s:
        support = f.team(s, "support")
        maryam = f.person(s, "maryam", Role.COORDINATOR)
        maryam.password_hash, maryam.locale = f.quick_hash(PASSWORD), "fa"
        ali = f.person(s, "ali", teams=[support])
        conv = f.conversation(s, team=support, assignee=ali, subject="سفارش ۱۲", text="کجاست؟")
        s.flush()
        reply = workflow.draft(s, ali, conv.id, "فردا می‌رسد.", check=REPLY_CHECK)
        workflow.submit(s, ali, reply.id, check=REPLY_CHECK)
        return {"conv": conv.id, "reply": reply.id, "maryam": maryam.id}


def test_an_event_while_the_pane_loads_reaches_the_new_pane(
    live_server: LiveServer, new_page: Callable[..., Page],  # noqa: F811
) -> None:
    ids = _seed(live_server)
    cid, rid = ids["conv"], ids["reply"]
    page = new_page("fa")
    _sign_in(page, live_server.url)
    page.goto(live_server.url + "/queues?queue=approval")
    expect(page.locator("body")).to_have_attribute("data-live-open", "1")

    # The coordinator opens the conversation in the pane; its page is held here. (A
    # redirect's target never reaches a route, so an approval made in the pane, where CI
    # met this, cannot be held; opening a row meets the same gap.)
    held: list[Route] = []
    pane_page = re.compile(rf"/conversations/{cid}(\?[^/]*)?$")
    page.route(pane_page, lambda route: held.append(route))
    page.locator(f"#row-{cid}-{rid} a.row-link").click()
    deadline = time.monotonic() + T / 1000
    while not held:
        assert time.monotonic() < deadline, "the pane's page was never asked for"
        page.wait_for_timeout(50)
    rendered = held[0].fetch()  # the server renders the pane now: awaiting approval
    assert f'id="reply-state-{rid}" data-reply-state="pending_approval"' in rendered.text()

    # Meanwhile another coordinator approves the reply; its event reaches the page and is
    # handed out (after 100 ms; each live element fetches at most once a second) while the
    # pane is still on its way.
    last = "document.body.dataset.liveLast || ''"
    before = page.evaluate(last)
    with live_server.session() as s:
        other = f.person(s, "sara", Role.COORDINATOR)
        workflow.approve(s, other, rid, check=REPLY_CHECK)
    page.wait_for_function(f"b => ({last}) !== b", arg=before, timeout=T)
    page.wait_for_timeout(1600)
    held[0].fulfill(response=rendered)
    page.unroute(pane_page)

    pane = page.locator("#inbox-pane")
    expect(pane.locator("#conversation")).to_have_attribute("data-conversation-id", str(cid))
    expect(pane.locator(f"#reply-state-{rid}")).to_have_attribute(
        "data-reply-state", "approved", timeout=T)
    expect(pane.locator(f"#approve-button-{rid}")).to_have_count(0)

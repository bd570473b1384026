"""Every page renders for a coordinator and for an agent; the agent's scope holds on every
page; Persian pages are right to left with Persian digits, English ones left to right."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests import factories as f
from tests.console.pages.conftest import World, sign_in

PAGES = ["/queues", "/queues/live", "/customers", "/customers?q=%D9%85%D8%B4%D8%AA%D8%B1%DB%8C",
         "/reports", "/reports?start=2026-01-01&end=2026-01-31"]


@pytest.mark.parametrize("username", ["maryam", "ali"])
def test_every_page_renders_for_coordinators_and_agents(client: TestClient, world: World,
                                                        username: str) -> None:
    sign_in(client, username)
    own = [f"/conversations/{world.conv_support}", f"/customers/{world.customer_support}",
           f"/conversations/{world.conv_support}/status?v=0.0.0"]
    for url in [*PAGES, *own]:
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[-2000:])
        assert "text/html" in r.headers["content-type"]
    page = client.get(f"/conversations/{world.conv_support}").text
    assert "support-text" in page and 'id="customer-panel"' in page


def test_pages_need_a_sign_in(client: TestClient, world: World) -> None:
    for url in ["/queues", f"/conversations/{world.conv_support}", "/customers", "/reports",
                "/reports.csv"]:
        r = client.get(url, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_coordinator_queues_show_every_tab_with_counts(client: TestClient, world: World) -> None:
    sign_in(client, "maryam")
    page = client.get("/queues").text
    for tab in ("triage", "approval", "mine", f"team-{world.support}", f"team-{world.sales}",
                "open", "overdue"):
        assert f'id="tab-{tab}"' in page
    # The coordinator reads English: ASCII digits; triage holds one conversation.
    assert re.search(r'id="tab-triage"[^>]*>Triage<span class="count" data-count="1">1</span>',
                     page)
    assert "triage-subject" in page and 'dir="ltr"' in page
    assert f'href="/conversations/{world.conv_triage}"' in page


def test_agent_never_sees_another_teams_conversation_in_any_queue(
    client: TestClient, world: World
) -> None:
    sign_in(client, "ali")
    for queue in ("mine", "open", "overdue", "approval", f"team:{world.support}", "triage"):
        for url in (f"/queues?queue={queue}", f"/queues/live?queue={queue}"):
            r = client.get(url)
            assert r.status_code == 200, url
            assert "sales-secret" not in r.text and "triage-subject" not in r.text
    page = client.get("/queues?queue=open").text
    assert "support-subject" in page
    # An agent's triage tab holds only their teams' unassigned work; no other team's tab.
    assert f'id="tab-team-{world.sales}"' not in page
    assert client.get(f"/queues?queue=team:{world.sales}").status_code == 403


def test_agent_gets_404_for_another_teams_conversation_and_customer(
    client: TestClient, world: World
) -> None:
    sign_in(client, "ali")
    for url in (f"/conversations/{world.conv_sales}", f"/conversations/{world.conv_triage}",
                f"/conversations/{world.conv_sales}/status", f"/customers/{world.customer_sales}",
                f"/customers/{world.customer_sales}/merge", "/conversations/999999"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert "sales-secret" not in r.text
    found = client.get("/customers?q=" + "sales").text
    assert f'href="/customers/{world.customer_sales}"' not in found


def test_persian_page_is_rtl_with_persian_digits(client: TestClient, world: World,
                                                 db: sessionmaker[Session]) -> None:
    with db() as s:  # twelve open support conversations for the agent's team tab
        support = s.get(f.Team, world.support)
        for _ in range(11):
            f.conversation(s, team=support)
        s.commit()
    sign_in(client, "ali")
    page = client.get(f"/queues?queue=team:{world.support}").text
    assert '<html lang="fa" dir="rtl">' in page
    assert re.search(r'data-count="12">۱۲</span>', page)
    assert "صف‌ها" in page  # the title, in Persian
    rep = client.get("/reports?start=1405/01/01&end=1405/01/31").text
    assert 'dir="rtl"' in rep and "۱۴۰۵/۰۱/۰۱" in rep  # the range shown in Jalali


def test_english_page_is_ltr(client: TestClient, world: World) -> None:
    sign_in(client, "bob")
    page = client.get("/queues").text
    assert '<html lang="en" dir="ltr">' in page and "Queues" in page
    assert 'id="tab-mine"' in page and 'data-count="1">1</span>' in page


def test_queue_filters_narrow_the_list_and_stay_in_the_links(client: TestClient,
                                                             world: World) -> None:
    sign_in(client, "maryam")
    page = client.get("/queues?queue=open&channel=telegram").text
    assert "triage-subject" in page and "support-subject" not in page
    assert 'hx-get="/queues/live?queue=open&amp;channel=telegram"' in page
    assert 'hx-trigger="live"' in page and 'hx-trigger="every' not in page  # no polling
    assert 'href="/queues?queue=mine&amp;channel=telegram"' in page  # tabs keep the filter
    by_team = client.get(f"/queues?queue=open&team={world.sales}").text
    assert "sales-secret-subject" in by_team and "support-subject" not in by_team
    old = client.get("/queues?queue=open&age=gt1d").text
    assert 'id="queue-empty"' in old  # everything was opened just now
    closed = client.get("/queues?queue=triage&status=closed")
    assert closed.status_code == 200 and 'id="queue-error"' in closed.text
    assert client.get("/queues?channel=fax").status_code == 400


def test_no_state_change_on_get(client: TestClient, world: World) -> None:
    sign_in(client, "maryam")
    cid = world.conv_triage
    for url in (f"/conversations/{cid}/assign", f"/conversations/{cid}/close",
                f"/conversations/{cid}/notes", f"/conversations/{cid}/replies",
                "/replies/1/approve", f"/customers/{world.customer_support}/tags",
                f"/customers/{world.customer_support}/link"):
        assert client.get(url).status_code in (404, 405), url
    # The merge page is a GET: it previews and changes nothing.
    r = client.get(f"/customers/{world.customer_support}/merge?into={world.customer_sales}")
    assert r.status_code == 200 and 'id="merge-form"' not in r.text  # maryam may not merge
    assert client.get(f"/customers/{world.customer_support}").status_code == 200

"""Collision notices through the real app (console/pages/presence.py): a beat shows the
others who is on a conversation and in which state, within its scope only; stale entries
expire; a beat writes no audit row and does not keep a session alive; a reply saved by
someone else while one drafts is told."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kartabl import presence
from kartabl.models import Event, WebSession, utcnow
from tests.console.pages.conftest import World, sign_in


@pytest.fixture(autouse=True)
def fresh_presence() -> Iterator[None]:
    presence.set_store(None)  # this process's memory, empty (the embedded mode)
    yield
    presence.set_store(None)


def beat(client: TestClient, csrf: str, cid: int, state: str = "viewing") -> str:
    r = client.post(f"/conversations/{cid}/presence", data={"state": state},
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return r.text


def test_each_sees_the_other_and_their_state(client: TestClient, other_client: TestClient,
                                             world: World) -> None:
    cid = world.conv_support
    ali = sign_in(client, "ali")  # the agent holding it (Persian)
    maryam = sign_in(other_client, "maryam")  # a coordinator (English)
    assert 'id="presence-others"' not in beat(client, ali, cid)  # alone so far
    seen = beat(other_client, maryam, cid)
    assert 'data-state="viewing"' in seen and "<bdi>ali</bdi> has this conversation open" in seen
    shown = client.get(f"/conversations/{cid}/presence").text
    assert "Maryam" in shown and "این گفتگو را باز کرده است" in shown
    assert "ali" not in shown.replace("Maryam", "")  # never oneself
    beat(client, ali, cid, "drafting")
    shown = other_client.get(f"/conversations/{cid}/presence").text
    assert 'data-state="drafting"' in shown and "<bdi>ali</bdi> is drafting a reply" in shown
    # Leaving (the page's beacon) is seen at once
    r = client.post(f"/conversations/{cid}/presence", data={"state": "left", "csrf_token": ali})
    assert r.status_code == 204
    assert 'id="presence-others"' not in other_client.get(
        f"/conversations/{cid}/presence").text


def test_nobody_shows_where_they_may_not_look(client: TestClient, other_client: TestClient,
                                             world: World) -> None:
    bob = sign_in(client, "bob")  # sales: not support's conversation
    for state in ("viewing", "drafting", "left"):
        r = client.post(f"/conversations/{world.conv_support}/presence", data={"state": state},
                        headers={"X-CSRF-Token": bob})
        assert r.status_code == 404
    assert client.get(f"/conversations/{world.conv_support}/presence").status_code == 404
    assert presence.store().present(world.conv_support, now=time.time(), expiry_s=60) == []
    # and bob's own conversation shows him to a coordinator, not to ali
    beat(client, bob, world.conv_sales)
    ali = TestClient(client.app, base_url="https://testserver")
    sign_in(ali, "ali")
    assert ali.get(f"/conversations/{world.conv_sales}/presence").status_code == 404
    maryam = sign_in(other_client, "maryam")
    shown = beat(other_client, maryam, world.conv_sales)
    assert "<bdi>bob</bdi> has this conversation open" in shown


def test_a_bad_state_is_refused(client: TestClient, world: World) -> None:
    csrf = sign_in(client, "maryam")
    r = client.post(f"/conversations/{world.conv_support}/presence", data={"state": "x"},
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 400


def test_a_closed_laptop_expires(client: TestClient, other_client: TestClient, world: World,
                                 settings) -> None:
    cid = world.conv_support
    maryam = sign_in(other_client, "maryam")
    sign_in(client, "ali")
    # ali's last beat was longer ago than the expiry (the laptop closed then)
    presence.store().beat(cid, world.ali, presence.State.DRAFTING,
                          now=time.time() - settings.presence_expiry_s - 1,
                          expiry_s=settings.presence_expiry_s)
    assert 'id="presence-others"' not in beat(other_client, maryam, cid)
    # a beat within the expiry shows
    presence.store().beat(cid, world.ali, presence.State.VIEWING,
                          now=time.time() - settings.presence_expiry_s / 2,
                          expiry_s=settings.presence_expiry_s)
    assert "<bdi>ali</bdi> has this conversation open" in beat(other_client, maryam, cid)


def test_beats_write_no_audit_row_and_keep_no_session_alive(client: TestClient, db,
                                                            world: World) -> None:
    csrf = sign_in(client, "ali")
    an_hour_ago = utcnow() - timedelta(hours=1)
    with db() as s:
        events = s.scalar(select(func.count()).select_from(Event))
        for row in s.scalars(select(WebSession)):
            row.last_seen_at = an_hour_ago
        s.commit()
    for state in ("viewing", "drafting", "drafting", "viewing"):
        beat(client, csrf, world.conv_support, state)
    client.get(f"/conversations/{world.conv_support}/presence")
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == events
        seen = [r.last_seen_at for r in s.scalars(select(WebSession))]
    assert seen and all(abs((t - an_hour_ago).total_seconds()) < 1 for t in seen)
    # (a page view does renew it: the beats were the exception)
    client.get("/queues")
    with db() as s:
        assert max(r.last_seen_at for r in s.scalars(select(WebSession))) > an_hour_ago


def test_a_reply_saved_by_someone_else_while_drafting_is_told(
        client: TestClient, other_client: TestClient, world: World) -> None:
    cid = world.conv_support
    ali = sign_in(client, "ali")
    maryam = sign_in(other_client, "maryam")
    assert 'id="presence-news"' not in beat(client, ali, cid, "drafting")
    r = other_client.post(f"/conversations/{cid}/replies", follow_redirects=False,
                          data={"csrf_token": maryam, "body": "we are on it", "then": "save"})
    assert r.status_code == 303
    shown = client.get(f"/conversations/{cid}/presence").text
    assert 'id="presence-news"' in shown and 'data-step="drafted"' in shown
    assert "Maryam" in shown and "پیش‌نویسی ذخیره کرد" in shown
    # one's own replies are no news, and no news once one stops drafting
    assert 'id="presence-news"' not in beat(other_client, maryam, cid, "drafting")
    assert 'id="presence-news"' not in beat(client, ali, cid, "viewing")


def test_the_conversation_page_carries_the_presence_box(client: TestClient,
                                                        world: World) -> None:
    sign_in(client, "ali")
    page = client.get(f"/conversations/{world.conv_support}").text
    assert 'id="presence"' in page and 'src="/static/presence.js"' in page
    assert f'data-conversation-id="{world.conv_support}" data-csrf="' in page


def test_one_who_lost_access_is_not_shown(client: TestClient, other_client: TestClient,
                                          db, world: World) -> None:
    cid = world.conv_support
    beat(client, sign_in(client, "ali"), cid)
    maryam = sign_in(other_client, "maryam")
    assert "<bdi>ali</bdi>" in beat(other_client, maryam, cid)
    # Given the conversation handed to sales (bob): ali may no longer see it
    r = other_client.post(f"/conversations/{cid}/assign", follow_redirects=False, data={
        "csrf_token": maryam, "person_id": str(world.bob), "team_id": str(world.sales)})
    assert r.status_code == 303
    assert "<bdi>ali</bdi>" not in beat(other_client, maryam, cid)

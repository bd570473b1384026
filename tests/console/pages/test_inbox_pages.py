"""The inbox (``/queues?open=<id>``: the list and the conversation in a pane) and the one
hand-over panel (``POST /conversations/{id}/handover``): with a note a referral, without one
an assignment; a person of another team takes the conversation into their team; a person in
several other teams is asked for the team, in the reader's language."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl.models import Conversation, Event, Team
from tests import factories as f
from tests.console.pages.conftest import World, post_refused, sign_in

Db = sessionmaker[Session]


def _conv(db: Db, cid: int) -> Conversation:
    with db() as s:
        found = s.get(Conversation, cid)
        assert found is not None
        s.expunge(found)
        return found


def _events(db: Db, cid: int) -> list[Event]:
    with db() as s:
        rows = list(s.scalars(select(Event).where(
            Event.conversation_id == cid,
            Event.kind.in_(("conversation.assigned", "conversation.referred"))).order_by(Event.id)))
        for row in rows:
            s.expunge(row)
        return rows


def test_handover_with_a_note_to_another_teams_person_is_a_referral_into_their_team(
        client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "maryam")
    cid = world.conv_support  # support's, held by ali
    r = client.post(f"/conversations/{cid}/handover", follow_redirects=False, data={
        "csrf_token": csrf, "person_id": str(world.bob), "team_id": "",
        "note": "فاکتور فروش را ببین"})
    assert r.status_code == 303 and r.headers["location"] == f"/conversations/{cid}?done=referred"
    stored = _conv(db, cid)
    assert (stored.assignee_id, stored.team_id) == (world.bob, world.sales)  # moved to sales
    [event] = _events(db, cid)
    assert event.kind == "conversation.referred"
    assert event.data["note"] == "فاکتور فروش را ببین"
    assert (event.data["to_team"], event.data["from_team"]) == (world.sales, world.support)


def test_handover_without_a_note_is_an_assignment(client: TestClient, world: World,
                                                  db: Db) -> None:
    csrf = sign_in(client, "maryam")
    cid = world.conv_support
    r = client.post(f"/conversations/{cid}/handover", follow_redirects=False, data={
        "csrf_token": csrf, "person_id": str(world.bob), "team_id": "", "note": "  "})
    assert r.headers["location"] == f"/conversations/{cid}?done=assigned"
    assert (_conv(db, cid).assignee_id, _conv(db, cid).team_id) == (world.bob, world.sales)
    assert [e.kind for e in _events(db, cid)] == ["conversation.assigned"]


def test_an_agents_handover_needs_its_note(client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "ali")  # reads Persian; holds conv_support
    cid = world.conv_support
    here = f"/conversations/{cid}"
    text = post_refused(client, f"{here}/handover", {
        "csrf_token": csrf, "person_id": str(world.bob), "team_id": "", "note": ""}, here)
    assert "یادداشت ارجاع نباید خالی باشد." in text  # the workflow's reason, in Persian
    # the choice is kept on the form
    assert re.search(rf'<option value="{world.bob}"[^>]* selected', text)
    assert _conv(db, cid).assignee_id == world.ali and _events(db, cid) == []


def test_a_person_in_several_other_teams_is_asked_for_the_team(
        client: TestClient, world: World, db: Db) -> None:
    with db() as s:
        support, sales = s.get(Team, world.support), s.get(Team, world.sales)
        nima = f.person(s, "nima", teams=[support, sales])
        s.commit()
        nima_id = nima.id
    csrf = sign_in(client, "maryam")  # reads English
    cid = world.conv_triage  # no team
    here = f"/conversations/{cid}"
    text = post_refused(client, f"{here}/handover", {
        "csrf_token": csrf, "person_id": str(nima_id), "team_id": "", "note": "over to you"},
        here)
    assert "nima</bdi> is in several teams (<bdi>sales · پشتیبانی</bdi>)" in text
    assert "choose the team too" in text
    assert re.search(rf'<option value="{nima_id}"[^>]* selected', text)
    assert "over to you" in text  # the note, kept
    assert _conv(db, cid).assignee_id is None
    # With the team chosen it goes through, into that team
    r = client.post(f"{here}/handover", follow_redirects=False, data={
        "csrf_token": csrf, "person_id": str(nima_id), "team_id": str(world.sales),
        "note": "over to you"})
    assert r.headers["location"] == f"{here}?done=referred"
    assert (_conv(db, cid).assignee_id, _conv(db, cid).team_id) == (nima_id, world.sales)


def test_the_inbox_shows_the_list_and_the_open_conversation(client: TestClient,
                                                            world: World) -> None:
    sign_in(client, "maryam")
    cid = world.conv_support
    page = client.get(f"/queues?queue=open&open={cid}").text
    # the list, its filter kept, the open row marked
    assert 'id="queue-filters"' in page and 'id="queue-rows"' in page
    assert re.search(rf'<tr class="queue-row[^"]*" id="row-{cid}"[^>]*aria-current="true"', page)
    # the conversation in the pane: its page's markup, forms and all, without a second page
    pane = page[page.index('id="inbox-pane"'):]
    assert f'data-conversation-id="{cid}"' in pane and "support-text" in pane
    assert 'id="handover-form"' in pane and 'id="draft-form"' in pane
    assert page.count("<html") == 1 and page.count('id="conversation"') == 1
    # a row opens in the pane and pushes the inbox's URL with the same list
    row = re.search(rf'<a href="/conversations/{world.conv_triage}" class="row-link" ([^>]*)>',
                    page)
    assert row is not None
    assert 'hx-target="#inbox-pane"' in row.group(1)
    assert f'hx-push-url="/queues?queue=open&amp;open={world.conv_triage}"' in row.group(1)


def test_the_inbox_without_a_conversation_has_an_empty_pane(client: TestClient,
                                                             world: World) -> None:
    sign_in(client, "maryam")
    page = client.get("/queues?queue=open").text
    assert re.search(r'id="inbox-pane"[^>]*></section>', page)
    assert 'id="conversation"' not in page


def test_the_inbox_pane_is_not_there_outside_the_readers_teams(client: TestClient,
                                                                world: World) -> None:
    sign_in(client, "ali")  # support; conv_sales is sales'
    r = client.get(f"/queues?queue=mine&open={world.conv_sales}")
    assert r.status_code == 200
    assert 'id="inbox-missing"' in r.text
    assert "این گفتگو وجود ندارد" in r.text
    assert "sales-secret" not in r.text
    assert client.get("/queues?open=x1").status_code == 400

"""The queue page's bulk bar: checkboxes and "all matching", the 303 to a result page that a
reload does not resubmit, the result readable by its actor only, and the JSON API."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from console import auth
from kartabl.models import Channel, Conversation, ConversationStatus, Event, Person
from tests import factories as f
from tests.console.pages.conftest import World, sign_in

Db = sessionmaker[Session]


def _triage(db: Db, n: int, channel: Channel = Channel.TELEGRAM) -> list[int]:
    with db() as s:
        ids = [f.conversation(s, channel=channel, subject=f"triage {i}").id for i in range(n)]
        s.commit()
    return ids


def _state(db: Db, ids: list[int]) -> dict[int, tuple[int | None, int | None, str]]:
    with db() as s:
        rows = s.execute(select(Conversation.id, Conversation.assignee_id, Conversation.team_id,
                                Conversation.status).where(Conversation.id.in_(ids))).all()
    return {r.id: (r.assignee_id, r.team_id, ConversationStatus(r.status).value) for r in rows}


def test_the_queue_page_offers_the_bar_and_a_checkbox_per_row(client: TestClient,
                                                              world: World) -> None:
    sign_in(client, "maryam")
    page = client.get("/queues?queue=triage").text
    assert 'id="bulk-form"' in page and 'src="/static/bulk.js"' in page
    assert f'name="ids" value="{world.conv_triage}" form="bulk-form"' in page


def test_selected_rows_are_assigned_and_the_result_page_survives_a_reload(
        client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "maryam")
    ids = _triage(db, 3)
    # When the coordinator assigns two of them to ali (of support)
    r = client.post("/queues/bulk?queue=triage", data={
        "csrf_token": csrf, "action": "assign", "person_id": str(world.ali),
        "ids": [str(ids[0]), str(ids[1])]}, follow_redirects=False)
    # Then 303 to the result, which lists both as done
    assert r.status_code == 303, r.text[-800:]
    result_url = r.headers["location"]
    assert result_url.startswith("/queues/bulk/")
    page = client.get(result_url)
    assert page.status_code == 200 and 'id="bulk-done"' in page.text
    assert f'href="/conversations/{ids[0]}"' in page.text
    assert _state(db, ids) == {ids[0]: (world.ali, world.support, "open"),
                               ids[1]: (world.ali, world.support, "open"),
                               ids[2]: (None, None, "open")}
    # and reading it again changes nothing (it is a GET of the audit row)
    with db() as s:
        before = s.scalar(select(func.count()).select_from(Event))
    assert client.get(result_url).status_code == 200
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == before


def test_all_matching_follows_the_filter(client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "maryam")
    tg = _triage(db, 4, Channel.TELEGRAM)
    sms = _triage(db, 2, Channel.SMS)
    r = client.post("/queues/bulk?queue=triage&channel=sms", data={
        "csrf_token": csrf, "action": "assign", "team_id": str(world.sales),
        "all_matching": "1"}, follow_redirects=False)
    assert r.status_code == 303, r.text[-800:]
    state = _state(db, tg + sms)
    assert {state[i][1] for i in sms} == {world.sales}
    assert {state[i][1] for i in tg} == {None}  # the filter said SMS only


def test_an_agents_bulk_close_lists_what_was_refused(client: TestClient, world: World,
                                                     db: Db) -> None:
    csrf = sign_in(client, "ali")
    r = client.post("/queues/bulk", data={
        "csrf_token": csrf, "action": "close",
        "ids": [str(world.conv_support), str(world.conv_sales)]}, follow_redirects=False)
    assert r.status_code == 303, r.text[-800:]
    page = client.get(r.headers["location"]).text
    assert f'data-conversation-id="{world.conv_sales}"' in page  # refused, with its reason
    assert "sales-secret-subject" not in page  # and nothing of it shown
    assert _state(db, [world.conv_support, world.conv_sales]) == {
        world.conv_support: (world.ali, world.support, "closed"),
        world.conv_sales: (world.bob, world.sales, "open")}


def test_a_request_wrong_as_a_whole_is_shown_and_changes_nothing(
        client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "ali")  # an agent may not assign
    r = client.post("/queues/bulk", data={
        "csrf_token": csrf, "action": "assign", "person_id": str(world.ali),
        "ids": [str(world.conv_triage)]}, follow_redirects=False)
    # 303 to a GET page with the reason (post/redirect/get: a reload submits nothing)
    assert r.status_code == 303 and r.headers["location"].startswith("/refused?failed=")
    shown = client.get(r.headers["location"])
    assert shown.status_code == 403 and "ali" in shown.text
    assert _state(db, [world.conv_triage])[world.conv_triage] == (None, None, "open")


def test_a_result_page_is_its_actors_and_the_coordinators(
        client: TestClient, other_client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "ali")
    r = client.post("/queues/bulk", data={"csrf_token": csrf, "action": "close",
                                          "ids": [str(world.conv_support)]},
                    follow_redirects=False)
    url = r.headers["location"]
    sign_in(other_client, "bob")  # another agent: not theirs
    assert other_client.get(url).status_code == 404
    other_client.cookies.clear()
    sign_in(other_client, "reza")  # a coordinator oversees it
    assert other_client.get(url).status_code == 200


def test_a_request_that_changes_nothing_says_why_at_once(client: TestClient, world: World,
                                                         db: Db) -> None:
    # Given a closed conversation: closing it again is refused by the workflow
    csrf = sign_in(client, "maryam")
    assert client.post("/queues/bulk", data={"csrf_token": csrf, "action": "close",
                                             "ids": [str(world.conv_sales)]},
                       follow_redirects=False).status_code == 303
    r = client.post("/queues/bulk", data={"csrf_token": csrf, "action": "close",
                                          "ids": [str(world.conv_sales)]},
                    follow_redirects=False)
    assert r.status_code == 409 and f'data-conversation-id="{world.conv_sales}"' in r.text
    # and an agent naming only what they cannot see gets the 404 of a missing one
    csrf = sign_in(client, "ali")
    r = client.post("/queues/bulk", data={"csrf_token": csrf, "action": "close",
                                          "ids": [str(world.conv_sales)]},
                    follow_redirects=False)
    assert r.status_code == 404


def test_without_the_csrf_token_nothing_happens(client: TestClient, world: World,
                                                db: Db) -> None:
    sign_in(client, "maryam")
    r = client.post("/queues/bulk", data={"action": "close", "ids": [str(world.conv_triage)]},
                    follow_redirects=False)
    assert r.status_code == 403
    assert _state(db, [world.conv_triage])[world.conv_triage][2] == "open"


def test_the_api_does_the_same_with_an_act_token(client: TestClient, world: World,
                                                 db: Db) -> None:
    with db() as s:
        ali = s.get(Person, world.ali)
        assert ali is not None
        token = auth.create_api_token(s, ali, name="t", scopes=["read", "act"]).token
        read_only = auth.create_api_token(s, ali, name="r", scopes=["read"]).token
        s.commit()
    body = {"action": "close", "ids": [world.conv_support, world.conv_sales]}
    assert client.post("/api/v1/conversations/bulk", json=body,
                       headers={"Authorization": f"Bearer {read_only}"}).status_code == 403
    r = client.post("/api/v1/conversations/bulk", json=body,
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["done"] == [world.conv_support]
    assert [x["conversation_id"] for x in out["refused"]] == [world.conv_sales]
    assert out["refused"][0]["error"] == "not_found"
    bad = client.post("/api/v1/conversations/bulk", json={"action": "refer", "team_id": 1,
                                                          "ids": [world.conv_support]},
                      headers={"Authorization": f"Bearer {token}"})
    assert bad.status_code == 400 and "note" in bad.text

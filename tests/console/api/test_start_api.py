"""POST /api/v1/conversations and the "New conversation" page, through the real app on both
databases: who may start one, where, and that a refusal stores nothing."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl.models import Conversation, Event, Identity, ReplyState
from tests.console.api.conftest import World, snapshot

URL = "/api/v1/conversations"


def test_an_agent_starts_an_sms_conversation_to_a_new_number(
        db: sessionmaker[Session], world: World, api, enqueued) -> None:
    r = api(world.agent_a, "act").post(URL, {"kind": "phone", "address": "۰۹۱۲ ۱۱۱ ۲۲۳۳",
                                             "name": "مشتری تازه", "body": "سلام"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["customer_created"] is True
    assert (out["conversation"]["team_id"], out["conversation"]["assignee_id"]) == (
        world.team_a, world.agent_a)
    assert out["reply"]["state"] == ReplyState.PENDING_APPROVAL.value
    assert enqueued == []  # reviewed first
    with db() as s:
        conv = s.get(Conversation, out["conversation"]["id"])
        assert conv is not None and conv.started_by_id == world.agent_a
        ident = s.get(Identity, conv.to_identity_id)
        assert ident is not None and ident.address == "+989121112233"
        kinds = set(s.scalars(select(Event.kind).where(Event.actor_id == world.agent_a)))
        assert {"customer.created", "conversation.started", "reply.submitted"} <= kinds


def test_an_existing_identity_by_id_and_a_coordinators_approval(
        db: sessionmaker[Session], world: World, api, enqueued) -> None:
    with db() as s:
        ident = s.scalar(select(Identity).where(Identity.customer_id == world.customer_a))
        assert ident is not None
        ident_id = ident.id
    r = api(world.agent_a).post(URL, {"identity_id": ident_id, "body": "سلام دوباره"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["customer_id"] == world.customer_a and not out["customer_created"]
    rid = out["reply"]["id"]
    # the author cannot approve (no review scope for an agent)
    assert api(world.agent_a).post(f"/api/v1/replies/{rid}/approve").status_code == 403
    ok = api(world.coord).post(f"/api/v1/replies/{rid}/approve")
    assert ok.status_code == 200 and ok.json()["state"] == "approved"
    assert enqueued == [("dispatch_reply", rid)]


def test_scope_and_refusals_store_nothing(db: sessionmaker[Session], world: World,
                                          api) -> None:
    agent, reader = api(world.agent_a), api(world.agent_a, "read")
    before = snapshot(db)
    with db() as s:
        theirs = s.scalar(select(Identity.id).where(Identity.customer_id == world.customer_b))
    cases = [
        ({"kind": "phone", "address": "09121110000", "body": "x", "team_id": world.team_b},
         403),  # another team
        ({"identity_id": theirs, "body": "x"}, 404),  # a customer outside the scope
        ({"identity_id": 2_000_000, "body": "x"}, 404),
        ({"kind": "email", "address": "secret.b@example.ir", "body": "x", "subject": "s"},
         403),  # their address typed
        ({"kind": "phone", "address": "not a phone", "body": "x"}, 400),
        ({"kind": "email", "address": "new@example.ir", "body": "x"}, 400),  # no subject
        ({"body": "x"}, 400),  # nobody to write to
        ({"kind": "phone", "address": "09121110000", "body": "  "}, 400),
        ({"kind": "phone", "address": "09121110000", "body": "سلام " * 200}, 400),  # too long
    ]
    for body, status in cases:
        r = agent.post(URL, body)
        assert r.status_code == status, (body, r.text)
        assert "Secret Customer B" not in r.text
    assert agent.post(URL, {"kind": "telegram", "address": "42", "body": "x"}).status_code == 422
    assert reader.post(URL, {"kind": "phone", "address": "09121110000",
                             "body": "x"}).status_code == 403
    assert snapshot(db) == before


def test_the_page_starts_one_and_keeps_what_was_typed_on_a_refusal(
        db: sessionmaker[Session], world: World, browser) -> None:
    page = browser("ali")
    r = page.get("/conversations/new")
    assert r.status_code == 200 and 'id="compose-form"' in r.text
    # a customer found in scope, preselected
    found = page.get("/conversations/new?q=support")
    assert found.status_code == 200
    chosen = page.get(f"/conversations/new?customer={world.customer_a}")
    assert chosen.status_code == 200 and 'name="to"' in chosen.text
    # not team B's
    assert page.get(f"/conversations/new?customer={world.customer_b}").status_code == 404
    # a refusal: back to the form with the reason and the text kept
    r = page.client.post("/conversations/new", data={
        "to": "new", "kind": "email", "address": "new@example.ir", "body": "متن من",
        "csrf_token": page.headers["X-CSRF-Token"]}, follow_redirects=False)
    assert r.status_code == 303 and "failed=" in r.headers["location"]
    back = page.get(r.headers["location"])
    assert "متن من" in back.text and "An email needs a subject." in back.text
    # started: to the new conversation, pending approval
    r = page.client.post("/conversations/new", data={
        "to": "new", "kind": "phone", "address": "09121110000", "body": "سلام",
        "csrf_token": page.headers["X-CSRF-Token"]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("?done=submitted")
    conv_page = page.get(r.headers["location"])
    assert conv_page.status_code == 200 and 'class="pending-reply"' in conv_page.text
    # its preview counts the SMS as the outbox will send it
    cid = int(r.headers["location"].split("/")[2].split("?")[0])
    pv = page.post(f"/api/v1/conversations/{cid}/preview", {"body": "سلام"})
    assert pv.status_code == 200 and pv.json()["parts"] == 1
    with db() as s:
        conv = s.scalars(select(Conversation).where(Conversation.started_by_id.is_not(None))
                         ).one()
        assert conv.team_id == world.team_a
